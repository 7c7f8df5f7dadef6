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
