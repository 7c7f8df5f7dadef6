/*
 * es-boot-poller: a client of early-service for the boot test.
 *
 *   es-boot-poller [INTERVAL_MS]      (or es_boot.poll_ms=N on the kernel command line)
 *
 * Started in the initrd (es-boot-poller.service, argv[0] '@' so that systemd
 * spares it at switch-root, like the initrd instance), it connects to the
 * socket every INTERVAL_MS (default 5) after the previous request was
 * answered, asks get_counter, and counts every connect or request that
 * failed, until it is stopped (SIGTERM) on the root file system.
 *
 * After switch-root this process's root is the emptied initrd: no absolute
 * path resolves any more. Its working directory still does: /run is moved,
 * not copied, into the new root, so a cwd inside it stays valid. So the poller
 * chdirs into /run/early-service at start and connects to the relative path
 * "early-service.sock" from then on, and writes its summary through a
 * descriptor opened at start (in /run/es-boot-test, which lives on too).
 *
 * A static C program, not node: under QEMU's TCG a node client costs ~25 ms
 * of CPU per request, load that would distort the very boot it measures.
 *
 * Output on stdout (the journal): one line per failure (the first 50; after
 * that they are only counted), the first reply, the switch-root when noticed,
 * a summary every 5 s and at exit. /run/es-boot-test/poller-summary.json:
 * the summary as JSON, rewritten every 100 ms and at exit. Times are
 * CLOCK_MONOTONIC in microseconds, as the journal's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_DIR "/run/early-service"
#define SOCKET_NAME "early-service.sock"
#define RESULT_DIR "/run/es-boot-test"
#define REQUEST_TIMEOUT_MS 10000
#define LOGGED_FAILURES 50
#define MAX_KINDS 16

static volatile sig_atomic_t stop_requested;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int in_initrd(void) { return access("/etc/initrd-release", F_OK) == 0; }

static struct {
    int64_t started_us, first_reply_us, first_reply_value, switch_root_seen_us;
    int64_t max_latency_us, max_latency_at_us, last_value, last_us;
    long attempts, answered, failed, answered_in_initrd, answered_after_switch_root;
    long counter_went_back, dropped_lines;
    int started_in_initrd, first_reply_in_initrd, have_first_reply, have_last_value, stopped;
    int kinds;
    char kind[MAX_KINDS][48];
    long kind_count[MAX_KINDS];
    int first_failures;
    char first_failure_json[LOGGED_FAILURES][96];
} s;
static int initrd;
static int summary_fd = -1;
static long interval_ms = 5;

/* One line to stdout (the journal's stream). Never blocks: a line that does
 * not fit (journald restarting at switch-root, say) is dropped and counted. */
static void say(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    if (write(1, line, n) != n) s.dropped_lines++;
}

static void write_summary(void) {
    static char buf[16384];
    size_t n = 0;
#define OUT(...) n += snprintf(buf + n, sizeof buf - n, __VA_ARGS__)
    s.last_us = now_us();
    OUT("{\n \"pid\": %d,\n \"cwd\": \"%s\",\n \"intervalMs\": %ld,\n", getpid(), SOCKET_DIR, interval_ms);
    OUT(" \"startedUs\": %lld,\n \"startedInInitrd\": %s,\n", (long long)s.started_us, s.started_in_initrd ? "true" : "false");
    OUT(" \"attempts\": %ld,\n \"answered\": %ld,\n \"failed\": %ld,\n", s.attempts, s.answered, s.failed);
    OUT(" \"failures\": {");
    for (int i = 0; i < s.kinds; i++) OUT("%s\"%s\": %ld", i ? ", " : "", s.kind[i], s.kind_count[i]);
    OUT("},\n \"firstFailures\": [");
    for (int i = 0; i < s.first_failures; i++) OUT("%s\n  %s", i ? "," : "", s.first_failure_json[i]);
    OUT("],\n \"firstReply\": ");
    if (s.have_first_reply)
        OUT("{\"value\": %lld, \"atUs\": %lld, \"inInitrd\": %s}", (long long)s.first_reply_value,
            (long long)s.first_reply_us, s.first_reply_in_initrd ? "true" : "false");
    else
        OUT("null");
    OUT(",\n \"answeredInInitrd\": %ld,\n \"answeredAfterSwitchRoot\": %ld,\n", s.answered_in_initrd, s.answered_after_switch_root);
    if (s.switch_root_seen_us) OUT(" \"switchRootSeenUs\": %lld,\n", (long long)s.switch_root_seen_us);
    else OUT(" \"switchRootSeenUs\": null,\n");
    OUT(" \"maxLatencyUs\": %lld,\n \"maxLatencyAtUs\": %lld,\n", (long long)s.max_latency_us, (long long)s.max_latency_at_us);
    if (s.have_last_value) OUT(" \"lastValue\": %lld,\n", (long long)s.last_value);
    else OUT(" \"lastValue\": null,\n");
    OUT(" \"counterWentBack\": %ld,\n \"droppedLines\": %ld,\n \"lastUs\": %lld,\n \"stopped\": %s\n}\n",
        s.counter_went_back, s.dropped_lines, (long long)s.last_us, s.stopped ? "true" : "false");
#undef OUT
    if (n >= sizeof buf) n = sizeof buf - 1;
    if (pwrite(summary_fd, buf, n, 0) != (ssize_t)n || ftruncate(summary_fd, n) != 0)
        say("cannot write the summary: %s", strerror(errno));
}

