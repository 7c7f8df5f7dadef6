// SPDX-License-Identifier: Apache-2.0
//
// The few system calls that Node.js does not expose and the handoff needs:
// creating/connecting UNIX stream sockets without libuv (libuv unlinks the
// path of a socket it bound when the server closes), passing file descriptors
// with SCM_RIGHTS (nodejs/node#53391), SO_PEERCRED, half-closing the read side,
// dup/close, and the per-thread timer slack.
//
// Every function is synchronous and bounded: blocking waits go through poll()
// with a timeout given by the caller. Errors are thrown as JS errors carrying
// `code` (errno name) and `syscall`, like Node's own.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>

#include "fast_path.h"

// SCM_MAX_FD: the most descriptors one message can carry.
#define MAX_RECEIVED_FDS 253

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, NULL, "N-API call failed: " #call);                \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall,
                              const char *detail) {
  char message[512];
  const char *name = strerrorname_np(err);
  if (detail != NULL)
    snprintf(message, sizeof(message), "%s %s: %s", syscall, detail,
             strerror(err));
  else
    snprintf(message, sizeof(message), "%s: %s", syscall, strerror(err));

  napi_value msg, error, value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, name ? name : "UNKNOWN", NAPI_AUTO_LENGTH,
                          &value);
  napi_set_named_property(env, error, "code", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_throw(env, error);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want,
                    napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
      argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value value, int32_t *out) {
  if (napi_get_value_int32(env, value, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an integer");
    return 0;
  }
  return 1;
}

// Fills a sockaddr_un; a leading '@' selects the abstract namespace.
static int get_address(napi_env env, napi_value value, struct sockaddr_un *addr,
                       socklen_t *len, char *path, size_t path_size) {
  size_t path_len;
  if (napi_get_value_string_utf8(env, value, path, path_size, &path_len) !=
      napi_ok) {
    napi_throw_type_error(env, NULL, "expected a socket path");
    return 0;
  }
  if (path_len == 0 || path_len >= sizeof(addr->sun_path) ||
      path_len >= path_size - 1) {
    napi_throw_range_error(env, "ERR_SOCKET_PATH",
                           "socket path is empty or longer than 107 bytes");
    return 0;
  }
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  memcpy(addr->sun_path, path, path_len);
  if (path[0] == '@')
    addr->sun_path[0] = '\0';
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len +
                     (path[0] == '@' ? 0 : 1));
  return 1;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Waits until fd is ready for `events` or the deadline passes.
// Returns 1 when ready, 0 on timeout, -1 with errno on error.
static int wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - now_ms();
    if (left < 0)
      left = 0;
    struct pollfd pfd = {.fd = fd, .events = events};
    int n = poll(&pfd, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    return n;
  }
}

// listenUnix(path, backlog) -> fd. Binds a new, non-blocking, close-on-exec
// stream socket. The file is created with the process umask. The caller is
// responsible for removing a stale file first.
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr;
  socklen_t len;
  char path[256];
  int32_t backlog;
  if (!get_args(env, info, 2, argv) ||
      !get_address(env, argv[0], &addr, &len, path, sizeof(path)) ||
      !get_int(env, argv[1], &backlog))
    return NULL;

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return throw_errno(env, errno, "socket", NULL);
  if (bind(fd, (struct sockaddr *)&addr, len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind", path);
  }
  if (listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    if (path[0] != '@')
      unlink(path);
    return throw_errno(env, err, "listen", path);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// setBacklog(fd, backlog): listen(2) again on a listening socket, which only
// changes how many connections the kernel queues for it. A socket received
// from a C server (GIO listens with a backlog of 10) gets ours at once, so
// clients arriving while nobody accepts wait instead of failing (EAGAIN).
static napi_value set_backlog(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, backlog;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[1], &backlog))
    return NULL;
  if (listen(fd, backlog) < 0)
    return throw_errno(env, errno, "listen", NULL);
  return NULL;
}

