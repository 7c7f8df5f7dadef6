/*
 * es-probe: a load client for early-service (or anything speaking its line
 * protocol), run inside the test containers. Static C so that it costs
 * little and starts at once; one thread, one poll() loop for all clients.
 *
 *   es-probe [options]                   run clients until --duration ends or SIGTERM/SIGINT
 *   es-probe --once 'get_counter'        send one line, print the reply line, exit 0 (1 on failure)
 *
 *   -s, --socket PATH        default /run/early-service/early-service.sock
 *   -c, --clients N          default 1
 *   -m, --mode MODE          persistent | fresh | mixed (default mixed: even clients persistent, odd fresh)
 *   -i, --interval-ms MS     pause between a reply and the client's next request (default 2; decimals ok)
 *   -w, --writers N          the first N clients send set_counter instead of get_counter (default 0)
 *   -d, --duration SEC       stop after this long (default: until SIGTERM/SIGINT)
 *   -o, --summary FILE       the JSON summary (rewritten every 200 ms and at exit; default: stdout at exit)
 *   -t, --timeout-ms MS      a request unanswered this long fails as "timeout" (default 10000)
 *   -l, --writes-log FILE    every write's outcome, in the writes' order, one line each:
 *                              VALUE acked PREVIOUS   the server set VALUE; the counter was PREVIOUS
 *                              VALUE retry            "retry" reply: not applied
 *                              VALUE unsent KIND      connect or send failed: never reached the server
 *                              VALUE unknown KIND     sent, then the connection failed: applied or not
 *                            (test/systemd/tick-lines.ts checks the journal's tick lines against it)
 *
 * Every request ends as exactly one of: answered, retried (the server said
 * "error: handing off, retry": nothing changed, sending it again is safe), or
 * failed with a kind: ECONNREFUSED, ENOENT, EAGAIN (connect: backlog full),
 * ECONNRESET, EPIPE (send), closed (the server closed without replying),
 * timeout, bad-reply, other. Both "retry" replies count as retried: "error:
 * handing off, retry" (during a handoff) and "error: stopping, retry" (a
 * write to a stopping server); neither changed anything. A connect is non-blocking: on a UNIX socket it
 * succeeds as soon as the connection is queued in the listener's backlog, so
 * a client during a restart gap with the socket kept open (the fd store) is
 * not refused; it waits for its reply.
 *
 * Values: every get_counter reply and every set_counter's "previous value"
 * is checked against the largest value any reply had shown *before this
 * request was sent*: a smaller one counts as the counter going back (a
 * restart that resumed from an older state). Writes: writer k sets values
 * 10^12 + j * 10^6 (distinct, far apart, far above a counter that only
 * ticks; one write in flight at a time across all writers, so that writes
 * have a single order); an acknowledged write V is confirmed when a later reply shows a
 * value in [V, V + 10^6) (the counter went on from V); at the end, a last
 * get_counter confirms the newest. An acknowledged write never confirmed
 * counts as lost.
 *
 * Times are CLOCK_MONOTONIC microseconds (the journal's monotonic clock in a
 * container is the host's, so they line up with `journalctl -o short-monotonic`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define WRITE_BASE 1000000000000LL
#define WRITE_SPACING 1000000LL
#define MAX_WRITES (1 << 20)
#define MAX_SAMPLES 200
#define LATENCY_BUCKETS 64

enum kind { K_REFUSED, K_ENOENT, K_EAGAIN, K_RESET, K_EPIPE, K_CLOSED, K_TIMEOUT, K_BAD_REPLY, K_OTHER, K_COUNT };
static const char *kind_name[K_COUNT] = {
    "ECONNREFUSED", "ENOENT", "EAGAIN", "ECONNRESET", "EPIPE", "closed", "timeout", "bad-reply", "other",
};

enum state { IDLE, WAITING };
struct client {
    int fd;                 /* -1: not connected */
    int persistent, writer;
    enum state state;
    int64_t next_us;        /* IDLE: when to send the next request */
    int64_t sent_us;        /* WAITING: when the request went out */
    long long floor;        /* largest value seen before the request was sent */
    long long value;        /* set_counter: the value sent */
    char buf[128];
    size_t got;
};

static struct client clients[MAX_CLIENTS];
static int nclients = 1, nwriters = 0;
static const char *socket_path = "/run/early-service/early-service.sock";
static const char *summary_path;
static FILE *writes_log;
static int64_t interval_us = 2000, timeout_us = 10000000, duration_us = -1;
static volatile sig_atomic_t stop_requested;

