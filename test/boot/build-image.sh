#!/usr/bin/env bash
# Builds what the boot test boots (test/boot/run.sh calls it; as root):
#
#   OUT/vmlinuz             the Debian release's kernel, from the image
#   OUT/initrd.img          dracut's initrd with the early-service module (and
#                           the test's poller and measurement modules)
#   OUT/initrd-control.img  the same initrd with a drop-in appended that takes
#                           the '@' away from the initrd instance (the negative
#                           control); from Debian 13 on, a second one also sets
#                           SurviveFinalKillSignal=no
#   OUT/initrd-survive.img  Debian 13 on only: the same initrd with only the
#                           first drop-in (no '@'), so SurviveFinalKillSignal=yes
#                           (the product's drop-in) alone must keep it alive
#   OUT/initrd-none.img     the same dracut modules without early-service (and
#                           without the poller): the boot's baseline
#   OUT/initrd-c.img        the same with the C reference (test/reference/)
#                           instead of early-service
#   OUT/disk.img            the root file system: ext4, made with mkfs.ext4 -d
#                           (no loop mounts), early-service installed and enabled
#   OUT/image.env           the initrds' sizes (compressed and not), versions
#
# All three initrds carry the measurement module (99es-boot-measure: marks in
# the kernel log when sysinit.target is reached and when the service first
# answers), so they differ only by the service.
#
# The Debian base (debootstrap) is the slow part: it is cached as a tarball
# under the system's temp dir, keyed by a hash of its inputs (this recipe's
# version, the package list, the mirror). Everything else is redone each run.
#
# usage: build-image.sh [--out DIR] [--node PATH]
#   ES_BOOT_SUITE=S     the Debian suite: bookworm (Debian 12, systemd 252; the
#                       default) or trixie (Debian 13, systemd 257)
#   ES_BOOT_CACHE=DIR   where the base tarball lives (default $TMPDIR/early-service-boot-test)
#   ES_BOOT_MIRROR=URI  the Debian mirror (default: the host's apt configuration)
set -euo pipefail
export LC_ALL=C

# Bump when the base recipe below changes in a way the key does not capture.
RECIPE_VERSION=1
SUITE=${ES_BOOT_SUITE:-bookworm}
# SURVIVE_KEY: whether the suite's systemd knows SurviveFinalKillSignal= (255+).
case "$SUITE" in
  bookworm) RELEASE="Debian 12"; SURVIVE_KEY=no ;;
  trixie) RELEASE="Debian 13"; SURVIVE_KEY=yes ;;
  *) echo "build-image: ES_BOOT_SUITE=$SUITE: expected bookworm or trixie" >&2; exit 2 ;;
esac
# debootstrap --variant=minbase plus these. zstd: dracut's --compress in the chroot;
# binutils: strip, for dracut and for the early-service module's stripped node.
BASE_PACKAGES=systemd,systemd-sysv,udev,kmod,dracut,procps,libstdc++6,zstd,binutils
# Installed afterwards with the image's apt: debootstrap would resolve the
# kernel's "initramfs-tools | linux-initramfs-tool" to initramfs-tools, which
# conflicts with dracut; apt sees that dracut provides the second.
KERNEL_PACKAGES=linux-image-amd64
# The initrd: a minimal module set, built by the image's own dracut.
DRACUT_MODULES="systemd systemd-initrd dracut-systemd udev-rules rootfs-block fs-lib base"
DRACUT_DRIVERS="virtio_pci virtio_blk ext4"
DRACUT_COMPRESS="zstd -q -3 -T0"
DISK_SIZE=2G

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=${TMPDIR:-/tmp}
cache=${ES_BOOT_CACHE:-$tmp/early-service-boot-test}
out=$cache/run
node_bin=$(command -v node || true)

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --node) node_bin=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--node PATH]" >&2; exit 2 ;;
  esac
done

