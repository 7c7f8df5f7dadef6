#!/usr/bin/env bash
# The boot test (npm run test:boot; as root): builds a Debian 12 image (or 13:
# ES_BOOT_SUITE=trixie) with early-service (build-image.sh), boots it in QEMU,
# reads the results back from the disk image with debugfs, and asserts the
# handoff from the journal (analyze.mjs):
#
#   1. the real boot: the initrd instance survives switch-root and hands over
#      to early-service.service; every assertion must pass;
#   1b. Debian 13 only (systemd >= 255): the same image, the initrd instance
#      started without the '@', so only SurviveFinalKillSignal=yes (the
#      product's drop-in) keeps it alive; every assertion must pass;
#   2. the negative control: the same image, the initrd instance started
#      without the '@' (and on Debian 13 with SurviveFinalKillSignal=no);
#      systemd kills it at switch-root, and the assertions that depend on the
#      survival must fail;
#   3. the boot's cost, three ways: the same disk and kernel booted with the
#      initrd without early-service, with it (the real boot's initrd), and with
#      the C reference instead, each powering off in the initrd once its marks
#      are in the kernel log. The kernel's unpack time and kernel start ->
#      READY=1 / first answer / sysinit.target are read from their serial
#      consoles (printk times); ES_BOOT_ROUNDS rounds, the order rotated.
#
# Prints pass/fail per assertion and 'N passed, N failed'; exits 1 on any
# failure.
#
#   ES_BOOT_SUITE=S       bookworm (Debian 12, systemd 252; the default) or
#                         trixie (Debian 13, systemd 257)
#   ES_BOOT_WORK=DIR      work directory (default $TMPDIR/early-service-boot-test/run,
#                         run-trixie for trixie)
#   ES_BOOT_TIMEOUT=SEC   per boot (default 300)
#   ES_BOOT_SKIP_BUILD=1  do not run 'npm run build' first
#   ES_BOOT_ONLY=main     boot only the real image, not the control nor the
#                         comparison's two boots (for debugging)
#   ES_BOOT_SKIP_IMAGE=1  reuse the image the last run built (for debugging)
#   ES_BOOT_POLL_MS=N     the poller's interval (default 5 ms)
#   ES_BOOT_ROUNDS=N      rounds of the three-way comparison's boots (default 1;
#                         analyze.mjs reports medians)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=${TMPDIR:-/tmp}
suite=${ES_BOOT_SUITE:-bookworm}
export ES_BOOT_SUITE=$suite
case "$suite" in
  bookworm) work=${ES_BOOT_WORK:-$tmp/early-service-boot-test/run} ;;
  *) work=${ES_BOOT_WORK:-$tmp/early-service-boot-test/run-$suite} ;;
esac
timeout_s=${ES_BOOT_TIMEOUT:-300}
rounds=${ES_BOOT_ROUNDS:-1}
start=$SECONDS
step() { printf '[boot-test %4ds] %s\n' $((SECONDS - start)) "$*"; }

[ "$(id -u)" = 0 ] || { echo "test:boot must run as root (debootstrap, chroot)" >&2; exit 1; }
# It adds ~80 ms to every node start, in the image too.
unset NODE_EXTRA_CA_CERTS
# One run at a time per work directory (and base cache).
mkdir -p "$(dirname "$work")"
exec 9> "$work.lock"
flock -n 9 || { step "waiting for another boot test run ($work.lock)"; flock 9; }

if [ "${ES_BOOT_SKIP_BUILD:-}" != 1 ]; then
  step "npm run build"
  mkdir -p "$work"
  (cd "$top" && npm run --silent build > "$work/npm-build.log" 2>&1) || { cat "$work/npm-build.log" >&2; exit 1; }
fi
if [ "${ES_BOOT_SKIP_IMAGE:-}" != 1 ]; then
  bash "$here/build-image.sh" --out "$work"
  step "image built"
fi

