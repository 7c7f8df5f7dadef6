/*
 * es-page: reads a running early-service's state page (src/ipc/state-page.ts)
 * from outside, without touching the process: the memfd it keeps open
 * (/proc/PID/fd/N -> "/memfd:early-service-state"), mapped read-only. Run in
 * the test containers (test/systemd/journal.test.ts, bench/scheduling.ts).
 *
 *   es-page PID ring                 "queued capacity" of the log queue, in bytes
 *   es-page PID wait-full SECONDS    waits until the log queue is full (exit 0) or SECONDS pass (exit 1)
 *   es-page PID sample SECONDS PERIOD_NS
 *                                    the tick times: spins on the counter's slot for SECONDS and
 *                                    prints a JSON summary (below)
 *
 * Why the page: the ticker stores each new counter value into it with a
 * plain store, right at the tick (shared-state.ts, syncMirror()), so a
 * reader spinning on that slot sees each tick within its own loop time
 * (tens of ns), where the tick lines reach stdout in batches (at most one
 * write a millisecond) and the journal later still. The reader takes one
 * CPU while it samples, like bench/timer.ts's FIFO reader; "sampler_gap_max_us"
 * says how long it was itself kept off the CPU at worst.
 *
 * Summary: ticks (counter advance in the window), expected (SECONDS /
 * period), the interval error |t(k+1) - t(k) - period| over the ticks seen,
 * p50/p99/p999/max in microseconds. A tick is stamped when the reader first
 * sees it; ticks seen in one sample (a catch-up burst, or the reader
 * preempted) share that time, as lines read in one read(2) did in
 * bench/timer.ts.
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

static int sample(const volatile uint8_t *page, double seconds, int64_t period) {
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
        fprintf(stderr, "usage: es-page PID ring | wait-full SECONDS | sample SECONDS PERIOD_NS\n");
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
    if (strcmp(argv[2], "sample") == 0 && argc == 5) return sample(page, atof(argv[3]), atoll(argv[4]));
    fprintf(stderr, "es-page: unknown command %s\n", argv[2]);
    return 2;
}
