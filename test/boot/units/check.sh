#!/bin/sh
# Boot test only (es-boot-check.service): collect the results, power off.
out=/var/lib/es-boot-test/results
rm -rf "$out"
mkdir -p "$out"
# Let the root file system's instance tick for a while after the boot.
sleep 2
props=Id,ActiveState,SubState,Result,MainPID,ExecMainPID,ExecMainCode,ExecMainStatus,ActiveEnterTimestampMonotonic,InactiveEnterTimestampMonotonic,StatusText
systemctl show -p "$props" early-service.service early-service-initrd.service es-boot-poller.service > "$out/units.txt" 2>&1
# The initrd instance's process, if it is still there (it should have exited
# after the handoff), and the poller's (which survived switch-root too).
for unit in early-service-initrd.service es-boot-poller.service early-service.service; do
  pid=$(systemctl show -p ExecMainPID --value "$unit")
  if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' < "/proc/$pid/cmdline" > "$out/cmdline-$unit-$pid.txt"
  fi
done
ls -la /run/early-service > "$out/socket-dir.txt" 2>&1
# Stopping the poller makes it write its final summary.
systemctl stop es-boot-poller.service
cp /run/es-boot-test/poller-summary.json "$out/" 2>> "$out/errors.txt"
journalctl -b -o short-monotonic --no-pager > "$out/journal.txt" 2>&1
journalctl -b -o json --no-pager \
  --output-fields=MESSAGE,MESSAGE_ID,PRIORITY,_PID,_COMM,_CMDLINE,_SYSTEMD_UNIT,UNIT,SYSLOG_IDENTIFIER,JOB_TYPE,JOB_RESULT,_TRANSPORT \
  > "$out/journal.json" 2>> "$out/errors.txt"
cat /proc/uptime > "$out/uptime.txt"
echo complete > "$out/complete"
sync
echo "es-boot-check: results in $out; powering off"
systemctl --no-block poweroff
