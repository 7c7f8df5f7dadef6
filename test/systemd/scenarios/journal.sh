# Every tick in the journal (test/systemd/journal.test.ts, bench/journal.ts):
# early-service.service, enabled as a package enables it and started at boot
# with the tick period a drop-in gives it, runs under a little client load
# for ES_SECONDS; then the unit's journal, journald's own messages and the
# main process's memory go to the results. Records facts only; the host
# asserts on them.
#
#   ES_SECONDS   how long the load runs (default 10)
#   ES_CLIENTS   es-probe clients (default 2)
#   ES_PROBE     more es-probe options (default none: mixed clients, 2 ms apart)
set -u
. /usr/lib/es-systemd-test/lib.sh
unit=early-service.service
seconds=${ES_SECONDS:-10}
clients=${ES_CLIENTS:-2}

es_fact systemd_version "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
es_wait_state "$unit" active 30 || true
pid=$(systemctl show -p MainPID --value $unit)
es_fact active_state "$(systemctl show -p ActiveState --value $unit)"
es_fact main_pid "$pid"
es_fact exec_start "$(systemctl show -p ExecStart --value $unit | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p')"
# When the journal left /run for /var/log/journal (a different rate limit factor).
es_fact journal_flushed_at_us "$(systemctl show -p ExecMainExitTimestampMonotonic --value systemd-journal-flush.service)"
first=$(es_wait_answer 10) || first=none
es_fact counter_first "$first"
es_fact load_started_at_us "$(es_monotonic_us)"

# shellcheck disable=SC2086 # ES_PROBE is a list of options
es-probe -c "$clients" ${ES_PROBE:-} -d "$seconds" -o "$ES_RESULTS/probe.json" &
probe=$!
# The main process's resident memory under the load (max of 0.5 s samples,
# from the load's second second on: its first is the end of start-up, whose
# peak VmHWM reports).
rss_max=0
sleep 1
while kill -0 "$probe" 2> /dev/null; do
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2> /dev/null || echo 0)
  [ "${rss:-0}" -le "$rss_max" ] || rss_max=$rss
  sleep 0.5
done
wait "$probe"
last=$(es-probe --once get_counter) || last=none
es_fact counter_last "$last"
es_fact rss_max_kib "$rss_max"
for field in VmRSS VmHWM RssAnon RssFile RssShmem; do
  es_fact "$(echo "$field" | tr 'A-Z' 'a-z')_kib" "$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status")"
done
es_fact active_state_after "$(systemctl show -p ActiveState --value $unit)"
es_fact main_pid_after "$(systemctl show -p MainPID --value $unit)"
es_fact n_restarts "$(systemctl show -p NRestarts --value $unit)"

# The lines up to the last get_counter may still be on their way (the
# service's queue, journald's socket): wait until the journal has a tick at
# least that far, at most 60 s.
last_tick() { journalctl -u $unit -o cat -n 5000 --no-pager | grep -E '^[0-9]+$' | tail -n1; }
deadline=$((SECONDS + 60))
while t=$(last_tick) && [ "${t:-0}" -lt "${last:-0}" ] 2> /dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
es_fact journal_caught_up_at_us "$(es_monotonic_us)"

journalctl -u $unit -o cat --no-pager > "$ES_RESULTS/unit-journal.txt"
journalctl -u $unit -o short-monotonic --no-pager -p warning > "$ES_RESULTS/unit-warnings.txt"
# journald says so when it drops a unit's lines (rate limit): "Suppressed N messages from UNIT".
journalctl -b -o short-monotonic --no-pager | grep -E 'Suppressed [0-9]+ messages from' > "$ES_RESULTS/suppressed.txt"
es_fact suppressed_lines "$(grep -c . "$ES_RESULTS/suppressed.txt")"
es_fact first_tick_line "$(journalctl -u $unit -o short-monotonic --no-pager | grep -m1 -E '\]: [0-9]+$')"
es_fact journal_disk_usage "$(journalctl --disk-usage 2>&1)"
