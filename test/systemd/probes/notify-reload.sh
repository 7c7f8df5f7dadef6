# Fact 2: RELOADING=1 + MONOTONIC_USEC= then READY=1 from a plain Type=notify
# unit with ExecReload=; and one unit file that is Type=notify on 252 and
# Type=notify-reload on 257 (probe-dual*.service: two Type= lines).
set -u
. /usr/lib/es-systemd-test/lib.sh
. /usr/lib/es-systemd-test/probes/probe-lib.sh

# A. probe.service (Type=notify, ExecReload= waits): the main process sends
# RELOADING=1 + MONOTONIC_USEC=<now>, 300 ms later READY=1, then answers ExecReload.
u=probe.service
systemctl start $u
es_wait_answer 10 /run/probe/probe.sock > /dev/null
variant probe notify-reload
reload_observe $u notify_plain
es_fact notify_plain_journal "$(journalctl -b -u $u -o cat --no-pager | grep -viE '^probe-reload|^(Starting|Started|Reloading|Reloaded) ' | tail -n3 | tr '\n' '|')"
# ExecReload= gets its answer (and exits) 300 ms before READY=1: does the reload job wait for READY=1?
variant probe notify-reload-late
reload_observe $u notify_late
# Order from the clocks of the events: READY=1 (events.log), the reload command's
# answer and PID 1's "Reloaded" (the job's end, when systemctl returns), journal monotonic.
ready_us=$(grep ' probe pid=[0-9]* sent what=READY=1' "$ES_RESULTS/events.log" | tail -n1 | cut -d' ' -f1)
mono_of() { journalctl -b -o short-monotonic --no-pager | grep -E "$1" | tail -n1 | sed 's/^\[ *\([0-9]*\)\.\([0-9]*\)\].*/\1\2/'; }
answered_us=$(mono_of 'probe-reload: notify-reload-late')
reloaded_us=$(mono_of 'Reloaded probe.service')
es_fact notify_late_order "ExecReload answered at READY-$(( (ready_us - answered_us) / 1000 )) ms; job ended (Reloaded) at READY+$(( (reloaded_us - ready_us) / 1000 )).$(( (reloaded_us - ready_us) % 1000 / 100 )) ms"
# The same through a handover: RELOADING=1, then the successor takes the main PID and sends READY=1.
variant probe notify-reload-handover
reload_observe $u notify_handover
es_fact notify_handover_main "$(last_event probe successor-started)"
systemctl stop $u

# B. probe-dual.service: "Type=notify" then "Type=notify-reload" (+ ReloadSignal=SIGHUP), ExecReload= set.
u=probe-dual.service
es_fact dual_type "$(prop $u Type)"
es_fact dual_load_messages "$(journalctl -b -o cat --no-pager | grep -F 'probe-dual.service:' | grep -iE 'parse|unknown|ignoring' | sort -u | tr '\n' '|')"
systemctl start $u
es_wait_answer 10 /run/probe/dual.sock > /dev/null
es_fact dual_start "$(state $u)"
variant dual notify-reload
reload_observe $u dual_reload
es_fact dual_events "$(grep -E ' dual pid=[0-9]+ (sighup|reload-requested|reload-command)' "$ES_RESULTS/events.log" | cut -d' ' -f4- | tr '\n' '|')"
systemctl stop $u

# C. probe-dual-noexec.service: the same without ExecReload=; on SIGHUP the
# service sends RELOADING=1, hands the main PID to a successor (BARRIER=1), and
# the successor sends READY=1.
u=probe-dual-noexec.service
es_fact noexec_type "$(prop $u Type)"
systemctl start $u
es_wait_answer 10 /run/probe/dualnoexec.sock > /dev/null
before=$(prop $u MainPID)
reload_observe $u noexec_reload
es_fact noexec_main "before=$before after=$(prop $u MainPID) successor=$(last_event dualnoexec successor-started | sed 's/.*successor=//')"
es_fact noexec_events "$(grep -E ' dualnoexec pid=[0-9]+ (sighup|reload-requested|sent|barrier|ready)' "$ES_RESULTS/events.log" | cut -d' ' -f4- | tr '\n' '|')"
sleep 3
es_fact noexec_after_3s "$(state $u) status='$(prop $u StatusText)'"
systemctl stop $u
es_fact journal_monotonic_usec "$(journalctl -b -o cat --no-pager | grep -iE 'MONOTONIC_USEC|RELOADING' | sort -u | head -n3 | tr '\n' '|')"