static struct {
    int64_t started_us, ended_us;
    long long attempts, answered, retried, failed, by_kind[K_COUNT];
    int64_t first_failure_us, last_failure_us;
    int samples;
    struct { enum kind kind; int64_t at_us; int client; } sample[MAX_SAMPLES];
    int have_value;
    long long first_value, last_value, max_value, went_back, max_drop;
    int64_t first_value_us, last_value_us;
    long long writes_attempted, writes_acked;
    long long latency_bucket[LATENCY_BUCKETS]; /* bucket b: latency < 2^b us */
    int64_t max_latency_us, max_latency_at_us;
    long long final_value; int have_final;
} s;
/* Acknowledged writes, and the write bases that replies showed. */
static long long *acked, *seen_bases;
static long long nseen;
#define MAX_SEEN (1 << 22)
static long long next_write_value = WRITE_BASE;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static enum kind errno_kind(int e) {
    switch (e) {
    case ECONNREFUSED: return K_REFUSED;
    case ENOENT: return K_ENOENT;
    case EAGAIN: return K_EAGAIN;
    case ECONNRESET: return K_RESET;
    case EPIPE: return K_EPIPE;
    default: return K_OTHER;
    }
}

static void close_client(struct client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->got = 0;
}

static void finish_request(struct client *c, int64_t now) {
    c->state = IDLE;
    c->next_us = now + interval_us;
    if (!c->persistent) close_client(c);
}

/* A writer's request ended: its line in the writes log. */
static void log_write(struct client *c, const char *outcome, const char *detail) {
    if (writes_log && c->writer) fprintf(writes_log, "%lld %s %s\n", c->value, outcome, detail);
}

static void fail(struct client *c, enum kind k, int64_t now) {
    /* Failed while WAITING: the line was sent; otherwise it never left this process. */
    log_write(c, c->state == WAITING ? "unknown" : "unsent", kind_name[k]);
    s.failed++;
    s.by_kind[k]++;
    if (!s.first_failure_us) s.first_failure_us = now;
    s.last_failure_us = now;
    if (s.samples < MAX_SAMPLES) {
        s.sample[s.samples].kind = k;
        s.sample[s.samples].at_us = now;
        s.sample[s.samples].client = (int)(c - clients);
        s.samples++;
    }
    close_client(c);
    finish_request(c, now);
}

/* A value the server showed: checks it against what was seen before the request, confirms writes. */
static void saw_value(long long v, long long floor, int64_t now) {
    if (!s.have_value) { s.have_value = 1; s.first_value = v; s.first_value_us = now; s.max_value = v; }
    if (v < floor) {
        s.went_back++;
        if (floor - v > s.max_drop) s.max_drop = floor - v;
    }
    if (v > s.max_value) s.max_value = v;
    s.last_value = v;
    s.last_value_us = now;
    /* Remembers which write this value went on from (checked against the acknowledged ones at the end). */
    if (v >= WRITE_BASE) {
        long long base = WRITE_BASE + (v - WRITE_BASE) / WRITE_SPACING * WRITE_SPACING;
        if ((nseen == 0 || seen_bases[nseen - 1] != base) && nseen < MAX_SEEN) seen_bases[nseen++] = base;
    }
}

static int write_in_flight(void) {
    for (int i = 0; i < nwriters; i++)
        if (clients[i].state == WAITING) return 1;
    return 0;
}

static int any_waiting(void) {
    for (int i = 0; i < nclients; i++)
        if (clients[i].state == WAITING) return 1;
    return 0;
}

static void send_request(struct client *c, int64_t now) {
    /* One write in flight at a time, across all clients: then the writes
     * have one order, the server's, and every reply has one right floor. */
    if (c->writer && write_in_flight()) { c->next_us = now + 100; return; }
    s.attempts++;
    c->got = 0;
    if (c->writer) {
        /* Numbered before the connect: a write that fails there is logged under its own value. */
        c->value = next_write_value;
        next_write_value += WRITE_SPACING;
        s.writes_attempted++;
    }
    if (c->fd < 0) {
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) { fail(c, K_OTHER, now); return; }
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) { fail(c, errno_kind(errno), now); return; }
    }
    char line[64];
    int n;
    if (c->writer) {
        n = snprintf(line, sizeof line, "set_counter %lld\n", c->value);
    } else {
        n = snprintf(line, sizeof line, "get_counter\n");
    }
    /* A request this small always fits a fresh socket's buffer. */
    if (send(c->fd, line, n, MSG_NOSIGNAL) != n) { fail(c, errno_kind(errno), now); return; }
    c->state = WAITING;
    c->sent_us = now;
    c->floor = s.have_value ? s.max_value : LLONG_MIN;
}