# boot NAME INITRD [measure]: boots a copy of disk.img, leaves the check
# unit's results in WORK/NAME/results and the serial console in
# WORK/NAME-serial.log. With "measure", the initrd powers the machine off once
# its marks are in the kernel log (es_boot.poweroff_in_initrd): the disk is
# attached as in the real boot but never mounted, so no copy is needed
# (snapshot=on: nothing is written to it).
boot() {
  local name=$1 initrd=$2 mode=${3:-full}
  local disk=$work/$name.img serial=$work/$name-serial.log
  local t0=$SECONDS rc=0 seen= drive append
  rm -rf "${work:?}/$name" "$serial"
  append="console=ttyS0 root=/dev/vda rw panic=-1${ES_BOOT_POLL_MS:+ es_boot.poll_ms=$ES_BOOT_POLL_MS}"
  if [ "$mode" = measure ]; then
    drive="file=$work/disk.img,if=virtio,format=raw,snapshot=on"
    append="$append es_boot.poweroff_in_initrd"
  else
    cp --sparse=always "$work/disk.img" "$disk"
    drive="file=$disk,if=virtio,format=raw"
  fi
  step "booting $name (TCG; timeout ${timeout_s}s; console: $serial)"
  timeout -k 10 "$timeout_s" qemu-system-x86_64 -nodefaults -no-user-config \
    -accel tcg,thread=multi,tb-size=256 -cpu max -m 512 -smp 2 \
    -kernel "$work/vmlinuz" -initrd "$initrd" -append "$append" -drive "$drive" \
    -serial "file:$serial" -no-reboot -display none &
  qemu_pid=$!
  trap 'kill "$qemu_pid" 2> /dev/null' EXIT
  # Progress from the console while it boots.
  while kill -0 "$qemu_pid" 2> /dev/null; do
    sleep 1
    for milestone in 'Freeing initrd memory:initrd unpacked' \
                     'early-service-initrd.service:initrd instance starting' \
                     'es-boot-measure: serving:first answer in the initrd' \
                     'es-boot-measure: not serving:no service answered in the initrd' \
                     'es-boot-measure: sysinit.target:sysinit.target reached in the initrd' \
                     'initrd-switch-root.service:switching root' \
                     'Starting.*early-service\.service:rootfs instance starting' \
                     'es-boot-check.service:check unit starting' \
                     'es-boot-check: results:results collected' 'reboot: Power down:powered off'; do
      case "$seen" in *"|$milestone|"*) continue ;; esac
      if grep -q "${milestone%:*}" "$serial" 2> /dev/null; then
        seen="$seen|$milestone|"
        step "  $name: ${milestone##*:} (~$((SECONDS - t0))s)"
      fi
    done
  done
  wait "$qemu_pid" || rc=$?
  trap - EXIT
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    step "  $name: no power-off within ${timeout_s}s; QEMU killed (last console lines below)"
    tail -n 15 "$serial" | sed 's/^/    | /'
  elif [ "$rc" != 0 ]; then
    step "  $name: QEMU exited with $rc"
  fi
  if [ "$mode" = measure ]; then
    step "  $name: booted and powered off in $((SECONDS - t0))s"
    return
  fi
  step "  $name: booted and powered off in $((SECONDS - t0))s; reading the results with debugfs"
  # Replays the file system's journal, if the power-off left one to replay
  # (debugfs does not); no mount needed.
  e2fsck -fy "$disk" > "$work/$name-e2fsck.log" 2>&1 || true
  mkdir -p "$work/$name"
  debugfs -R "rdump /var/lib/es-boot-test/results $work/$name" "$disk" > "$work/$name-debugfs.log" 2>&1 || true
  rm -f "$disk"
}

boot main "$work/initrd.img"
if [ "${ES_BOOT_ONLY:-}" != main ]; then
  # build-image.sh makes it where systemd knows SurviveFinalKillSignal=.
  if grep -qx 'survive_key_known=yes' "$work/image.env"; then
    boot survive "$work/initrd-survive.img"
  fi
  boot control "$work/initrd-control.img"
  # The three-way comparison; a different initrd goes first each round, so
  # that none of them always boots right after the long ones.
  rm -rf "$work/measure"
  mkdir -p "$work/measure"
  variants=(none:initrd-none.img es:initrd.img c:initrd-c.img)
  for ((r = 1; r <= rounds; r++)); do
    for ((i = 0; i < 3; i++)); do
      v=${variants[$(((i + r - 1) % 3))]}
      boot "measure/${v%%:*}-$r" "$work/${v#*:}" measure
    done
  done
fi
step "analysing"
rc=0
node "$here/analyze.mjs" --work "$work" ${ES_BOOT_ONLY:+--only "$ES_BOOT_ONLY"} || rc=$?
step "done (exit $rc)"
exit "$rc"
