#!/usr/bin/python3
# A throwaway Type=notify service for the systemd facts in docs/SYSTEMD-FACTS.md
# (not the product): serves get_counter on a UNIX socket, ticks a counter kept
# in a memfd, stores the listening socket and the memfd in systemd's fd store,
# pings the watchdog, and on request hands its main PID to a successor.
# Python 3.11 minimal (Debian 12's python3-minimal has no json module).
#
#   probe-svc.py                 the main process (fresh, or from LISTEN_FDS)
#   probe-svc.py --successor     started by the main process (fds inherited)
#                                or by the reload command (it fetches them)
#
# Environment (the unit sets it):
#   PROBE_NAME      names the socket files /run/probe/NAME.{sock,control} (default: probe)
#   PROBE_FDSTORE   1: store the listener and the memfd (FDSTORE=1) when they are new
#   PROBE_SIGHUP    a reload variant run on SIGHUP (for Type=notify-reload)
#
# Control socket /run/probe/NAME.control, one line per connection:
#   reload VARIANT [HOW]        VARIANT:
#     barrier         successor; the old main sends MAINPID=<successor>, waits for BARRIER=1, exits 0
#     barrier-hold    as barrier, 500 ms between the successor's start and MAINPID=
#     nobarrier       successor; MAINPID=<successor> and exit at once (the race)
#     notify-reload   no successor; RELOADING=1 + MONOTONIC_USEC=, 300 ms, READY=1
#     notify-reload-late       RELOADING=1 + MONOTONIC_USEC=, the answer, 300 ms, READY=1
#     notify-reload-handover   RELOADING=1 + MONOTONIC_USEC=, then as barrier; the successor sends READY=1
#     fail            nothing happens; the reply is "fail"
#   HOW: "external": the successor is started by the reload command, which
#   connects with "handover" to get the fds; "main-orphans": the main process
#   starts it through a child that exits at once (a double fork: the
#   successor is PID 1's child before MAINPID=); otherwise ("main-forks") the
#   main process forks it (its own child until it exits).
#   Reply: "ok <successor pid>" / "ok" / "fail".
#
# SIGTERM: the process logs "sigterm", takes the milliseconds in
# /run/probe/NAME.stop-ms (default 0) to "stop", logs "stopped" and exits 0:
# whether "stopped" is logged shows whether systemd let it finish.
#
# Every step is appended to /es-results/events.log as
#   <CLOCK_MONOTONIC us> <NAME> pid=<pid> <event> key=value...
import array
import os
import select
import signal
import socket
import struct
import sys
import time

NAME = os.environ.get('PROBE_NAME', 'probe')
DIR = '/run/probe'
LISTEN_PATH = f'{DIR}/{NAME}.sock'
CONTROL_PATH = f'{DIR}/{NAME}.control'
HANG_FILE = f'{DIR}/{NAME}.hang'
STOP_MS_FILE = f'{DIR}/{NAME}.stop-ms'
EVENTS = '/es-results/events.log'
TICK_S = 0.01


def mono_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def event(name, **kv):
    fields = ' '.join(f'{k}={v}' for k, v in kv.items())
    with open(EVENTS, 'a') as f:
        f.write(f'{mono_us()} {NAME} pid={os.getpid()} {name} {fields}\n')


class Notifier:
    """sd_notify, with fds (SCM_RIGHTS) and BARRIER=1. Connected once at start."""

    def __init__(self):
        path = os.environ.get('NOTIFY_SOCKET')
        self.sock = None
        if path:
            if path.startswith('@'):
                path = '\0' + path[1:]
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.connect(path)

    def send(self, text, fds=()):
        if self.sock is None:
            return
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
        self.sock.sendmsg([text.encode()], anc)

    def barrier(self, timeout_s=5.0):
        """True when PID 1 processed everything sent before (it closed the pipe's write end)."""
        if self.sock is None:
            return False
        r, w = os.pipe()
        self.send('BARRIER=1', [w])
        os.close(w)
        p = select.poll()
        p.register(r, select.POLLHUP)
        ok = bool(p.poll(timeout_s * 1000))
        os.close(r)
        return ok


