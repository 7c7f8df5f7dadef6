# The journald bench's scenario (run in the container by bench/journald.ts
# through test/systemd/harness.ts; journald-emit is compiled into
# /usr/lib/es-systemd-test/). Writes $ES_RESULTS/journald.tsv.
#
# 1. Ceiling: how many lines per second journald stores from ONE client
#    (a transient unit running journald-emit, blocking writes, as fast as
#    journald reads), and the CPU journald spends (utime+stime of its
#    process, from /proc). Journald's own rate limit is off for these runs
#    (RateLimitIntervalSec=0 in journald.conf), so the figure is the
#    ceiling, not the limiter. Per storage: volatile (the runtime journal in
#    /run, as before the flush at boot) and persistent (/var/log/journal).
# 2. Ticks lost in 10 s: a line-per-write emitter at 1 kHz and 10 kHz with
#    journald's default rate limit, with and without per-unit settings.
#
#   ES_BENCH_SCALE   multiplies the line counts of part 1 (default 1: 100,000
#                    lines one per write or datagram, 200,000 batched)
#   ES_BENCH_PARTS   "ceiling ticks" (default both)
set -u
. /usr/lib/es-systemd-test/lib.sh
EMIT=/usr/lib/es-systemd-test/journald-emit
SCALE=${ES_BENCH_SCALE:-1}
PARTS=${ES_BENCH_PARTS:-ceiling ticks}
TSV=$ES_RESULTS/journald.tsv
TCK=$(getconf CLK_TCK)
UNIT_LIMITS="LogRateLimitIntervalSec=1s LogRateLimitBurst=1000000"
printf 'part\tstorage\tmode\tunit_limits\tsent\tarrived\tseconds\tlines_per_s\tjournald_cpu\tjournald_us_per_line\temitter_cpu\temitter_late_max_ms\n' > "$TSV"

now_ns() { date +%s%N; }
scaled() { awk -v n="$1" -v s="$SCALE" 'BEGIN { printf "%d", n * s }'; }
journald_ticks() { awk '{ print $14 + $15 }' "/proc/$(systemctl show -p MainPID --value systemd-journald)/stat"; }

# storage volatile|persistent on|off: journald's Storage= and its global rate limit
storage() {
  mkdir -p /etc/systemd/journald.conf.d
  { echo '[Journal]'; echo "Storage=$1"
    [ "$2" = off ] && echo 'RateLimitIntervalSec=0'; } > /etc/systemd/journald.conf.d/60-bench.conf
  systemctl restart systemd-journald
  [ "$1" = persistent ] && journalctl --flush
  sleep 0.5
}

# run PART STORAGE MODE LINES UNIT_LIMITS EMITTER_ARGS...: one emitter unit, measured
n=0
run() {
  local part=$1 store=$2 mode=$3 lines=$4 limits=$5; shift 5
  n=$((n + 1))
  local tag=B$n unit=bench-$n.service summary=$ES_RESULTS/emit-$n.summary props=() p
  for p in $limits; do props+=(-p "$p"); done
  # Fresh journal files for every run (the active ones rotated, the archived ones removed).
  journalctl --rotate > /dev/null 2>&1; journalctl --vacuum-size=1 > /dev/null 2>&1
  local c0 t0 t1 c1 deadline
  c0=$(journald_ticks); t0=$(now_ns)
  systemd-run --quiet --unit="$unit" "${props[@]}" "$EMIT" --lines "$lines" --tag "$tag" --summary "$summary" "$@"
  # The emitter's summary appears when it exits; then wait for its last line to be in the journal.
  deadline=$((SECONDS + 60))
  until [ -s "$summary" ] || [ $SECONDS -ge $deadline ]; do sleep 0.01; done
  until journalctl -t journald-emit -n 1 -o cat --no-pager 2> /dev/null | grep -q "^$tag $((lines - 1))\$" || [ $SECONDS -ge $deadline ]; do
    sleep 0.05
    # With a rate limit the last line may never arrive: give up once journald is idle.
    [ "$part" = ticks ] && break
  done
  t1=$(now_ns); c1=$(journald_ticks)
  [ "$part" = ticks ] && { sleep 1; journalctl --sync; }
  local arrived secs
  arrived=$(journalctl -t journald-emit -o cat --no-pager | grep -c "^$tag [0-9]")
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  awk -v part="$part" -v st="$store" -v mode="$mode" -v lim="${limits:--}" -v sent="$lines" -v got="$arrived" -v s="$secs" \
      -v jc="$((c1 - c0))" -v tck="$TCK" -v ecpu="$(sed -n 's/cpu_us=//p' "$summary")" -v late="$(sed -n 's/late_max_us=//p' "$summary")" \
      'BEGIN {
        jsec = jc / tck
        printf "%s\t%s\t%s\t%s\t%d\t%d\t%.3f\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\n", part, st, mode, lim, sent, got, s,
          got / s, jsec / s, got ? jsec * 1e6 / got : 0, ecpu / 1e6 / s, late / 1000 }' >> "$TSV"
  systemctl stop "$unit" 2> /dev/null || true
  tail -n1 "$TSV"
}

for store in volatile persistent; do
  case " $PARTS " in *" ceiling "*)
    storage "$store" off
    run ceiling "$store" "stream, 1 line/write" $(scaled 100000) "" --per-write 1
    run ceiling "$store" "stream, 64 lines/write" $(scaled 200000) "" --per-write 64
    run ceiling "$store" "stream, 512 lines/write" $(scaled 200000) "" --per-write 512
    run ceiling "$store" "native, 1 line/datagram" $(scaled 100000) "" --native
    run ceiling "$store" "native, 64 lines/entry" $(scaled 200000) "" --native --per-entry 64
    run ceiling "$store" "native, 512 lines/entry" $(scaled 200000) "" --native --per-entry 512
  ;; esac
  case " $PARTS " in *" ticks "*)
    storage "$store" on
    for hz in 1000 10000; do
      run ticks "$store" "$hz Hz, 1 line/write, 10 s" $((hz * 10)) "" --rate $hz
      run ticks "$store" "$hz Hz, 1 line/write, 10 s" $((hz * 10)) "$UNIT_LIMITS" --rate $hz
    done
  ;; esac
done
rm -f /etc/systemd/journald.conf.d/60-bench.conf
{ systemctl --version | head -n1; nproc; uname -r; } > "$ES_RESULTS/bench-info.txt"
