#!/usr/bin/env bash
# The initrd's compressors, measured: the boot test's initrd with early-service
# (its cpio archive, unchanged) compressed the way dracut compresses with each
# method it offers, then for each
#   - the bytes, and the time to compress (this machine, dracut's threads);
#   - user-space decompression on this machine, one thread, as the kernel
#     decompresses (median of 3);
#   - in QEMU (TCG, the boot test's kernel): the kernel's unpack time, from
#     "Trying to unpack rootfs image as initramfs..." to "Freeing initrd
#     memory" (printk times), and kernel start -> the initrd's first process;
#     the whole QEMU run too (firmware, loading the image, the boot), since the
#     bytes are paid for before the kernel starts as well. The first process is
#     es-boot-probe (rdinit=), which powers off at once: no systemd, no service.
# Prints a table and writes bench-results/initrd-compressors.json.
#
# Run after the boot test (npm run test:boot), which leaves the kernel and the
# initrd in its work directory; not part of `npm run bench` (QEMU, minutes).
#
#   bench/initrd-compressors.sh [--work DIR] [--rounds N] [--compress-only | --measure-only]
#     --work DIR        the boot test's work directory (default $TMPDIR/early-service-boot-test/run)
#     --rounds N        boots per compressor, the order rotated each round (default 3)
#     --compress-only   only compress (slow: zstd -19 takes minutes), for a later --measure-only
#     --measure-only    measure the images a --compress-only run left (e.g. on a machine kept quiet)
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
work=${TMPDIR:-/tmp}/early-service-boot-test/run
rounds=3
phases="compress measure"
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --compress-only) phases=compress; shift ;;
    --measure-only) phases=measure; shift ;;
    *) echo "usage: $0 [--work DIR] [--rounds N] [--compress-only | --measure-only]" >&2; exit 2 ;;
  esac
done
unset NODE_EXTRA_CA_CERTS
die() { echo "initrd-compressors: $*" >&2; exit 1; }
for f in vmlinuz initrd.img; do [ -s "$work/$f" ] || die "no $work/$f: run 'npm run test:boot' first"; done
for tool in qemu-system-x86_64 zstd lz4 xz gzip; do
  command -v "$tool" > /dev/null || die "$tool is missing (Debian: scripts/setup-debian.sh installs it)"
done

# Label, then the command dracut pipes the cpio archive through (dracut 059:
# compress="zstd" is "zstd -15 -q -T0", "lz4" is "lz4 -l -9" (the legacy
# format the kernel reads), "xz" is "xz --check=crc32 --lzma2=dict=1MiB -T0",
# "gzip" is "gzip -n -9" without pigz; any command line can be given instead),
# and the command that decompresses it with one thread.
methods=(
  "zstd -3|zstd -q -3 -T0|zstd -q -d -c"
  "zstd -15 (dracut's zstd)|zstd -q -15 -T0|zstd -q -d -c"
  "zstd -19|zstd -q -19 -T0|zstd -q -d -c"
  "lz4 -l -9 (dracut's lz4)|lz4 -q -l -9|lz4 -q -d -c"
  "xz (dracut's)|xz --check=crc32 --lzma2=dict=1MiB -T0|xz -d -c -T1"
  "gzip -9 (dracut's)|gzip -n -9|gzip -d -c"
  "none (cat)|cat|cat"
)

dir=$work/compressors
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

if [[ $phases == *compress* ]]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  # dracut wrote one compressed archive and no early (uncompressed) one. The
  # archive stays: the measurement checks each image decompresses back to it.
  zstd -q -d -c "$work/initrd.img" > "$dir/initrd.cpio"
  echo "the cpio archive: $(stat -c %s "$dir/initrd.cpio") bytes (from $work/initrd.img)"
  for i in "${!methods[@]}"; do
    IFS='|' read -r label compress _ <<< "${methods[$i]}"
    t=$(date +%s%N)
    $compress < "$dir/initrd.cpio" > "$dir/$i.img"
    compress_ms=$(ms "$t")
    printf 'method\t%s\t%s\t%s\t%s\n' "$i" "$label" "$(stat -c %s "$dir/$i.img")" "$compress_ms" >> "$dir/compress.tsv"
    echo "$label: $(stat -c %s "$dir/$i.img") bytes, compressed in $compress_ms ms"
  done
fi
[[ $phases == *measure* ]] || exit 0
[ -s "$dir/compress.tsv" ] || die "no compressed images in $dir: run with --compress-only first"

results=$dir/measure.tsv
: > "$results"
for i in "${!methods[@]}"; do
  IFS='|' read -r label _ decompress <<< "${methods[$i]}"
  decompress_ms=()
  for _ in 1 2 3; do
    t=$(date +%s%N)
    $decompress < "$dir/$i.img" > /dev/null
    decompress_ms+=("$(ms "$t")")
  done
  cmp -s <($decompress < "$dir/$i.img") "$dir/initrd.cpio" || die "$label: decompressing does not give the archive back"
  printf 'decompress\t%s\t%s\n' "$i" "${decompress_ms[*]}" >> "$results"
  echo "$label: decompressed in ${decompress_ms[*]} ms"
done

n=${#methods[@]}
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(((k + r - 1) % n))
    serial=$dir/boot-$i-$r-serial.log
    t=$(date +%s%N)
    timeout -k 10 300 qemu-system-x86_64 -nodefaults -no-user-config \
      -accel tcg,thread=multi,tb-size=256 -cpu max -m 512 -smp 2 \
      -kernel "$work/vmlinuz" -initrd "$dir/$i.img" \
      -append "console=ttyS0 rdinit=/usr/lib/es-boot-test/es-boot-probe panic=-1" \
      -serial "file:$serial" -no-reboot -display none || true
    qemu_ms=$(ms "$t")
    printf 'boot\t%s\t%s\t%s\t%s\n' "$i" "$r" "$qemu_ms" "$serial" >> "$results"
    echo "round $r: ${methods[$i]%%|*}: QEMU ran ${qemu_ms} ms"
  done
done

node "$here/initrd-compressors-report.mjs" "$dir/compress.tsv" "$results" "$top/bench-results/initrd-compressors.json"