def on_sigterm(*_):
    """A stop that takes /run/probe/NAME.stop-ms milliseconds, then exit 0."""
    try:
        stop_ms = int(open(STOP_MS_FILE).read().strip() or '0')
    except (FileNotFoundError, ValueError):
        stop_ms = 0
    event('sigterm', ppid=os.getppid(), stop_ms=stop_ms)
    time.sleep(stop_ms / 1000)
    event('stopped', code=0)
    os._exit(0)


def listen_fds():
    """{name: fd} from LISTEN_FDS/LISTEN_FDNAMES when LISTEN_PID is us; and the raw values."""
    raw = {k: os.environ.get(k, '-') for k in ('LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID')}
    fds = {}
    if os.environ.get('LISTEN_PID') == str(os.getpid()):
        n = int(os.environ.get('LISTEN_FDS', '0'))
        names = os.environ.get('LISTEN_FDNAMES', '').split(':')
        for i in range(n):
            name = names[i] if i < len(names) else f'unknown{i}'
            os.set_inheritable(3 + i, False)
            fds[name] = 3 + i
    return fds, raw


def new_listener():
    try:
        os.unlink(LISTEN_PATH)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.bind(LISTEN_PATH)
    s.listen(128)
    return s


def read_counter(fd):
    data = os.pread(fd, 8, 0)
    return struct.unpack('<q', data)[0] if len(data) == 8 else 0


