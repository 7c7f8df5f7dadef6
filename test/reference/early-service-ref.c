// SPDX-License-Identifier: Apache-2.0
//
// early-service-ref: the seed's early service in plain C (libc only, no
// GLib), the yardstick the boot test measures early-service against
// (test/boot: the same boot with this in the initrd instead of node).
//
//   early-service-ref [-d MS] [-s PATH] [--survive_systemd_kill_signal]
//                     [--takeover_existing_socket]
//
// - Ticks every -d ms (default 100, decimals allowed) on absolute
//   CLOCK_MONOTONIC deadlines (a timerfd): prints the counter, bare, then
//   increments it. Ticks that come late are printed at once, none skipped.
// - Serves -s PATH, one command per line (LF or CR LF):
//     get_counter              -> "N\n"
//     set_counter N            -> "previous value P\n" (anything but a signed
//                                 64-bit decimal: "error: invalid number\n")
//     pass_state_and_terminate -> one NUL byte carrying the listening socket
//                                 (SCM_RIGHTS), then "N\n"; exits 0. Only root
//                                 and our own uid may ask (SO_PEERCRED).
//     anything else            -> "Invalid command\n"
//   A line over 4096 bytes gets "error: line too long", and the connection is
//   closed once the client closed its side. A client that does not read its replies is not read from either.
// - --takeover_existing_socket: asks the server on PATH for its socket and
//   counter the same way and carries on from them; if nobody answers it
//   starts fresh (binding PATH, replacing a stale socket file).
// - Under systemd (NOTIFY_SOCKET, a path or @abstract) sends READY=1 once it
//   serves, STOPPING=1 when it hands off: the datagram is written here, no
//   libsystemd.
// - --survive_systemd_kill_signal: argv[0][0] = '@', which systemd's
//   switch-root killing spree spares (for root's processes).
//
// The socket path is never unlinked at exit. Logs the seed's lines.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define OUT_BYTES 65536
#define MAX_CLIENTS 256
#define HANDOFF_TIMEOUT_MS 5000

struct client {
	int fd;
	int discarding; // told its line was too long: read to EOF, answer nothing
	size_t in_len, out_len, out_sent;
	char in[LINE_MAX_BYTES + 1];
	char out[OUT_BYTES];
};

static int64_t counter;
static int listen_fd = -1;
static const char *socket_path;
static struct client *clients[MAX_CLIENTS];
static int client_count;

static void die(const char *what) {
	fprintf(stderr, "early-service-ref: %s: %s\n", what, strerror(errno));
	exit(1);
}

// sd_notify(): one datagram to $NOTIFY_SOCKET, if set.
static void notify(const char *message) {
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (path == NULL || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof addr.sun_path)
		return;
	size_t len = strlen(path);
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&addr,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		fprintf(stderr, "early-service-ref: sd_notify: %s\n", strerror(errno));
	close(fd);
}

static int unix_address(const char *path, struct sockaddr_un *addr) {
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr->sun_path, path);
	return 0;
}

static int connect_to(const char *path) {
	struct sockaddr_un addr;
	if (unix_address(path, &addr) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

// Binds PATH afresh. A socket file nobody answers on (a crash's leftover) is
// replaced; a live server or a file that is not a socket is an error.
static int listen_on(const char *path) {
	struct sockaddr_un addr;
	struct stat st;
	if (unix_address(path, &addr) < 0)
		die(path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			die("not a socket, not touching it");
		}
		int probe = connect_to(path);
		if (probe >= 0) {
			close(probe);
			errno = EADDRINUSE;
			die("a server answers on the socket");
		}
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0)
		die(path);
	return fd;
}

static int wait_readable(int fd) {
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, HANDOFF_TIMEOUT_MS) == 1 ? 0 : -1;
}

