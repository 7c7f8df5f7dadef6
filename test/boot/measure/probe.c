/*
 * es-boot-probe: marks moments of the boot in the kernel log, for the boot
 * test's three-way comparison (test/boot/analyze.mjs reads them from the
 * serial console).
 *
 *   es-boot-probe mark WHAT       "es-boot-measure: WHAT"
 *   es-boot-probe serving PATH    "es-boot-measure: ready" (it was started,
 *                                 i.e. the service reported READY=1), then one
 *                                 get_counter on PATH and
 *                                 "es-boot-measure: serving counter=N" (or
 *                                 "es-boot-measure: not serving (why)")
 *   es-boot-probe poweroff        "es-boot-measure: powering off", then off
 *   as PID 1 (rdinit=...)         "es-boot-measure: init", then off
 *
 * The lines go to /dev/kmsg, so the kernel stamps them with the clock it
 * stamps its own messages with (printk time, from kernel start): the same
 * clock as "Trying to unpack rootfs image as initramfs...", whichever boot.
 * Each run opens /dev/kmsg afresh, and the kernel rate-limits writes per
 * open file (10 per 5 s), so one line a run is never suppressed. Level 3 so
 * that a console log level lowered by sysctl still shows it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_TIMEOUT_MS 10000

static void mark(const char *what) {
	char line[256];
	int len = snprintf(line, sizeof line, "<3>es-boot-measure: %s\n", what);
	int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)len) != len)
		fprintf(stderr, "es-boot-probe: /dev/kmsg: %s\n", strerror(errno));
	if (fd >= 0)
		close(fd);
	// Also on stdout: the journal (in the boot that keeps one) says who wrote it.
	printf("%s", line + 3);
	fflush(stdout);
}

/* One get_counter on PATH: the reply, or NULL with errno set. */
static const char *get_counter(const char *path) {
	static char reply[64];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
	    write(fd, "get_counter\n", 12) != 12)
		return NULL;
	size_t len = 0;
	while (len < sizeof reply - 1 && (len == 0 || reply[len - 1] != '\n')) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1) {
			errno = ETIMEDOUT;
			return NULL;
		}
		ssize_t n = read(fd, reply + len, sizeof reply - 1 - len);
		if (n <= 0) {
			errno = n == 0 ? ECONNRESET : errno;
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	reply[len - 1] = '\0';
	return reply;
}

static int power_off(void) {
	sync();
	reboot(RB_POWER_OFF);
	fprintf(stderr, "es-boot-probe: reboot(RB_POWER_OFF): %s\n", strerror(errno));
	return 1;
}

int main(int argc, char **argv) {
	char what[200];
	if (getpid() == 1) {
		mark("init");
		return power_off();
	}
	if (argc == 3 && strcmp(argv[1], "mark") == 0) {
		mark(argv[2]);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "serving") == 0) {
		mark("ready");
		const char *reply = get_counter(argv[2]);
		if (reply)
			snprintf(what, sizeof what, "serving counter=%s", reply);
		else
			snprintf(what, sizeof what, "not serving (%s: %s)", argv[2], strerror(errno));
		mark(what);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "poweroff") == 0) {
		mark("powering off");
		return power_off();
	}
	fprintf(stderr, "usage: es-boot-probe mark WHAT | serving PATH | poweroff\n");
	return 2;
}
