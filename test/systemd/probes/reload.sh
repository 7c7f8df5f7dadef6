# Fact 1: reload by handing the main PID to a successor (probe.service:
# Type=notify, NotifyAccess=main, ExecReload= waits for the outcome).
set -u
. /usr/lib/es-systemd-test/lib.sh
. /usr/lib/es-systemd-test/probes/probe-lib.sh
u=probe.service
systemctl start $u
es_wait_answer 10 /run/probe/probe.sock > /dev/null
es_fact start_state "$(state $u)"

# A. The old main sends MAINPID=<successor> then BARRIER=1, then exits 0. Ten in a row under load.
variant probe barrier
load_start probe barrier
ok=0 moved=0
for i in 1 2 3 4 5 6 7 8 9 10; do
  before=$(prop $u MainPID)
  rc=0; systemctl reload $u || rc=$?
  after=$(prop $u MainPID)
  succ=$(last_event probe successor-started | sed 's/.*successor=//')
  [ "$rc" = 0 ] && ok=$((ok + 1))
  [ "$after" = "$succ" ] && [ "$after" != "$before" ] && moved=$((moved + 1))
  [ $i = 1 ] && es_fact barrier_first "rc=$rc before=$before after=$after successor=$succ state=$(state $u) status='$(prop $u StatusText)'"
done
load_stop barrier
es_fact barrier_reloads_rc0 "$ok/10"
es_fact barrier_mainpid_is_successor "$moved/10"
es_fact barrier_state_after "$(state $u)"
es_fact barrier_status_after "$(prop $u StatusText)"
es_fact barrier_ok_events "$(grep -c ' barrier ok=True' "$ES_RESULTS/events.log")"
es_fact barrier_max_us "$(sed -n 's/.* barrier ok=True us=\([0-9]*\).*/\1/p' "$ES_RESULTS/events.log" | sort -n | tail -n1)"
# The successor's pings after the switch: 6 s > WatchdogSec=2s with only the successor pinging.
sleep 6
es_fact barrier_after_6s "$(state $u) status='$(prop $u StatusText)'"
es_fact journal_rejected_notifications "$(journal_count 'reception only permitted for main PID')"
es_fact journal_rejected_sample "$(journalctl -b -o cat --no-pager | grep -m1 -E 'reception only permitted for main PID')"
es_fact journal_not_our_child "$(journal_count 'not our child')"
es_fact journal_not_our_child_sample "$(journalctl -b -o cat --no-pager | grep -m1 'not our child')"
es_fact journal_watchdog_timeouts "$(journal_count 'Watchdog timeout')"

# A2. Before the switch: the successor's STATUS=/WATCHDOG=1 (sent at its start) must be
# refused with NotifyAccess=main. The old main waits 500 ms before MAINPID=; PID 1 logs at debug level.
variant probe barrier-hold
systemd-analyze log-level debug
systemctl reload $u & reload_pid=$!
sleep 0.3
es_fact hold_status_before_switch "$(prop $u StatusText) main=$(prop $u MainPID)"
wait $reload_pid
systemd-analyze log-level info
es_fact hold_status_after_switch "$(prop $u StatusText) main=$(prop $u MainPID)"
succ=$(last_event probe successor-started | sed 's/.*successor=//')
es_fact hold_pid1_on_successor_messages "$(journalctl -b -o cat --no-pager | grep -E "PID $succ\b|process $succ\b|pid $succ\b" | grep -v '^probe-reload' | head -n4 | tr '\n' '|')"
variant probe barrier

# B. The successor (now main, reparented to PID 1) is SIGKILLed: noticed? restarted? fd store back?
victim=$(prop $u MainPID)
es_fact crash_victim_ppid "$(awk '{print $4}' /proc/$victim/stat)"
load_start probe crash
[ "$victim" -gt 1 ] && kill -KILL "$victim"
wait_main_change $u "$victim" 10 || true
es_wait_answer 10 /run/probe/probe.sock > /dev/null
sleep 0.3
load_stop crash
es_fact crash_state_after "$(state $u)"
es_fact crash_restarted_start_event "$(last_event probe start)"
es_fact crash_state_event "$(last_event probe state)"
es_fact crash_journal "$(journalctl -b -u $u -o cat --no-pager | grep -E 'Main process exited|Scheduled restart' | tail -n2 | tr '\n' '|')"

