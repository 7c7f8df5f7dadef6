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