static void record_latency(int64_t latency, int64_t at) {
    int b = 0;
    while (b < LATENCY_BUCKETS - 1 && (1LL << b) <= latency) b++;
    s.latency_bucket[b]++;
    if (latency > s.max_latency_us) { s.max_latency_us = latency; s.max_latency_at_us = at; }
}

static void on_reply(struct client *c, const char *line, int64_t now) {
    long long v;
    char *end;
    if (strcmp(line, "error: handing off, retry") == 0 || strcmp(line, "error: stopping, retry") == 0) {
        s.retried++;
        log_write(c, "retry", line[7] == 'h' ? "handing-off" : "stopping");
        finish_request(c, now);
        return;
    }
    const char *num = c->writer ? (strncmp(line, "previous value ", 15) == 0 ? line + 15 : NULL) : line;
    if (!num) { fail(c, K_BAD_REPLY, now); return; }
    errno = 0;
    v = strtoll(num, &end, 10);
    if (errno || end == num || *end) { fail(c, K_BAD_REPLY, now); return; }
    s.answered++;
    record_latency(now - c->sent_us, c->sent_us);
    saw_value(v, c->floor, now);
    if (c->writer) {
        char previous[32];
        snprintf(previous, sizeof previous, "%lld", v);
        log_write(c, "acked", previous);
    }
    if (c->writer && s.writes_acked < MAX_WRITES) {
        acked[s.writes_acked++] = c->value;
        /* Reads after this one are checked against the written value too. */
        if (c->value > s.max_value) s.max_value = c->value;
    }
    finish_request(c, now);
}

static void on_readable(struct client *c, int64_t now) {
    ssize_t r = recv(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r < 0) { fail(c, errno_kind(errno), now); return; }
    if (r == 0) { fail(c, K_CLOSED, now); return; }
    c->got += r;
    c->buf[c->got] = 0;
    char *nl = memchr(c->buf, '\n', c->got);
    if (!nl) {
        if (c->got == sizeof c->buf - 1) fail(c, K_BAD_REPLY, now);
        return;
    }
    *nl = 0;
    on_reply(c, c->buf, now);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Acknowledged writes that no reply ever went on from. */
static long long count_lost_writes(void) {
    qsort(seen_bases, nseen, sizeof *seen_bases, cmp_ll);
    long long lost = 0;
    for (long long i = 0; i < s.writes_acked; i++)
        if (!bsearch(&acked[i], seen_bases, nseen, sizeof *seen_bases, cmp_ll)) lost++;
    return lost;
}

static long long latency_quantile(double q) {
    long long total = 0, seen = 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) total += s.latency_bucket[b];
    if (!total) return 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        seen += s.latency_bucket[b];
        if (seen >= q * total) return 1LL << b; /* an upper bound: the bucket's end */
    }
    return 0;
}

