#!/usr/bin/python3
# ExecReload= of the probe units (test/systemd/probes/probe-svc.py): asks the
# main process for a reload and WAITS for its outcome; exit 0 on "ok", 1 on
# "fail", 2 when the main process ended the connection without an answer.
#
#   probe-reload.py NAME [VARIANT] [HOW]
#
# VARIANT defaults to the contents of /run/probe/NAME.variant (or "barrier"),
# so a scenario can change it without a daemon-reload. HOW (also read from
# /run/probe/NAME.how; default main-forks): "external": this command starts
# the successor itself (in the reload's process tree); "main-forks", or
# "main-orphans": the main process starts it (probe-svc.py).
import os
import socket
import subprocess
import sys
import time

name = sys.argv[1]
def setting(index, file, default):
    if len(sys.argv) > index:
        return sys.argv[index]
    try:
        return open(f'/run/probe/{name}.{file}').read().strip() or default
    except FileNotFoundError:
        return default
variant = setting(2, 'variant', 'barrier')
how = setting(3, 'how', 'main-forks')
with open('/es-results/events.log', 'a') as f:
    f.write(f'{time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000} {name} pid={os.getpid()} reload-command variant={variant} how={how} notify_socket_in_env={"NOTIFY_SOCKET" in os.environ} watchdog_usec_in_env={"WATCHDOG_USEC" in os.environ}\n')
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(f'/run/probe/{name}.control')
s.sendall(f'reload {variant} {how}\n'.encode())
if how == 'external':
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.Popen([sys.executable, f'{here}/probe-svc.py', '--successor'], env=dict(os.environ, PROBE_NAME=name))
reply = s.recv(256).decode().strip()
print(f'probe-reload: {variant} ({how}): {reply or "no answer"}')
sys.exit(0 if reply.startswith('ok') else 1 if reply == 'fail' else 2)
