# Reload ×ES_RELOADS (default 10) under the issue's load: each `systemctl
# reload early-service` must exit 0 and move the unit's main PID. Records
# every reload in reloads.txt ("i rc ms before after | output"), the load's
# summary (probe.json, writes.log) and the unit's journal; the host's test
# (test/systemd/reload.test.ts) asserts on them.
set -u
. /usr/lib/es-systemd-test/lib.sh
u=$ES_UNIT
n=${ES_RELOADS:-10}

es_wait_state $u active 30 || exit 1
es_wait_answer 10 > /dev/null || exit 1
es_fact main_pid_first "$(es_prop $u MainPID)"
es_load_start
: > "$ES_RESULTS/reloads.txt"
for i in $(seq 1 "$n"); do
  before=$(es_prop $u MainPID)
  t0=$(es_ms)
  rc=0
  out=$(timeout 120 systemctl reload $u 2>&1) || rc=$?
  t1=$(es_ms)
  after=$(es_prop $u MainPID)
  echo "$i $rc $((t1 - t0)) $before $after | $(echo "$out" | head -n1)" >> "$ES_RESULTS/reloads.txt"
  # A failed reload leaves the old process serving: go on, the host reports every one.
  [ "$rc" = 0 ] || echo "reload $i exited $rc: $out" >&2
done
sleep 0.5
es_load_stop
es_fact reloads "$n"
es_finish $u
