// The report of bench/initrd-compressors.sh: reads its compress.tsv (one
// "method" line per compressor) and measure.tsv (its decompression times, one
// "boot" line per QEMU boot with its serial console), prints the table,
// writes the JSON.
//
//   node bench/initrd-compressors-report.mjs COMPRESS.tsv MEASURE.tsv OUT.json
//
// Plain JavaScript: it shares the serial-console parser with the boot test
// (test/boot/boot-cost.mjs).
import fs from 'node:fs';
import path from 'node:path';
import { bootMoments, median, printTable } from '../test/boot/boot-cost.mjs';

const [compressFile, measureFile, jsonFile] = process.argv.slice(2);
const methods = new Map();
const lines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
for (const line of [...lines(compressFile), ...lines(measureFile)]) {
  const [kind, id, ...rest] = line.split('\t');
  if (kind === 'method') {
    const [label, bytes, compressMs] = rest;
    methods.set(id, { label, bytes: Number(bytes), compressMs: Number(compressMs), decompressMs: [], boots: [] });
  } else if (kind === 'decompress') {
    methods.get(id).decompressMs = rest[0].split(' ').map(Number);
  } else if (kind === 'boot') {
    const [round, qemuMs, serial] = rest;
    const m = bootMoments(serial);
    methods.get(id).boots.push({ round: Number(round), qemuMs: Number(qemuMs), unpackS: m.unpack, initS: m.init,
      unpackFailed: m.unpackFailed, serial: path.basename(serial) });
  }
}

const all = [...methods.values()];
const none = all.find((m) => m.label.startsWith('none'));
const fmt = (v, digits = 3, unit = ' s') => (v === undefined ? '?' : `${v.toFixed(digits)}${unit}`);
const rows = [['method', 'bytes', 'vs none', 'compress (this machine)', 'decompress, 1 thread (this machine)',
  'kernel unpack (TCG)', 'kernel start -> init (TCG)', 'QEMU run (TCG)']];
const json = [];
for (const m of all) {
  const unpack = median(m.boots.map((b) => b.unpackS));
  const init = median(m.boots.map((b) => b.initS));
  const qemu = median(m.boots.map((b) => b.qemuMs));
  const decompress = median(m.decompressMs);
  const failed = m.boots.filter((b) => b.unpackFailed || b.initS === undefined);
  rows.push([m.label, `${(m.bytes / 1e6).toFixed(1)} MB`, `${(m.bytes / none.bytes).toFixed(2)}`,
    fmt(m.compressMs / 1000, 1), fmt(decompress / 1000), fmt(unpack), fmt(init), fmt(qemu / 1000, 1)
    + (failed.length ? ` (${failed.length} boot(s) did not reach init: ${failed.map((b) => b.unpackFailed ?? b.serial).join('; ')})` : '')]);
  json.push({ method: m.label, bytes: m.bytes, compress_ms: m.compressMs, decompress_ms: m.decompressMs,
    median: { unpack_s: unpack, kernel_to_init_s: init, qemu_ms: qemu, decompress_ms: decompress }, boots: m.boots });
}
console.log(`\ninitrd compressors (${all[0]?.boots.length ?? 0} boot(s) each; medians):\n`);
printTable(rows, '');
fs.mkdirSync(path.dirname(jsonFile), { recursive: true });
fs.writeFileSync(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
console.log(`\n${jsonFile}`);
