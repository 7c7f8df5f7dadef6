# `systemctl restart early-service` ×ES_RESTARTS (default 5), then watchdog
# aborts ×ES_WATCHDOGS (default 1), under the load. The unit has a
# drop-in (test/systemd/units/watchdog-fault.conf) with
# EARLY_SERVICE_FAULT=ticker-hang and a short WatchdogSec=: SIGUSR2 to the
# main process hangs its ticker thread, its WATCHDOG=1 pings stop, systemd
# aborts it (SIGABRT) and Restart= starts a new process, which resumes from
# the fd store. Last, a reload and then a restart: the process that became
# main through the reload must be stopped like any other (SIGTERM, its final
# save, exit 0), not SIGKILLed at once as an "alien" main process
# (docs/SYSTEMD-FACTS.md, 5). events.txt: "restart|watchdog|reload|
# restart-after-reload i old new ms rc". The host's test
# (test/systemd/restart.test.ts) asserts.
set -u
. /usr/lib/es-systemd-test/lib.sh
u=$ES_UNIT
restarts=${ES_RESTARTS:-5}
watchdogs=${ES_WATCHDOGS:-1}

es_wait_state $u active 30 || exit 1
es_wait_answer 10 > /dev/null || exit 1
es_fact watchdog_usec "$(es_prop $u WatchdogUSec)"
es_load_start
: > "$ES_RESULTS/events.txt"
for i in $(seq 1 "$restarts"); do
  old=$(es_prop $u MainPID)
  t0=$(es_ms)
  rc=0
  timeout 60 systemctl restart $u || rc=$?
  es_wait_new_main $u "$old" 30 || echo "restart $i: no new main process" >&2
  echo "restart $i $old $(es_prop $u MainPID) $(($(es_ms) - t0)) $rc" >> "$ES_RESULTS/events.txt"
  sleep "$(printf '0.%03d' $((RANDOM % 500)))"
done
for i in $(seq 1 "$watchdogs"); do
  old=$(es_prop $u MainPID)
  t0=$(es_ms)
  rc=0
  systemctl kill -s SIGUSR2 --kill-whom=main $u || rc=$?
  es_wait_new_main $u "$old" 60 || echo "watchdog $i: no new main process" >&2
  echo "watchdog $i $old $(es_prop $u MainPID) $(($(es_ms) - t0)) $rc" >> "$ES_RESULTS/events.txt"
  sleep 0.5
done
for kind in reload restart-after-reload; do
  old=$(es_prop $u MainPID)
  t0=$(es_ms)
  rc=0
  timeout 120 systemctl "${kind%-after-reload}" $u || rc=$?
  es_wait_new_main $u "$old" 30 || echo "$kind: no new main process" >&2
  echo "$kind 1 $old $(es_prop $u MainPID) $(($(es_ms) - t0)) $rc" >> "$ES_RESULTS/events.txt"
  sleep 0.5
done
es_load_stop
es_fact restarts "$restarts"
es_fact watchdogs "$watchdogs"
es_finish $u
