#!/usr/bin/env node
// The boot test's assertions (run.sh calls it): reads what the check unit
// collected in each boot (WORK/main/results, WORK/control/results, and on
// systemd >= 255 WORK/survive/results: the journal as JSON, the units'
// states, the poller's summary) and prints one pass/fail line per assertion,
// the timings, and 'N passed, N failed'. Exits 1 on any failure.
//
//   node test/boot/analyze.mjs --work DIR [--only main]
//
// Plain JavaScript, not TypeScript: tsc would put it under dist/test/, where
// `npm test` runs every file.
import fs from 'node:fs';
import path from 'node:path';
import { bootMoments, printComparison } from './boot-cost.mjs';

const SOCKET = '/run/early-service/early-service.sock';
const INITRD_UNIT = 'early-service-initrd.service';
const ROOTFS_UNIT = 'early-service.service';
const POLLER_UNIT = 'es-boot-poller.service';
const UNIT_STARTED = '39f53479d3a045ac8e11786248231fbf'; // sd-messages.h: SD_MESSAGE_UNIT_STARTED

const argv = process.argv.slice(2);
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const work = opt('--work');
if (!work) { console.error('usage: analyze.mjs --work DIR [--only main]'); process.exit(2); }
const only = opt('--only');

const sec = (us) => (us === undefined || us === null ? '?' : `${(us / 1e6).toFixed(3)} s`);
const secs = (s) => (s === undefined ? '?' : `${s.toFixed(3)} s`);
const dur = (a, b) => (a === undefined || b === undefined ? '?' : `${((b - a) / 1e3).toFixed(0)} ms`);
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Everything one boot left in its results directory. */
function load(dir) {
  const read = (file) => { try { return fs.readFileSync(path.join(dir, file), 'utf8'); } catch { return undefined; } };
  const entries = [];
  for (const [i, line] of (read('journal.json') ?? '').split('\n').entries()) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      const text = (v) => (Array.isArray(v) ? Buffer.from(v).toString('utf8') : v);
      e.MESSAGE = text(e.MESSAGE) ?? '';
      e._CMDLINE = text(e._CMDLINE);
      e.t = Number(e.__MONOTONIC_TIMESTAMP);
      e.i = i;
      entries.push(e);
    } catch { /* a torn line */ }
  }
  entries.sort((a, b) => a.t - b.t || a.i - b.i);
  const units = new Map();
  for (const block of (read('units.txt') ?? '').split(/\n\s*\n/)) {
    const props = Object.fromEntries(block.split('\n').filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    if (props.Id) units.set(props.Id, props);
  }
  let poller;
  try { poller = JSON.parse(read('poller-summary.json') ?? ''); } catch { poller = undefined; }
  const cmdlines = {};
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir)) if (f.startsWith('cmdline-')) cmdlines[f] = read(f).trim();
  }
  return { dir, complete: read('complete') !== undefined, entries, units, poller, cmdlines };
}

