# `systemctl stop early-service`, 0.5 s, `systemctl start`, ×ES_STOP_STARTS
# (default 2), under the load. On 252 the fd store is dropped at the
# stop (clients are refused until the start; the counter goes on from the
# state file, saved at the stop); on 254+ the product's
# FileDescriptorStorePreserve=yes drop-in keeps it (clients wait in the
# socket's backlog). cycles.txt: "i old new refused ms" (refused: es-probe's
# count over the cycle; ms: stop to the new process active). The host's test
# (test/systemd/stop-start.test.ts) asserts.
set -u
. /usr/lib/es-systemd-test/lib.sh
u=$ES_UNIT
n=${ES_STOP_STARTS:-2}

es_wait_state $u active 30 || exit 1
es_wait_answer 10 > /dev/null || exit 1
es_fact preserve "$(es_prop $u FileDescriptorStorePreserve)"
es_load_start
: > "$ES_RESULTS/cycles.txt"
for i in $(seq 1 "$n"); do
  old=$(es_prop $u MainPID)
  sleep 0.3   # the summary is rewritten every 200 ms
  refused0=$(es_probe_now refused)
  t0=$(es_ms)
  timeout 60 systemctl stop $u || echo "stop $i failed" >&2
  es_fact "stop_${i}_state" "$(es_prop $u ActiveState)/$(es_prop $u SubState) result=$(es_prop $u Result) stored=$(es_prop $u NFileDescriptorStore)"
  sleep 0.5
  timeout 60 systemctl start $u || echo "start $i failed" >&2
  es_wait_new_main $u "$old" 30 || echo "stop-start $i: no new main process" >&2
  t1=$(es_ms)
  es_wait_answer 10 > /dev/null
  sleep 0.5
  echo "$i $old $(es_prop $u MainPID) $(($(es_probe_now refused) - refused0)) $((t1 - t0))" >> "$ES_RESULTS/cycles.txt"
done
es_load_stop
es_fact stop_starts "$n"
es_finish $u