// connectUnix(path, timeoutMs) -> fd, a non-blocking close-on-exec socket.
// A UNIX socket whose backlog is full answers EAGAIN at once (there is no
// "in progress" to poll for), so that case is retried until the deadline.
static napi_value connect_unix(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un addr;
  socklen_t len;
  char path[256];
  int32_t timeout_ms;
  if (!get_args(env, info, 2, argv) ||
      !get_address(env, argv[0], &addr, &len, path, sizeof(path)) ||
      !get_int(env, argv[1], &timeout_ms))
    return NULL;

  int64_t deadline = now_ms() + timeout_ms;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return throw_errno(env, errno, "socket", NULL);
  for (;;) {
    if (connect(fd, (struct sockaddr *)&addr, len) == 0)
      break;
    int err = errno;
    if (err == EINTR)
      continue;
    if (err == EAGAIN && now_ms() < deadline) {
      struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
      nanosleep(&pause, NULL);
      continue;
    }
    close(fd);
    return throw_errno(env, err == EAGAIN ? ETIMEDOUT : err, "connect", path);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// connectDatagram(address) -> fd of a close-on-exec datagram socket connected
// to `address` ('@name' for the abstract namespace). Connected once, it keeps
// reaching its peer after the path stops resolving (after switch-root the
// initrd's processes see an empty root, /run/systemd/notify included).
static napi_value connect_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct sockaddr_un addr;
  socklen_t len;
  char path[256];
  if (!get_args(env, info, 1, argv) ||
      !get_address(env, argv[0], &addr, &len, path, sizeof(path)))
    return NULL;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return throw_errno(env, errno, "socket", NULL);
  int rc;
  do
    rc = connect(fd, (struct sockaddr *)&addr, len);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "connect", path);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// sendDatagram(fd, buffer): one datagram on a connected socket, never
// blocking (EAGAIN is thrown: a notification is not worth a stall).
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t size;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  ssize_t n;
  do
    n = send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return throw_errno(env, errno, "send", NULL);
  return NULL;
}

// sendDatagramWithFds(fd, buffer, fds): one datagram carrying descriptors
// (SCM_RIGHTS), e.g. FDSTORE=1 to systemd's notify socket. Never blocks.
static napi_value send_datagram_with_fds(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  void *data;
  size_t size;
  uint32_t count;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  CHECK(napi_get_array_length(env, argv[2], &count));
  if (count == 0 || count > 16) {
    napi_throw_range_error(env, NULL, "between 1 and 16 descriptors");
    return NULL;
  }
  int fds[16];
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    CHECK(napi_get_element(env, argv[2], i, &item));
    if (!get_int(env, item, &fds[i]))
      return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = size};
  union {
    char buf[CMSG_SPACE(sizeof(int) * 16)];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * count)};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  ssize_t n;
  do
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return throw_errno(env, errno, "sendmsg", NULL);
  return NULL;
}

// notifyBarrier(fd, timeoutMs) -> whether PID 1 processed every notification
// sent before: BARRIER=1 carries the write end of a pipe, which PID 1 closes
// once it got that far; POLLHUP on the read end says so (sd_notify_barrier()).
static napi_value notify_barrier(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, timeout_ms;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[1], &timeout_ms))
    return NULL;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return throw_errno(env, errno, "pipe2", NULL);
  static const char text[] = "BARRIER=1";
  struct iovec iov = {.iov_base = (void *)text, .iov_len = sizeof(text) - 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof(control.buf)};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &pipefd[1], sizeof(int));
  ssize_t n;
  do
    n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  close(pipefd[1]);
  if (err != 0) {
    close(pipefd[0]);
    return throw_errno(env, err, "sendmsg", "BARRIER=1");
  }
  int64_t deadline = now_ms() + timeout_ms;
  int ready;
  for (;;) {
    int64_t left = deadline - now_ms();
    struct pollfd pfd = {.fd = pipefd[0], .events = 0};
    ready = poll(&pfd, 1, left < 0 ? 0 : (int)left);
    if (ready < 0 && errno == EINTR)
      continue;
    break;
  }
  close(pipefd[0]);
  napi_value result;
  CHECK(napi_get_boolean(env, ready > 0, &result));
  return result;
}

