# Ticks lost from boot (bench/journal.ts): early-service.service starts at
# boot with the tick period (and, for the "without" rows, the rate-limit
# settings) a drop-in gives it; once the counter is past ES_TICKS (its
# first ES_TICKS ticks: 10 s at the nominal rate, the first 10 s of the
# boot's journal), counts how many of the tick values 0..ES_TICKS-1 the
# unit's journal holds, and what journald said about suppressing. Then RSS
# after 4 s of 8 clients hammering (persistent connections, no pause).
#
#   ES_TICKS   how many ticks from the start are counted (default 10000)
set -u
. /usr/lib/es-systemd-test/lib.sh
unit=early-service.service
ticks=${ES_TICKS:-10000}

es_fact systemd_version "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
es_wait_state "$unit" active 30 || true
pid=$(systemctl show -p MainPID --value $unit)
es_fact log_rate_limit "$(systemctl show -p LogRateLimitIntervalUSec,LogRateLimitBurst --value $unit | paste -sd' ')"
es_fact exec_start "$(systemctl show -p ExecStart --value $unit | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p')"
deadline=$((SECONDS + 120))
until c=$(es-probe --once get_counter 2> /dev/null) && [ "$c" -gt "$ticks" ] || [ $SECONDS -ge $deadline ]; do sleep 0.2; done
es_fact counter_after_window "${c:-none}"
# What journald was doing meanwhile; let it finish what it has (rate-limited lines never come).
journalctl --sync
sleep 2
journalctl -u $unit -o cat --no-pager | grep -E '^[0-9]+$' \
  | awk -v n="$ticks" '$1 < n { if (!seen[$1]++) distinct++; lines++ }
      END { printf "window_lines=%d\nwindow_distinct=%d\n", lines, distinct }' >> "$ES_RESULTS/facts.env"
journalctl -b -o short-monotonic --no-pager | grep -E 'Suppressed [0-9]+ messages from early-service' > "$ES_RESULTS/suppressed.txt"
es_fact suppressed_total "$(sed -n 's/.*Suppressed \([0-9]*\) messages.*/\1/p' "$ES_RESULTS/suppressed.txt" | awk '{ s += $1 } END { print s + 0 }')"
es_fact dropped_notices "$(journalctl -u $unit -o cat --no-pager | grep -c 'log lines dropped')"
es_fact journal_flushed_at_us "$(systemctl show -p ExecMainExitTimestampMonotonic --value systemd-journal-flush.service)"
es_fact first_tick_line "$(journalctl -u $unit -o short-monotonic --no-pager | grep -m1 -E '\]: [0-9]+$')"

# RSS under load: after 4 s of 8 clients hammering (as issue 14 measures it).
es-probe -c 8 -m persistent -i 0 -d 4 -o "$ES_RESULTS/probe.json"
for field in VmRSS VmHWM RssAnon RssFile RssShmem; do
  es_fact "$(echo "$field" | tr 'A-Z' 'a-z')_kib" "$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status")"
done
es_fact main_pid_after "$(systemctl show -p MainPID --value $unit)"
