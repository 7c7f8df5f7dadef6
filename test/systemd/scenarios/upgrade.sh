# An RPM upgrade and downgrade under load, in a container booted without the
# product: the older RPM installed with `rpm -i --nodeps` (its scriptlets
# create the user and apply the presets), the unit enabled and started as a
# package's would be; then, under the issue's load, `rpm -U --nodeps` to the
# newer RPM (the old package's %postun reloads the service: a handoff to a
# process of the new program) and `rpm -U --oldpackage --nodeps` back.
# After each step: the main PID, the installed version (`early-service -V`)
# and which install the running process was loaded from: the addon
# (early_service.node) it mapped at its start must be the installed file
# (same inode, not deleted: rpm replaces every file of a package with a new
# one). The host's test (test/systemd/upgrade.test.ts) asserts.
#   ES_RPMS   directory with old.rpm and new.rpm
set -u
. /usr/lib/es-systemd-test/lib.sh
u=$ES_UNIT
addon=/usr/lib/early-service/early_service.node

# program PID: the addon mapping of PID: its inode, the installed file's, and whether it was deleted.
program() {
  local line
  line=$(grep -m1 " $addon" "/proc/$1/maps")
  echo "mapped=$(echo "$line" | awk '{print $5}') installed=$(stat -c %i $addon) deleted=$(case "$line" in *'(deleted)'*) echo yes ;; *) echo no ;; esac)"
}
# after TAG: the facts of the state after a step
after() {
  local pid
  pid=$(es_prop $u MainPID)
  es_fact "$1_main_pid" "$pid"
  es_fact "$1_state" "$(es_prop $u ActiveState)/$(es_prop $u SubState)"
  es_fact "$1_package" "$(rpm -q early-service)"
  es_fact "$1_version" "$(early-service -V)"
  es_fact "$1_program" "$(program "$pid")"
  es_fact "$1_cmdline" "$(tr '\0' ' ' < "/proc/$pid/cmdline")"
}
# rpm_step TAG RPM-ARGS...: runs rpm under a timer; facts TAG_rc, TAG_ms; output in TAG.log
rpm_step() {
  local tag=$1 t0 rc=0; shift
  t0=$(es_ms)
  timeout 120 rpm "$@" > "$ES_RESULTS/$tag.log" 2>&1 || rc=$?
  es_fact "${tag}_rc" "$rc"
  es_fact "${tag}_ms" "$(($(es_ms) - t0))"
}

rpm_step install -i --nodeps "$ES_RPMS/old.rpm"
es_fact enabled_after_install "$(systemctl is-enabled $u 2>&1)"
# What the distribution's systemd file triggers do after a unit file is installed.
systemctl daemon-reload
systemctl is-enabled --quiet $u || systemctl enable $u
systemctl start $u
es_wait_state $u active 30 || exit 1
es_wait_answer 10 > /dev/null || exit 1
after installed
old_main=$(es_prop $u MainPID)

es_load_start
rpm_step upgrade -U --nodeps "$ES_RPMS/new.rpm"
after upgraded
es_fact installed_main_alive_after_upgrade "$([ -d "/proc/$old_main" ] && echo yes || echo no)"
sleep 1
upgraded_main=$(es_prop $u MainPID)
rpm_step downgrade -U --oldpackage --nodeps "$ES_RPMS/old.rpm"
after downgraded
es_fact upgraded_main_alive_after_downgrade "$([ -d "/proc/$upgraded_main" ] && echo yes || echo no)"
sleep 1
es_load_stop
es_finish $u