// memfdCreate(name, size) -> a close-on-exec memfd of `size` bytes, sealed
// against shrinking and growing: whoever maps it can rely on its size.
static napi_value memfd_create_fn(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[64];
  size_t len;
  int32_t size;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[1], &size))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a name");
    return NULL;
  }
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return throw_errno(env, errno, "memfd_create", NULL);
  if (ftruncate(fd, size) < 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "memfd", name);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// memfdInfo(fd) -> { memfd, size, sealed } | null: whether fd is a memfd (a
// regular file with seals), its size, and whether it is sealed against
// resizing (F_SEAL_SHRINK|F_SEAL_GROW), as memfdCreate makes it.
static napi_value memfd_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  struct stat st;
  napi_value result, value;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  int seals = fcntl(fd, F_GET_SEALS);
  CHECK(napi_create_object(env, &result));
  CHECK(napi_get_boolean(env, seals >= 0, &value));
  CHECK(napi_set_named_property(env, result, "memfd", value));
  CHECK(napi_create_int64(env, (int64_t)st.st_size, &value));
  CHECK(napi_set_named_property(env, result, "size", value));
  CHECK(napi_get_boolean(env, seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW), &value));
  CHECK(napi_set_named_property(env, result, "sealed", value));
  return result;
}

static void unmap_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

// mapShared(fd, size) -> an ArrayBuffer over a MAP_SHARED mapping of the
// file: what one thread stores there, another's mapping of the same memfd
// sees, and the memfd (kept by systemd's fd store) keeps it after this
// process is gone. Unmapped when the ArrayBuffer is collected.
static napi_value map_shared(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, size;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[1], &size))
    return NULL;
  if (size <= 0) {
    napi_throw_range_error(env, NULL, "size must be positive");
    return NULL;
  }
  void *data = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED)
    return throw_errno(env, errno, "mmap", NULL);
  napi_value result;
  if (napi_create_external_arraybuffer(env, data, (size_t)size, unmap_finalize,
                                       (void *)(uintptr_t)size, &result) != napi_ok) {
    munmap(data, (size_t)size);
    napi_throw_error(env, NULL, "cannot wrap the mapping in an ArrayBuffer");
    return NULL;
  }
  return result;
}

// openDirectory(path) -> an O_PATH descriptor of a directory. It keeps
// naming that directory after switch-root, when its path no longer resolves
// from the initrd's (emptied) root.
static napi_value open_directory(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[4096];
  size_t len;
  if (!get_args(env, info, 1, argv))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) !=
          napi_ok ||
      len == 0 || len >= sizeof(path) - 1) {
    napi_throw_type_error(env, NULL, "expected a directory path");
    return NULL;
  }
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return throw_errno(env, errno, "open", path);
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// ownerAt(dirFd, name) -> uid of the entry `name` in that directory (not
// following a symbolic link).
static napi_value owner_at(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t dir_fd;
  char name[256];
  size_t len;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &dir_fd))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof(name), &len) !=
          napi_ok ||
      len == 0 || len >= sizeof(name) - 1) {
    napi_throw_type_error(env, NULL, "expected a file name");
    return NULL;
  }
  struct stat st;
  if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return throw_errno(env, errno, "fstatat", name);
  napi_value result;
  CHECK(napi_create_uint32(env, st.st_uid, &result));
  return result;
}

