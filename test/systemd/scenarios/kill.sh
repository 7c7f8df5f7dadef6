# SIGKILL of the main process at random moments, ×ES_KILLS (default 10),
# under the issue's load: Restart=on-failure starts a new process, which
# resumes from what systemd's fd store handed back (the listening socket and
# the state page). Each kill comes 0-999 ms (uniformly) after the previous
# restart serves, so it lands anywhere in the tick period (100 ms) and in the
# process's life. kills.txt: "i victim new ms" (ms: kill to the new main
# process active). The host's test (test/systemd/kill.test.ts) asserts.
set -u
. /usr/lib/es-systemd-test/lib.sh
u=$ES_UNIT
n=${ES_KILLS:-10}

es_wait_state $u active 30 || exit 1
es_wait_answer 10 > /dev/null || exit 1
es_load_start
: > "$ES_RESULTS/kills.txt"
for i in $(seq 1 "$n"); do
  sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
  victim=$(es_prop $u MainPID)
  t0=$(es_ms)
  kill -KILL "$victim"
  es_wait_new_main $u "$victim" 30 || { echo "kill $i: no new main process" >&2; break; }
  echo "$i $victim $(es_prop $u MainPID) $(($(es_ms) - t0))" >> "$ES_RESULTS/kills.txt"
done
sleep 0.5
es_load_stop
es_fact kills "$n"
es_fact kills_done "$(grep -c . "$ES_RESULTS/kills.txt")"
es_finish $u