// The successor's side of the seed's handoff: the listening socket and the
// counter from the server on PATH, or -1 if it does not hand them over.
static int take_over(const char *path) {
	static const char request[] = "pass_state_and_terminate\n";
	printf("Reading starting position and taking ownership of socket %s\n", path);
	int fd = connect_to(path);
	if (fd < 0 || write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) {
		printf("No server to take over from on %s (%s): starting fresh\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char byte, control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof control };
	int received = -1;
	if (wait_readable(fd) == 0 && recvmsg(fd, &msg, MSG_CMSG_CLOEXEC) == 1 && byte == '\0') {
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&received, CMSG_DATA(c), sizeof received);
	}
	char line[32];
	size_t len = 0;
	while (received >= 0 && len < sizeof line - 1 && (len == 0 || line[len - 1] != '\n')) {
		if (wait_readable(fd) < 0)
			break;
		ssize_t n = read(fd, line + len, sizeof line - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	line[len] = '\0';
	char *end;
	errno = 0;
	long long value = strtoll(line, &end, 10);
	if (received < 0 || len == 0 || line[len - 1] != '\n' || end == line || *end != '\n' || errno) {
		printf("The server on %s did not hand over its socket and counter: starting fresh\n", path);
		if (received >= 0)
			close(received);
		return -1;
	}
	printf("Successfully received file descriptor for %s\n", path);
	printf("Setting the counter to %lld\n", value);
	counter = value;
	return received;
}

static void add_client(int fd) {
	struct client *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	clients[client_count++] = c;
}

static void drop_client(int i) {
	close(clients[i]->fd);
	free(clients[i]);
	clients[i] = clients[--client_count];
}

static void reply(struct client *c, const char *text) {
	size_t len = strlen(text);
	if (len <= OUT_BYTES - c->out_len) {
		memcpy(c->out + c->out_len, text, len);
		c->out_len += len;
	}
}

static int peer_may_take_over(int fd) {
	struct ucred cred;
	socklen_t len = sizeof cred;
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	       (cred.uid == 0 || cred.uid == geteuid());
}

// The donor's side: the listening socket on one NUL byte, then the counter.
static void hand_off(struct client *c) {
	char byte = '\0', control[CMSG_SPACE(sizeof(int))] = { 0 }, line[32];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			      .msg_controllen = sizeof control };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &listen_fd, sizeof listen_fd);
	printf("Passing file descriptor for %s to other process\n", socket_path);
	// Blocking from here on: the successor reads these few bytes at once.
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	if (sendmsg(c->fd, &msg, MSG_NOSIGNAL) != 1) {
		printf("Handoff failed (%s): carrying on\n", strerror(errno));
		return;
	}
	printf("Returning counter to client and terminating the process\n");
	snprintf(line, sizeof line, "%" PRId64 "\n", counter);
	if (write(c->fd, line, strlen(line)) != (ssize_t)strlen(line))
		printf("Writing the counter failed: %s\n", strerror(errno));
	notify("STOPPING=1");
	fflush(stdout);
	exit(0);
}

static void command(struct client *c, char *line) {
	char text[64];
	size_t len = strlen(line);
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (strcmp(line, "get_counter") == 0) {
		snprintf(text, sizeof text, "%" PRId64 "\n", counter);
		reply(c, text);
	} else if (strncmp(line, "set_counter ", 12) == 0) {
		char *end;
		errno = 0;
		long long value = strtoll(line + 12, &end, 10);
		if (end == line + 12 || *end != '\0' || errno) {
			reply(c, "error: invalid number\n");
		} else {
			snprintf(text, sizeof text, "previous value %" PRId64 "\n", counter);
			counter = value;
			printf("Setting the counter to %lld\n", value);
			reply(c, text);
		}
	} else if (strcmp(line, "pass_state_and_terminate") == 0) {
		if (peer_may_take_over(c->fd))
			hand_off(c);
		else
			reply(c, "error: not authorized\n");
	} else {
		reply(c, "Invalid command\n");
	}
}

// Answers the complete lines read so far, while there is room for replies
// (at most 21 bytes each). Returns -1 if the client must be dropped.
static int answer(struct client *c) {
	size_t start = 0;
	char *nl;
	while (OUT_BYTES - c->out_len >= 64 &&
	       (nl = memchr(c->in + start, '\n', c->in_len - start)) != NULL) {
		*nl = '\0';
		command(c, c->in + start);
		start = (size_t)(nl - c->in) + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (c->in_len == LINE_MAX_BYTES && memchr(c->in, '\n', c->in_len) == NULL) {
		// Closing with unread bytes would reset the connection and lose the
		// reply: send it, end our side, then read to the client's EOF.
		reply(c, "error: line too long\n");
		(void)!send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
		shutdown(c->fd, SHUT_WR);
		c->discarding = 1;
		c->in_len = c->out_len = c->out_sent = 0;
	}
	return 0;
}

// Reads, answers, writes; returns -1 when the connection is done.
static int serve(struct client *c, short revents) {
	if (c->discarding) {
		char sink[4096];
		ssize_t n = read(c->fd, sink, sizeof sink);
		return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
	}
	if (revents & POLLIN) {
		ssize_t n = read(c->fd, c->in + c->in_len, LINE_MAX_BYTES - c->in_len);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return -1;
		if (n > 0)
			c->in_len += (size_t)n;
	}
	if (answer(c) < 0)
		return -1;
	if (c->out_sent < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0)
			c->out_sent += (size_t)n;
		if (c->out_sent == c->out_len)
			c->out_sent = c->out_len = 0;
	}
	// Lines that waited for room in the reply buffer.
	return answer(c);
}

static int start_ticker(double period_ms) {
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		die("timerfd_create");
	int64_t period_ns = (int64_t)(period_ms * 1e6);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	struct itimerspec spec = {
		.it_interval = { period_ns / 1000000000, period_ns % 1000000000 },
		.it_value = now,
	};
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0)
		die("timerfd_settime");
	return fd;
}