# It adds ~80 ms to every node start, and warns about a file it cannot load.
unset NODE_EXTRA_CA_CERTS
start=$SECONDS
step() { printf '[image %4ds] %s\n' $((SECONDS - start)) "$*"; }
die() { echo "build-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, device nodes)"
[ -e "$top/dist/bundle/early-service.js" ] || die "no dist/bundle: run 'npm run build' first"
{ [ -n "$node_bin" ] && [ -x "$node_bin" ]; } || die "no node binary to put into the image"
node_bin=$(readlink -f "$node_bin")
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "$node_bin is Node.js $node_major; the image needs >= 20"

# --- host tools -------------------------------------------------------------
need=()
for pair in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap mkfs.ext4:e2fsprogs \
            debugfs:e2fsprogs e2fsck:e2fsprogs zstd:zstd cpio:cpio gcc:gcc; do
  command -v "${pair%%:*}" > /dev/null || need+=("${pair#*:}")
done
# With -kernel, QEMU still runs the BIOS (SeaBIOS).
[ -e /usr/share/seabios/bios-256k.bin ] || need+=(seabios)
# The poller is linked statically (it must run from the emptied initrd).
case "$(gcc -print-file-name=libc.a 2> /dev/null)" in */*) ;; *) need+=(libc6-dev) ;; esac
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi

# --- the mirror: the host's apt configuration ---------------------------------
# The first 'deb' source for $SUITE, else the first for any main suite (one
# without a '-': not -updates or -security), from deb822 .sources files and
# one-line .list files alike.
host_mirror() {
  local files=() f
  for f in /etc/apt/sources.list.d/*.sources; do [ -e "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && uri != "") {
          if (!best && (" " suites " ") ~ (" " suite " ")) best = uri
          n = split(suites, s, /[ \t]+/)
          for (i = 1; i <= n; i++) if (!anymain && s[i] != "" && s[i] !~ /-/) anymain = uri
        }
        types = ""; suites = ""; uri = ""; enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush(); if (best) print best; else if (anymain) print anymain }
    ' "${files[@]}" | head -n1
  fi
  files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -e "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\3 \2/p' "${files[@]}" |
      awk -v suite="$SUITE" '$1 == suite && !best { best = $2 } $1 !~ /-/ && !anymain { anymain = $2 }
                             END { if (best) print best; else if (anymain) print anymain }'
  fi
}
mirror=${ES_BOOT_MIRROR:-$(host_mirror | head -n1)}
[ -n "$mirror" ] || die "found no Debian mirror in /etc/apt/sources.list{,.d/*}; set ES_BOOT_MIRROR"

# --- the base root file system (cached) --------------------------------------
arch=$(dpkg --print-architecture)
key=$(printf '%s\n' "recipe=$RECIPE_VERSION" "suite=$SUITE" "arch=$arch" "mirror=$mirror" \
        "packages=$BASE_PACKAGES" "kernel=$KERNEL_PACKAGES" "modules=$DRACUT_MODULES" "drivers=$DRACUT_DRIVERS" \
        "compress=$DRACUT_COMPRESS" | sha256sum | cut -c1-16)
base_tar=$cache/base-$key.tar.zst
mkdir -p "$cache" "$out"

TAR_OPTS=(--numeric-owner --xattrs --xattrs-include='*' --acls)

# The kernel version in a root, the only one there.
kernel_version() {
  local v
  v=$(ls "$1/lib/modules")
  [ "$(printf '%s\n' "$v" | wc -l)" = 1 ] || die "expected one kernel in $1/lib/modules, found: $v"
  printf '%s\n' "$v"
}

# Builds an initrd with the root's own dracut, for the root's kernel:
# dracut_in ROOT OUTFILE MODULES [extra dracut args...]. dracut's bash needs
# /proc (/dev/fd for its process substitutions); it is mounted in a mount
# namespace of this command only (unshare makes it private), so nothing leaks
# to the host and nothing is left mounted. The chroot's /dev holds the device
# nodes debootstrap made. TMPDIR is the image's own: the host's may be a
# directory the image does not have. Debian 13's dracut (its systemd-sysusers
# module) prints every account it creates on stderr: those lines are dropped,
# the rest of stderr is kept.
dracut_in() {
  local root=$1 dest=$2 modules=$3; shift 3
  local kver; kver=$(kernel_version "$root")
  # shellcheck disable=SC2016 # expanded by the inner sh
  { unshare --mount --propagation private -- sh -ec 'root=$1; shift; mount -t proc proc "$root/proc"; mount -t sysfs sysfs "$root/sys"; exec chroot "$root" "$@"' \
    sh "$root" env TMPDIR=/var/tmp dracut --quiet --force --no-hostonly --no-hostonly-cmdline \
    -m "$modules" --drivers "$DRACUT_DRIVERS" --compress "$DRACUT_COMPRESS" \
    --kver "$kver" "$@" "/boot/es-boot-test-${dest##*/}" 2>&1 >&3 3>&- |
    sed '/^Creating \(group\|user\) /d' >&2; } 3>&1
  mv "$root/boot/es-boot-test-${dest##*/}" "$dest"
}