/** The facts of one boot, from its journal. */
function facts(run) {
  const { entries } = run;
  const pid1 = entries.filter((e) => e._PID === '1');
  const firstPid1 = (re, after = -Infinity) => pid1.find((e) => e.t >= after && re.test(e.MESSAGE));
  const switchRoot = firstPid1(/^Switching root\.$/);
  const tSwitch = switchRoot?.t ?? Infinity;
  const started = (unit) => pid1.filter((e) => e.MESSAGE_ID === UNIT_STARTED && e.UNIT === unit && e.JOB_RESULT === 'done');
  const lines = (unit) => entries.filter((e) => e._SYSTEMD_UNIT === unit && e._TRANSPORT === 'stdout');
  const initrd = lines(INITRD_UNIT);
  const rootfs = lines(ROOTFS_UNIT);
  const poller = lines(POLLER_UNIT);
  const isTick = (e) => /^-?\d+$/.test(e.MESSAGE);
  const find = (list, re) => list.find((e) => re.test(e.MESSAGE));
  const tookOver = find(rootfs, /^Took over from pid (\d+) at counter (-?\d+)/);
  return {
    switchRoot,
    tSwitch,
    sysinitInInitrd: pid1.find((e) => e.MESSAGE_ID === UNIT_STARTED && e.UNIT === 'sysinit.target' && e.t < tSwitch),
    initrdStarted: started(INITRD_UNIT).find((e) => e.t < tSwitch),
    rootfsStarted: started(ROOTFS_UNIT),
    rootfsStarting: firstPid1(new RegExp(`^Starting ${ROOTFS_UNIT.replace('.', '\\.')}`), tSwitch),
    rootfsFailed: pid1.filter((e) => e.t > tSwitch && e.MESSAGE.startsWith(`${ROOTFS_UNIT}: `) &&
      /Failed|timed out|Main process exited|Scheduled restart/.test(e.MESSAGE)),
    initrdDeactivated: firstPid1(new RegExp(`^${INITRD_UNIT.replace('.', '\\.')}: Deactivated successfully\\.$`)),
    initrd,
    rootfs,
    poller,
    initrdPids: [...new Set(initrd.map((e) => e._PID))],
    rootfsPids: [...new Set(rootfs.map((e) => e._PID))],
    listening: find(initrd, new RegExp(`^Listening on UNIX socket ${SOCKET}$`)),
    passing: find(initrd, new RegExp(`^Passing file descriptor for ${SOCKET} to other process$`)),
    returning: find(initrd, /^Returning counter to client and terminating the process$/),
    reading: find(rootfs, new RegExp(`^Reading starting position and taking ownership of socket ${SOCKET}$`)),
    received: find(rootfs, new RegExp(`^Successfully received file descriptor for ${SOCKET}$`)),
    rootfsListening: find(rootfs, /^Listening on UNIX socket /),
    tookOver,
    tookOverPid: tookOver ? tookOver.MESSAGE.match(/^Took over from pid (\d+)/)[1] : undefined,
    initrdTicks: initrd.filter(isTick).map((e) => ({ v: BigInt(e.MESSAGE), e })),
    rootfsTicks: rootfs.filter(isTick).map((e) => ({ v: BigInt(e.MESSAGE), e })),
    pollerFirstReply: find(poller, /^first reply: /),
  };
}

