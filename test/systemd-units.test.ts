// The systemd units and the sysusers file in conf/, checked with the real
// tools (systemd-analyze verify, systemd-sysusers; package `systemd`), and the
// unit properties the initrd-to-root-file-system handoff depends on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from './harness';
import { ROOT, tempDir } from './helpers';

const CONF = path.join(ROOT, 'conf');
const INITRD = 'early-service-initrd.service';
const ROOTFS = 'early-service.service';
const DROPIN = path.join(`${INITRD}.d`, '50-survive-final-kill-signal.conf');
const PRESERVE = path.join(`${ROOTFS}.d`, '50-fd-store-preserve.conf');
const SOCKET = '/run/early-service/early-service.sock';
const SCRIPT = '/usr/lib/early-service/early-service.js';
const USER = 'early-service';
/** The V8 settings both units and the launcher run node with (docs/BENCHMARKS.md, "RSS"). */
const NODE_OPTIONS = ['--max-semi-space-size=1', '--single-threaded-gc'];

// ---------------------------------------------------------------- the tools

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: 'cat', ...env };
  // Our own unit search path and log settings, whatever the caller's shell has.
  delete childEnv.SYSTEMD_UNIT_PATH;
  delete childEnv.SYSTEMD_LOG_LEVEL;
  delete childEnv.SYSTEMD_LOG_TARGET;
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, env: childEnv });
  if (result.error !== undefined) {
    assert.fail(`cannot run ${command} (${result.error.message}): these tests need the systemd package `
      + '(Debian: apt-get install --no-install-recommends systemd; scripts/setup-debian.sh installs everything the tests need)');
  }
  return result;
}

/** The major version of the installed systemd-analyze (`systemd 252 (252.38-1~deb12u1)`). */
let version: number | undefined;
function systemdVersion(): number {
  if (version === undefined) {
    const match = /^systemd (\d+)/.exec(run('systemd-analyze', ['--version']).stdout);
    assert.ok(match, 'systemd-analyze --version printed no version');
    version = Number(match[1]);
  }
  return version;
}

/**
 * Copies the units (and drop-ins) into a fresh directory, edited by `edit` if
 * given, with two targets that pull each unit into a boot transaction:
 * systemd-analyze verify starts a job for every unit it is given, and only a
 * transaction that also holds sysinit.target/basic.target (or initrd.target)
 * shows an ordering cycle. Units in the directories of the files named on the
 * command line take precedence over the system's, so these copies are what
 * gets checked.
 */
function stage(t: { after: (fn: () => void) => void }, edit?: { unit: string; change: (text: string) => string }): string {
  const dir = tempDir(t);
  for (const unit of [INITRD, ROOTFS]) {
    let text = fs.readFileSync(path.join(CONF, unit), 'utf8');
    if (edit?.unit === unit) {
      const changed = edit.change(text);
      assert.notEqual(changed, text, `the edit of ${unit} changed nothing`);
      text = changed;
    }
    fs.writeFileSync(path.join(dir, unit), text);
  }
  for (const dropin of [DROPIN, PRESERVE]) {
    fs.mkdirSync(path.join(dir, path.dirname(dropin)), { recursive: true });
    fs.copyFileSync(path.join(CONF, dropin), path.join(dir, dropin));
  }
  fs.writeFileSync(path.join(dir, 'es-verify-rootfs.target'),
    `[Unit]\nDescription=early-service on the root file system\nWants=${ROOTFS} sysinit.target basic.target\n`);
  fs.writeFileSync(path.join(dir, 'es-verify-initrd.target'),
    `[Unit]\nDescription=early-service in the initrd\nWants=${INITRD} sysinit.target initrd.target\n`);
  return dir;
}

/**
 * Runs systemd-analyze verify on the staged units and targets. It exits 0 on
 * unknown keys, unparsable values and ordering cycles it could break by
 * dropping a job: only its output tells, so the output is what is checked.
 */
