// SPDX-License-Identifier: Apache-2.0
//
// get_counter answered in C on the main thread's event loop, without a
// net.Socket per connection: a fresh connection per request costs a third of
// the CPU it costs through node's net module, and the young generation stays
// small under load (docs/BENCHMARKS.md). The addon accepts on the
// listening socket (uv_poll on node's loop) and serves every connection
// whose lines are all `get_counter` from the shared counter; at the first
// other line (or a frozen counter, a line over the limit, a write the kernel
// does not take whole, an incomplete line at EOF) it hands the connection to
// JavaScript: escalate(fd, unread bytes, reply bytes not yet written), which
// serves it as a handed-over connection (Server.adopt). So every other
// command keeps its one implementation in server.ts/connection.ts.
//
//   fastPathStart(listenFd, counter: BigInt64Array, escalate, limits: Int32Array): void
//     limits[0]: the most connections (here and in JavaScript together),
//     limits[1]: how many JavaScript serves now (it keeps that up to date);
//     past the most, a new connection is told so and closed, and limits[2]
//     counts it.
//   fastPathStop(): void    stops accepting and escalates every connection
//   fastPathConnections(): number   how many are served here
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "fast_path.h"

#define MAX_LINE_BYTES 4096
// Read at most this much at a time (as libuv does), after the kept partial line.
#define READ_BYTES 65536
// An incomplete line longer than MAX_LINE_BYTES is too long (protocol.ts's LineReader).
#define PENDING_BYTES (MAX_LINE_BYTES + 1)
#define BUFFER_BYTES (PENDING_BYTES + READ_BYTES)
// Replies to a full buffer of the shortest request ("get_counter\n", 12 bytes): 20 digits, sign, LF.
#define REPLY_BYTES ((BUFFER_BYTES / 12 + 1) * 22)
#define ACCEPTS_PER_WAKEUP 64

struct connection {
  uv_poll_t poll;
  int fd;
  size_t length;
  struct connection *next, *previous;
  char pending[PENDING_BYTES];
};

// One thread (the main thread's loop) serves every connection: one buffer will do.
static char buffer[BUFFER_BYTES];
static char reply[REPLY_BYTES];

static struct {
  napi_env env;
  uv_loop_t *loop;
  // Allocated per start: a stop's uv_close() completes later, and a rolled-back handoff starts again at once.
  uv_poll_t *listen_poll;
  int listen_fd;
  int running;
  int64_t *counter;
  napi_ref counter_ref;
  int32_t *limits;
  napi_ref limits_ref;
  int count;
  napi_ref escalate_ref;
  napi_async_context async;
  struct connection *connections;
} fast;

static const char too_many[] = "error: too many connections\n";

static void unlink_connection(struct connection *c) {
  fast.count--;
  if (c->previous != NULL)
    c->previous->next = c->next;
  else
    fast.connections = c->next;
  if (c->next != NULL)
    c->next->previous = c->previous;
}

static void free_after_close(uv_handle_t *handle) { free(handle->data); }

static void drop(struct connection *c) {
  unlink_connection(c);
  uv_poll_stop(&c->poll);
  close(c->fd);
  uv_close((uv_handle_t *)&c->poll, free_after_close);
}

// Hands the connection to JavaScript with `unread` and `answer` (replies
// not yet written), then forgets it (the fd is JS's now).
static void escalate(struct connection *c, const char *unread,
                     size_t unread_length, const char *answer,
                     size_t answer_length) {
  napi_env env = fast.env;
  napi_handle_scope scope;
  napi_value escalate_fn, resource, argv[3], result;
  void *data;

  unlink_connection(c);
  uv_poll_stop(&c->poll);
  napi_open_handle_scope(env, &scope);
  napi_create_int32(env, c->fd, &argv[0]);
  napi_create_buffer_copy(env, unread_length, unread_length > 0 ? unread : "", &data, &argv[1]);
  napi_create_buffer_copy(env, answer_length, answer_length > 0 ? answer : "", &data, &argv[2]);
  napi_get_reference_value(env, fast.escalate_ref, &escalate_fn);
  napi_get_global(env, &resource);
  // make_callback: runs process.nextTick's queue and microtasks afterwards,
  // which the net.Socket made for this connection relies on.
  napi_make_callback(env, fast.async, resource, escalate_fn, 3, argv, &result);
  napi_close_handle_scope(env, scope);
  uv_close((uv_handle_t *)&c->poll, free_after_close);
}

