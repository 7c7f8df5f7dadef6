#!/usr/bin/env bash
# One container run (as root): a disposable copy of the cached Debian base,
# the product installed as a package would install it, a scenario run by a
# unit after boot, its results in a directory of the host, power-off.
#
#   boot.sh --debian 12|13 --out DIR [options]
#
#   --scenario NAME|PATH   test/systemd/scenarios/NAME.sh, or a script path (default: scenarios/smoke.sh)
#   --timeout SEC          hard limit for the whole boot (default 120); the container is killed after it
#   --no-product           do not install early-service (throwaway probes)
#   --no-enable            install early-service but do not enable early-service.service
#   --dropin UNIT:FILE     install FILE as /etc/systemd/system/UNIT.d/<basename of FILE>
#   --unit FILE            install FILE as /etc/systemd/system/<basename> (enable it with --enable)
#   --enable UNIT          systemctl enable UNIT (after the units are installed)
#   --file SRC:DEST        copy SRC to DEST in the container (directories recursively)
#   --c-program FILE.c     compile statically, install as /usr/lib/es-systemd-test/<name> (the probe/ ones always are)
#   --env NAME=VALUE       exported to the scenario
#   --keep                 keep the run's root (DIR/upper) for debugging
#
# DIR/results/ (bind-mounted at /es-results in the container) receives what
# the scenario writes plus scenario.rc, scenario.log, journal.txt, units.txt,
# info.txt (see in-container/run-scenario); DIR/console.log is the console;
# DIR/prepare.log the preparation. Exit status: the scenario's; 124 when the
# boot hit --timeout (container killed); 125 when the harness failed.
#
#   ES_SYSTEMD_ROOT_MODE=overlay|copy   how the disposable root is made (default overlay: see README)
#   ES_SYSTEMD_CGROUP=unified|legacy    the container's cgroup hierarchy (default unified, as Debian 12
#                                       and 13 boot; legacy: what nspawn picks on this hybrid host)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
unset NODE_EXTRA_CA_CERTS

debian= out= scenario=smoke timeout_s=120 product=1 enable=1 keep=0
dropins=() units=() enables=() files=() cprogs=() envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debian) debian=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --no-product) product=0; shift ;;
    --no-enable) enable=0; shift ;;
    --dropin) dropins+=("$2"); shift 2 ;;
    --unit) units+=("$2"); shift 2 ;;
    --enable) enables+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --c-program) cprogs+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "boot.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$debian" ] && [ -n "$out" ] || { echo "usage: boot.sh --debian 12|13 --out DIR [options]" >&2; exit 2; }