// writeAll(fd, buffer, timeoutMs): writes every byte or throws.
static napi_value write_all(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, timeout_ms;
  void *data;
  size_t size;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[2], &timeout_ms))
    return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));

  int64_t deadline = now_ms() + timeout_ms;
  size_t done = 0;
  while (done < size) {
    ssize_t n = send(fd, (char *)data + done, size - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (size_t)n;
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN)
      return throw_errno(env, errno, "send", NULL);
    int ready = wait_fd(fd, POLLOUT, deadline);
    if (ready <= 0)
      return throw_errno(env, ready == 0 ? ETIMEDOUT : errno, "send", NULL);
  }
  return NULL;
}

// sendFd(socketFd, fdToSend, byte, timeoutMs): sends ONE byte carrying one
// descriptor with SCM_RIGHTS, exactly what GIO's g_unix_connection_send_fd()
// sends when byte is 0. A full socket buffer is waited out up to the timeout.
static napi_value send_fd(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t sock, passed, byte, timeout_ms;
  if (!get_args(env, info, 4, argv) || !get_int(env, argv[0], &sock) ||
      !get_int(env, argv[1], &passed) || !get_int(env, argv[2], &byte) ||
      !get_int(env, argv[3], &timeout_ms))
    return NULL;

  char data = (char)byte;
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.buf,
                       .msg_controllen = sizeof(control.buf)};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &passed, sizeof(int));

  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == 1)
      return NULL;
    if (n < 0 && errno == EINTR)
      continue;
    int err = n < 0 ? errno : EIO;
    if (err == EAGAIN) {
      int ready = wait_fd(sock, POLLOUT, deadline);
      if (ready > 0)
        continue;
      err = ready == 0 ? ETIMEDOUT : errno;
    }
    return throw_errno(env, err, "sendmsg", NULL);
  }
}

// receiveMessage(socketFd, maxBytes, timeoutMs) -> { data, fds, truncated,
// pid, uid, gid } or null at EOF. One recvmsg(2) of up to maxBytes, waiting
// up to the timeout for something to arrive. On a stream socket the kernel
// ends a read right after the first segment that carried descriptors, so the
// descriptors returned belong to the last segment of `data` (the handoff's
// records start each such segment with a NUL byte). Descriptors arrive
// close-on-exec; MSG_CTRUNC (more than fit, or EMFILE) sets `truncated`.
// With SO_PASSCRED set on the socket (setPassCredentials) the kernel also
// tells who sent the data: pid, uid and gid of the sending process, which the
// sender cannot forge without CAP_SYS_ADMIN (otherwise all three are -1).
static napi_value receive_message(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t sock, max_bytes, timeout_ms;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &sock) ||
      !get_int(env, argv[1], &max_bytes) || !get_int(env, argv[2], &timeout_ms))
    return NULL;
  if (max_bytes <= 0 || max_bytes > (1 << 20)) {
    napi_throw_range_error(env, NULL, "maxBytes out of range");
    return NULL;
  }
  char *data = malloc((size_t)max_bytes);
  if (data == NULL)
    return throw_errno(env, ENOMEM, "malloc", NULL);

  int64_t deadline = now_ms() + timeout_ms;
  struct iovec iov = {.iov_base = data, .iov_len = (size_t)max_bytes};
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_RECEIVED_FDS) +
             CMSG_SPACE(sizeof(struct ucred))];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  ssize_t n;
  for (;;) {
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0)
      break;
    if (errno == EINTR)
      continue;
    int err = errno;
    if (err == EAGAIN) {
      int ready = wait_fd(sock, POLLIN, deadline);
      if (ready > 0)
        continue;
      err = ready == 0 ? ETIMEDOUT : errno;
    }
    free(data);
    return throw_errno(env, err, "recvmsg", NULL);
  }

  napi_value result, fds, value;
  if (n == 0) {
    free(data);
    CHECK(napi_get_null(env, &result));
    return result;
  }
  CHECK(napi_create_object(env, &result));
  napi_status status = napi_create_buffer_copy(env, (size_t)n, data, NULL, &value);
  free(data);
  CHECK(status);
  CHECK(napi_set_named_property(env, result, "data", value));
  CHECK(napi_create_array(env, &fds));
  uint32_t count = 0;
  struct ucred cred = {.pid = -1, .uid = (uid_t)-1, .gid = (gid_t)-1};
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET)
      continue;
    if (cmsg->cmsg_type == SCM_CREDENTIALS &&
        cmsg->cmsg_len >= CMSG_LEN(sizeof(cred))) {
      memcpy(&cred, CMSG_DATA(cmsg), sizeof(cred));
      continue;
    }
    if (cmsg->cmsg_type != SCM_RIGHTS)
      continue;
    size_t nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfds; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      CHECK(napi_create_int32(env, fd, &value));
      CHECK(napi_set_element(env, fds, count++, value));
    }
  }
  CHECK(napi_set_named_property(env, result, "fds", fds));
  CHECK(napi_get_boolean(env, (msg.msg_flags & MSG_CTRUNC) != 0, &value));
  CHECK(napi_set_named_property(env, result, "truncated", value));
  CHECK(napi_create_int32(env, cred.pid, &value));
  CHECK(napi_set_named_property(env, result, "pid", value));
  CHECK(napi_create_int64(env, cred.uid == (uid_t)-1 ? -1 : (int64_t)cred.uid, &value));
  CHECK(napi_set_named_property(env, result, "uid", value));
  CHECK(napi_create_int64(env, cred.gid == (gid_t)-1 ? -1 : (int64_t)cred.gid, &value));
  CHECK(napi_set_named_property(env, result, "gid", value));
  return result;
}

