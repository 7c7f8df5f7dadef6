// SPDX-License-Identifier: Apache-2.0
//
// load-client: N clients in lockstep (one request in flight each), each a
// thread doing blocking I/O, for T seconds against a UNIX socket path.
// Compiled by bench/c-reference.ts with cc at run time, like the tests
// compile test/gio.
//
//   load-client SOCKET_PATH CLIENTS SECONDS persistent|fresh [REQUEST]
//
// persistent: one connection per client, REQUEST (default "get_counter")
// written, its reply line read, again. fresh: connect, write, read the reply
// line, close, again. A client whose connect, write or read fails counts an
// error and carries on with a new connection. Prints one line of JSON:
//   {"requests":R,"errors":E,"seconds":S,"requests_per_s":X,"p50_ms":..,"p99_ms":..,"max_ms":..}
// Latency is per request: write -> whole reply line (fresh: connect -> reply).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// Enough for ~100k requests/s per client for the longest run the bench uses.
#define MAX_SAMPLES (4 * 1024 * 1024)

struct client {
	pthread_t thread;
	unsigned long requests;
	unsigned long errors;
	float *latency_us;
};

static struct sockaddr_un address;
static int persistent;
static char request[256];
static size_t request_length;
static double deadline;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

// Writes the request and reads until the reply's LF. 0 on success.
static int exchange(int fd)
{
	char reply[256];
	size_t have = 0;

	if (write(fd, request, request_length) != (ssize_t)request_length)
		return -1;
	for (;;) {
		ssize_t n = read(fd, reply + have, sizeof(reply) - have);

		if (n <= 0)
			return -1;
		if (memchr(reply + have, '\n', (size_t)n) != NULL)
			return 0;
		have += (size_t)n;
		if (have == sizeof(reply))
			return -1;
	}
}

static void *run_client(void *arg)
{
	struct client *client = arg;
	int fd = -1;

	while (now() < deadline) {
		double started = now();

		if (fd < 0)
			fd = connect_socket();
		if (fd < 0 || exchange(fd) != 0) {
			client->errors++;
			if (fd >= 0)
				close(fd);
			fd = -1;
			continue;
		}
		if (!persistent) {
			close(fd);
			fd = -1;
		}
		if (client->requests < MAX_SAMPLES)
			client->latency_us[client->requests] = (float)((now() - started) * 1e6);
		client->requests++;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int compare(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct client *clients;
	float *all;
	unsigned long total = 0, errors = 0, samples = 0;
	int count;
	double seconds, started, elapsed;

	if (argc < 5 || argc > 6 || (strcmp(argv[4], "persistent") != 0 && strcmp(argv[4], "fresh") != 0)) {
		fprintf(stderr, "usage: load-client SOCKET_PATH CLIENTS SECONDS persistent|fresh [REQUEST]\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(address.sun_path)) {
		fprintf(stderr, "load-client: socket path too long\n");
		return 2;
	}
	address.sun_family = AF_UNIX;
	strcpy(address.sun_path, argv[1]);
	count = atoi(argv[2]);
	seconds = atof(argv[3]);
	persistent = strcmp(argv[4], "persistent") == 0;
	snprintf(request, sizeof(request), "%s\n", argc == 6 ? argv[5] : "get_counter");
	request_length = strlen(request);
	if (count < 1 || seconds <= 0) {
		fprintf(stderr, "load-client: CLIENTS >= 1 and SECONDS > 0\n");
		return 2;
	}

	clients = calloc((size_t)count, sizeof(*clients));
	for (int i = 0; i < count; i++)
		clients[i].latency_us = malloc(MAX_SAMPLES * sizeof(float));
	started = now();
	deadline = started + seconds;
	for (int i = 0; i < count; i++)
		pthread_create(&clients[i].thread, NULL, run_client, &clients[i]);
	for (int i = 0; i < count; i++)
		pthread_join(clients[i].thread, NULL);
	elapsed = now() - started;

	for (int i = 0; i < count; i++) {
		total += clients[i].requests;
		errors += clients[i].errors;
		samples += clients[i].requests < MAX_SAMPLES ? clients[i].requests : MAX_SAMPLES;
	}
	all = malloc((samples + 1) * sizeof(float));
	samples = 0;
	for (int i = 0; i < count; i++) {
		unsigned long n = clients[i].requests < MAX_SAMPLES ? clients[i].requests : MAX_SAMPLES;

		memcpy(all + samples, clients[i].latency_us, n * sizeof(float));
		samples += n;
	}
	qsort(all, samples, sizeof(float), compare);
#define PERCENTILE(p) (samples == 0 ? 0.0 : all[(unsigned long)((p) * (double)(samples - 1))] / 1000.0)
	printf("{\"requests\":%lu,\"errors\":%lu,\"seconds\":%.3f,\"requests_per_s\":%.0f,"
	       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
	       total, errors, elapsed, (double)total / elapsed, PERCENTILE(0.5), PERCENTILE(0.99),
	       samples == 0 ? 0.0 : all[samples - 1] / 1000.0);
	return 0;
}