function verify(dir: string): { status: number | null; lines: string[] } {
  const result = run('systemd-analyze', ['--no-pager', 'verify',
    ...[ROOTFS, INITRD, 'es-verify-rootfs.target', 'es-verify-initrd.target'].map((f) => path.join(dir, f))],
  { SYSTEMD_LOG_LEVEL: 'info' });
  const lines = `${result.stdout}\n${result.stderr}`.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  return { status: result.status, lines };
}

/**
 * The messages older systemd prints for our files: it does not know a key
 * of a newer version and ignores the line (see each drop-in's comment).
 * Accepted from that drop-in only, and only on those versions:
 * SurviveFinalKillSignal= (255) and FileDescriptorStorePreserve= (254).
 */
function knownMessages(dir: string): RegExp[] {
  const unknown = (dropin: string, key: string, section: string): RegExp => {
    const file = path.join(dir, dropin).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return new RegExp(`^${file}:\\d+: Unknown key '?${key}'? in section \\[?'?${section}'?\\]?, ignoring\\.$`);
  };
  const known: RegExp[] = [];
  if (systemdVersion() < 255) known.push(unknown(DROPIN, 'SurviveFinalKillSignal', 'Unit'));
  if (systemdVersion() < 254) known.push(unknown(PRESERVE, 'FileDescriptorStorePreserve', 'Service'));
  return known;
}

function unexpected(dir: string, lines: string[]): string[] {
  const known = knownMessages(dir);
  return lines.filter((l) => !known.some((k) => k.test(l)));
}

// ------------------------------------------------------- unit file contents

type UnitFile = Map<string, Array<[string, string]>>;