// setPassCredentials(fd): SO_PASSCRED, so that receiveMessage() reports the
// sending process's credentials with every message.
static napi_value set_pass_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
    return throw_errno(env, errno, "setsockopt", "SO_PASSCRED");
  return NULL;
}

// trySendMessage(socketFd, data, fdToSend) -> bytes sent, 0 if the socket
// buffer is full (EAGAIN). Never blocks. With fdToSend >= 0 the descriptor
// rides on the first byte sent, so a record and its descriptor go out in one
// segment (the receiver reads them with one recvmsg).
static napi_value try_send_message(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t sock, passed;
  void *data;
  size_t size;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &sock) ||
      !get_int(env, argv[2], &passed))
    return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &size));
  if (size == 0) {
    napi_throw_range_error(env, NULL, "nothing to send");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = size};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (passed >= 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &passed, sizeof(int));
  }
  ssize_t n;
  do
    n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN)
    return throw_errno(env, errno, "sendmsg", NULL);
  napi_value result;
  CHECK(napi_create_int64(env, n < 0 ? 0 : (int64_t)n, &result));
  return result;
}

// pidfdOpen(pid) -> a pidfd: unlike the pid, it keeps naming that process,
// and it becomes readable as soon as the process has exited, zombie or not.
static napi_value pidfd_open_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pid;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &pid))
    return NULL;
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return throw_errno(env, errno, "pidfd_open", NULL);
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "fcntl", NULL);
  }
  napi_value result;
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// waitReadable(fd, timeoutMs) -> whether fd became readable (or hung up)
// within the timeout. For a pidfd: whether the process has exited.
static napi_value wait_readable(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, timeout_ms;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) ||
      !get_int(env, argv[1], &timeout_ms))
    return NULL;
  int ready = wait_fd(fd, POLLIN, now_ms() + timeout_ms);
  if (ready < 0)
    return throw_errno(env, errno, "poll", NULL);
  napi_value result;
  CHECK(napi_get_boolean(env, ready > 0, &result));
  return result;
}