static void write_summary(int final) {
    static char buf[65536];
    size_t n = 0;
#define OUT(...) n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__)
    long long lost = final ? count_lost_writes() : 0;
    int64_t end = final ? s.ended_us : now_us();
    OUT("{\n \"socket\": \"%s\",\n \"clients\": %d,\n \"writers\": %d,\n \"intervalUs\": %lld,\n",
        socket_path, nclients, nwriters, (long long)interval_us);
    OUT(" \"startedUs\": %lld,\n \"endedUs\": %lld,\n \"final\": %s,\n", (long long)s.started_us, (long long)end,
        final ? "true" : "false");
    OUT(" \"attempts\": %lld,\n \"answered\": %lld,\n \"retried\": %lld,\n \"failed\": %lld,\n",
        s.attempts, s.answered, s.retried, s.failed);
    OUT(" \"failures\": {");
    for (int k = 0, first = 1; k < K_COUNT; k++)
        if (s.by_kind[k]) { OUT("%s\"%s\": %lld", first ? "" : ", ", kind_name[k], s.by_kind[k]); first = 0; }
    OUT("},\n \"refused\": %lld,\n", s.by_kind[K_REFUSED] + s.by_kind[K_ENOENT] + s.by_kind[K_EAGAIN]);
    OUT(" \"resets\": %lld,\n", s.by_kind[K_RESET] + s.by_kind[K_EPIPE] + s.by_kind[K_CLOSED]);
    OUT(" \"firstFailureUs\": %lld,\n \"lastFailureUs\": %lld,\n", (long long)s.first_failure_us, (long long)s.last_failure_us);
    OUT(" \"failureSamples\": [");
    for (int i = 0; i < s.samples; i++)
        OUT("%s{\"kind\": \"%s\", \"atUs\": %lld, \"client\": %d}", i ? ", " : "", kind_name[s.sample[i].kind],
            (long long)s.sample[i].at_us, s.sample[i].client);
    OUT("],\n");
    if (s.have_value)
        OUT(" \"firstValue\": %lld,\n \"firstValueUs\": %lld,\n \"lastValue\": %lld,\n \"lastValueUs\": %lld,\n \"maxValue\": %lld,\n",
            s.first_value, (long long)s.first_value_us, s.last_value, (long long)s.last_value_us, s.max_value);
    else
        OUT(" \"firstValue\": null,\n \"lastValue\": null,\n");
    if (s.have_final) OUT(" \"finalValue\": %lld,\n", s.final_value);
    else OUT(" \"finalValue\": null,\n");
    OUT(" \"counterWentBack\": %lld,\n \"maxBackwardStep\": %lld,\n", s.went_back, s.max_drop);
    OUT(" \"writes\": {\"attempted\": %lld, \"acknowledged\": %lld, \"lost\": %lld},\n", s.writes_attempted, s.writes_acked,
        lost);
    OUT(" \"latencyUs\": {\"p50\": %lld, \"p99\": %lld, \"max\": %lld, \"maxAtUs\": %lld}\n}\n", latency_quantile(0.5),
        latency_quantile(0.99), (long long)s.max_latency_us, (long long)s.max_latency_at_us);
#undef OUT
    if (n >= sizeof buf) n = sizeof buf - 1;
    if (writes_log) fflush(writes_log);
    if (!summary_path) {
        if (final) fwrite(buf, 1, n, stdout);
        return;
    }
    /* Atomically: a reader never sees half a summary. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", summary_path);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "es-probe: %s: %s\n", tmp, strerror(errno)); return; }
    fwrite(buf, 1, n, f);
    fclose(f);
    rename(tmp, summary_path);
}

/* One blocking request, for the final read and for --once. Returns the reply line or NULL. */
static char *ask_once(const char *line, char *reply, size_t size) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path);
    struct timeval tv = { .tv_sec = timeout_us / 1000000, .tv_usec = timeout_us % 1000000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { close(fd); return NULL; }
    char req[256];
    int n = snprintf(req, sizeof req, "%s\n", line);
    if (send(fd, req, n, MSG_NOSIGNAL) != n) { close(fd); return NULL; }
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, reply + got, size - 1 - got, 0);
        if (r <= 0) { close(fd); return NULL; }
        got += r;
        reply[got] = 0;
        char *nl = memchr(reply, '\n', got);
        if (nl) { *nl = 0; close(fd); return reply; }
        if (got == size - 1) { close(fd); return NULL; }
    }
}

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static void usage(void) {
    fprintf(stderr, "usage: es-probe [-s PATH] [-c N] [-m persistent|fresh|mixed] [-i MS] [-w N] [-d SEC] [-o FILE] [-t MS] [-l FILE]\n"
                    "       es-probe [-s PATH] --once LINE\n");
    exit(2);
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"socket", 1, 0, 's'}, {"clients", 1, 0, 'c'}, {"mode", 1, 0, 'm'}, {"interval-ms", 1, 0, 'i'},
        {"writers", 1, 0, 'w'}, {"duration", 1, 0, 'd'}, {"summary", 1, 0, 'o'}, {"timeout-ms", 1, 0, 't'},
        {"once", 1, 0, 'O'}, {"writes-log", 1, 0, 'l'}, {0, 0, 0, 0},
    };
    const char *mode = "mixed", *once = NULL, *writes_log_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "s:c:m:i:w:d:o:t:l:", opts, NULL)) != -1) {
        switch (opt) {
        case 's': socket_path = optarg; break;
        case 'c': nclients = atoi(optarg); break;
        case 'm': mode = optarg; break;
        case 'i': interval_us = (int64_t)(atof(optarg) * 1000); break;
        case 'w': nwriters = atoi(optarg); break;
        case 'd': duration_us = (int64_t)(atof(optarg) * 1000000); break;
        case 'o': summary_path = optarg; break;
        case 't': timeout_us = (int64_t)(atof(optarg) * 1000); break;
        case 'O': once = optarg; break;
        case 'l': writes_log_path = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || nclients < 1 || nclients > MAX_CLIENTS || nwriters < 0 || nwriters > nclients) usage();
    if (strcmp(mode, "persistent") && strcmp(mode, "fresh") && strcmp(mode, "mixed")) usage();

    if (once) {
        char reply[4096];
        if (!ask_once(once, reply, sizeof reply)) { fprintf(stderr, "es-probe: %s: %s\n", socket_path, strerror(errno)); return 1; }
        printf("%s\n", reply);
        return 0;
    }

    if (writes_log_path && !(writes_log = fopen(writes_log_path, "w"))) {
        fprintf(stderr, "es-probe: %s: %s\n", writes_log_path, strerror(errno));
        return 1;
    }
    acked = calloc(MAX_WRITES, sizeof *acked);
    seen_bases = calloc(MAX_SEEN, sizeof *seen_bases);
    if (!acked || !seen_bases) return 1;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.started_us = now_us();
    for (int i = 0; i < nclients; i++) {
        clients[i].fd = -1;
        clients[i].persistent = !strcmp(mode, "persistent") || (!strcmp(mode, "mixed") && i % 2 == 0);
        clients[i].writer = i < nwriters;
        clients[i].next_us = s.started_us;
    }
    int64_t next_summary = s.started_us + 200000;
    struct pollfd pfd[MAX_CLIENTS];
    while (!stop_requested) {
        int64_t now = now_us();
        if (duration_us >= 0 && now - s.started_us >= duration_us) break;
        int64_t wake = next_summary;
        if (duration_us >= 0 && s.started_us + duration_us < wake) wake = s.started_us + duration_us;
        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            if (c->state == IDLE && c->next_us <= now) send_request(c, now);
            if (c->state == WAITING && now - c->sent_us >= timeout_us) fail(c, K_TIMEOUT, now);
            int64_t t = c->state == IDLE ? c->next_us : c->sent_us + timeout_us;
            if (t < wake) wake = t;
            pfd[i].fd = c->state == WAITING ? c->fd : -1;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        /* ppoll: microsecond timeouts (a 2 ms interval is not rounded to whole ms). */
        int64_t left = wake - now_us();
        if (left < 0) left = 0;
        struct timespec ts = { .tv_sec = left / 1000000, .tv_nsec = (left % 1000000) * 1000 };
        int r = ppoll(pfd, nclients, &ts, NULL);
        now = now_us();
        if (r > 0)
            for (int i = 0; i < nclients; i++)
                if (pfd[i].revents && clients[i].state == WAITING) on_readable(&clients[i], now);
        if (now >= next_summary) {
            if (summary_path) write_summary(0);
            next_summary = now + 200000;
        }
    }
    /* The requests in flight get their replies (up to 2 s; no new ones are sent), so that
     * every write's outcome is known. */
    for (int64_t until = now_us() + 2000000;;) {
        int n = 0;
        int64_t now = now_us();
        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            if (c->state == WAITING && now - c->sent_us >= timeout_us) fail(c, K_TIMEOUT, now);
            pfd[n].fd = c->state == WAITING ? c->fd : -1;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            n++;
        }
        if (!any_waiting()) break;
        if (now >= until) break;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 10000000 };
        if (ppoll(pfd, nclients, &ts, NULL) > 0) {
            now = now_us();
            for (int i = 0; i < nclients; i++)
                if (pfd[i].revents && clients[i].state == WAITING) on_readable(&clients[i], now);
        }
    }
    /* Requests still in flight are not counted as failed: the run ended, not the server. */
    for (int i = 0; i < nclients; i++) {
        if (clients[i].state == WAITING) { s.attempts--; log_write(&clients[i], "unknown", "in-flight-at-end"); }
        close_client(&clients[i]);
    }
    s.ended_us = now_us();
    char reply[128];
    if (ask_once("get_counter", reply, sizeof reply)) {
        char *end;
        long long v = strtoll(reply, &end, 10);
        if (end != reply && !*end) { s.final_value = v; s.have_final = 1; saw_value(v, LLONG_MIN, s.ended_us); }
    }
    write_summary(1);
    return 0;
}