// Every deadline that passed, one line each.
static void tick(int timer) {
	uint64_t expirations;
	if (read(timer, &expirations, sizeof expirations) != sizeof expirations)
		return;
	while (expirations-- > 0) {
		printf("%" PRId64 "\n", counter);
		counter = (int64_t)((uint64_t)counter + 1);
	}
}

int main(int argc, char **argv) {
	static const struct option options[] = {
		{ "timer_delay_ms", required_argument, NULL, 'd' },
		{ "server_socket_path", required_argument, NULL, 's' },
		{ "survive_systemd_kill_signal", no_argument, NULL, 'k' },
		{ "takeover_existing_socket", no_argument, NULL, 't' },
		{ 0 },
	};
	double period_ms = 100;
	int survive = 0, takeover = 0, opt;
	while ((opt = getopt_long(argc, argv, "d:s:", options, NULL)) != -1) {
		switch (opt) {
		case 'd': period_ms = strtod(optarg, NULL); break;
		case 's': socket_path = optarg; break;
		case 'k': survive = 1; break;
		case 't': takeover = 1; break;
		default: return 2;
		}
	}
	if (!(period_ms >= 0.01 && period_ms <= 86400000)) {
		fprintf(stderr, "early-service-ref: -d wants 0.01 to 86400000 ms\n");
		return 2;
	}
	if (survive)
		argv[0][0] = '@';
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);

	if (socket_path != NULL) {
		if (takeover)
			listen_fd = take_over(socket_path);
		if (listen_fd < 0) {
			listen_fd = listen_on(socket_path);
			printf("Listening on UNIX socket %s\n", socket_path);
		}
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	} else {
		printf("Not listening on a UNIX socket.\n");
	}
	int timer = start_ticker(period_ms);
	notify("READY=1");

	struct pollfd fds[2 + MAX_CLIENTS];
	for (;;) {
		int n = 0;
		fds[n++] = (struct pollfd){ .fd = timer, .events = POLLIN };
		// A full table leaves new clients waiting in the backlog.
		fds[n++] = (struct pollfd){ .fd = client_count < MAX_CLIENTS ? listen_fd : -1, .events = POLLIN };
		for (int i = 0; i < client_count; i++) {
			struct client *c = clients[i];
			// Not read from while its replies wait to be written.
			fds[n++] = (struct pollfd){ .fd = c->fd, .events = c->out_len ? POLLOUT : POLLIN };
		}
		if (poll(fds, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (fds[0].revents)
			tick(timer);
		// Backwards: drop_client() moves the last client into the slot.
		for (int i = client_count - 1; i >= 0; i--) {
			if (fds[2 + i].revents && serve(clients[i], fds[2 + i].revents) < 0)
				drop_client(i);
		}
		if (fds[1].revents & POLLIN) {
			int fd;
			while (client_count < MAX_CLIENTS &&
			       (fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
				add_client(fd);
		}
	}
}