class Service:
    def __init__(self, notifier, listener, state_fd, role):
        self.n = notifier
        self.listener = listener
        self.state_fd = state_fd
        self.role = role
        self.counter = read_counter(state_fd)
        self.clients = {}
        self.control = None
        self.hup = False
        self.serving = True
        wd = os.environ.get('WATCHDOG_USEC')
        wd_pid = os.environ.get('WATCHDOG_PID')
        self.watchdog_s = int(wd) / 4e6 if wd and (not wd_pid or wd_pid == str(os.getpid())) else None
        if role == 'successor' and wd:
            # The successor inherited the old main's environment: ping at the same rate.
            self.watchdog_s = int(wd) / 4e6
        self.last_ping = 0.0

    def open_control(self):
        try:
            os.unlink(CONTROL_PATH)
        except FileNotFoundError:
            pass
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.control.bind(CONTROL_PATH)
        self.control.listen(8)

    def tick(self):
        self.counter += 1
        os.pwrite(self.state_fd, struct.pack('<q', self.counter), 0)

    def ping(self, now):
        if self.watchdog_s and now - self.last_ping >= self.watchdog_s:
            if os.path.exists(HANG_FILE):
                if self.last_ping >= 0:
                    event('watchdog-pings-stopped')
                    self.last_ping = -1.0
                return
            self.n.send('WATCHDOG=1')
            self.last_ping = now

    def serve_client(self, conn):
        try:
            data = conn.recv(256)
        except OSError:
            data = b''
        if not data:
            self.clients.pop(conn.fileno(), None)
            conn.close()
            return
        buf = self.clients.get(conn.fileno(), (conn, b''))[1] + data
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            if line == b'get_counter':
                reply = f'{self.counter}\n'
            elif line.startswith(b'set_counter '):
                reply = f'previous value {self.counter}\n'
                self.counter = int(line[12:])
            else:
                reply = 'Invalid command\n'
            try:
                conn.sendall(reply.encode())
            except OSError:
                pass
        self.clients[conn.fileno()] = (conn, buf)

    def run(self):
        next_tick = time.monotonic()
        while True:
            if self.hup:
                self.hup = False
                variant = os.environ.get('PROBE_SIGHUP', 'notify-reload')
                event('sighup', variant=variant)
                self.reload(variant, None, None)
            now = time.monotonic()
            while now >= next_tick:
                self.tick()
                next_tick += TICK_S
            self.ping(now)
            rlist = [self.control] if self.control else []
            if self.serving:
                rlist.append(self.listener)
                rlist += [c for c, _ in self.clients.values()]
            try:
                ready, _, _ = select.select(rlist, [], [], max(0.0, min(next_tick - time.monotonic(), 0.05)))
            except InterruptedError:
                continue
            for r in ready:
                if r is self.listener:
                    try:
                        conn, _ = self.listener.accept()
                        self.clients[conn.fileno()] = (conn, b'')
                    except BlockingIOError:
                        pass
                elif r is self.control:
                    conn, _ = self.control.accept()
                    line = conn.recv(256).decode().split()
                    if line and line[0] == 'reload':
                        self.reload(line[1], conn, line[2] if len(line) > 2 else None)
                    conn.close()
                else:
                    self.serve_client(r)

    def reload(self, variant, reply, how):
        def answer(text):
            if reply is not None:
                reply.sendall(text.encode() + b'\n')
        event('reload-requested', variant=variant, how=how or 'main-forks')
        if variant == 'fail':
            answer('fail')
            return
        if variant == 'notify-reload':
            self.n.send(f'RELOADING=1\nMONOTONIC_USEC={mono_us()}\nSTATUS=reloading')
            event('sent', what='RELOADING=1+MONOTONIC_USEC')
            time.sleep(0.3)
            self.n.send(f'READY=1\nSTATUS=reloaded counter {self.counter}')
            event('sent', what='READY=1')
            answer('ok')
            return
        if variant == 'notify-reload-late':
            # ExecReload gets its answer first; READY=1 comes 300 ms later.
            self.n.send(f'RELOADING=1\nMONOTONIC_USEC={mono_us()}\nSTATUS=reloading')
            event('sent', what='RELOADING=1+MONOTONIC_USEC')
            answer('ok')
            time.sleep(0.3)
            self.n.send(f'READY=1\nSTATUS=reloaded late counter {self.counter}')
            event('sent', what='READY=1')
            return
        if variant == 'notify-reload-handover':
            self.n.send(f'RELOADING=1\nMONOTONIC_USEC={mono_us()}\nSTATUS=reloading')
            event('sent', what='RELOADING=1+MONOTONIC_USEC')
        # Stop serving and ticking: the successor takes over from the memfd.
        self.serving = False
        if how == 'external':
            conn, _ = self.control.accept()
            assert conn.recv(64).startswith(b'handover')
            socket.send_fds(conn, [f'fds {os.getpid()} {os.environ.get("NOTIFY_SOCKET", "-")} {os.environ.get("WATCHDOG_USEC", "-")}\n'.encode()], [self.listener.fileno(), self.state_fd])
            link = conn
            succ_pid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
        else:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            succ_pid = spawn_successor(self.listener.fileno(), self.state_fd, b.fileno(), orphan=how == 'main-orphans')
            b.close()
            link = a
        event('successor-started', successor=succ_pid)
        ready = link.recv(64)
        event('successor-ready', successor=succ_pid, said=ready.decode().strip() or 'EOF')
        if variant == 'barrier-hold':
            # A window in which only the successor's pre-switch messages arrive;
            # the watchdog still counts from this process's last ping.
            for _ in range(5):
                self.n.send('WATCHDOG=1')
                time.sleep(0.1)
        self.n.send(f'MAINPID={succ_pid}')
        event('sent', what=f'MAINPID={succ_pid}')
        if variant in ('barrier', 'barrier-hold', 'notify-reload-handover'):
            t0 = mono_us()
            ok = self.n.barrier()
            event('barrier', ok=ok, us=mono_us() - t0)
        answer(f'ok {succ_pid}')
        event('exiting', code=0)
        link.close()
        os._exit(0)


def spawn_successor(listener_fd, state_fd, link_fd, orphan=False):
    """Forks the successor; with orphan, through a child that exits at once (the successor's parent is then PID 1)."""
    old_main = os.getpid()
    if orphan:
        r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if orphan:
            os.close(r)
            grandchild = os.fork()
            if grandchild != 0:
                os.write(w, f'{grandchild}\n'.encode())
                os._exit(0)
            os.close(w)
        for fd in (listener_fd, state_fd, link_fd):
            os.set_inheritable(fd, True)
        env = dict(os.environ, PROBE_FDS=f'{listener_fd},{state_fd},{link_fd}', PROBE_OLD_MAIN=str(old_main))
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), '--successor'], env)
    if orphan:
        os.close(w)
        os.waitpid(pid, 0)
        pid = int(os.read(r, 32).decode())
        os.close(r)
    return pid


