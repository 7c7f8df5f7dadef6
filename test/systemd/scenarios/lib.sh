# Helpers for scenarios (sourced; installed as /usr/lib/es-systemd-test/lib.sh).
# The scenario runs as root in the container after boot, with $ES_RESULTS
# (a directory of the host) as its working directory and es-probe on PATH.

# es_fact KEY VALUE: one line KEY=VALUE in $ES_RESULTS/facts.env (read by the host's tests).
es_fact() { printf '%s=%s\n' "$1" "$2" >> "$ES_RESULTS/facts.env"; }

# es_wait_state UNIT STATE [SECONDS]: waits until ActiveState is STATE (default 30 s); 1 if not
# (at once if the unit failed).
es_wait_state() {
  local unit=$1 want=$2 deadline=$((SECONDS + ${3:-30})) state
  while state=$(systemctl show -p ActiveState --value "$unit") && [ "$state" != "$want" ]; do
    [ "$state" != failed ] || { echo "$unit failed (waiting for $want)" >&2; return 1; }
    [ $SECONDS -lt "$deadline" ] || { echo "timeout: $unit is $state, not $want" >&2; return 1; }
    sleep 0.05
  done
}

# es_wait_answer [SECONDS] [SOCKET]: waits until get_counter is answered; prints the value.
es_wait_answer() {
  local deadline=$((SECONDS + ${1:-30})) sock=${2:-/run/early-service/early-service.sock}
  until es-probe -s "$sock" --once get_counter 2> /dev/null; do
    [ $SECONDS -lt "$deadline" ] || { echo "timeout: nobody answers on $sock" >&2; return 1; }
    sleep 0.05
  done
}

# es_monotonic_us: CLOCK_MONOTONIC in microseconds (the journal's and es-probe's clock;
# not /proc/uptime, which is CLOCK_BOOTTIME). Python's start-up delays it by ~10-20 ms.
es_monotonic_us() { python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)'; }

# --- for the lifecycle scenarios (reload, kill, restart, stop-start, upgrade) -------------

ES_UNIT=early-service.service
# es_prop UNIT PROPERTY: one property's value (systemctl show)
es_prop() { systemctl show -p "$2" --value "$1"; }
es_systemd_version() { systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'; }

# es_load_start [ES-PROBE OPTIONS]: the issue's load, in the background: 8 clients (even ones
# keep their connection, odd ones connect for every request), the first 2 of them writers, a
# request every 2 ms each; summary in probe.json, every write's outcome in writes.log (the
# host checks the journal's tick lines against it: test/systemd/tick-lines.ts). Waits 0.5 s.
es_load_start() {
  es-probe -c 8 -m mixed -w 2 -i 2 -o "$ES_RESULTS/probe.json" -l "$ES_RESULTS/writes.log" "$@" &
  ES_LOAD_PID=$!
  sleep 0.5
}
# es_load_stop: ends it (SIGTERM: it writes its final summary) and waits for it.
es_load_stop() { kill -TERM "$ES_LOAD_PID" && wait "$ES_LOAD_PID"; }
# es_probe_now NAME: a number from the summary es-probe rewrites every 200 ms (e.g. refused).
es_probe_now() { sed -n "s/^ \"$1\": \([0-9-]*\),*$/\1/p" "$ES_RESULTS/probe.json"; }

# es_wait_new_main UNIT OLDPID [SECONDS]: until UNIT is active/running with a main PID other
# than OLDPID (default 30 s); 1 if not.
es_wait_new_main() {
  local deadline=$((SECONDS + ${3:-30})) m
  until m=$(es_prop "$1" MainPID) && [ "$m" != 0 ] && [ "$m" != "$2" ] &&
        [ "$(es_prop "$1" ActiveState)/$(es_prop "$1" SubState)" = active/running ]; do
    [ $SECONDS -lt "$deadline" ] || { echo "timeout: $1 main PID $m ($(es_prop "$1" ActiveState)/$(es_prop "$1" SubState)), was $2" >&2; return 1; }
    sleep 0.02
  done
}

# es_ms: milliseconds on CLOCK_MONOTONIC's scale (date's realtime is fine for durations).
es_ms() { echo $(($(date +%s%N) / 1000000)); }

# es_finish UNIT: what every lifecycle scenario leaves for the host: the unit's journal with
# monotonic times (unit-journal.txt: the tick lines), the unit's state at the end, the version.
es_finish() {
  journalctl -u "$1" -o short-monotonic --no-pager > "$ES_RESULTS/unit-journal.txt"
  es_fact active_state "$(es_prop "$1" ActiveState)"
  es_fact sub_state "$(es_prop "$1" SubState)"
  es_fact main_pid "$(es_prop "$1" MainPID)"
  es_fact n_restarts "$(es_prop "$1" NRestarts)"
  es_fact systemd_version "$(es_systemd_version)"
}
