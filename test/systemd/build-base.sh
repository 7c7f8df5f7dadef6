#!/usr/bin/env bash
# The Debian root a container boots, built once and cached (as root):
#
#   build-base.sh --debian 12|13     prints the base directory on stdout
#
# debootstrap --variant=minbase with systemd, systemd-sysv, dbus and what the
# scenarios use (procps, python3-minimal for throwaway probes, rpm for the
# upgrade scenario), from the host's apt mirror. Cached as a plain directory
# (an overlay's lower layer) under $(es_cache_dir)/base-SUITE-KEY, keyed by a
# hash of the inputs: this recipe's version, the suite, the architecture, the
# mirror and the package list. Never modified after it is complete (runs
# write to their own upper layer or copy), so concurrent runs may share it.
#
#   ES_SYSTEMD_MIRROR=URI   the Debian mirror (default: the host's apt configuration)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# Bump when the recipe below changes in a way the key does not capture.
RECIPE_VERSION=1
PACKAGES=systemd,systemd-sysv,dbus,procps,python3-minimal,rpm

debian=
while [ $# -gt 0 ]; do
  case "$1" in
    --debian) debian=$2; shift 2 ;;
    *) echo "usage: $0 --debian 12|13" >&2; exit 2 ;;
  esac
done
[ -n "$debian" ] || { echo "usage: $0 --debian 12|13" >&2; exit 2; }
es_need_root
suite=$(es_debian_suite "$debian")
mirror=${ES_SYSTEMD_MIRROR:-$(es_host_mirror "$suite" | head -n1)}
[ -n "$mirror" ] || es_die "found no Debian mirror in /etc/apt/sources.list{,.d/*}; set ES_SYSTEMD_MIRROR"
cache=$(es_cache_dir)
key=$(printf '%s\n' "recipe=$RECIPE_VERSION" "suite=$suite" "arch=$(dpkg --print-architecture)" \
        "mirror=$mirror" "packages=$PACKAGES" | sha256sum | cut -c1-16)
base=$cache/base-$suite-$key
mkdir -p "$cache"
if [ -e "$base/.complete" ]; then
  printf '%s\n' "$base"
  exit 0
fi

# One builder per base; a second caller waits and then finds it complete.
exec 8> "$base.lock"
flock 8
if [ ! -e "$base/.complete" ]; then
  command -v debootstrap > /dev/null || es_ensure_host_tools
  tmp=$base.tmp
  rm -rf "$tmp"
  log=$cache/debootstrap-$suite-$key.log
  es_step "Debian $debian base: debootstrap $suite from $mirror (~1 minute, once)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$tmp" "$mirror" > "$log" 2>&1; then
    tail -n 30 "$log" >&2
    es_die "debootstrap failed (log: $log)"
  fi
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
  echo es-systemd-test > "$tmp/etc/hostname"
  # nspawn gives the console a getty; the harness reads the console only.
  chroot "$tmp" systemctl mask console-getty.service > /dev/null 2>&1
  # What the base is, for the reports.
  {
    echo "suite=$suite"
    echo "mirror=$mirror"
    echo "systemd=$(chroot "$tmp" dpkg-query -W -f='${Version}' systemd)"
    echo "built=$(date -u +%FT%TZ)"
  } > "$tmp/.es-base-info"
  touch "$tmp/.complete"
  mv "$tmp" "$base"
  es_step "Debian $debian base: $base ($(du -sh "$base" | cut -f1))"
fi
printf '%s\n' "$base"
