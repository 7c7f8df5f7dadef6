/*
 * es-page: watches a running early-service from outside, without touching
 * the process: its state page (src/ipc/state-page.ts; the memfd it keeps
 * open, /proc/PID/fd/N -> "/memfd:early-service-state", mapped read-only)
 * and its threads' context switches (perf_event_open). Run in the test
 * containers (test/systemd/journal.test.ts, bench/scheduling.ts).
 *
 *   es-page PID ring                      "queued capacity" of the log queue, in bytes
 *   es-page PID wait-full SECONDS         waits until the log queue is full (exit 0) or SECONDS pass (exit 1)
 *   es-page PID ticks SECONDS             the tick times for SECONDS, from the scheduler (tick_times()):
 *                                         a JSON summary
 *   es-page PID spin SECONDS PERIOD_NS    the same from a reader spinning on the counter (spin_sample()),
 *                                         the cross-check
 *
 * Summaries: ticks (the counter's advance in the window), expected (window /
 * period), the interval error |t(k+1) - t(k) - period| p50/p99/p999/max in
 * microseconds; "ticks" also the lateness t(k) - deadline(k).
 *
 * Why not the tick lines: they reach stdout in batches (at most one write a
 * millisecond, src/supervisor/log-writer.ts) and the journal later still.
 * Hardware watchpoints on the counter's slot would stamp each store, but
 * this VM's debug registers never fire (measured: a write watchpoint counts 0).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* state-page.ts: BigInt64 slots from byte 0 (2: the counter), the log ring's Int32 header ends at 4096. */
#define SLOT_COUNTER 2
#define RING_HEADER_OFFSET (4096 - 16)
#define MAX_TICKS (8 * 1000 * 1000)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "es-page: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* Maps the state page of process `pid` (read-only); its size in *bytes. */
static const volatile uint8_t *map_page(const char *pid, size_t *bytes) {
    char dir[64], link[PATH_MAX], target[PATH_MAX];
    snprintf(dir, sizeof dir, "/proc/%s/fd", pid);
    DIR *d = opendir(dir);
    if (!d) die(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strncmp(target, "/memfd:early-service-state", 26) != 0) continue;
        int fd = open(link, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die(link);
        struct stat st;
        if (fstat(fd, &st) < 0) die("fstat");
        void *p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) die("mmap");
        close(fd);
        closedir(d);
        *bytes = st.st_size;
        return p;
    }
    fprintf(stderr, "es-page: process %s has no early-service-state memfd open\n", pid);
    exit(2);
}

static void ring(const volatile uint8_t *page, uint32_t *queued, uint32_t *capacity) {
    const volatile int32_t *h = (const volatile int32_t *)(page + RING_HEADER_OFFSET);
    *queued = (uint32_t)h[0] - (uint32_t)h[1];
    *capacity = (uint32_t)h[2];
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const int64_t *sorted, size_t n, double p) {
    if (n == 0) return -1;
    size_t i = (size_t)(p * n);
    return sorted[i < n ? i : n - 1] / 1000.0;
}

