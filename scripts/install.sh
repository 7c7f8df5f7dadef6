#!/bin/sh
# Installs early-service the way a package does, into DESTDIR (default: /):
#
#   /usr/lib/early-service/early-service.js     the bundled daemon (main thread + worker code)
#   /usr/lib/early-service/early_service.node   the native addon
#   /usr/lib/early-service/early-service        launcher (runs the bundle with node)
#   /usr/bin/early-service                      -> ../lib/early-service/early-service
#   /usr/lib/systemd/system/                    both units (the initrd one too: systemd#37700) and drop-ins
#   /usr/lib/sysusers.d/early-service.conf      the service user
#   /usr/lib/dracut/modules.d/99early-service/  the dracut module, and an example dracut.conf.d file
#                                               choosing the initrd's compressor
#
# Needs `npm run build` first (it produces dist/bundle). The paths are fixed:
# the units name them, and so does the dracut module.
set -eu
usage() { echo "usage: $0 [--destdir DIR]" >&2; exit 2; }
destdir=
while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift 2 ;;
    --destdir=*) destdir=${1#--destdir=}; shift ;;
    *) usage ;;
  esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=$top/dist/bundle
for f in early-service.js early_service.node early-service; do
  [ -e "$bundle/$f" ] || { echo "$0: $bundle/$f is missing: run 'npm run build' first" >&2; exit 1; }
done

lib=$destdir/usr/lib
install -d "$lib/early-service" "$destdir/usr/bin" "$lib/systemd/system" "$lib/sysusers.d" \
  "$lib/dracut/modules.d/99early-service"
install -m 0644 "$bundle/early-service.js" "$lib/early-service/early-service.js"
install -m 0755 "$bundle/early_service.node" "$lib/early-service/early_service.node"
install -m 0755 "$bundle/early-service" "$lib/early-service/early-service"
ln -sfn ../lib/early-service/early-service "$destdir/usr/bin/early-service"

install -m 0644 "$top/conf/early-service.service" "$top/conf/early-service-initrd.service" "$lib/systemd/system/"
for dropin in "$top"/conf/*.service.d; do
  [ -d "$dropin" ] || continue
  install -d "$lib/systemd/system/$(basename "$dropin")"
  install -m 0644 "$dropin"/*.conf "$lib/systemd/system/$(basename "$dropin")/"
done
install -m 0644 "$top/conf/early-service.sysusers" "$lib/sysusers.d/early-service.conf"
install -m 0755 "$top/dracut/module-setup.sh" "$lib/dracut/modules.d/99early-service/module-setup.sh"
# Not read by dracut (only *.conf in a dracut.conf.d is): the integrator's example.
install -m 0644 "$top/dracut/compress.conf.example" "$lib/dracut/modules.d/99early-service/compress.conf.example"
