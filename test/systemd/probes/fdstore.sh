# Fact 3: what the fd store (a listening AF_UNIX socket "listener" and a memfd
# "state") gives back after each kind of restart, and whether clients
# connecting every 2 ms during the gap are refused.
set -u
. /usr/lib/es-systemd-test/lib.sh
. /usr/lib/es-systemd-test/probes/probe-lib.sh

# after TAG NAME: the new process's LISTEN_* and where its state came from
after() {
  es_fact "$1_start" "$(last_event "$2" start | cut -d' ' -f4-)"
  es_fact "$1_state" "$(last_event "$2" state | cut -d' ' -f5-)"
  es_fact "$1_unit" "$(state "$3")"
}
kill_main() { local m; m=$(prop "$1" MainPID); [ "$m" -gt 1 ] && kill -KILL "$m"; wait_main_change "$1" "$m" 10; }
hang_main() {
  local m; m=$(prop "$1" MainPID)
  touch "/run/probe/$2.hang"
  wait_main_change "$1" "$m" 15
  rm -f "/run/probe/$2.hang"
}
stop_start() { systemctl stop "$1"; sleep 0.5; systemctl start "$1"; }

# FileDescriptorStorePreserve=yes keeps the store only while the unit stays
# loaded: an inactive unit nothing references is garbage-collected, and its
# store with it ("Releasing all stored fds"). A package's enabled unit is
# referenced (WantedBy=); here multi-user.target gets a Wants= on it.
systemctl add-wants multi-user.target probe-preserve.service
for u in probe.service probe-preserve.service; do
  name=$( [ $u = probe.service ] && echo probe || echo preserve )
  t=$name
  systemctl start $u
  es_wait_answer 10 /run/probe/$name.sock > /dev/null
  after ${t}_fresh $name $u
  transition_load $name ${t}_sigkill kill_main $u;            after ${t}_sigkill $name $u
  transition_load $name ${t}_watchdog hang_main $u $name;     after ${t}_watchdog $name $u
  es_fact ${t}_watchdog_journal "$(journalctl -b -u $u -o cat --no-pager | grep -E 'Watchdog timeout|SIGABRT' | tail -n2 | tr '\n' '|')"
  transition_load $name ${t}_restart systemctl restart $u;   after ${t}_restart $name $u
  transition_load $name ${t}_stopstart stop_start $u;        after ${t}_stopstart $name $u
  # reload (MAINPID= to a successor, BARRIER=1), then the successor is SIGKILLed
  variant $name barrier
  transition_load $name ${t}_reload systemctl reload $u
  es_fact ${t}_reload_unit "$(state $u)"
  transition_load $name ${t}_reload_then_sigkill kill_main $u; after ${t}_reload_then_sigkill $name $u
  es_fact ${t}_fdstore_props "$(systemctl show -p FileDescriptorStoreMax,FileDescriptorStorePreserve,NFileDescriptorStore $u | tr '\n' ' ')"
  systemctl stop $u
done

# The same stop + start with the preserving unit referenced by nothing.
rm /etc/systemd/system/multi-user.target.wants/probe-preserve.service
systemctl daemon-reload
systemctl start probe-preserve.service
es_wait_answer 10 /run/probe/preserve.sock > /dev/null
systemd-analyze log-level debug
transition_load preserve unreferenced_stopstart stop_start probe-preserve.service
systemd-analyze log-level info
after unreferenced_stopstart preserve probe-preserve.service
es_fact unreferenced_journal "$(journalctl -b -u probe-preserve.service -o cat --no-pager | grep -E 'Releasing|Collecting' | sort | uniq -c | tr '\n' '|')"
systemctl stop probe-preserve.service
