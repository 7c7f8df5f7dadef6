# Smoke: early-service.service (the root file system's unit, enabled as a
# package enables it; no initrd instance) started at boot serves get_counter,
# is active, and its tick lines reach the journal. Records facts only; the
# host's test (test/systemd/smoke.systemd.ts) asserts on them.
set -u
. /usr/lib/es-systemd-test/lib.sh
unit=early-service.service

es_wait_state "$unit" active 30 || true
es_fact active_state "$(systemctl show -p ActiveState --value $unit)"
es_fact sub_state "$(systemctl show -p SubState --value $unit)"
es_fact main_pid "$(systemctl show -p MainPID --value $unit)"
es_fact status_text "$(systemctl show -p StatusText --value $unit)"
first=$(es_wait_answer 10) || first=none
es_fact counter_first "$first"
# One second of load from 4 clients (two persistent, two fresh, every 2 ms).
es-probe -c 4 -i 2 -d 1 -o "$ES_RESULTS/probe.json"
es_fact counter_last "$(es-probe --once get_counter || echo none)"
es_fact active_state_after "$(systemctl show -p ActiveState --value $unit)"
journalctl -u $unit -o cat --no-pager > "$ES_RESULTS/unit-journal.txt"
# Tick lines: the message is the counter alone.
es_fact journal_tick_lines "$(grep -cE '^[0-9]+$' "$ES_RESULTS/unit-journal.txt")"
es_fact journal_last_tick "$(grep -E '^[0-9]+$' "$ES_RESULTS/unit-journal.txt" | tail -n1)"
es_fact systemd_version "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