# C. ExecReload exits non-zero ("fail": nothing changes).
variant probe fail
before=$(prop $u MainPID)
rc=0; out=$(systemctl reload $u 2>&1) || rc=$?
es_fact fail_reload_rc "$rc"
es_fact fail_reload_output "$(echo "$out" | head -n1)"
es_fact fail_state_after "$(state $u) before_main=$before"
es_fact fail_journal "$(journalctl -b -u $u -o cat --no-pager | grep -iE 'control process|reload' | tail -n2 | tr '\n' '|')"

# D. The successor started by the reload command (its process tree), not by the main process.
variant probe barrier external
load_start probe external
ok=0 moved=0
for i in 1 2 3 4 5; do
  before=$(prop $u MainPID)
  rc=0; systemctl reload $u || rc=$?
  sleep 0.2
  after=$(prop $u MainPID)
  [ "$rc" = 0 ] && ok=$((ok + 1))
  [ "$after" != "$before" ] && [ "$after" != 0 ] && moved=$((moved + 1))
  [ $i = 1 ] && es_fact external_first "rc=$rc before=$before after=$after state=$(state $u) status='$(prop $u StatusText)' successor_start='$(last_event probe start)'"
done
load_stop external
es_fact external_reloads_rc0 "$ok/5"
es_fact external_reload_command_env "$(grep -m1 'reload-command variant=barrier how=external' "$ES_RESULTS/events.log" | sed 's/.*how=external //')"
es_fact external_successor_start "$(grep -m1 'how=started-by-reload-command' "$ES_RESULTS/events.log" | cut -d' ' -f4-)"
es_fact external_mainpid_moved "$ok/5 rc0, $moved/5 moved"
sleep 3
es_fact external_after_3s "$(state $u) status='$(prop $u StatusText)'"
victim=$(prop $u MainPID)
[ "$victim" -gt 1 ] && kill -KILL "$victim"
wait_main_change $u "$victim" 10 || true
es_wait_answer 10 /run/probe/probe.sock > /dev/null || true
es_fact external_crash_after "$(state $u) start='$(last_event probe start)'"

# E. The race: MAINPID= then exit at once, no barrier. 30 tries; after each: who is the main PID?
variant probe nobarrier
took=0 lost=0 other=0
for i in $(seq 1 60); do
  es_wait_state $u active 10 || systemctl start $u
  es_wait_answer 10 /run/probe/probe.sock > /dev/null || true
  before=$(prop $u MainPID)
  restarts=$(prop $u NRestarts)
  rc=0; systemctl reload $u > /dev/null 2>&1 || rc=$?
  sleep 0.3
  succ=$(last_event probe successor-started | sed 's/.*successor=//')
  after=$(prop $u MainPID)
  if [ "$after" = "$succ" ] && [ "$(prop $u ActiveState)" = active ] && [ "$(prop $u NRestarts)" = "$restarts" ]; then
    took=$((took + 1))
  else
    lost=$((lost + 1))
    [ $lost -le 3 ] && es_fact "race_lost_$lost" "rc=$rc before=$before successor=$succ now: $(state $u) alive=$([ -d /proc/$succ ] && echo yes || echo no)"
  fi
done
es_fact race_nobarrier "$took/60 took over, $lost/60 not"
es_fact race_journal "$(journalctl -b -u $u -o cat --no-pager | grep -vE '^probe-reload' | grep -E 'Main process exited|Deactivated|Succeeded|Killing|Failed' | sort | uniq -c | sort -rn | head -n5 | tr '\n' '|')"
systemctl stop $u