if [ -s "$base_tar" ]; then
  step "$RELEASE base: cached ($base_tar)"
else
  base=$cache/base-$key.tmp
  rm -rf "$base"
  step "$RELEASE base: debootstrap $SUITE from $mirror (a cold run: ~3 minutes)"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$base" "$mirror" \
        > "$cache/debootstrap-$key.log" 2>&1; then
    tail -n 30 "$cache/debootstrap-$key.log" >&2
    die "debootstrap failed (log: $cache/debootstrap-$key.log)"
  fi
  step "$RELEASE base: apt-get install $KERNEL_PACKAGES (in the image)"
  # No /proc needed; INITRD=No: the kernel's postinst hooks build no initrd.
  if ! INITRD=No DEBIAN_FRONTEND=noninteractive TMPDIR=/tmp chroot "$base" \
        apt-get install -y -q --no-install-recommends $KERNEL_PACKAGES > "$cache/apt-kernel-$key.log" 2>&1; then
    tail -n 30 "$cache/apt-kernel-$key.log" >&2
    die "installing the kernel failed (log: $cache/apt-kernel-$key.log)"
  fi
  rm -f "$base"/boot/initrd.img* "$base"/initrd.img* "$base"/var/cache/apt/archives/*.deb
  rm -rf "$base"/var/lib/apt/lists/*
  echo es-boot-test > "$base/etc/hostname"
  step "$RELEASE base: caching it"
  tar "${TAR_OPTS[@]}" -C "$base" -cf - . | zstd -q -T0 -3 -o "$base_tar.tmp"
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$base"
fi

# --- this run's root ---------------------------------------------------------
root=$out/root
rm -rf "$root" "$out"/*.img "$out"/image.env
mkdir -p "$root"
step "unpacking the base"
zstd -q -dc "$base_tar" | tar "${TAR_OPTS[@]}" -C "$root" -xpf -

step "installing early-service (scripts/install.sh --destdir) and $node_bin (Node.js $("$node_bin" -v))"
sh "$top/scripts/install.sh" --destdir "$root"
install -m 0755 "$node_bin" "$root/usr/bin/node"
chroot "$root" /usr/bin/node -e 'process.exit(0)' || die "node does not run in the image (libraries?)"

# The service account (sysusers.d), as a package's postinst would create it,
# before dracut copies it into the initrd.
chroot "$root" systemd-sysusers
grep -q '^early-service:' "$root/etc/passwd" || die "systemd-sysusers created no early-service user"

# The test's own parts: the poller (initrd and, for systemd#37700, rootfs), its
# dracut module, the check unit, the control's drop-in.
modules_d=$root/usr/lib/dracut/modules.d
install -d "$root/usr/lib/es-boot-test" "$modules_d/99es-boot-test"
gcc -static -O2 -Wall -Wextra -Werror -o "$root/usr/lib/es-boot-test/es-boot-poller" "$here/poller.c"
install -m 0755 "$here/units/check.sh" "$root/usr/lib/es-boot-test/"
install -m 0644 "$here/units/control.conf" "$root/usr/lib/es-boot-test/"
install -m 0644 "$here/units/es-boot-poller.service" "$here/units/es-boot-check.service" \
  "$root/usr/lib/systemd/system/"
install -m 0755 "$here/dracut/99es-boot-test/module-setup.sh" "$modules_d/99es-boot-test/"
# The three-way comparison's parts: the kernel-log marks (in every initrd)
# and the C reference with its own module. Linked dynamically (they only run
# in the initrd, which has the image's libc), against this machine's libc:
# checked to run in the image.
reference=$top/test/reference
install -d "$root/usr/lib/es-reference" "$modules_d/99es-boot-measure" "$modules_d/99es-reference"
gcc -O2 -Wall -Wextra -Werror -o "$root/usr/lib/es-boot-test/es-boot-probe" "$here/measure/probe.c"
gcc -std=gnu11 -Os -Wall -Wextra -Werror -o "$root/usr/lib/es-reference/early-service-ref" "$reference/early-service-ref.c"
for bin in /usr/lib/es-boot-test/es-boot-probe /usr/lib/es-reference/early-service-ref; do
  rc=0
  chroot "$root" "$bin" --help > /dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || die "$bin (built here) does not run in the image (libc?): exit $rc to --help, expected 2"
done
install -m 0644 "$here/measure/"*.service "$reference/es-reference-initrd.service" "$root/usr/lib/systemd/system/"
install -m 0755 "$here/dracut/99es-boot-measure/module-setup.sh" "$modules_d/99es-boot-measure/"
install -m 0755 "$reference/dracut/99es-reference/module-setup.sh" "$modules_d/99es-reference/"

step "enabling early-service.service and the check unit; masking serial-getty@ttyS0"
systemctl --root "$root" enable early-service.service es-boot-check.service 2>&1 | sed 's/^/  /'
# Its vhangup() on the console would cut the serial log.
systemctl --root "$root" mask serial-getty@ttyS0.service 2>&1 | sed 's/^/  /'

# By default the image boots with the unit's own TimeoutStartSec= (90 s; under
# TCG the rootfs instance needs 15-40 s to report READY). ES_BOOT_START_TIMEOUT
# can set another value, e.g. to see a start timeout under TCG; analyze.mjs
# reports the start time against the unit's limit either way.
start_timeout=${ES_BOOT_START_TIMEOUT:-unit}
if [ "$start_timeout" != unit ]; then
  install -D -m 0644 /dev/stdin "$root/etc/systemd/system/early-service.service.d/50-es-boot-test-tcg.conf" <<EOF_DROPIN
# Boot test only (test/boot/build-image.sh): TCG is ~50x slower than the
# hardware the unit's TimeoutStartSec= is meant for.
[Service]
TimeoutStartSec=$start_timeout
EOF_DROPIN
fi

# Three dracut runs side by side (each is mostly one busy bash): the initrd
# with the early-service module, the same without it, with the C reference.
step "dracut (in the image, kernel $(kernel_version "$root")): initrd.img with the early-service module, initrd-none.img without, initrd-c.img with the C reference"
pids=()
dracut_in "$root" "$out/initrd.img" "$DRACUT_MODULES early-service es-boot-test es-boot-measure" & pids+=($!)
dracut_in "$root" "$out/initrd-none.img" "$DRACUT_MODULES es-boot-measure" & pids+=($!)
dracut_in "$root" "$out/initrd-c.img" "$DRACUT_MODULES es-reference es-boot-measure" & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid" || die "dracut failed (see above)"; done

# with_dropins NAME CONF...: OUT/initrd-NAME.img, the same initrd plus one
# more (uncompressed) cpio archive that the kernel unpacks over it, holding
# the CONF files as drop-ins for the initrd instance, in this order.
with_dropins() {
  local name=$1 ovl=$out/$1-overlay n=90 conf; shift
  local dir=$ovl/etc/systemd/system/early-service-initrd.service.d
  rm -rf "$ovl"
  mkdir -p "$dir"
  for conf in "$@"; do
    n=$((n + 1))
    install -m 0644 "$here/units/$conf" "$dir/$n-es-boot-test-${conf%.conf}.conf"
  done
  cp "$out/initrd.img" "$out/initrd-$name.img"
  # The kernel looks for a cpio header only at a 4-byte aligned offset and skips
  # the NUL bytes before it (Documentation/driver-api/early-userspace/buffer-format.rst).
  truncate --size=%4 "$out/initrd-$name.img"
  (cd "$ovl" && find etc | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >> "$out/initrd-$name.img"
  rm -rf "$ovl"
}
# The negative control: a drop-in that runs the initrd instance without the
# '@' (analyze.mjs checks that it ran so); where systemd knows
# SurviveFinalKillSignal= (255+), one more that turns it off. And there, the
# boot that shows the key at work: without the '@', the key only.
if [ "$SURVIVE_KEY" = yes ]; then
  step "initrd-control.img: the same initrd plus drop-ins without the '@' and with SurviveFinalKillSignal=no"
  with_dropins control control.conf control-no-survive.conf
  step "initrd-survive.img: the same initrd plus a drop-in without the '@' (SurviveFinalKillSignal=yes only)"
  with_dropins survive control.conf
else
  step "initrd-control.img: the same initrd plus a drop-in without the '@'"
  with_dropins control control.conf
fi

# The initrd instance's command line as the initrd's systemd runs it: the last
# ExecStart= of the unit and then its drop-ins (in name order), read back from
# the initrd; the control's drop-ins come last of all. The same for
# SurviveFinalKillSignal= (empty: not set).
last_setting() { local key=$1; shift; cat "$@" 2> /dev/null | sed -n "s/^$key=\\(..*\\)/\\1/p" | tail -n1; }
last_execstart() { last_setting ExecStart "$@"; }
initrd_unit=usr/lib/systemd/system/early-service-initrd.service
peek=$out/initrd-unit
rm -rf "$peek"
mkdir -p "$peek"
zstd -q -dc "$out/initrd.img" | (cd "$peek" && cpio -id --quiet "$initrd_unit" "$initrd_unit.d/*.conf")
dropins=()
for f in "$peek/$initrd_unit.d/"*.conf; do [ -e "$f" ] && dropins+=("$f"); done  # glob order: LC_ALL=C
initrd_execstart=$(last_execstart "$peek/$initrd_unit" "${dropins[@]}")
[ -n "$initrd_execstart" ] || die "no ExecStart= for early-service-initrd.service in the initrd"
control_execstart=$(last_execstart "$peek/$initrd_unit" "${dropins[@]}" "$here/units/control.conf")
initrd_survive=$(last_setting SurviveFinalKillSignal "$peek/$initrd_unit" "${dropins[@]}")
control_survive=$initrd_survive
if [ "$SURVIVE_KEY" = yes ]; then
  control_survive=$(last_setting SurviveFinalKillSignal "$peek/$initrd_unit" "${dropins[@]}" \
    "$here/units/control.conf" "$here/units/control-no-survive.conf")
fi
rm -rf "$peek"

cp "$root/boot/vmlinuz-$(kernel_version "$root")" "$out/vmlinuz"

step "disk.img: mkfs.ext4 -d ($DISK_SIZE)"
mkfs.ext4 -q -F -L es-boot-root -d "$root" "$out/disk.img" "$DISK_SIZE" > /dev/null

# Bytes of an initrd, and of the cpio archive inside it (dracut wrote one
# compressed archive, no early one).
initrd_sizes() {
  echo "initrd_$1=$(stat -c %s "$out/$2")"
  echo "initrd_$1_uncompressed=$(zstd -q -dc "$out/$2" | wc -c)"
}
{
  initrd_sizes none initrd-none.img
  initrd_sizes main initrd.img
  initrd_sizes c initrd-c.img
  echo "poller_bytes=$(stat -c %s "$root/usr/lib/es-boot-test/es-boot-poller")"
  echo "reference_bytes=$(stat -c %s "$root/usr/lib/es-reference/early-service-ref")"
  echo "node_bytes_rootfs=$(stat -c %s "$root/usr/bin/node")"
  echo "node_bytes_initrd=$(zstd -q -dc "$out/initrd.img" | cpio -tv --quiet usr/bin/node 2> /dev/null | awk '{ print $5 }')"
  echo "compress=$DRACUT_COMPRESS"
  echo "kernel_version=$(kernel_version "$root")"
  echo "node_version=$("$node_bin" -v)"
  echo "unit_timeout_start=$(sed -n 's/^TimeoutStartSec=//p' "$root/usr/lib/systemd/system/early-service.service" | tail -n1)"
  echo "test_timeout_start=$start_timeout"
  echo "initrd_execstart=$initrd_execstart"
  echo "control_execstart=$control_execstart"
  echo "suite=$SUITE"
  echo "release=$RELEASE"
  echo "systemd_version=$(chroot "$root" dpkg-query -W -f '${Version}' systemd)"
  echo "survive_key_known=$SURVIVE_KEY"
  echo "initrd_survive_final_kill_signal=$initrd_survive"
  echo "control_survive_final_kill_signal=$control_survive"
} > "$out/image.env"
rm -rf "$root"
step "done: $out"
