/*
 * journald-emit: writes numbered lines to journald, for the journald bench
 * (bench/journald.ts, scenario bench/journald-scenario.sh) and the rate-limit
 * facts (test/systemd/probes/ratelimit.sh). Static C: precise rate, cheap.
 *
 *   journald-emit --lines N [--per-write K] [--rate HZ] [--native] [--per-entry K] [--summary FILE]
 *
 *   --lines N        lines to emit (each "<tag> <seq>", seq from 0)
 *   --tag T          (default "L")
 *   --per-write K    stdout: K lines per write(2) (default 1)
 *   --rate HZ        lines per second on an absolute schedule (CLOCK_MONOTONIC);
 *                    0 (default): as fast as the writes go
 *   --native         the native protocol: datagrams to /run/systemd/journal/socket
 *   --per-entry K    with --native: K lines in one entry (one MESSAGE with newlines)
 *   --summary FILE   key=value: lines, writes, elapsed_us, eagain, late_max_us, cpu_us
 *
 * Writes block (stdout is journald's stream socket; a blocking write waits
 * for journald to read): the emitter never drops a line itself, so what is
 * missing from the journal was dropped by journald (rate limit) or never
 * reached it. With --rate, a line whose time came while a write blocked is
 * written late: late_max_us reports the worst.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until(int64_t t_us) {
    struct timespec ts = { .tv_sec = t_us / 1000000, .tv_nsec = (t_us % 1000000) * 1000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static int write_all(int fd, const char *buf, size_t n, long *eagain) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { (*eagain)++; usleep(100); continue; }
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    long lines = 0, per_write = 1, per_entry = 1, rate = 0;
    int native = 0;
    const char *tag = "L", *summary = NULL;
    static const struct option opts[] = {
        {"lines", 1, 0, 'n'}, {"per-write", 1, 0, 'k'}, {"rate", 1, 0, 'r'}, {"native", 0, 0, 'N'},
        {"per-entry", 1, 0, 'e'}, {"tag", 1, 0, 't'}, {"summary", 1, 0, 's'}, {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'n': lines = atol(optarg); break;
        case 'k': per_write = atol(optarg); break;
        case 'r': rate = atol(optarg); break;
        case 'N': native = 1; break;
        case 'e': per_entry = atol(optarg); break;
        case 't': tag = optarg; break;
        case 's': summary = optarg; break;
        default: fprintf(stderr, "usage: see the header of journald-emit.c\n"); return 2;
        }
    }
    if (lines <= 0 || per_write < 1 || per_entry < 1 || rate < 0) { fprintf(stderr, "journald-emit: bad arguments\n"); return 2; }
    long batch = native ? per_entry : per_write;

    int fd = 1;
    struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "/run/systemd/journal/socket" };
    if (native) {
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("journald-emit: connect"); return 1; }
        /* A full receive queue blocks the sender (as a stream does) instead of dropping. */
    }
    size_t cap = (size_t)batch * 64 + 256;
    char *buf = malloc(cap);
    if (!buf) return 1;
    long writes = 0, eagain = 0;
    int64_t late_max = 0;
    int64_t start = now_us();
    for (long seq = 0; seq < lines;) {
        long k = lines - seq < batch ? lines - seq : batch;
        if (rate > 0) {
            /* The batch is due when its last line is. */
            int64_t due = start + (int64_t)((seq + k - 1) * 1000000.0 / rate);
            int64_t t = now_us();
            if (t < due) sleep_until(due);
            else if (t - due > late_max) late_max = t - due;
        }
        size_t n = 0;
        /* SYSLOG_IDENTIFIER: journald resolves _SYSTEMD_UNIT from the sender's
         * cgroup, which fails once a short-lived sender has exited; the
         * identifier travels in the message. */
        if (native) n += (size_t)snprintf(buf, cap, "SYSLOG_IDENTIFIER=journald-emit\nPRIORITY=6\nMESSAGE=");
        for (long i = 0; i < k; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s %ld%s", tag, seq + i, native && i == k - 1 ? "" : "\n");
        if (native && k == 1) {
            buf[n++] = '\n';
            while (send(fd, buf, n, 0) < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) { eagain++; usleep(100); continue; }
                perror("journald-emit: send");
                return 1;
            }
        } else if (native) {
            /* The native protocol: "FIELD=value\n" pairs; a value with newlines in it
             * would need the binary form, so a multi-line MESSAGE is sent as
             * MESSAGE\n<le64 length><bytes>\n. */
            size_t head = strlen("SYSLOG_IDENTIFIER=journald-emit\nPRIORITY=6\n");
            char *msg = buf + head + strlen("MESSAGE=");
            size_t len = n - head - strlen("MESSAGE=");
            uint64_t le = len; /* x86-64: little-endian already */
            struct iovec iov[4] = {
                { .iov_base = "SYSLOG_IDENTIFIER=journald-emit\nPRIORITY=6\nMESSAGE\n",
                  .iov_len = strlen("SYSLOG_IDENTIFIER=journald-emit\nPRIORITY=6\nMESSAGE\n") },
                { .iov_base = &le, .iov_len = 8 },
                { .iov_base = msg, .iov_len = len },
                { .iov_base = "\n", .iov_len = 1 },
            };
            for (;;) {
                ssize_t r = writev(fd, iov, 4);
                if (r >= 0) break;
                if (errno == EINTR) continue;
                if (errno == EAGAIN) { eagain++; usleep(100); continue; }
                perror("journald-emit: send");
                return 1;
            }
        } else if (write_all(fd, buf, n, &eagain) != 0) {
            perror("journald-emit: write");
            return 1;
        }
        writes++;
        seq += k;
    }
    int64_t elapsed = now_us() - start;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long cpu = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    if (summary) {
        FILE *f = fopen(summary, "w");
        if (f) {
            fprintf(f, "lines=%ld\nwrites=%ld\nelapsed_us=%lld\neagain=%ld\nlate_max_us=%lld\ncpu_us=%ld\nstart_us=%lld\n",
                    lines, writes, (long long)elapsed, eagain, (long long)late_max, cpu, (long long)start);
            fclose(f);
        }
    }
    return 0;
}
