# A full log queue is reported, never silent (test/systemd/journal.test.ts):
# early-service.service runs with a small --log-queue (a drop-in); journald is
# stopped (SIGSTOP) while clients keep asking, until the service's stream to
# journald is full (the socket's send buffer: systemd makes it large, tens of
# seconds of lines) and then its queue too (es-page reads the queue's fill
# from the service's state page), and for ES_FULL_SECONDS more, so that ticks
# must be dropped; then journald goes on (SIGCONT). Records facts only; the
# host asserts on them. Nothing may write to the journal's stream meanwhile:
# this script stays quiet while journald is stopped (its own stdout goes
# there too).
#
#   ES_MAX_STOP_SECONDS   the longest journald stays stopped waiting for the queue to fill (default 60)
#   ES_FULL_SECONDS       how long it stays stopped once the queue is full (default 1)
set -u
. /usr/lib/es-systemd-test/lib.sh
unit=early-service.service
max_stop_s=${ES_MAX_STOP_SECONDS:-60}

es_fact systemd_version "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
es_wait_state "$unit" active 30 || true
es_fact active_state "$(systemctl show -p ActiveState --value $unit)"
es_fact exec_start "$(systemctl show -p ExecStart --value $unit | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p')"
first=$(es_wait_answer 10) || first=none
es_fact counter_first "$first"
journald=$(systemctl show -p MainPID --value systemd-journald)

pid=$(systemctl show -p MainPID --value $unit)
es-probe -c 2 -o "$ES_RESULTS/probe.json" > /dev/null 2>&1 &
probe=$!
sleep 1
before=$(es-probe --once get_counter 2> /dev/null) || before=none
stopped_at=$(date +%s%N)
kill -STOP "$journald"
# 0: full; 1: not within the time; 2: es-page failed (its message in es-page.err).
es-page "$pid" wait-full "$max_stop_s" 2> "$ES_RESULTS/es-page.err"
wait_rc=$? full_at=$(date +%s%N)
[ $wait_rc != 0 ] || sleep "${ES_FULL_SECONDS:-1}"
# Still serving while its log cannot go anywhere.
during=$(es-probe --once get_counter 2> /dev/null) || during=none
kill -CONT "$journald"
resumed_at=$(date +%s%N)
sleep 1
kill -TERM "$probe"
wait "$probe"
es_fact wait_full_rc "$wait_rc"
es_fact seconds_until_full "$(awk -v a="$stopped_at" -v b="$full_at" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
es_fact journald_stopped_seconds "$(awk -v a="$stopped_at" -v b="$resumed_at" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
es_fact counter_before_stop "$before"
es_fact counter_end_of_stop "$during"
last=$(es-probe --once get_counter) || last=none
es_fact counter_last "$last"
es_fact active_state_after "$(systemctl show -p ActiveState --value $unit)"
es_fact n_restarts "$(systemctl show -p NRestarts --value $unit)"

last_tick() { journalctl -u $unit -o cat -n 5000 --no-pager | grep -E '^[0-9]+$' | tail -n1; }
deadline=$((SECONDS + 60))
while t=$(last_tick) && [ "${t:-0}" -lt "${last:-0}" ] 2> /dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
journalctl -u $unit -o cat --no-pager > "$ES_RESULTS/unit-journal.txt"
journalctl -u $unit -o short-monotonic --no-pager -p warning > "$ES_RESULTS/unit-warnings.txt"
journalctl -b -o short-monotonic --no-pager | grep -E 'Suppressed [0-9]+ messages from' > "$ES_RESULTS/suppressed.txt" || true