// socketName(fd) -> the address a UNIX socket is bound to: its path, '@name'
// for the abstract namespace, '' when unbound.
static napi_value socket_name(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  struct sockaddr_un addr;
  socklen_t len = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
  if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
    return throw_errno(env, errno, "getsockname", NULL);
  if (addr.sun_family != AF_UNIX)
    return throw_errno(env, EAFNOSUPPORT, "getsockname", NULL);
  size_t path_len = len > offsetof(struct sockaddr_un, sun_path)
                        ? len - offsetof(struct sockaddr_un, sun_path)
                        : 0;
  char name[sizeof(addr.sun_path) + 1];
  if (path_len > 0 && addr.sun_path[0] == '\0') {
    name[0] = '@';
    memcpy(name + 1, addr.sun_path + 1, path_len - 1);
    name[path_len] = '\0';
  } else {
    memcpy(name, addr.sun_path, path_len);
    name[path_len] = '\0';
    path_len = strnlen(name, path_len);
  }
  napi_value result;
  CHECK(napi_create_string_latin1(env, name, path_len, &result));
  return result;
}

// peerCredentials(fd) -> { pid, uid, gid } of the process that connected.
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return throw_errno(env, errno, "getsockopt", "SO_PEERCRED");
  napi_value result, value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_int32(env, cred.pid, &value));
  CHECK(napi_set_named_property(env, result, "pid", value));
  CHECK(napi_create_uint32(env, cred.uid, &value));
  CHECK(napi_set_named_property(env, result, "uid", value));
  CHECK(napi_create_uint32(env, cred.gid, &value));
  CHECK(napi_set_named_property(env, result, "gid", value));
  return result;
}

// shutdownRead(fd): after this the peer's writes fail with EPIPE, while the
// bytes it wrote before stay readable. This is how the old process "stops
// reading" atomically: a request is either in its buffer (and answered) or
// refused at the client's send() (and safely retried elsewhere).
static napi_value shutdown_read(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  if (shutdown(fd, SHUT_RD) < 0 && errno != ENOTCONN)
    return throw_errno(env, errno, "shutdown", NULL);
  return NULL;
}

// dup(fd) -> a close-on-exec duplicate.
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    return throw_errno(env, errno, "dup", NULL);
  napi_value result;
  CHECK(napi_create_int32(env, copy, &result));
  return result;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  // Linux releases the descriptor even when close() reports EINTR: no retry.
  if (close(fd) < 0 && errno != EINTR)
    return throw_errno(env, errno, "close", NULL);
  return NULL;
}

// isListeningUnixStream(fd) -> true when fd is a listening AF_UNIX stream
// socket, the only thing a handoff may hand us to serve on.
static napi_value is_listening_unix_stream(napi_env env,
                                           napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof(int);
  int ok = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type,
                                          &len) == 0) &&
           (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN,
                                          &listening, &len) == 0);
  napi_value result;
  CHECK(napi_get_boolean(
      env, ok && domain == AF_UNIX && type == SOCK_STREAM && listening,
      &result));
  return result;
}

// isConnectedUnixStream(fd) -> true when fd is an AF_UNIX stream socket
// that is connected (not listening), the only thing a handoff may hand us as
// a client connection.
static napi_value is_connected_unix_stream(napi_env env,
                                           napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd))
    return NULL;
  int domain = 0, type = 0, listening = 1;
  socklen_t len = sizeof(int);
  struct sockaddr_un peer;
  socklen_t peer_len = sizeof(peer);
  int ok = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type,
                                          &len) == 0) &&
           (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN,
                                          &listening, &len) == 0) &&
           getpeername(fd, (struct sockaddr *)&peer, &peer_len) == 0;
  napi_value result;
  CHECK(napi_get_boolean(
      env, ok && domain == AF_UNIX && type == SOCK_STREAM && !listening,
      &result));
  return result;
}

// ignoreSignal(signo): sets the signal's disposition to SIG_IGN. Node 20
// starts its inspector (a debugger open on 127.0.0.1:9229) on SIGUSR1, from
// a handler of its own that a JavaScript listener does not replace.
static napi_value ignore_signal(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t signo;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &signo))
    return NULL;
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_IGN;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, NULL) < 0)
    return throw_errno(env, errno, "sigaction", NULL);
  return NULL;
}

