# Fact 5: a stop or restart of a unit whose main process was set with
# MAINPID= to a process that was not PID 1's child at that moment ("alien":
# PID 1 logs "Supervising process N which is not our child"). The probe's
# stop takes 300 ms (probe.stop-ms): its "stopped" event shows whether
# systemd let it finish; PID 1 at debug level shows the unit's states.
#   A  the main process systemd started (PID 1's child)
#   B  after a reload whose successor the old main forked (its child at MAINPID=; PID 1's once the old main exits)
#   C  as B, then systemctl restart
#   D  after a reload whose successor was orphaned first (double fork: PID 1's child at MAINPID=)
#   E  as D, then systemctl restart
set -u
. /usr/lib/es-systemd-test/lib.sh
. /usr/lib/es-systemd-test/probes/probe-lib.sh
u=probe.service
mkdir -p /run/probe
echo 300 > /run/probe/probe.stop-ms
systemd-analyze log-level debug

# observe TAG CMD...: CMD (a stop or restart of the unit), and what happened to its main process:
# facts TAG_main (pid, ppid, the MAINPID= check PID 1 logged for it), TAG_events (its events
# from the SIGTERM on, with ms since the SIGTERM), TAG_pid1 (PID 1's lines for the unit), TAG_after
observe() {
  local tag=$1 main ppid cursor t0; shift
  main=$(prop $u MainPID)
  ppid=$(awk '{print $4}' "/proc/$main/stat")
  cursor=$(journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
  "$@"
  sleep 0.6
  t0=$(grep " pid=$main sigterm" "$ES_RESULTS/events.log" | tail -n1 | cut -d' ' -f1)
  es_fact "${tag}_main" "pid=$main ppid=$ppid not-our-child-logged=$(journalctl -b -o cat --no-pager | grep -c "Supervising process $main which is not our child")"
  es_fact "${tag}_events" "$(grep " pid=$main " "$ES_RESULTS/events.log" | awk -v t0="${t0:-0}" '$4 == "sigterm" || $4 == "stopped" { printf "%s@+%.1fms ", $4, ($1 - t0) / 1000 }')"
  es_fact "${tag}_pid1" "$(journalctl --after-cursor="$cursor" -u $u -o short-monotonic --no-pager |
    grep -E 'Changed (running|stop|final|reload)|Sending signal|Killing process|Main process exited|not our child|Deactivated|Failed with' |
    sed 's/^\[ *\([0-9.]*\)\][^:]*: /\1 /; s/^\([0-9.]*\) probe.service: /\1 /' | head -n 12 | tr '\n' '|')"
  es_fact "${tag}_after" "$(state $u)"
}
fresh() {
  systemctl stop $u 2> /dev/null
  systemctl start $u
  es_wait_answer 10 /run/probe/probe.sock > /dev/null
}
reload_with() {
  local rc=0
  variant probe barrier "$1"
  systemctl reload $u || rc=$?
  sleep 0.3
  es_fact "${2}_reload" "rc=$rc $(state $u) successor_start='$(last_event probe start | cut -d' ' -f4-)'"
}

fresh
observe A_stop systemctl stop $u

fresh
reload_with main-forks B
observe B_stop systemctl stop $u

fresh
reload_with main-forks C
observe C_restart systemctl restart $u
es_wait_answer 10 /run/probe/probe.sock > /dev/null || true

fresh
reload_with main-orphans D
observe D_stop systemctl stop $u

fresh
reload_with main-orphans E
observe E_restart systemctl restart $u
systemctl stop $u
systemd-analyze log-level info