case "$scenario" in */*) scenario_file=$scenario ;; *) scenario_file=$here/scenarios/$scenario.sh ;; esac
[ -f "$scenario_file" ] || es_die "no scenario $scenario_file"
es_need_root
es_ensure_host_tools
if [ "$product" = 1 ] && [ ! -e "$top/dist/bundle/early-service.js" ]; then
  es_die "no dist/bundle: run 'npm run build' first (or pass --no-product)"
fi

base=$(bash "$here/build-base.sh" --debian "$debian")
cache=$(es_cache_dir)

# The host's node (Debian 12's nodejs is too old), as a layer of its own
# shared by both bases: keyed by the binary's identity, copied once.
node_bin=$(readlink -f "$(command -v node)")
node_key=$(stat -c '%n %s %Y' "$node_bin" | sha256sum | cut -c1-16)
node_layer=$cache/node-$node_key
if [ ! -e "$node_layer/.complete" ]; then
  rm -rf "$node_layer.tmp"
  install -D -m 0755 "$node_bin" "$node_layer.tmp/usr/bin/node"
  touch "$node_layer.tmp/.complete"
  mv -T "$node_layer.tmp" "$node_layer" 2> /dev/null || rm -rf "$node_layer.tmp"
fi

# The in-container programs, static, cached by a hash of their sources.
programs=("$here"/probe/*.c "${cprogs[@]}")
bin_key=$( (cat "${programs[@]}"; gcc --version | head -n1) | sha256sum | cut -c1-16)
bin_dir=$cache/bin-$bin_key
if [ ! -e "$bin_dir/.complete" ]; then
  rm -rf "$bin_dir.tmp"
  mkdir -p "$bin_dir.tmp"
  for c in "${programs[@]}"; do
    gcc -static -O2 -Wall -Wextra -Werror -o "$bin_dir.tmp/$(basename "$c" .c)" "$c" || es_die "cannot compile $c"
  done
  touch "$bin_dir.tmp/.complete"
  mv -T "$bin_dir.tmp" "$bin_dir" 2> /dev/null || rm -rf "$bin_dir.tmp"
fi

mode=${ES_SYSTEMD_ROOT_MODE:-overlay}
t_prep=$(date +%s%N)
rm -rf "${out:?}/upper" "$out/work" "$out/root" "$out/results" "$out/console.log" "$out/prepare.log"
mkdir -p "$out/results" "$out/root"
out=$(cd "$out" && pwd)
root=$out/root
case "$mode" in
  overlay)
    mkdir -p "$out/upper" "$out/work"
    # The node layer above the base; the run's writes go to DIR/upper.
    mount_root="mount -t overlay overlay -o lowerdir=$node_layer:$base,upperdir=$out/upper,workdir=$out/work $root"
    ;;
  copy)
    mkdir -p "$out/upper"
    cp -a "$base/." "$out/upper/"
    cp -a "$node_layer/usr/bin/node" "$out/upper/usr/bin/node"
    mount_root="mount --bind $out/upper $root"
    ;;
  *) es_die "ES_SYSTEMD_ROOT_MODE must be overlay or copy" ;;
esac

# --- preparation, in a mount namespace of its own (the overlay vanishes with it)
{
  echo "ES_SCENARIO_NAME=$(basename "$scenario_file" .sh)"
  echo "ES_SCENARIO_TIMEOUT=$((timeout_s > 30 ? timeout_s - 15 : timeout_s * 2 / 3))"
  echo "ES_DEBIAN=$debian"
  for e in "${envs[@]}"; do printf '%s=%q\n' "${e%%=*}" "${e#*=}"; done
} > "$out/scenario.env"
prepare() {
  set -euo pipefail
  $mount_root
  local lib=$root/usr/lib/es-systemd-test
  if [ "$product" = 1 ]; then
    sh "$top/scripts/install.sh" --destdir "$root"
    # What a package's scriptlets do: create the user, enable the unit.
    chroot "$root" systemd-sysusers
    [ "$enable" = 0 ] || chroot "$root" systemctl enable early-service.service
  fi
  install -d "$lib" "$root/es-results" "$root/etc/systemd/system"
  install -m 0755 "$here/in-container/run-scenario" "$lib/"
  install -m 0644 "$out/scenario.env" "$lib/scenario.env"
  install -m 0644 "$scenario_file" "$lib/scenario.sh"
  install -m 0644 "$here/scenarios/lib.sh" "$lib/lib.sh"
  install -m 0755 "$bin_dir"/* "$lib/" 2> /dev/null || true
  rm -f "$lib/.complete"
  install -m 0644 "$here/in-container/es-scenario.service" "$root/etc/systemd/system/"
  chroot "$root" systemctl enable es-scenario.service
  local spec unit file
  for spec in "${dropins[@]}"; do
    unit=${spec%%:*} file=${spec#*:}
    install -D -m 0644 "$file" "$root/etc/systemd/system/$unit.d/$(basename "$file")"
  done
  for file in "${units[@]}"; do install -m 0644 "$file" "$root/etc/systemd/system/"; done
  for unit in "${enables[@]}"; do chroot "$root" systemctl enable "$unit"; done
  for spec in "${files[@]}"; do
    mkdir -p "$(dirname "$root/${spec#*:}")"
    cp -a "${spec%%:*}" "$root/${spec#*:}"
  done
}
# The function and the arrays, declared again in the namespace's shell.
if ! unshare -m --propagation private bash -c "$(declare -p root top here product enable scenario_file out \
      bin_dir mount_root dropins units enables files); $(declare -f prepare); prepare" > "$out/prepare.log" 2>&1; then
  tail -n 20 "$out/prepare.log" >&2
  es_die "preparing the root failed (log: $out/prepare.log)"
fi
prep_ms=$((($(date +%s%N) - t_prep) / 1000000))

# --- the boot, with a hard timeout --------------------------------------------
# A private mount namespace with a tmpfs on /run/systemd/nspawn (this host's
# /run is no tmpfs), --register=no --keep-unit (no systemd/machined on the
# host), a pseudo-terminal for the console (script; with a pipe the boot
# prints nothing), only a loopback network.
nspawn="$mount_root && mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn -q --register=no --keep-unit \
  --private-network --machine=es-systemd-test -D $root --bind=$out/results:/es-results -b"
case "${ES_SYSTEMD_CGROUP:-unified}" in
  unified) export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 ;;
  legacy) unset SYSTEMD_NSPAWN_UNIFIED_HIERARCHY ;;
  *) es_die "ES_SYSTEMD_CGROUP must be unified or legacy" ;;
esac
t_boot=$(date +%s%N)
setsid script -qfec "unshare -m --propagation private sh -c '$nspawn'" "$out/console.log" < /dev/null > /dev/null 2>&1 &
boot_pid=$!

# All descendants of a pid (the container's processes are among them: their
# PID 1 is nspawn's child).
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END { n = 1; list[1] = root
          for (i = 1; i <= n; i++) for (p in parent) if (parent[p] == list[i]) list[++n] = p
          for (i = 2; i <= n; i++) print list[i] }'
}
kill_everything() {
  local pids round
  for round in 1 2 3; do
    pids=$(descendants "$boot_pid")
    kill -KILL -- -"$boot_pid" 2> /dev/null || true
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -KILL $pids 2> /dev/null || true
    sleep 0.2
  done
}
# The watchdog: its sleep is killed with it (a leftover sleep would hold the
# caller's pipes open until the timeout).
(
  trap 'kill "$sleep_pid" 2> /dev/null; exit 0' TERM
  sleep "$timeout_s" & sleep_pid=$!
  wait "$sleep_pid" || exit 0
  touch "$out/.timed-out"
  kill -TERM "$$" 2> /dev/null || true
) < /dev/null > /dev/null 2>&1 &
watchdog_pid=$!
timed_out=0
trap 'timed_out=1' TERM
trap 'kill_everything; kill "$watchdog_pid" 2> /dev/null || true' EXIT
wait "$boot_pid" 2> /dev/null || true
if [ -e "$out/.timed-out" ] || [ "$timed_out" = 1 ]; then
  timed_out=1
  kill_everything
  wait "$boot_pid" 2> /dev/null || true
fi
kill "$watchdog_pid" 2> /dev/null || true
wait "$watchdog_pid" 2> /dev/null || true
boot_ms=$((($(date +%s%N) - t_boot) / 1000000))
trap - EXIT TERM
rm -f "$out/.timed-out"
[ "$keep" = 1 ] || rm -rf "$out/upper" "$out/work"

info="prepare ${prep_ms} ms, boot+scenario+poweroff ${boot_ms} ms"
echo "prepare_ms=$prep_ms" > "$out/timings.env"
echo "boot_ms=$boot_ms" >> "$out/timings.env"
if [ "$timed_out" = 1 ]; then
  es_step "Debian $debian: no power-off within ${timeout_s}s: container killed ($info); console: $out/console.log"
  tail -n 15 "$out/console.log" | sed 's/^/    | /' >&2
  exit 124
fi
if [ ! -s "$out/results/scenario.rc" ]; then
  es_step "Debian $debian: the container ended without a scenario result ($info); console: $out/console.log"
  tail -n 15 "$out/console.log" | sed 's/^/    | /' >&2
  exit 125
fi
rc=$(cat "$out/results/scenario.rc")
es_step "Debian $debian: scenario $(basename "$scenario_file" .sh) exited $rc ($info)"
exit "$rc"