static void fail(const char *kind, int64_t at_us) {
    int i;
    s.failed++;
    for (i = 0; i < s.kinds && strcmp(s.kind[i], kind) != 0; i++) {}
    if (i == s.kinds && s.kinds < MAX_KINDS) snprintf(s.kind[s.kinds++], sizeof s.kind[0], "%s", kind);
    if (i < MAX_KINDS) s.kind_count[i]++;
    if (s.first_failures < LOGGED_FAILURES) {
        snprintf(s.first_failure_json[s.first_failures++], sizeof s.first_failure_json[0],
                 "{\"kind\": \"%s\", \"atUs\": %lld, \"inInitrd\": %s}", kind, (long long)at_us, initrd ? "true" : "false");
        say("connect/request failed: %s (attempt %ld, %s)", kind, s.attempts, initrd ? "in the initrd" : "after switch-root");
    }
}

static const char *errno_kind(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ENOTDIR: return "ENOTDIR";
    default: return "other error";
    }
}

/* One attempt: connect, "get_counter\n", one line back. */
static void poll_once(void) {
    int64_t start = now_us();
    s.attempts++;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { fail("socket() failed", start); return; }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, SOCKET_NAME, sizeof SOCKET_NAME);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fail(errno_kind(errno), start);
        close(fd);
        return;
    }
    static const char request[] = "get_counter\n";
    if (send(fd, request, sizeof request - 1, MSG_NOSIGNAL) != (ssize_t)sizeof request - 1) {
        fail(errno_kind(errno), start);
        close(fd);
        return;
    }
    char reply[64];
    size_t got = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = REQUEST_TIMEOUT_MS - (int)((now_us() - start) / 1000);
        if (left <= 0 || poll(&p, 1, left) == 0) { fail("timeout", start); close(fd); return; }
        ssize_t r = recv(fd, reply + got, sizeof reply - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { fail(errno_kind(errno), start); close(fd); return; }
        if (r == 0) { fail("closed without a reply", start); close(fd); return; }
        got += r;
        reply[got] = 0;
        if (memchr(reply, '\n', got)) break;
        if (got == sizeof reply - 1) { fail("bad reply", start); close(fd); return; }
    }
    close(fd);
    char *end;
    long long value = strtoll(reply, &end, 10);
    if (end == reply || *end != '\n') { fail("bad reply", start); return; }
    int64_t latency = now_us() - start;
    s.answered++;
    if (initrd) s.answered_in_initrd++; else s.answered_after_switch_root++;
    if (latency > s.max_latency_us) { s.max_latency_us = latency; s.max_latency_at_us = start; }
    if (s.have_last_value && value < s.last_value) s.counter_went_back++;
    s.last_value = value;
    s.have_last_value = 1;
    if (!s.have_first_reply) {
        s.have_first_reply = 1;
        s.first_reply_value = value;
        s.first_reply_us = start;
        s.first_reply_in_initrd = initrd;
        say("first reply: get_counter answered %lld %s (%lld us)", value,
            initrd ? "in the initrd" : "after switch-root", (long long)latency);
        write_summary();
    }
}

static void summary_line(const char *prefix) {
    say("%ssummary: %ld attempts, %ld answered (%ld in the initrd, %ld after switch-root), %ld failed, "
        "longest request %.1f ms", prefix, s.attempts, s.answered, s.answered_in_initrd,
        s.answered_after_switch_root, s.failed, s.max_latency_us / 1000.0);
}

static void on_sigterm(int sig) { (void)sig; stop_requested = 1; }

int main(int argc, char **argv) {
    if (argc > 1) interval_ms = atol(argv[1]);
    /* The kernel command line may override it (run.sh: ES_BOOT_POLL_MS). */
    FILE *cmdline = fopen("/proc/cmdline", "r");
    if (cmdline) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, cmdline);
        buf[n] = 0;
        fclose(cmdline);
        char *opt = strstr(buf, "es_boot.poll_ms=");
        if (opt) interval_ms = atol(opt + strlen("es_boot.poll_ms="));
    }
    if (interval_ms < 0) interval_ms = 5;

    int flags = fcntl(1, F_GETFL);
    if (flags >= 0) fcntl(1, F_SETFL, flags | O_NONBLOCK);
    struct sigaction sa = { .sa_handler = on_sigterm };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* SIGTERM is taken only while sleeping between requests, so that no
     * request is cut short (and counted as failed) by the stop. */
    sigset_t term, none;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigprocmask(SIG_BLOCK, &term, &none);

    s.started_us = now_us();
    initrd = s.started_in_initrd = in_initrd();
    if (chdir(SOCKET_DIR) != 0) { say("cannot chdir to %s: %s", SOCKET_DIR, strerror(errno)); return 1; }
    mkdir(RESULT_DIR, 0755);
    summary_fd = open(RESULT_DIR "/poller-summary.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (summary_fd < 0) { say("cannot open the summary: %s", strerror(errno)); return 1; }

    say("polling %s/%s every %ld ms as pid %d, from %s", SOCKET_DIR, SOCKET_NAME, interval_ms, getpid(), SOCKET_DIR);
    write_summary();
    int64_t next_summary = now_us() + 100000, next_line = now_us() + 5000000;
    while (!stop_requested) {
        poll_once();
        int64_t now = now_us();
        if (now >= next_summary) {
            if (initrd && !in_initrd()) {
                initrd = 0;
                s.switch_root_seen_us = now;
                say("switch-root noticed; polling on through the working directory (%s relative to %s)", SOCKET_NAME, SOCKET_DIR);
            }
            write_summary();
            next_summary = now + 100000;
        }
        if (now >= next_line) { summary_line(""); next_line = now + 5000000; }
        struct timespec pause = { .tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000 };
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (!stop_requested) nanosleep(&pause, NULL);
        sigprocmask(SIG_BLOCK, &term, NULL);
    }
    s.stopped = 1;
    write_summary();
    summary_line("stopping; ");
    close(summary_fd);
    return 0;
}