def main_process():
    n = Notifier()
    fds, raw = listen_fds()
    event('start', role='main', **raw, names=','.join(sorted(fds)) or '-')
    listener = socket.socket(fileno=fds['listener']) if 'listener' in fds else None
    state_fd = fds.get('state')
    if state_fd is not None:
        event('state', source='store', counter=read_counter(state_fd))
    else:
        state_fd = os.memfd_create('probe-state', os.MFD_CLOEXEC)
        os.pwrite(state_fd, struct.pack('<q', 0), 0)
        event('state', source='new', counter=0)
    if listener is None:
        listener = new_listener()
        event('listener', source='new')
    else:
        event('listener', source='store')
    listener.setblocking(False)
    if os.environ.get('PROBE_FDSTORE') == '1':
        if 'listener' not in fds:
            n.send('FDSTORE=1\nFDNAME=listener', [listener.fileno()])
        if 'state' not in fds:
            n.send('FDSTORE=1\nFDNAME=state\nFDPOLL=0', [state_fd])
    svc = Service(n, listener, state_fd, 'main')
    svc.open_control()
    signal.signal(signal.SIGHUP, lambda *_: setattr(svc, 'hup', True))
    n.send(f'READY=1\nSTATUS=main serving counter {svc.counter}')
    event('ready', counter=svc.counter)
    svc.run()


def process_alive(pid):
    """Alive and not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except (FileNotFoundError, ProcessLookupError):
        return False


def successor_process():
    if 'PROBE_FDS' in os.environ:
        listener_fd, state_fd, link_fd = (int(x) for x in os.environ['PROBE_FDS'].split(','))
        link = socket.socket(fileno=link_fd)
        old_main = int(os.environ['PROBE_OLD_MAIN'])
        how = 'forked-by-main'
        notify_from = 'env'
    else:
        link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        link.connect(CONTROL_PATH)
        link.sendall(b'handover\n')
        msg, (listener_fd, state_fd), _, _ = socket.recv_fds(link, 4096, 2)
        _, old_main, notify_socket, watchdog_usec = msg.decode().split()
        old_main = int(old_main)
        how = 'started-by-reload-command'
        # A control process (ExecReload=) gets neither NOTIFY_SOCKET (with
        # NotifyAccess=main) nor WATCHDOG_USEC: take the old main's.
        notify_from = 'env' if 'NOTIFY_SOCKET' in os.environ else 'old-main'
        os.environ.setdefault('NOTIFY_SOCKET', notify_socket)
        if watchdog_usec != '-':
            os.environ.setdefault('WATCHDOG_USEC', watchdog_usec)
    n = Notifier()
    event('start', role='successor', how=how, old_main=old_main, ppid=os.getppid(), notify_socket_from=notify_from)
    # Before the switch: with NotifyAccess=main these should be refused (logged by PID 1).
    n.send('STATUS=successor before the switch\nWATCHDOG=1')
    event('sent', what='STATUS+WATCHDOG before the switch')
    link.sendall(b'ready\n')
    link.recv(64)  # EOF: the old main is about to exit
    while process_alive(old_main):
        time.sleep(0.001)
    event('old-main-gone', ppid=os.getppid())
    listener = socket.socket(fileno=listener_fd)
    listener.setblocking(False)
    svc = Service(n, listener, state_fd, 'successor')
    svc.open_control()
    signal.signal(signal.SIGHUP, lambda *_: setattr(svc, 'hup', True))
    n.send(f'READY=1\nSTATUS=successor serving counter {svc.counter}')
    event('ready', counter=svc.counter)
    svc.run()


if __name__ == '__main__':
    os.makedirs(DIR, exist_ok=True)
    signal.signal(signal.SIGTERM, on_sigterm)
    if sys.argv[1:] == ['--successor']:
        successor_process()
    else:
        main_process()