/** Sections → assignments in order, as systemd reads them (comments, continuations). */
function parseUnit(text: string): UnitFile {
  const sections: UnitFile = new Map();
  let current: Array<[string, string]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i].trim()}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections.get(section[1]) ?? [];
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current !== undefined && eq > 0, `not an assignment in a section: ${line}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function readUnit(file: string): UnitFile {
  return parseUnit(fs.readFileSync(path.join(CONF, file), 'utf8'));
}

/** Every value assigned to `key` in `section`, in order. */
function values(unit: UnitFile, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

/** The value of a key that must be assigned exactly once. */
function one(unit: UnitFile, section: string, key: string): string {
  const found = values(unit, section, key);
  assert.equal(found.length, 1, `[${section}] ${key}= must be set exactly once, found ${JSON.stringify(found)}`);
  return found[0];
}

/** All space-separated items of a list-valued key (Before=a b, Before=c). */
function items(unit: UnitFile, section: string, key: string): string[] {
  return values(unit, section, key).flatMap((v) => v.split(/\s+/)).filter((v) => v !== '');
}

/** A systemd time span in milliseconds (the forms these units use). */
function ms(span: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|min)?$/.exec(span);
  assert.ok(match, `unexpected time span ${span}`);
  return Number(match[1]) * { ms: 1, s: 1000, min: 60_000 }[match[2] ?? 's']!;
}

// ------------------------------------------------------------------- tests

test('systemd-analyze verify: both units load, and pull into boot transactions, without a warning', (t) => {
  const dir = stage(t);
  const { status, lines } = verify(dir);
  assert.equal(status, 0, lines.join('\n'));
  assert.deepEqual(unexpected(dir, lines), [], `systemd-analyze verify printed:\n${lines.join('\n')}`);
  // That verify read each drop-in at all shows in its one warning, where the version warns.
  for (const known of knownMessages(dir)) assert.equal(lines.filter((l) => known.test(l)).length, 1, lines.join('\n'));
});

// The check above must be able to fail: each broken copy is caught, including
// the mistakes verify reports while still exiting 0.
for (const [what, unit, change, expected] of [
  ['a misspelt key', ROOTFS, (s: string) => s.replace(/^Type=notify$/m, 'Tpye=notify'), /Unknown key '?Tpye/],
  ['a value that does not parse', ROOTFS, (s: string) => s.replace(/^WatchdogSec=.*$/m, 'WatchdogSec=5x'), /Failed to parse/],
  ['a missing executable', ROOTFS, (s: string) => s.replace(/^ExecStart=\/usr\/bin\/node /m, 'ExecStart=/usr/bin/no-such-node '),
    /no-such-node is not executable/],
  ['a cycle verify breaks by dropping our job', ROOTFS, (s: string) => s.replace(/^\[Service\]$/m, '[Unit]\nAfter=basic.target\n[Service]'),
    /ordering cycle/],
  ['the initrd unit with default dependencies', INITRD, (s: string) => s.replace(/^DefaultDependencies=no$/m, ''), /ordering cycle/],
] as Array<[string, string, (s: string) => string, RegExp]>) {
  test(`systemd-analyze verify catches ${what}`, (t) => {
    const dir = stage(t, { unit, change });
    const { lines } = verify(dir);
    const problems = unexpected(dir, lines);
    assert.ok(problems.some((l) => expected.test(l)), `expected ${expected} among:\n${lines.join('\n')}`);
  });
}

test('the initrd unit: runs as root with the @ from exec on, survives isolate, starts only in an initrd', () => {
  const unit = readUnit(INITRD);
  assert.equal(one(unit, 'Unit', 'DefaultDependencies'), 'no');
  assert.ok(items(unit, 'Unit', 'Before').includes('sysinit.target'));
  assert.equal(one(unit, 'Unit', 'IgnoreOnIsolate'), 'yes');
  assert.deepEqual(values(unit, 'Unit', 'ConditionPathExists'), ['/etc/initrd-release']);
  assert.equal(one(unit, 'Service', 'Type'), 'notify');
  // Only root's processes are spared at switch-root.
  assert.deepEqual(values(unit, 'Service', 'User'), [], 'the initrd instance must run as root');
  assert.deepEqual(values(unit, 'Service', 'DynamicUser'), []);
  const argv = one(unit, 'Service', 'ExecStart').split(/\s+/);
  assert.equal(argv[0], '@/usr/bin/node', 'ExecStart= must start with @ so that argv[0] is set from exec on');
  assert.match(argv[1], /^@/, 'argv[0] must start with @');
  // node's own options (--max-semi-space-size=…) come before the script.
  assert.equal(argv.slice(2).find((word) => !word.startsWith('--')), SCRIPT);
  assert.deepEqual(argv.slice(2, argv.indexOf(SCRIPT)), NODE_OPTIONS);
  assert.ok(argv.includes('--survive_systemd_kill_signal'));
  assert.equal(argv[argv.indexOf('-s') + 1], SOCKET);
  assert.ok(!argv.includes('--takeover_existing_socket'));
  assert.deepEqual(values(unit, 'Service', 'WatchdogSec'), []);
  assert.deepEqual(values(unit, 'Service', 'Restart'), []);
  // The socket's group and mode: usable by the service user before systemd
  // chowns the directory to it, by nobody else.
  assert.equal(one(unit, 'Service', 'Group'), USER);
  assert.equal(one(unit, 'Service', 'UMask'), '0007');
  assert.deepEqual(items(unit, 'Install', 'WantedBy'), ['sysinit.target']);
});

test('the SurviveFinalKillSignal= drop-in sets exactly that', () => {
  const dropin = parseUnit(fs.readFileSync(path.join(CONF, DROPIN), 'utf8'));
  assert.deepEqual([...dropin.keys()], ['Unit']);
  assert.deepEqual(dropin.get('Unit'), [['SurviveFinalKillSignal', 'yes']]);
});

test('the fd store drop-in sets exactly FileDescriptorStorePreserve=yes', () => {
  const dropin = parseUnit(fs.readFileSync(path.join(CONF, PRESERVE), 'utf8'));
  assert.deepEqual([...dropin.keys()], ['Service']);
  assert.deepEqual(dropin.get('Service'), [['FileDescriptorStorePreserve', 'yes']]);
});

test('the root file system unit reloads by handing over, keeps its socket and state in the fd store, is bounded', () => {
  const unit = readUnit(ROOTFS);
  assert.equal(one(unit, 'Service', 'NotifyAccess'), 'main');
  const reload = one(unit, 'Service', 'ExecReload').split(/\s+/);
  assert.deepEqual(reload.slice(0, 3), ['/usr/bin/node', SCRIPT, 'reload']);
  assert.equal(reload[reload.indexOf('-s') + 1], SOCKET);
  assert.ok(one(unit, 'Service', 'ExecStart').split(/\s+/).includes('--fd-store'));
  // The listener and the state page, and room for a replacement in flight.
  assert.ok(Number(one(unit, 'Service', 'FileDescriptorStoreMax')) >= 4);
  assert.match(one(unit, 'Service', 'MemoryMax'), /^[0-9]+[KMG]$/);
  assert.ok(Number(one(unit, 'Service', 'TasksMax')) >= 32);
  // --max-connections' default, as many again received in a handoff, and the process's own.
  assert.ok(Number(one(unit, 'Service', 'LimitNOFILE')) >= 2100);
});

test('sandboxing: the root file system unit scores SAFE; the initrd unit takes none that needs a mount namespace', () => {
  const result = run('systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(CONF, ROOTFS)]);
  const exposure = /Overall exposure level for [^:]+: ([0-9.]+) (\S+)/.exec(result.stdout);
  assert.ok(exposure !== null, `${result.stdout}\n${result.stderr}`);
  assert.ok(Number(exposure[1]) <= 1.5, `exposure ${exposure[1]} ${exposure[2]}`);
  // A mount namespace built in the initrd would keep the initrd's mounts after switch-root.
  const initrd = readUnit(INITRD);
  for (const key of ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables',
    'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectProc', 'ProcSubset', 'ProtectHostname',
    'ProtectClock', 'ReadOnlyPaths', 'InaccessiblePaths', 'TemporaryFileSystem', 'BindPaths', 'PrivateMounts', 'RootDirectory']) {
    assert.deepEqual(values(initrd, 'Service', key), [], `${key}= in the initrd unit`);
  }
  assert.equal(one(initrd, 'Service', 'NoNewPrivileges'), 'yes');
  assert.equal(one(initrd, 'Service', 'RestrictAddressFamilies'), 'AF_UNIX');
});

test('the root file system unit: takes over as the service user, restarts, has a watchdog', () => {
  const unit = readUnit(ROOTFS);
  assert.equal(one(unit, 'Unit', 'DefaultDependencies'), 'no');
  for (const after of ['systemd-sysusers.service', 'local-fs.target']) assert.ok(items(unit, 'Unit', 'After').includes(after), after);
  for (const before of ['sysinit.target', 'shutdown.target']) assert.ok(items(unit, 'Unit', 'Before').includes(before), before);
  assert.ok(items(unit, 'Unit', 'Conflicts').includes('shutdown.target'));
  // Stopping the donor before the handoff would lose its clients.
  for (const key of ['Conflicts', 'Before', 'After', 'Requires', 'BindsTo']) {
    assert.ok(!items(unit, 'Unit', key).includes(INITRD), `${key}=${INITRD}`);
  }
  assert.deepEqual(values(unit, 'Unit', 'ConditionPathExists'), []);
  assert.equal(one(unit, 'Service', 'Type'), 'notify');
  assert.equal(one(unit, 'Service', 'User'), USER);
  assert.equal(one(unit, 'Service', 'Group'), USER);
  const argv = one(unit, 'Service', 'ExecStart').split(/\s+/);
  assert.equal(argv[0], '/usr/bin/node');
  assert.equal(argv.slice(1).find((word) => !word.startsWith('--')), SCRIPT);
  assert.deepEqual(argv.slice(1, argv.indexOf(SCRIPT)), NODE_OPTIONS);
  assert.ok(argv.includes('--takeover_existing_socket'));
  assert.ok(!argv.includes('--takeover-required'), 'a restarted instance must be able to start fresh');
  assert.equal(argv[argv.indexOf('-s') + 1], SOCKET);
  const stateFile = argv[argv.indexOf('--state-file') + 1];
  assert.equal(path.dirname(stateFile), `/var/lib/${one(unit, 'Service', 'StateDirectory')}`);
  assert.equal(one(unit, 'Service', 'Restart'), 'on-failure');
  assert.ok(ms(one(unit, 'Service', 'RestartSec')) <= 1000, 'restart quickly');
  // The default limit (5 starts in 10 s) would give up on a service that crashes now and then.
  assert.ok(Number(one(unit, 'Unit', 'StartLimitBurst')) >= 10);
  assert.ok(ms(one(unit, 'Unit', 'StartLimitIntervalSec')) > 0);
  assert.ok(ms(one(unit, 'Service', 'WatchdogSec')) >= 1000);
  // SIGTERM waits for a handoff in progress (--handoff-timeout, 5 s by default).
  assert.ok(ms(one(unit, 'Service', 'TimeoutStopSec')) > 5000);
  assert.ok(ms(one(unit, 'Service', 'TimeoutStartSec')) > 5000);
  assert.equal(one(unit, 'Service', 'UMask'), '0007');
  // V8 needs writable+executable memory; PrivateTmp= would order this after tmp.mount.
  assert.deepEqual(values(unit, 'Service', 'MemoryDenyWriteExecute'), []);
  assert.deepEqual(values(unit, 'Service', 'PrivateTmp'), []);
  assert.deepEqual(items(unit, 'Install', 'WantedBy'), ['sysinit.target']);
});

test('both units share the socket directory, which outlives each of them, with the same mode', () => {
  const initrd = readUnit(INITRD);
  const rootfs = readUnit(ROOTFS);
  for (const unit of [initrd, rootfs]) {
    assert.equal(one(unit, 'Service', 'RuntimeDirectory'), path.basename(path.dirname(SOCKET)));
    assert.equal(one(unit, 'Service', 'RuntimeDirectoryPreserve'), 'yes');
  }
  assert.equal(one(initrd, 'Service', 'RuntimeDirectoryMode'), one(rootfs, 'Service', 'RuntimeDirectoryMode'));
  // The group must be able to reach the socket (search permission) in the initrd.
  assert.ok((parseInt(one(initrd, 'Service', 'RuntimeDirectoryMode'), 8) & 0o010) !== 0);
  // The daemon the units start is where scripts/install.sh puts it.
  assert.ok(fs.readFileSync(path.join(ROOT, 'scripts', 'install.sh'), 'utf8')
    .includes(`"$lib${SCRIPT.replace(/^\/usr\/lib/, '')}"`), `install.sh does not install ${SCRIPT}`);
});

test('systemd-sysusers creates the early-service system user and group, without a login', (t) => {
  const root = tempDir(t);
  fs.mkdirSync(path.join(root, 'etc'));
  const result = run('systemd-sysusers', [`--root=${root}`, path.join(CONF, 'early-service.sysusers')]);
  assert.equal(result.status, 0, result.stderr);
  const passwd = fs.readFileSync(path.join(root, 'etc', 'passwd'), 'utf8').split('\n').filter((l) => l.startsWith(`${USER}:`));
  const group = fs.readFileSync(path.join(root, 'etc', 'group'), 'utf8').split('\n').filter((l) => l.startsWith(`${USER}:`));
  assert.equal(passwd.length, 1, `etc/passwd: ${passwd.join('\n')}`);
  assert.equal(group.length, 1, `etc/group: ${group.join('\n')}`);
  const [, , uid, gid, , home, shell] = passwd[0].split(':');
  assert.ok(Number(uid) > 0 && Number(uid) < 1000, `uid ${uid} is not a system uid`);
  assert.equal(gid, group[0].split(':')[2], 'the primary group is the early-service group');
  assert.equal(home, '/');
  assert.match(shell, /\/nologin$/);
  // The user the rootfs unit runs as and the group the initrd unit uses.
  assert.equal(one(readUnit(ROOTFS), 'Service', 'User'), USER);
  assert.equal(one(readUnit(INITRD), 'Service', 'Group'), USER);
});