// Reads what is there and answers it. Returns 0 while the connection stays here.
static int serve(struct connection *c) {
  for (;;) {
    memcpy(buffer, c->pending, c->length);
    ssize_t n = read(c->fd, buffer + c->length, READ_BYTES);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      if (errno == EINTR)
        continue;
      drop(c); // ECONNRESET and the like: the client is gone
      return 1;
    }
    if (n == 0) {
      if (c->length == 0)
        drop(c);
      else
        escalate(c, c->pending, c->length, NULL, 0); // an incomplete last line: JS decides
      return 1;
    }
    size_t length = c->length + (size_t)n;

    size_t start = 0, reply_length = 0;
    char *newline;
    while ((newline = memchr(buffer + start, '\n', length - start)) != NULL) {
      size_t end = (size_t)(newline - buffer), line = end - start;
      if (line > 0 && buffer[end - 1] == '\r')
        line--;
      if (line != 11 || memcmp(buffer + start, "get_counter", 11) != 0)
        break;
      int64_t value = __atomic_load_n(fast.counter, __ATOMIC_SEQ_CST);
      if (value == INT64_MIN) // frozen for a handoff: JS answers the captured value
        break;
      reply_length += (size_t)snprintf(reply + reply_length,
                                       sizeof(reply) - reply_length,
                                       "%" PRId64 "\n", value);
      start = end + 1;
    }
    int other = newline != NULL || length - start > MAX_LINE_BYTES;
    size_t written = 0;
    if (reply_length > 0) {
      ssize_t w = write(c->fd, reply, reply_length);
      written = w < 0 ? 0 : (size_t)w;
    }
    if (other || written < reply_length) {
      escalate(c, buffer + start, length - start, reply + written, reply_length - written);
      return 1;
    }
    c->length = length - start;
    memcpy(c->pending, buffer + start, c->length);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  struct connection *c = handle->data;
  if (status < 0) {
    drop(c);
    return;
  }
  serve(c);
}

static void on_listen_readable(uv_poll_t *handle, int status, int events) {
  (void)handle;
  (void)status;
  (void)events;
  for (int i = 0; i < ACCEPTS_PER_WAKEUP && fast.running; i++) {
    int fd = accept4(fast.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; // EAGAIN, or an error the next wake-up sees again
    if (fast.count + __atomic_load_n(&fast.limits[1], __ATOMIC_RELAXED) >= fast.limits[0]) {
      ssize_t ignored = write(fd, too_many, sizeof(too_many) - 1);
      (void)ignored;
      close(fd);
      __atomic_add_fetch(&fast.limits[2], 1, __ATOMIC_RELAXED);
      continue;
    }
    struct connection *c = malloc(sizeof(*c));
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->length = 0;
    fast.count++;
    c->previous = NULL;
    c->next = fast.connections;
    if (c->next != NULL)
      c->next->previous = c;
    fast.connections = c;
    uv_poll_init(fast.loop, &c->poll, fd);
    c->poll.data = c;
    if (serve(c) == 0)
      uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  }
}

static napi_value fast_path_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], name;
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value buffer;
  int32_t fd;

  void *limits;
  size_t limits_length;
  napi_typedarray_type limits_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
      argc != 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, &buffer,
                               &offset) != napi_ok ||
      type != napi_bigint64_array || length < 1 ||
      napi_get_typedarray_info(env, argv[3], &limits_type, &limits_length, &limits, &buffer,
                               &offset) != napi_ok ||
      limits_type != napi_int32_array || limits_length < 3) {
    napi_throw_type_error(env, NULL, "fastPathStart(listenFd, BigInt64Array, escalate, Int32Array)");
    return NULL;
  }
  if (fast.running) {
    napi_throw_error(env, NULL, "fastPathStart: already running");
    return NULL;
  }
  fast.env = env;
  napi_get_uv_event_loop(env, &fast.loop);
  fast.listen_fd = fd;
  fast.counter = data;
  napi_create_reference(env, argv[1], 1, &fast.counter_ref);
  napi_create_reference(env, argv[2], 1, &fast.escalate_ref);
  fast.limits = limits;
  napi_create_reference(env, argv[3], 1, &fast.limits_ref);
  napi_create_string_utf8(env, "early-service:fast-path", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &fast.async);
  fast.listen_poll = malloc(sizeof(*fast.listen_poll));
  if (fast.listen_poll == NULL) {
    napi_throw_error(env, NULL, "fastPathStart: out of memory");
    return NULL;
  }
  uv_poll_init(fast.loop, fast.listen_poll, fd);
  fast.listen_poll->data = fast.listen_poll;
  uv_poll_start(fast.listen_poll, UV_READABLE, on_listen_readable);
  fast.running = 1;
  return NULL;
}

static napi_value fast_path_stop(napi_env env, napi_callback_info info) {
  (void)info;
  if (!fast.running)
    return NULL;
  fast.running = 0;
  uv_poll_stop(fast.listen_poll);
  while (fast.connections != NULL)
    escalate(fast.connections, fast.connections->pending, fast.connections->length, NULL, 0);
  uv_close((uv_handle_t *)fast.listen_poll, free_after_close);
  fast.listen_poll = NULL;
  napi_delete_reference(env, fast.counter_ref);
  napi_delete_reference(env, fast.escalate_ref);
  napi_delete_reference(env, fast.limits_ref);
  napi_async_destroy(env, fast.async);
  return NULL;
}

static napi_value fast_path_connections(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_int32(env, fast.running ? fast.count : 0, &result);
  return result;
}

int register_fast_path(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "fastPathStart", NAPI_AUTO_LENGTH,
                           fast_path_start, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "fastPathStart", fn) != napi_ok ||
      napi_create_function(env, "fastPathStop", NAPI_AUTO_LENGTH,
                           fast_path_stop, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "fastPathStop", fn) != napi_ok ||
      napi_create_function(env, "fastPathConnections", NAPI_AUTO_LENGTH,
                           fast_path_connections, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "fastPathConnections", fn) != napi_ok)
    return -1;
  return 0;
}
