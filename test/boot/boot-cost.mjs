// What a boot costs, read from its serial console: the kernel's printk times
// (seconds since kernel start) of its own messages and of the marks that
// es-boot-probe (test/boot/measure/) writes to /dev/kmsg. One clock for all:
// the kernel stamps both.
//
// Used by analyze.mjs (the boot test's three-way comparison) and by
// bench/initrd-compressors.sh (the kernel's unpack time per compressor).
import fs from 'node:fs';

// A printk stamp and what follows it, up to the next stamp. Not only at the
// start of a console line: a kernel message can land in the middle of one of
// systemd's status lines (seen with Debian 13: "[  OK  ] Finished ... Apply
// Kernel Variables.[   12.647861] es-boot-measure: ready").
const PRINTK = /\[\s*(\d+\.\d+)\] (.*?)(?=\[\s*\d+\.\d+\] |$)/g;

/**
 * The moments of one boot, in seconds since kernel start (undefined when the
 * console does not show them):
 *   unpackStart   "Trying to unpack rootfs image as initramfs..."
 *   unpackEnd     "Freeing initrd memory: NK" (the unpacking is done)
 *   sysinit       es-boot-measure: sysinit.target (the initrd reached it)
 *   initRun       "Run /init as init process" (the kernel starts the initrd's
 *                 systemd; it waits for the unpacking to finish first)
 *   unitStarting  "systemd[1]: Starting early-service-initrd.service" or the C
 *                 reference's es-reference-initrd.service (printed while PID 1
 *                 still logs to the kernel log, i.e. in the initrd)
 *   ready         es-boot-measure: ready (the probe started: the service's unit
 *                 became active, i.e. READY=1, plus the probe's exec)
 *   serving       es-boot-measure: serving counter=N (first get_counter answered)
 *   notServing    es-boot-measure: not serving (...) (no service in this initrd)
 *   init          es-boot-measure: init (the probe ran as the initrd's init)
 */
export function bootMoments(serialLog) {
  let text;
  try { text = fs.readFileSync(serialLog, 'utf8'); } catch { return { found: false }; }
  const m = { found: true };
  for (const line of text.split(/\r?\n/).flatMap((raw) => [...raw.matchAll(PRINTK)])) {
    const t = Number(line[1]);
    const msg = line[2];
    const first = (key, value = t) => { if (m[key] === undefined) m[key] = value; };
    if (msg.startsWith('Trying to unpack rootfs image as initramfs')) first('unpackStart');
    else if (msg.startsWith('Freeing initrd memory:')) {
      first('unpackEnd');
      first('initrdKiB', Number(/(\d+)K/.exec(msg)?.[1]));
    } else if (msg.startsWith('Initramfs unpacking failed')) first('unpackFailed', msg);
    else if (msg.startsWith('Run /init as init process')) first('initRun');
    else if (/^systemd\[1\]: Starting (early-service-initrd|es-reference-initrd)\.service/.test(msg)) first('unitStarting');
    else if (msg.startsWith('es-boot-measure: ')) {
      const what = msg.slice('es-boot-measure: '.length);
      if (what === 'sysinit.target') first('sysinit');
      else if (what === 'ready') first('ready');
      else if (what.startsWith('serving ')) { first('serving'); first('servingText', what); }
      else if (what.startsWith('not serving')) { first('notServing'); first('servingText', what); }
      else if (what === 'init') first('init');
    }
  }
  if (m.unpackStart !== undefined && m.unpackEnd !== undefined) m.unpack = m.unpackEnd - m.unpackStart;
  return m;
}

const s = (v) => (v === undefined ? '?' : `${v.toFixed(3)} s`);
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? '?' : `${(a / b).toFixed(2)}×`);
const mb = (bytes) => (bytes === undefined || Number.isNaN(bytes) ? '?' : `${(bytes / 1e6).toFixed(1)} MB`);

/** The median of the defined values, or undefined. */
export function median(values) {
  const v = values.filter((x) => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/** Prints a markdown table; rows are arrays of cells, the first is the header. */
export function printTable(rows, indent = '  ') {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => `${indent}| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  console.log(line(rows[0]));
  console.log(`${indent}|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

export const FIGURES = ['unpack', 'initRun', 'unitStarting', 'ready', 'serving', 'sysinit'];

/**
 * The three-way table. boots = [{ key, label, runs: [moments...], bytes,
 * uncompressed }] in the order no service, early-service, C reference; each
 * time is the median over the runs. Returns the figures for the JSON results.
 */
export function printComparison(boots) {
  const med = boots.map((b) => Object.fromEntries(FIGURES.map((f) => [f, median(b.runs.map((m) => m[f]))])));
  const [none, es, c] = [0, 1, 2];
  const bytes = (k) => boots.map((b) => b[k]);
  const row = (label, values, fmt, noneToo = true) => [label, ...values.map(fmt),
    ratio(values[es], values[c]), noneToo ? ratio(values[es], values[none]) : ''];
  const time = (f) => med.map((m) => m[f]);
  const serviceOnly = (v) => v.map((x, i) => (i === none ? undefined : x));
  const dash = (v) => (v === undefined ? '-' : s(v));
  printTable([
    ['', ...boots.map((b) => b.label), 'early-service / C', 'early-service / none'],
    row('initrd, compressed', bytes('bytes'), mb),
    row('initrd, uncompressed (cpio)', bytes('uncompressed'), mb),
    row('kernel: unpack the initrd', time('unpack'), s),
    row('kernel start -> /init (systemd) runs', time('initRun'), s),
    row('kernel start -> the service\'s unit starting', serviceOnly(time('unitStarting')), dash, false),
    row('kernel start -> READY=1 (+ probe exec)', serviceOnly(time('ready')), dash, false),
    row('kernel start -> first answer', serviceOnly(time('serving')), dash, false),
    row('kernel start -> sysinit.target (initrd)', time('sysinit'), s),
  ]);
  return Object.fromEntries(boots.map((b, i) => [b.key, {
    initrd_bytes: b.bytes, initrd_uncompressed_bytes: b.uncompressed, rounds: b.runs.length,
    median_s: med[i], runs_s: b.runs.map((m) => Object.fromEntries(FIGURES.map((f) => [f, m[f]]))),
  }]));
}
