# The ticker's timing in the installed service, with the unit's scheduling
# settings as they are (bench/scheduling.ts; a drop-in gives -d and, for the
# real-time rows, conf/examples/early-service.service.d/60-realtime.conf):
# while ES_CLIENTS clients hammer the socket, es-page records the service
# threads' context switches for ES_SECONDS and derives every tick's time
# from them (test/systemd/tools/es-page.c, "ticks"); the service's, its
# threads' and journald's CPU over that window; the threads' scheduling
# policy; whether every tick of the window reached the journal. Writes
# ticks.json, threads.tsv, probe.json, facts.
#
#   ES_SECONDS     the measured window (default 10)
#   ES_CLIENTS     es-probe clients, persistent, no pause between requests (default 8; 0: none)
set -u
. /usr/lib/es-systemd-test/lib.sh
unit=early-service.service
seconds=${ES_SECONDS:-10}
clients=${ES_CLIENTS:-8}
tck=$(getconf CLK_TCK)

es_fact systemd_version "$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
es_wait_state "$unit" active 30 || true
pid=$(systemctl show -p MainPID --value $unit)
journald=$(systemctl show -p MainPID --value systemd-journald)
es_fact exec_start "$(systemctl show -p ExecStart --value $unit | sed -n 's/.*argv\[\]=\([^;]*\) ;.*/\1/p')"
es_fact unit_policy "$(systemctl show -p CPUSchedulingPolicy,CPUSchedulingPriority,TimerSlackNSec --value $unit | paste -sd' ')"
# The kernel's real-time throttling: real-time tasks may use this much of each period, per CPU.
es_fact sched_rt_runtime_us "$(cat /proc/sys/kernel/sched_rt_runtime_us)"
es_fact sched_rt_period_us "$(cat /proc/sys/kernel/sched_rt_period_us)"
es_fact nproc "$(nproc)"
es_wait_answer 10 > /dev/null || true
# Settle: the boot's own work (units starting, the journal's flush) is over.
sleep 2

# One snapshot of the CPU used so far (clock ticks): each thread of the
# service, journald, and the machine (busy time), with its time (ns). One
# awk reads them all: with the CPUs busy a process per file would take long.
snapshot() {
  date +%s%N
  awk '{ print "thread", FILENAME, $14 + $15 }' /proc/"$pid"/task/*/stat
  awk '{ print "journald", $14 + $15 }' "/proc/$journald/stat"
  awk '/^cpu / { print "machine", $2 + $3 + $4 + $7 + $8 }' /proc/stat
}

if [ "$clients" -gt 0 ]; then
  es-probe -c "$clients" -m persistent -i 0 -d $((seconds + 3)) -o "$ES_RESULTS/probe.json" &
  probe=$!
  sleep 1
fi
first=$(es-probe --once get_counter)
snapshot > "$ES_RESULTS/cpu-before.txt"
es-page "$pid" ticks "$seconds" > "$ES_RESULTS/ticks.json"
snapshot > "$ES_RESULTS/cpu-after.txt"
last=$(es-probe --once get_counter)
[ "$clients" -gt 0 ] && wait "$probe"
es_fact counter_first "$first"
es_fact counter_last "$last"
# Per thread (tid, policy: 0 other / 1 fifo / 2 rr, real-time priority, CPU in cores over the window),
# then journald's and the machine's CPU in cores.
awk -v tck="$tck" '
  FNR == 1 { t[FILENAME] = $1; file = FILENAME; next }
  $1 == "thread" { split($2, p, "/"); cpu[file, p[5]] = $3; tids[p[5]] = 1; next }
  { cpu[file, $1] = $2 }
  END {
    before = ARGV[1]; after = ARGV[2]; s = (t[after] - t[before]) / 1e9
    printf "window_s=%.3f\n", s > "/dev/stderr"
    printf "journald_cpu=%.3f\n", (cpu[after, "journald"] - cpu[before, "journald"]) / tck / s > "/dev/stderr"
    printf "machine_cpu=%.3f\n", (cpu[after, "machine"] - cpu[before, "machine"]) / tck / s > "/dev/stderr"
    for (tid in tids) if ((before, tid) in cpu && (after, tid) in cpu)
      printf "%s\t%.3f\n", tid, (cpu[after, tid] - cpu[before, tid]) / tck / s
  }' "$ES_RESULTS/cpu-before.txt" "$ES_RESULTS/cpu-after.txt" 2>> "$ES_RESULTS/facts.env" > "$ES_RESULTS/thread-cpu.txt"
{
  printf 'tid\tpolicy\trt_priority\tcpu\n'
  while read -r tid cpu; do
    printf '%s\t%s\t%s\t%s\n' "$tid" "$(awk '{ print $41 }' "/proc/$pid/task/$tid/stat")" "$(awk '{ print $40 }' "/proc/$pid/task/$tid/stat")" "$cpu"
  done < "$ES_RESULTS/thread-cpu.txt"
} > "$ES_RESULTS/threads.tsv"
es_fact main_tid "$pid"
# The main thread's timer slack (the kernel shows no other thread's; the ticker sets its own to 1 ns).
es_fact main_timerslack_ns "$(cat /proc/"$pid"/timerslack_ns 2>&1)"
es_fact rss_kib "$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
es_fact active_state_after "$(systemctl show -p ActiveState --value $unit)"
# A starved main thread misses its watchdog pings: systemd aborts and restarts it.
es_fact n_restarts "$(systemctl show -p NRestarts --value $unit)"
es_fact unit_result "$(systemctl show -p Result --value $unit)"

# Did journald keep up: every tick of the window in the journal (wait for it, at most 60 s).
last_tick() { journalctl -u $unit -o cat -n 5000 --no-pager | grep -E '^[0-9]+$' | tail -n1; }
deadline=$((SECONDS + 60))
while t=$(last_tick) && [ "${t:-0}" -lt "${last:-0}" ] 2> /dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
journalctl -u $unit -o cat --no-pager | grep -E '^[0-9]+$' \
  | awk -v a="$first" -v b="$last" '$1 >= a && $1 <= b { n++; if (p != "" && $1 != p + 1) breaks++; p = $1 }
      END { printf "journal_window_ticks=%d\njournal_window_breaks=%d\n", n, breaks }' >> "$ES_RESULTS/facts.env"
es_fact journal_dropped_notices "$(journalctl -u $unit -o cat --no-pager | grep -c 'log lines dropped')"
es_fact missed_tick_warnings "$(journalctl -u $unit -o cat --no-pager | grep -c '^missed ')"
journalctl -b -o short-monotonic --no-pager | grep -E 'Suppressed [0-9]+ messages from' > "$ES_RESULTS/suppressed.txt" || true
