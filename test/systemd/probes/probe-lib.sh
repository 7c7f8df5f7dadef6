# Helpers of the probe scenarios (sourced after /usr/lib/es-systemd-test/lib.sh).
P=/usr/lib/es-systemd-test/probes
prop() { systemctl show -p "$2" --value "$1"; }
# state UNIT: "ActiveState/SubState main=PID restarts=N result=R"
state() { echo "$(prop "$1" ActiveState)/$(prop "$1" SubState) main=$(prop "$1" MainPID) restarts=$(prop "$1" NRestarts) result=$(prop "$1" Result)"; }
# variant NAME VARIANT [HOW]: what the unit's next reload does (probe-reload.py reads it)
variant() { mkdir -p /run/probe; echo "$2" > "/run/probe/$1.variant"; echo "${3:-main-forks}" > "/run/probe/$1.how"; }
# load_start NAME TAG: es-probe on the probe's socket, 2 clients (one persistent, one fresh), every 2 ms
load_start() { es-probe -s "/run/probe/$1.sock" -c 2 -m mixed -i 2 -o "$ES_RESULTS/load-$2.json" & load_pid=$!; sleep 0.3; }
# load_stop TAG: stops it; facts TAG_refused, TAG_resets, TAG_failed, TAG_answered, TAG_went_back
load_stop() {
  kill -TERM "$load_pid"; wait "$load_pid"
  local f=$ES_RESULTS/load-$1.json k
  for k in answered failed refused resets counterWentBack; do
    es_fact "$1_load_$k" "$(sed -n "s/^ \"$k\": \([0-9-]*\),*$/\1/p" "$f")"
  done
  es_fact "$1_load_failures" "$(sed -n 's/^ "failures": \(.*\),$/\1/p' "$f")"
}
# wait_main_change UNIT OLDPID [SECONDS]: until MainPID is set and differs from OLDPID
wait_main_change() {
  local deadline=$((SECONDS + ${3:-10})) m
  while m=$(prop "$1" MainPID); [ "$m" = 0 ] || [ "$m" = "$2" ]; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.02
  done
}
# last_event NAME EVENT: the last events.log line of that probe and event
last_event() { grep " $1 pid=[0-9]* $2 " "$ES_RESULTS/events.log" | tail -n1; }
# journal_count PATTERN: lines of this boot's journal matching the extended regex
journal_count() { journalctl -b -o cat --no-pager | grep -cE "$1"; }
# reload_observe UNIT TAG: systemctl reload UNIT while sampling ActiveState/SubState every ~10 ms.
# Facts: TAG_rc, TAG_ms, TAG_states (the sequence of distinct states), TAG_after, TAG_output
reload_observe() {
  local u=$1 tag=$2 f=$ES_RESULTS/states-$2.txt t0 t1 rc=0 out
  : > "$f"
  ( while :; do echo "$(prop "$u" ActiveState)/$(prop "$u" SubState)"; sleep 0.01; done ) > "$f" 2> /dev/null & local sampler=$!
  sleep 0.1
  t0=$(date +%s%N)
  out=$(timeout 60 systemctl reload "$u" 2>&1) || rc=$?
  t1=$(date +%s%N)
  sleep 0.3
  kill "$sampler"; wait "$sampler" 2> /dev/null
  es_fact "${tag}_rc" "$rc"
  es_fact "${tag}_ms" "$(((t1 - t0) / 1000000))"
  es_fact "${tag}_states" "$(uniq "$f" | tr '\n' ' ')"
  es_fact "${tag}_after" "$(state "$u") status='$(prop "$u" StatusText)'"
  es_fact "${tag}_output" "$(echo "$out" | head -n1)"
}
# transition_load NAME TAG CMD...: es-probe during CMD and until the probe answers again (+0.3 s);
# facts from load_stop plus TAG_latency_max_us (the longest wait of a request: the gap clients saw)
transition_load() {
  local name=$1 tag=$2; shift 2
  load_start "$name" "$tag"
  "$@"
  es_wait_answer 20 "/run/probe/$name.sock" > /dev/null || true
  sleep 0.3
  load_stop "$tag"
  es_fact "${tag}_latency_max_us" "$(sed -n 's/.*"max": \([0-9]*\),.*/\1/p' "$ES_RESULTS/load-$tag.json")"
}