const unquote = (cmdline) => (cmdline ?? '').replace(/^"/, '');

/**
 * The assertions on one boot: [{ key, name, ok, detail }]. survival: how the
 * initrd instance is meant to survive switch-root: 'at' (argv[0] '@', from
 * ExecStart=@... on) or 'key' (SurviveFinalKillSignal=yes alone, no '@';
 * `survive` is the unit's last SurviveFinalKillSignal= in the initrd).
 */
function assertions(run, execStart, survival = 'at', survive = undefined) {
  const f = facts(run);
  const u = (unit) => run.units.get(unit) ?? {};
  const checks = [];
  const check = (key, name, ok, detail) => checks.push({ key, name, ok: Boolean(ok), detail });

  check('collected', 'the boot completed and the check unit collected its results',
    run.complete && run.entries.length > 0 && f.switchRoot,
    run.complete ? `${run.entries.length} journal entries; "Switching root." at ${sec(f.switchRoot?.t)}`
      : `no results in ${run.dir} (see the serial log)`);

  // 1. Serving before sysinit.target, and answering inside the initrd.
  check('early', 'the initrd instance served (READY=1) before sysinit.target, inside the initrd',
    f.listening && f.initrdStarted && f.sysinitInInitrd &&
      f.initrdStarted.t <= f.sysinitInInitrd.t && f.listening.t < f.tSwitch,
    `"Listening on UNIX socket" at ${sec(f.listening?.t)}, unit started (READY=1) at ${sec(f.initrdStarted?.t)}, ` +
      `sysinit.target reached at ${sec(f.sysinitInInitrd?.t)}, switch-root at ${sec(f.switchRoot?.t)}`);
  const p = run.poller;
  check('answered-in-initrd', 'a client inside the initrd was answered (the poller\'s first get_counter)',
    p?.firstReply?.inInitrd && p.firstReply.atUs < f.tSwitch && f.pollerFirstReply && /in the initrd/.test(f.pollerFirstReply.MESSAGE),
    p?.firstReply ? `first reply ${p.firstReply.value} at ${sec(p.firstReply.atUs)} (${p.firstReply.inInitrd ? 'in the initrd' : 'after switch-root'}); ` +
      `${p.answeredInInitrd} answered in the initrd` : 'no poller reply recorded');

  // 2. The process survived switch-root: with '@' from exec on, or (survival
  // 'key') without any '@', by SurviveFinalKillSignal=yes alone.
  const pid = f.initrdPids[0];
  const after = f.initrd.filter((e) => e.t > f.tSwitch);
  const noAt = f.initrd.filter((e) => !unquote(e._CMDLINE).startsWith('@'));
  const withAt = f.initrd.filter((e) => unquote(e._CMDLINE).startsWith('@'));
  const how = survival === 'key'
    ? withAt.length === 0 && f.initrd.length > 0 && !(execStart ?? '@').startsWith('@') &&
      !(execStart ?? '').includes('--survive_systemd_kill_signal') && survive === 'yes'
    : noAt.length === 0 && (execStart ?? '').startsWith('@');
  check('survived', `the initrd instance's process survived "Switching root." (same PID, ${survival === 'key'
    ? 'no \'@\' anywhere: SurviveFinalKillSignal=yes only' : 'argv[0] \'@\''})`,
    f.initrdPids.length === 1 && f.initrd.some((e) => e.t < f.tSwitch) && after.length > 0 && how &&
      f.tookOverPid === pid && u(INITRD_UNIT).ExecMainPID === pid,
    `the initrd's ExecStart=${(execStart ?? '?').split(' ').slice(0, 2).join(' ')} …` +
      `${survive !== undefined ? `, SurviveFinalKillSignal=${survive || '(not set)'}` : ''}; PIDs logging for ${INITRD_UNIT}: ${f.initrdPids.join(', ') || 'none'}; ${after.length} lines after switch-root` +
      `${after[0] ? ` (first: "${after[0].MESSAGE}")` : ''}; successor took over from pid ${f.tookOverPid ?? '?'}; ` +
      `unit's main PID ${u(INITRD_UNIT).ExecMainPID ?? '?'}; _CMDLINE ${survival === 'key'
        ? (withAt.length ? `WITH '@' on ${withAt.length} lines: ${withAt[0]._CMDLINE}` : `'${unquote(f.initrd[0]?._CMDLINE).slice(0, 40)}…' (no '@') on every line`)
        : (noAt.length ? `without '@' on ${noAt.length} lines: ${noAt[0]._CMDLINE}` : `'${unquote(f.initrd[0]?._CMDLINE).slice(0, 40)}…' on every line`)}`);

  // 3. The takeover, READY, and the initrd unit's end.
  check('takeover', 'the rootfs instance took the socket over (the seed\'s log lines, both sides)',
    f.passing && f.returning && f.reading && f.received && f.tookOver && !f.rootfsListening &&
      f.reading.t < f.passing.t && f.passing.t <= f.received.t,
    [f.passing && `initrd: "${f.passing.MESSAGE}" ${sec(f.passing.t)}`, f.returning && `"${f.returning.MESSAGE}" ${sec(f.returning.t)}`,
      f.reading && `rootfs: "${f.reading.MESSAGE}" ${sec(f.reading.t)}`, f.received && `"${f.received.MESSAGE}" ${sec(f.received.t)}`,
      f.tookOver && `"${f.tookOver.MESSAGE}" ${sec(f.tookOver.t)}`, f.rootfsListening && `but it also started fresh: "${f.rootfsListening.MESSAGE}"`]
      .filter(Boolean).join('; ') || 'none of the handoff lines');
  const ru = u(ROOTFS_UNIT);
  check('ready', 'early-service.service reached READY=1 (active/running), first try',
    ru.ActiveState === 'active' && ru.SubState === 'running' && f.rootfsStarted.length === 1 &&
      f.rootfsFailed.length === 0 && f.rootfsPids.length === 1,
    `${ru.ActiveState ?? '?'}/${ru.SubState ?? '?'}, status "${ru.StatusText ?? ''}", started at ${sec(f.rootfsStarted[0]?.t)}; ` +
      `processes: ${f.rootfsPids.join(', ') || 'none'}` +
      `${f.rootfsFailed.length ? `; ${f.rootfsFailed.map((e) => `"${e.MESSAGE}" ${sec(e.t)}`).join('; ')}` : ''}`);
  const iu = u(INITRD_UNIT);
  check('deactivated', 'early-service-initrd.service ended "Deactivated successfully" (exit 0) after the takeover',
    f.initrdDeactivated && f.tookOver && f.initrdDeactivated.t >= f.tookOver.t &&
      iu.ActiveState === 'inactive' && iu.Result === 'success' && iu.ExecMainCode === '1' && iu.ExecMainStatus === '0',
    `"${f.initrdDeactivated?.MESSAGE ?? 'no Deactivated line'}" at ${sec(f.initrdDeactivated?.t)}; ` +
      `${iu.ActiveState ?? '?'}/${iu.SubState ?? '?'}, result ${iu.Result ?? '?'}, exit code ${iu.ExecMainCode ?? '?'} status ${iu.ExecMainStatus ?? '?'}`);

  // 4. Ticks.
  const lastInitrd = f.initrdTicks.at(-1)?.v;
  const firstRootfs = f.rootfsTicks[0]?.v;
  check('ticks-handoff', 'the last initrd tick + 1 = the first rootfs tick',
    lastInitrd !== undefined && firstRootfs !== undefined && lastInitrd + 1n === firstRootfs,
    `last initrd tick ${lastInitrd ?? 'none'} (${sec(f.initrdTicks.at(-1)?.e.t)}), first rootfs tick ${firstRootfs ?? 'none'} (${sec(f.rootfsTicks[0]?.e.t)})`);
  const all = [...f.initrdTicks, ...f.rootfsTicks].map((x) => x.v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const repeated = all.filter((v, i) => i > 0 && v === all[i - 1]);
  const gaps = [];
  for (let i = 1; i < all.length; i++) if (all[i] > all[i - 1] + 1n) gaps.push(`${all[i - 1] + 1n}..${all[i] - 1n}`);
  check('ticks-all', 'no tick value repeated or missing in the whole boot',
    all.length > 0 && all[0] === 0n && repeated.length === 0 && gaps.length === 0,
    `${all.length} ticks, ${all[0] ?? '-'}..${all.at(-1) ?? '-'}; repeated: ${repeated.length ? [...new Set(repeated)].slice(0, 10).join(', ') : 'none'}; ` +
      `missing: ${gaps.length ? gaps.slice(0, 10).join(', ') : 'none'}`);

  // 5. The poller: the path answered throughout.
  check('poller', 'the socket path existed and answered throughout (poller: 0 failed connects, across the handoff)',
    p && p.failed === 0 && p.stopped && p.startedUs < f.tSwitch && f.tookOver && p.lastUs > f.tookOver.t &&
      p.answeredAfterSwitchRoot > 0 && p.counterWentBack === 0,
    p ? `${p.attempts} attempts every ${p.intervalMs} ms from ${sec(p.startedUs)} to ${sec(p.lastUs)}: ${p.answered} answered ` +
      `(${p.answeredInInitrd} in the initrd, ${p.answeredAfterSwitchRoot} after switch-root), ${p.failed} failed` +
      `${p.failed ? ` ${JSON.stringify(p.failures)}, first at ${sec(p.firstFailures[0]?.atUs)}` : ''}; ` +
      `counter went back ${p.counterWentBack} times; longest request ${(p.maxLatencyUs / 1000).toFixed(1)} ms at ${sec(p.maxLatencyAtUs)}`
      : 'no poller summary');
  return { checks, f };
}

const sizes = Object.fromEntries((() => {
  try { return fs.readFileSync(path.join(work, 'image.env'), 'utf8'); } catch { return ''; }
})().split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

let passed = 0;
let failed = 0;
const report = (ok, name, detail, label = ok ? 'pass' : 'FAIL') => {
  if (ok) passed++; else failed++;
  console.log(`${label.padEnd(4)}  ${name}`);
  if (detail) console.log(`        ${detail}`);
};

const keyKnown = sizes.survive_key_known === 'yes';
console.log(`\nearly-service boot test: ${sizes.release ?? 'Debian 12'} (systemd ${sizes.systemd_version ?? '?'}), kernel ${sizes.kernel_version ?? '?'}, Node.js ${sizes.node_version ?? '?'}, QEMU TCG\n`);
console.log('real boot:');
const main = assertions(load(path.join(work, 'main', 'results')), sizes.initrd_execstart);
for (const c of main.checks) report(c.ok, c.name, c.detail);

if (only !== 'main' && keyKnown) {
  // systemd >= 255: the same handoff with the unit setting alone.
  console.log('\nSurviveFinalKillSignal=yes alone (the same image, the initrd instance started without the \'@\'):');
  const survive = assertions(load(path.join(work, 'survive', 'results')), sizes.control_execstart, 'key',
    sizes.initrd_survive_final_kill_signal);
  for (const c of survive.checks) report(c.ok, c.name, c.detail);
}

if (only !== 'main') {
  console.log(keyKnown
    ? '\nnegative control (the same image, the initrd instance started without the \'@\' and with SurviveFinalKillSignal=no):'
    : '\nnegative control (the same image, the initrd instance started without the \'@\'):');
  const control = assertions(load(path.join(work, 'control', 'results')), sizes.control_execstart);
  const expectedToFail = ['survived', 'takeover'];
  for (const c of control.checks) {
    const label = expectedToFail.includes(c.key) ? (c.ok ? 'pass (UNEXPECTED)' : 'fail (expected)') : (c.ok ? 'pass' : 'fail');
    console.log(`  ${label.padEnd(17)}  ${c.name}`);
    if (c.detail) console.log(`                     ${c.detail}`);
  }
  const byKey = Object.fromEntries(control.checks.map((c) => [c.key, c]));
  const withoutAt = control.f.initrd.length > 0 && control.f.initrd.every((e) => !unquote(e._CMDLINE).startsWith('@'));
  // Where the key is known, the control must also have it off.
  const keyOff = !keyKnown || sizes.control_survive_final_kill_signal === 'no';
  report(byKey.collected.ok && withoutAt && keyOff && expectedToFail.every((k) => !byKey[k].ok),
    `negative control: without the '@'${keyKnown ? ' nor SurviveFinalKillSignal=yes' : ''} systemd killed the initrd instance at switch-root, and the survival and takeover assertions failed`,
    `control's initrd instance ran ${withoutAt ? 'without' : 'WITH'} the '@' (${unquote(control.f.initrd[0]?._CMDLINE).slice(0, 60) || 'no lines'})` +
      `${keyKnown ? ` and SurviveFinalKillSignal=${sizes.control_survive_final_kill_signal || '(not set)'}` : ''}; ` +
      `failed as expected: ${expectedToFail.filter((k) => !byKey[k].ok).join(', ') || 'none'}; ` +
      `also failed: ${control.checks.filter((c) => !c.ok && !expectedToFail.includes(c.key)).map((c) => c.key).join(', ') || 'none'}`);
}

// The boot's cost, three ways: the same boot with no service in the initrd,
// with early-service, with the C reference (run.sh's measure/ boots).
let comparison;
if (only !== 'main') {
  const rounds = new Map();
  for (const file of fs.existsSync(path.join(work, 'measure')) ? fs.readdirSync(path.join(work, 'measure')) : []) {
    const match = /^(none|es|c)-(\d+)-serial\.log$/.exec(file);
    if (!match) continue;
    if (!rounds.has(match[1])) rounds.set(match[1], []);
    rounds.get(match[1]).push(bootMoments(path.join(work, 'measure', file)));
  }
  const boots = [
    { key: 'none', label: 'no service', image: 'none' },
    { key: 'es', label: 'early-service', image: 'main' },
    { key: 'c', label: 'C reference', image: 'c' },
  ].map((b) => ({ ...b, runs: rounds.get(b.key) ?? [],
    bytes: Number(sizes[`initrd_${b.image}`]), uncompressed: Number(sizes[`initrd_${b.image}_uncompressed`]) }));
  const n = Math.min(...boots.map((b) => b.runs.length));
  console.log(`\nthe boot's cost, three ways (the same disk and kernel, the initrds differing by the service only; ${n} round(s)):`);
  const unpacked = (m) => m.unpack !== undefined && !m.unpackFailed;
  const describe = (m) => `unpack ${secs(m.unpack)}, "${m.servingText ?? 'no serving mark'}" at ${secs(m.serving ?? m.notServing)}, ` +
    `sysinit.target at ${secs(m.sysinit)}`;
  const [none, es, c] = boots;
  report(none.runs.length > 0 && none.runs.every((m) => unpacked(m) && m.sysinit !== undefined && m.notServing !== undefined),
    'without a service, the initrd was unpacked, reached sysinit.target, and nothing answered on the socket',
    none.runs.map(describe).join('; ') || 'no boot');
  for (const [b, name] of [[es, 'early-service'], [c, 'the C reference']]) {
    report(b.runs.length > 0 && b.runs.every((m) => unpacked(m) && m.ready !== undefined && m.serving !== undefined && m.sysinit !== undefined),
      `${name} served in its initrd (a get_counter answered once it reported READY=1)`, b.runs.map(describe).join('; ') || 'no boot');
  }
  console.log('\n  Medians; kernel printk times from the serial consoles. READY=1: when systemd started the probe ordered after the');
  console.log('  service; first answer: that probe\'s get_counter answered. The early-service initrd also carries the test\'s static');
  console.log(`  poller (${mb(Number(sizes.poller_bytes))} uncompressed). node: ${mb(Number(sizes.node_bytes_rootfs))} on the root file system, ` +
    `${mb(Number(sizes.node_bytes_initrd))} in the initrd. ${sizes.compress ?? '?'}.\n`);
  comparison = printComparison(boots);
  fs.writeFileSync(path.join(work, 'boot-cost.json'), `${JSON.stringify({
    kernel: sizes.kernel_version, node: sizes.node_version, compress: sizes.compress,
    node_bytes_rootfs: Number(sizes.node_bytes_rootfs), node_bytes_initrd: Number(sizes.node_bytes_initrd), ...comparison }, null, 2)}\n`);
}

const f = main.f;
console.log('\ntimings (real boot, journal CLOCK_MONOTONIC; stdout lines are stamped when journald reads them):');
console.log(`  kernel start -> initrd instance serving:  ${sec(f.listening?.t)} ("Listening on UNIX socket"; READY=1 at ${sec(f.initrdStarted?.t)})`);
console.log(`  switch-root -> takeover:                  ${dur(f.switchRoot?.t, f.tookOver?.t)} ("Switching root." ${sec(f.switchRoot?.t)} -> "Took over" ${sec(f.tookOver?.t)}; ` +
  `rootfs unit starting at ${sec(f.rootfsStarting?.t)}, "Reading starting position" at ${sec(f.reading?.t)})`);
console.log(`  takeover -> initrd unit gone:             ${dur(f.tookOver?.t, f.initrdDeactivated?.t)} ("Deactivated successfully" at ${sec(f.initrdDeactivated?.t)})`);
const startMs = f.rootfsStarting && f.rootfsStarted[0] ? (f.rootfsStarted[0].t - f.rootfsStarting.t) / 1e3 : undefined;
const unitLimit = sizes.unit_timeout_start;
const limitMs = unitLimit && /^\d+s?$/.test(unitLimit) ? Number(unitLimit.replace('s', '')) * 1e3 : undefined;
console.log(`  rootfs unit starting -> READY=1:          ${dur(f.rootfsStarting?.t, f.rootfsStarted[0]?.t)} ` +
  `(the unit's TimeoutStartSec=${unitLimit ?? '?'}${sizes.test_timeout_start && sizes.test_timeout_start !== 'unit' ? `, raised to ${sizes.test_timeout_start} in the test image` : ''}` +
  `${startMs !== undefined && limitMs !== undefined && startMs > limitMs ? '; WARNING: over the unit\'s own limit' : ''})`);
if (sizes.initrd_main) {
  const w = Number(sizes.initrd_main);
  const wo = Number(sizes.initrd_none);
  console.log(`  initrd size: ${mb(w)} with the early-service module, ${mb(wo)} without (+${mb(w - wo)}; ${sizes.compress ?? '?'})`);
}
if (comparison) console.log(`  the three-way comparison: ${path.join(work, 'boot-cost.json')}`);

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