static long perf_event_open(struct perf_event_attr *attr, pid_t tid) {
    return syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

#define RING_PAGES 128 /* per thread, 512 KiB: at 10 kHz two 24-byte records a tick, drained every 20 ms */
#define MAX_THREADS 128
#define MAX_SWITCHES (16 * 1000 * 1000)
#define CATCH_UP_NS 50000000LL /* src/workers/ticker.ts: further behind, grid points are skipped */

/* PERF_RECORD_SWITCH with sample_id_all and PERF_SAMPLE_TID | PERF_SAMPLE_TIME. */
struct switch_record {
    struct perf_event_header header;
    uint32_t pid, tid;
    uint64_t time;
};

struct thread {
    pid_t tid;
    int fd;
    struct perf_event_mmap_page *meta;
};

struct switch_event {
    uint64_t time;
    pid_t tid;
    uint16_t misc;
};

static struct switch_event *events;
static size_t nevents;
static long long lost;

/* A software event that records every context switch of thread `tid` into its ring. */
static int watch_thread(struct thread *t, pid_t tid) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_DUMMY;
    a.size = sizeof a;
    a.context_switch = 1;
    a.sample_id_all = 1;
    a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
    a.use_clockid = 1;
    a.clockid = CLOCK_MONOTONIC;
    t->tid = tid;
    t->fd = perf_event_open(&a, tid);
    if (t->fd < 0) {
        if (errno == ESRCH) return 0; /* the thread ended meanwhile */
        die("perf_event_open (context switches)");
    }
    t->meta = mmap(NULL, (RING_PAGES + 1) * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
    if (t->meta == MAP_FAILED) die("mmap (perf ring)");
    return 1;
}

static void drain(struct thread *t) {
    const uint8_t *data = (const uint8_t *)t->meta + 4096;
    const uint64_t size = (uint64_t)RING_PAGES * 4096;
    uint64_t head = __atomic_load_n(&t->meta->data_head, __ATOMIC_ACQUIRE), tail = t->meta->data_tail;
    while (tail < head) {
        uint8_t rec[64];
        struct perf_event_header h;
        for (size_t i = 0; i < sizeof h; i++) ((uint8_t *)&h)[i] = data[(tail + i) % size];
        for (size_t i = 0; i < h.size && i < sizeof rec; i++) rec[i] = data[(tail + i) % size];
        if (h.type == PERF_RECORD_SWITCH && nevents < MAX_SWITCHES) {
            const struct switch_record *r = (const void *)rec;
            events[nevents++] = (struct switch_event){ r->time, t->tid, h.misc };
        } else if (h.type == PERF_RECORD_LOST) {
            lost += (long long)((const uint64_t *)(rec + sizeof h))[1];
        }
        tail += h.size;
    }
    __atomic_store_n(&t->meta->data_tail, tail, __ATOMIC_RELEASE);
}

/*
 * The tick times, from the scheduler: every context switch of every thread
 * of the process, stamped by the kernel (perf_event_open, a software event
 * with context_switch=1, CLOCK_MONOTONIC), recorded into rings that this
 * process reads every 20 ms (no observer has to be on a CPU when a tick is
 * due). The ticker ticks at a grid point D = deadline0 + k * period when it
 * is on a CPU at D (it spins up to it), else as soon as it is back on one
 * (at once, grid points passed meanwhile one right after the other), so a
 * tick's time is max(D, the start of the ticker's first run that ends after
 * D). Blind spot: a stall inside the ticker thread while it is on a CPU (a
 * GC pause) is not seen; the scheduler's delays, which the scheduling
 * policy changes, are. The ticker is the thread, other than the main one,
 * that was on a CPU longest. The reconstruction is checked by its count:
 * "reconstructed" against "ticks" (the counter's advance in the window).
 */
static int tick_times(const char *pid, const volatile uint8_t *page, double seconds) {
    const volatile int64_t *slots = (const volatile int64_t *)page;
    static struct thread threads[MAX_THREADS];
    int nthreads = 0;
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%s/task", pid);
    DIR *d = opendir(dir);
    if (!d) die(dir);
    struct dirent *e;
    while ((e = readdir(d)) && nthreads < MAX_THREADS) {
        if (e->d_name[0] != '.') nthreads += watch_thread(&threads[nthreads], atoi(e->d_name));
    }
    closedir(d);
    events = malloc(sizeof *events * MAX_SWITCHES);
    if (!events) die("malloc");
    /* The grid as the page says, and the window. */
    int64_t counter0 = slots[SLOT_COUNTER], deadline0 = slots[3], period = slots[4];
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    for (int last = 0; !last;) {
        last = now_ns() >= end;
        for (int i = 0; i < nthreads; i++) drain(&threads[i]);
        if (!last) usleep(20000);
    }
    int64_t counter1 = slots[SLOT_COUNTER], t1 = now_ns();

    /* Per thread: time on a CPU in the window; the ticker is the busiest one but the main thread. */
    pid_t main_tid = atoi(pid), ticker = 0;
    int64_t best = -1;
    for (int i = 0; i < nthreads; i++) {
        if (threads[i].tid == main_tid) continue;
        int64_t on = 0, since = -1;
        for (size_t j = 0; j < nevents; j++) {
            if (events[j].tid != threads[i].tid) continue;
            int out = events[j].misc & PERF_RECORD_MISC_SWITCH_OUT;
            if (!out) since = (int64_t)events[j].time;
            else on += (int64_t)events[j].time - (since < 0 ? t0 : since), since = -1;
        }
        if (since >= 0) on += t1 - since;
        if (on > best) { best = on; ticker = threads[i].tid; }
    }
    /* The ticker's runs [in, out), in time order (each ring is in order). */
    size_t nruns = 0, preempted = 0;
    int64_t *run_in = malloc(sizeof(int64_t) * (nevents + 1)), *run_out = malloc(sizeof(int64_t) * (nevents + 1));
    if (!run_in || !run_out) die("malloc");
    int64_t since = -1;
    int first = 1;
    for (size_t j = 0; j < nevents; j++) {
        if (events[j].tid != ticker) continue;
        int out = events[j].misc & PERF_RECORD_MISC_SWITCH_OUT;
        if (out && (events[j].misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT)) preempted++;
        if (!out) since = (int64_t)events[j].time;
        else {
            /* The first record an "out": the ticker was running when the window began. */
            if (since >= 0 || first) { run_in[nruns] = since >= 0 ? since : t0; run_out[nruns++] = (int64_t)events[j].time; }
            since = -1;
        }
        first = 0;
    }
    if (since >= 0) { run_in[nruns] = since; run_out[nruns++] = t1; }

    /* Each grid point from deadline0 on, until the window ends, gets its tick time. */
    size_t cap = (size_t)((t1 - deadline0) / period) + 2, nticks = 0, skipped = 0;
    int64_t *tick = malloc(sizeof(int64_t) * cap), *late = malloc(sizeof(int64_t) * cap);
    if (!tick || !late) die("malloc");
    size_t r = 0;
    for (int64_t dl = deadline0; dl < t1; dl += period) {
        while (r < nruns && run_out[r] <= dl) r++;
        if (r == nruns) break;
        int64_t at = run_in[r] > dl ? run_in[r] : dl;
        if (at >= t1) break;
        if (at - dl > CATCH_UP_NS) { skipped++; continue; }
        late[nticks] = at - dl;
        tick[nticks++] = at;
    }
    size_t m = nticks > 1 ? nticks - 1 : 0;
    int64_t *err = malloc(sizeof(int64_t) * (m ? m : 1));
    if (!err) die("malloc");
    for (size_t i = 0; i < m; i++) {
        int64_t x = tick[i + 1] - tick[i] - period;
        err[i] = x < 0 ? -x : x;
    }
    qsort(err, m, sizeof *err, cmp_i64);
    qsort(late, nticks, sizeof *late, cmp_i64);
    printf("{\"seconds\": %.3f, \"period_ns\": %lld, \"ticks\": %lld, \"expected\": %.0f, \"reconstructed\": %zu, "
           "\"skipped\": %zu, \"ticker_tid\": %d, \"ticker_on_cpu\": %.3f, \"ticker_runs\": %zu, \"ticker_preempted\": %zu, "
           "\"threads\": %d, \"lost_records\": %lld, \"intervals\": %zu, "
           "\"err_p50_us\": %.3f, \"err_p99_us\": %.3f, \"err_p999_us\": %.3f, \"err_max_us\": %.3f, "
           "\"late_p50_us\": %.3f, \"late_p99_us\": %.3f, \"late_max_us\": %.3f}\n",
           (t1 - t0) / 1e9, (long long)period, (long long)(counter1 - counter0), (t1 - t0) / (double)period, nticks,
           skipped, ticker, best / (double)(t1 - t0), nruns, preempted, nthreads, lost, m,
           pct_us(err, m, 0.5), pct_us(err, m, 0.99), pct_us(err, m, 0.999), m ? err[m - 1] / 1000.0 : -1,
           pct_us(late, nticks, 0.5), pct_us(late, nticks, 0.99), nticks ? late[nticks - 1] / 1000.0 : -1);
    return 0;
}

/*
 * The cross-check of tick_times(): a reader that spins on the counter's slot
 * and stamps each new value as it sees it (exact while the reader is on a
 * CPU; it takes one, and whenever it is itself off its CPU, ticks bunch up).
 * On an idle machine the two agree (docs/BENCHMARKS.md).
 */
static int spin_sample(const volatile uint8_t *page, double seconds, int64_t period) {
    const volatile int64_t *counter = (const volatile int64_t *)page + SLOT_COUNTER;
    int64_t *stamps = malloc(sizeof(int64_t) * MAX_TICKS);
    if (!stamps) die("malloc");
    size_t n = 0;
    int64_t first = *counter, last = first, t = now_ns(), end = t + (int64_t)(seconds * 1e9), prev_t = t;
    int64_t gap_max = 0, bursts = 0;
    while (t < end) {
        int64_t v = *counter;
        t = now_ns();
        if (t - prev_t > gap_max) gap_max = t - prev_t;
        prev_t = t;
        if (v == last) continue;
        int64_t k = v - last;
        if (k < 0 || k > 1000000) { last = v; continue; } /* set_counter: not a tick */
        if (k > 1) bursts++;
        for (int64_t i = 0; i < k && n < MAX_TICKS; i++) stamps[n++] = t;
        last = v;
    }
    size_t m = n > 1 ? n - 1 : 0;
    int64_t *err = malloc(sizeof(int64_t) * (m ? m : 1));
    if (!err) die("malloc");
    for (size_t i = 0; i < m; i++) {
        int64_t e = stamps[i + 1] - stamps[i] - period;
        err[i] = e < 0 ? -e : e;
    }
    qsort(err, m, sizeof *err, cmp_i64);
    printf("{\"seconds\": %.3f, \"period_ns\": %lld, \"ticks\": %lld, \"expected\": %.0f, \"intervals\": %zu, "
           "\"err_p50_us\": %.3f, \"err_p99_us\": %.3f, \"err_p999_us\": %.3f, \"err_max_us\": %.3f, "
           "\"samples_with_several_ticks\": %lld, \"sampler_gap_max_us\": %.3f}\n",
           seconds, (long long)period, (long long)(last - first), seconds * 1e9 / period, m,
           pct_us(err, m, 0.5), pct_us(err, m, 0.99), pct_us(err, m, 0.999), m ? err[m - 1] / 1000.0 : -1,
           (long long)bursts, gap_max / 1000.0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: es-page PID ring | wait-full SECONDS | ticks SECONDS | spin SECONDS PERIOD_NS\n");
        return 2;
    }
    size_t bytes;
    const volatile uint8_t *page = map_page(argv[1], &bytes);
    uint32_t queued, capacity;
    if (strcmp(argv[2], "ring") == 0) {
        ring(page, &queued, &capacity);
        printf("%u %u\n", queued, capacity);
        return 0;
    }
    if (strcmp(argv[2], "wait-full") == 0 && argc == 4) {
        int64_t end = now_ns() + (int64_t)(atof(argv[3]) * 1e9);
        /* Full: less room left than a tick line takes ("<6>" and up to 20 digits). */
        for (;;) {
            ring(page, &queued, &capacity);
            if (capacity - queued < 24) return 0;
            if (now_ns() > end) return 1;
            usleep(10000);
        }
    }
    if (strcmp(argv[2], "ticks") == 0 && argc == 4) return tick_times(argv[1], page, atof(argv[3]));
    if (strcmp(argv[2], "spin") == 0 && argc == 5) return spin_sample(page, atof(argv[3]), atoll(argv[4]));
    fprintf(stderr, "es-page: unknown command %s\n", argv[2]);
    return 2;
}
