#!/bin/sh
# Installs the Debian packages that the README's set-up needs, on a fresh
# Debian 12 (or 13) machine that has Node.js >= 20 (as root):
#
#   scripts/setup-debian.sh
#   npm ci && npm run demo
#   npm test && npm run test:systemd && npm run test:boot
#
# CI (.ci/run) runs this same script, so the README and CI never disagree on
# what a machine needs. What each package is for:
#
#   gcc g++ make python3 libc6-dev  node-gyp builds the addon (gcc compiles it,
#                                   g++ links it; libc6-dev: the C headers, which
#                                   gcc only recommends); the tests compile C
#                                   programs too (the C reference, the GIO peer)
#   pkg-config libglib2.0-dev       the GIO peer (test/gio): wire compatibility
#                                   with the seed's GLib program
#   systemd                         systemd-analyze verify, systemd-sysusers,
#                                   systemctl --root (the units, the dracut test)
#   systemd-container               npm run test:systemd: systemd-nspawn runs the
#                                   product under systemd 252 and 257
#   dracut-core cpio zstd binutils  the dracut module's test: dracut and lsinitrd
#                                   (dracut-core: without the kernel hooks that
#                                   would rebuild this machine's initrds), zstd
#                                   to compress, binutils for strip and readelf
#   rpm git                         scripts/create-rpm.sh and its test (rpmbuild,
#                                   rpm2cpio; git archive for the source tarball)
#   qemu-system-x86 seabios         npm run test:boot: the boot in QEMU (TCG)
#   debootstrap e2fsprogs           ... the Debian 12 image it boots (mkfs.ext4 -d,
#                                   debugfs to read the results back)
#   lz4 xz-utils                    bench/initrd-compressors.sh (gzip is always there)
#
# --no-install-recommends: nothing else comes along.
set -eu
[ "$(id -u)" = 0 ] || { echo "setup-debian.sh: run it as root (apt-get install)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  gcc g++ make python3 libc6-dev pkg-config libglib2.0-dev systemd-container \
  systemd dracut-core cpio zstd binutils rpm git \
  qemu-system-x86 seabios debootstrap e2fsprogs lz4 xz-utils > /dev/null
echo "setup-debian.sh: the packages are installed; next: npm ci && npm run demo, then npm test && npm run test:systemd && npm run test:boot"