// setTimerSlack(ns): the calling thread's timer slack (prctl), so that its
// futex/poll timeouts expire when asked rather than up to 50 us later.
static napi_value set_timer_slack(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t ns;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &ns))
    return NULL;
  if (prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0) < 0)
    return throw_errno(env, errno, "prctl", "PR_SET_TIMERSLACK");
  return NULL;
}

// Drops this process's page-table entries for the executable's read-only file
// pages (node's code and its embedded start-up snapshot), which start-up
// touched once and mostly never again; the pages stay in the page cache, and
// what is used later comes back as a minor fault. Only mappings with no
// private (anonymous, copy-on-write) page are touched: MADV_DONTNEED on those
// would throw modified pages away. Returns the kilobytes it unmapped.
static napi_value trim_executable_pages(napi_env env, napi_callback_info info) {
  (void)info;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    return throw_errno(env, errno, "readlink", "/proc/self/exe");
  exe[n] = '\0';
  FILE *smaps = fopen("/proc/self/smaps", "re");
  if (smaps == NULL)
    return throw_errno(env, errno, "fopen", "/proc/self/smaps");
  char line[4352];
  unsigned long start = 0, end = 0, rss = 0, trimmed = 0;
  int candidate = 0;
  while (fgets(line, sizeof line, smaps) != NULL) {
    unsigned long a, b;
    char perms[8];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3 && path_at > 0) {
      char *path = line + path_at;
      path[strcspn(path, "\n")] = '\0';
      start = a;
      end = b;
      rss = 0;
      candidate = strcmp(path, exe) == 0 && perms[1] != 'w' && perms[3] == 'p';
      continue;
    }
    unsigned long kb;
    if (candidate && sscanf(line, "Rss: %lu kB", &kb) == 1)
      rss = kb;
    if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
      candidate = 0;
      if (kb == 0 && rss > 0 && madvise((void *)start, end - start, MADV_DONTNEED) == 0)
        trimmed += rss;
    }
  }
  fclose(smaps);
  napi_value result;
  CHECK(napi_create_double(env, (double)trimmed, &result));
  return result;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } functions[] = {
      {"listenUnix", listen_unix},
      {"setBacklog", set_backlog},
      {"connectUnix", connect_unix},
      {"connectDatagram", connect_datagram},
      {"sendDatagram", send_datagram},
      {"sendDatagramWithFds", send_datagram_with_fds},
      {"notifyBarrier", notify_barrier},
      {"memfdCreate", memfd_create_fn},
      {"memfdInfo", memfd_info},
      {"mapShared", map_shared},
      {"openDirectory", open_directory},
      {"ownerAt", owner_at},
      {"writeAll", write_all},
      {"sendFd", send_fd},
      {"receiveMessage", receive_message},
      {"setPassCredentials", set_pass_credentials},
      {"trySendMessage", try_send_message},
      {"pidfdOpen", pidfd_open_fn},
      {"waitReadable", wait_readable},
      {"socketName", socket_name},
      {"peerCredentials", peer_credentials},
      {"shutdownRead", shutdown_read},
      {"dup", dup_fd},
      {"close", close_fd},
      {"isListeningUnixStream", is_listening_unix_stream},
      {"isConnectedUnixStream", is_connected_unix_stream},
      {"ignoreSignal", ignore_signal},
      {"setTimerSlack", set_timer_slack},
      {"trimExecutablePages", trim_executable_pages},
  };
  for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
    napi_value fn;
    if (napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH,
                             functions[i].fn, NULL, &fn) != napi_ok ||
        napi_set_named_property(env, exports, functions[i].name, fn) !=
            napi_ok)
      return NULL;
  }
  if (register_fast_path(env, exports) != 0)
    return NULL;
  return exports;
}
