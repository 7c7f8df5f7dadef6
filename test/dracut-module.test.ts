// The dracut module (dracut/module-setup.sh) in real initrds: the product is
// installed with scripts/install.sh into a scratch root, initrds are built with
// the system's dracut and read back with lsinitrd.
//
// dracut reads the files of the system it runs on. So that it sees the product
// without anything being installed on this machine, each dracut run happens in
// a private mount namespace (unshare -m) where /usr and /etc are read-only
// overlays: the scratch root on top of the machine's own. Nothing outside the
// namespace sees them, and dracut cannot write to /usr or /etc; its temporary
// files and the images go to a scratch directory. /boot and the machine's
// /usr/lib/dracut are never touched. dracut's configuration is ignored
// (--conf /dev/null, an empty --confdir) so the host's cannot change the result.
//
// Needs root (mounts), dracut (Debian: dracut-core; lsinitrd comes with it)
// and binutils (the module strips node; the tests read ELF sections). Without
// them every test here fails, saying which package to install: a skip would
// pass CI unseen.
import { after, before, describe } from 'node:test';
import { test } from './harness';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, request } from './helpers';

const BUNDLE = path.join(ROOT, 'dist', 'bundle');
const INSTALL = path.join(ROOT, 'scripts', 'install.sh');
const UNITDIR = 'usr/lib/systemd/system';
const DROPIN_DIR = `${UNITDIR}/early-service-initrd.service.d`;
const WANTS = 'etc/systemd/system/sysinit.target.wants/early-service-initrd.service';
// Fast compression: the tests compare sizes, they do not ship the images.
const COMPRESS = 'zstd -q -3 -T0';

interface Run { status: number | null; stdout: string; stderr: string; output: string }

function run(command: string, args: string[], cwd?: string): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, cwd });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr };
}

function mustRun(command: string, args: string[], cwd?: string): string {
  const result = run(command, args, cwd);
  assert.equal(result.status, 0, `${command} ${args.join(' ')} exited ${result.status}:\n${result.output}`);
  return result.stdout;
}

/** Why these tests cannot run here, or undefined if they can. */
function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) {
    return 'the dracut module tests need root (they mount overlays in a private mount namespace); run them as root';
  }
  // Each tool and the Debian package that has it.
  const tools: Array<[string, string]> = [['dracut', 'dracut-core'], ['lsinitrd', 'dracut-core'], ['cpio', 'cpio'],
    ['unshare', 'util-linux'], ['systemctl', 'systemd'], ['systemd-sysusers', 'systemd'], ['zstd', 'zstd'],
    ['strip', 'binutils'], ['readelf', 'binutils']];
  for (const [tool, pkg] of tools) {
    if (run('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) {
      return `${tool} is not installed; the dracut module tests need it (Debian: apt-get install --no-install-recommends ${pkg}; `
        + 'scripts/setup-debian.sh installs everything the tests need)';
    }
  }
  for (const file of ['early-service.js', 'early_service.node', 'early-service']) {
    if (!fs.existsSync(path.join(BUNDLE, file))) {
      return `${path.join(BUNDLE, file)} is missing: run 'npm run build' (npm ci does) before the tests`;
    }
  }
  return undefined;
}

let scratch = '';

/**
 * A root with the product installed by install.sh, the host's accounts plus the
 * service user (systemd-sysusers, as the package's postinst would), and
 * early-service.service enabled or not.
 */
function makeRoot(name: string, enabled: boolean): string {
  const root = path.join(scratch, name);
  mustRun(INSTALL, ['--destdir', root]);
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  // The top layer's files hide the host's: copy them, so that only the new
  // account differs. (shadow files too: sysusers would create them otherwise.)
  for (const file of ['passwd', 'group', 'shadow', 'gshadow']) {
    if (fs.existsSync(`/etc/${file}`)) fs.copyFileSync(`/etc/${file}`, path.join(root, 'etc', file));
  }
  mustRun('systemd-sysusers', [`--root=${root}`]);
  if (enabled) mustRun('systemctl', [`--root=${root}`, '--quiet', 'enable', 'early-service.service']);
  return root;
}

interface Build {
  image: string; output: string; bytes: number; files: string[]; modules: string[];
  /** Each regular file's size, as lsinitrd lists it (the uncompressed bytes). */
  sizes: Map<string, number>;
}

/**
 * Builds an initrd with the machine's dracut, seeing `root`'s /usr and /etc
 * over the machine's. `modules` lists exactly the dracut modules to include;
 * without it dracut decides with each module's check(), every module except
 * systemd and early-service being omitted.
 */
function buildInitrd(root: string, name: string, options: { hostonly?: boolean; modules?: string; dracutArgs?: string[] }): Build {
  const image = path.join(scratch, `${name}.img`);
  const tmp = path.join(scratch, 'tmp');
  const confdir = path.join(scratch, 'dracut.conf.d');
  fs.mkdirSync(tmp, { recursive: true });
  fs.mkdirSync(confdir, { recursive: true });
  // Extra dracut arguments come last on the command line: "$@" after shift 6.
  const script = `
set -eu
root=$1; image=$2; tmp=$3; confdir=$4; hostonly=$5; modules=$6; shift 6
mount -t overlay overlay -o ro,lowerdir="$root/usr:/usr" /usr
mount -t overlay overlay -o ro,lowerdir="$root/etc:/etc" /etc
if [ -n "$modules" ]; then
  set -- -m "$modules" "$@"
else
  omit=
  for m in $(dracut --list-modules --no-kernel 2>/dev/null); do
    case $m in systemd|early-service) ;; *) omit="$omit $m" ;; esac
  done
  set -- -o "$omit" "$@"
fi
exec dracut --conf /dev/null --confdir "$confdir" --tmpdir "$tmp" "$hostonly" --no-kernel \\
  --no-early-microcode --compress "${COMPRESS}" --force "$@" "$image" "$(uname -r)"
`;
  const result = run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
    root, image, tmp, confdir, options.hostonly ? '--hostonly' : '--no-hostonly', options.modules ?? '',
    ...(options.dracutArgs ?? [])]);
  assert.equal(result.status, 0, `dracut exited ${result.status}:\n${result.output}`);
  const listing = mustRun('lsinitrd', [image]);
  // Paths as lsinitrd lists them: "-rw-r--r-- 1 root root 123 Nov 28 07:49 usr/bin/node" (symlinks "a -> b").
  const entries = listing.split('\n')
    .map((line) => /^([-dlcbps])[rwxsStT-]{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ type: match[1], size: Number(match[2]), path: match[3].replace(/ -> .*$/, '') }));
  const files = entries.map((entry) => entry.path);
  const sizes = new Map(entries.filter((entry) => entry.type === '-').map((entry) => [entry.path, entry.size]));
  assert.ok(files.includes('usr/bin'), `lsinitrd listed no usr/bin:\n${files.join('\n')}`);
  // Its header lists the dracut modules the image was built with.
  const modules = (/^dracut modules:\n([^]*?)^=+$/m.exec(listing)?.[1] ?? '').split('\n').filter(Boolean);
  return { image, output: result.output, bytes: fs.statSync(image).size, files, modules, sizes };
}

/** dracut's complaints about our module: helper failures and our own dwarn/derror lines. */
function moduleProblems(output: string): string[] {
  return output.split('\n').filter((line) => /FAILED|could not install|no 'early-service'/.test(line));
}

function dropIns(root: string): string[] {
  const dir = path.join(root, DROPIN_DIR);
  return fs.readdirSync(dir).filter((f) => f.endsWith('.conf')).map((f) => `${DROPIN_DIR}/${f}`);
}

function accountLine(root: string, file: 'passwd' | 'group'): string {
  const line = fs.readFileSync(path.join(root, 'etc', file), 'utf8').split('\n').find((l) => l.startsWith('early-service:'));
  assert.ok(line, `systemd-sysusers wrote no early-service line to ${root}/etc/${file}`);
  return line;
}

const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The size of `strip --strip-all` of the machine's node: what the module should put into the initrd. */
function strippedNodeBytes(): number {
  const copy = path.join(scratch, 'node.stripped');
  mustRun('strip', ['--strip-all', '-o', copy, '/usr/bin/node']);
  return fs.statSync(copy).size;
}

/** The ELF section names of a file (readelf). */
function sections(file: string): string[] {
  return mustRun('readelf', ['-S', '-W', file]).split('\n')
    .map((line) => /^\s*\[\s*\d+\]\s+(\S+)/.exec(line)?.[1]).filter((name): name is string => name !== undefined);
}

/**
 * The shared libraries a binary links, as the dynamic loader resolves them
 * (ldd): every name a library is reached by, link and target, without its
 * directory (/lib and /usr/lib are one directory on Debian 12).
 */
function linkedLibraries(binary: string): Set<string> {
  const names = new Set<string>();
  for (const line of mustRun('ldd', [binary]).split('\n')) {
    const resolved = /=>\s+(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (!resolved) continue;
    names.add(path.basename(resolved));
    names.add(path.basename(fs.realpathSync(resolved)));
  }
  return names;
}

describe('dracut module', { concurrency: 1 }, () => {
  let enabledRoot = '';
  let disabledRoot = '';
  let enabled: Build | undefined;
  // Why the tests cannot run: each one fails with it (a failing hook would
  // only count them as cancelled).
  let cannotRun: string | undefined;
  const ready = () => { if (cannotRun) assert.fail(cannotRun); };

  before(() => {
    cannotRun = missingPrerequisite();
    if (cannotRun) return;
    try {
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'es-dracut-'));
      enabledRoot = makeRoot('enabled', true);
      disabledRoot = makeRoot('disabled', false);
    } catch (error) {
      cannotRun = `setting up the scratch roots failed: ${(error as Error).message}`;
    }
  });
  after(() => { if (scratch) fs.rmSync(scratch, { recursive: true, force: true }); });

  test('with early-service.service enabled, the initrd has the initrd instance and starts it', () => {
    ready();
    // Not named with -m: the module's check() includes it, as in a default build.
    const build = buildInitrd(enabledRoot, 'enabled', {});
    assert.deepEqual(moduleProblems(build.output), [], build.output);
    assert.deepEqual(build.modules, ['systemd', 'early-service'], build.output);
    assert.ok(dropIns(enabledRoot).length > 0, `install.sh installed no drop-in into ${DROPIN_DIR}`);
    for (const file of [
      'usr/bin/node',
      'usr/lib/early-service/early-service.js',
      'usr/lib/early-service/early_service.node',
      `${UNITDIR}/early-service-initrd.service`,
      ...dropIns(enabledRoot),
      WANTS,
    ]) {
      assert.ok(build.files.includes(file), `${file} is not in the initrd`);
    }
    // The rootfs instance never runs in the initrd.
    assert.deepEqual(build.files.filter((f) => f.endsWith('/early-service.service')), []);
    // The account, with the numbers the root has.
    const lines = mustRun('lsinitrd', [build.image, 'etc/passwd', 'etc/group']).split('\n');
    for (const file of ['passwd', 'group'] as const) {
      assert.ok(lines.includes(accountLine(enabledRoot, file)), `etc/passwd and etc/group in the initrd:\n${lines.join('\n')}`);
    }
    enabled = build;
  });

  test("the initrd unit's command serves, with nothing but the initrd's files around it: the stripped node runs the bundle and the addon",
    async (t) => {
    ready();
    assert.ok(enabled, 'no initrd: the first test failed');
    const tree = path.join(scratch, 'unpacked');
    fs.mkdirSync(tree);
    mustRun('lsinitrd', ['--unpack', enabled.image], tree);
    // node as `strip --strip-all` leaves it: no symbol table (dracut's own
    // `strip -g` keeps it), N-API's dynamic symbols still there for the addon.
    const node = path.join(tree, 'usr', 'bin', 'node');
    assert.equal(fs.statSync(node).size, strippedNodeBytes(), 'the initrd\'s node is not /usr/bin/node stripped with --strip-all');
    assert.ok(!sections(node).includes('.symtab'), 'the initrd\'s node still has a .symtab');
    assert.ok(sections(node).includes('.dynsym'), 'the initrd\'s node lost its .dynsym');
    // ExecStart=@/usr/bin/node @early-service /usr/lib/early-service/early-service.js ... -s PATH:
    // with a leading '@' the second word is argv[0] (which chroot cannot set; the daemon does not need it).
    const unit = fs.readFileSync(path.join(tree, UNITDIR, 'early-service-initrd.service'), 'utf8');
    const words = /^ExecStart=(.*)$/m.exec(unit)?.[1].trim().split(/\s+/) ?? [];
    assert.ok(words.length > 0, `no ExecStart= in the initrd unit:\n${unit}`);
    const program = words[0].replace(/^[-@:+!]+/, '');
    const args = words.slice(words[0].startsWith('@') ? 2 : 1);
    const socketPath = args[args.indexOf('-s') + 1];
    assert.ok(args.includes('-s') && socketPath.startsWith('/run/'), `ExecStart= serves no socket under /run: ${words.join(' ')}`);
    // What RuntimeDirectory= would have created.
    fs.mkdirSync(path.join(tree, path.dirname(socketPath)), { recursive: true });
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn('chroot', [tree, program, ...args, '--log-format', 'journal'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => { child.kill('SIGKILL'); });
    let output = '';
    child.on('error', (error) => { output += `${error.message}\n`; });
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const deadline = Date.now() + 10_000;
    while (!output.includes(`Listening on UNIX socket ${socketPath}`)) {
      assert.ok(Date.now() < deadline && child.exitCode === null,
        `${program} ${args.join(' ')} did not serve in the initrd's tree:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const socket = path.join(tree, socketPath);
    assert.match(await request(socket, 'set_counter 41\n'), /^previous value -?\d+\n$/);
    // 41, or a little more if it ticked meanwhile.
    const counter = Number(await request(socket, 'get_counter\n'));
    assert.ok(counter >= 41 && counter < 100, `get_counter answered ${counter} after set_counter 41`);
  });

  test('what the module adds to the initrd: the product, node and the libraries node and the addon link, nothing else', (t) => {
    ready();
    const withModule = enabled;
    assert.ok(withModule, 'no initrd: the first test failed');
    const without = buildInitrd(enabledRoot, 'without', { modules: 'systemd' });
    assert.deepEqual(without.modules, ['systemd'], without.output);
    const before = new Set(without.files);
    const added = withModule.files.filter((f) => !before.has(f));
    // What dracut-install pulled in besides the files named in install().
    const libraries = added.filter((f) => /\.so(\.\d+)*$/.test(f));
    const linked = new Set([...linkedLibraries('/usr/bin/node'), ...linkedLibraries(path.join(BUNDLE, 'early_service.node'))]);
    assert.deepEqual(libraries.filter((f) => !linked.has(path.basename(f))), [],
      `libraries in the initrd that neither node nor the addon links (ldd: ${[...linked].join(' ')})`);
    const product = new Set(['usr/bin/node', 'usr/lib/early-service', 'usr/lib/early-service/early-service.js',
      'usr/lib/early-service/early_service.node', `${UNITDIR}/early-service-initrd.service`, DROPIN_DIR,
      ...dropIns(enabledRoot), path.dirname(WANTS), WANTS]);
    assert.deepEqual(added.filter((f) => !product.has(f) && !libraries.includes(f)), [],
      'files the module added besides the product, node and its libraries');

    const bytes = (build: Build, files: string[]) => files.reduce((sum, f) => sum + (build.sizes.get(f) ?? 0), 0);
    const uncompressed = (build: Build) => bytes(build, [...build.sizes.keys()]);
    const addedBytes = withModule.bytes - without.bytes;
    const addedUncompressed = uncompressed(withModule) - uncompressed(without);
    t.diagnostic(`initrd (${COMPRESS}, modules systemd + early-service): ${without.bytes} bytes (${MiB(without.bytes)}) `
      + `without the module, ${withModule.bytes} bytes (${MiB(withModule.bytes)}) with it: it adds ${addedBytes} bytes (${MiB(addedBytes)}); `
      + `uncompressed ${uncompressed(without)} -> ${uncompressed(withModule)} (+${addedUncompressed}, ${MiB(addedUncompressed)})`);
    t.diagnostic(`node: ${fs.statSync('/usr/bin/node').size} bytes on this machine, ${withModule.sizes.get('usr/bin/node')} in the initrd (stripped)`);
    t.diagnostic(`libraries the module added for node and the addon (the others were there already): ${
      libraries.map((f) => `${f} ${withModule.sizes.get(f) ?? '(link)'}`).join(', ') || 'none'} = ${bytes(withModule, libraries)} bytes`);
    assert.ok(addedBytes > 0);
  });

  test('with dracut --nostrip (do_strip="no"), the module leaves node as it is', () => {
    ready();
    const build = buildInitrd(enabledRoot, 'nostrip', { dracutArgs: ['--nostrip'] });
    assert.deepEqual(moduleProblems(build.output), [], build.output);
    assert.equal(build.sizes.get('usr/bin/node'), fs.statSync('/usr/bin/node').size, 'node was stripped in spite of --nostrip');
  });

  test('with early-service.service disabled, a generic initrd carries the files but does not start them', () => {
    ready();
    const build = buildInitrd(disabledRoot, 'disabled', {});
    assert.deepEqual(moduleProblems(build.output), [], build.output);
    assert.deepEqual(build.modules, ['systemd', 'early-service'], build.output);
    for (const file of ['usr/bin/node', 'usr/lib/early-service/early-service.js', 'usr/lib/early-service/early_service.node',
      `${UNITDIR}/early-service-initrd.service`, ...dropIns(disabledRoot)]) {
      assert.ok(build.files.includes(file), `${file} is not in the initrd`);
    }
    assert.ok(!build.files.includes(WANTS), `${WANTS} is in the initrd although early-service.service is disabled`);
    assert.match(build.output,
      /early-service-initrd\.service installed but not enabled in the initrd, because early-service\.service is disabled/);
  });

  test('with early-service.service disabled, a host-only initrd leaves the module out', () => {
    ready();
    const build = buildInitrd(disabledRoot, 'hostonly', { hostonly: true });
    // check() answers 255 (only if asked for); nothing else needed systemd either.
    assert.ok(!build.modules.includes('early-service'), `${build.modules.join(' ')}\n${build.output}`);
    assert.deepEqual(build.files.filter((f) => f.includes('early-service') || f === 'usr/bin/node'), [], build.output);
  });
});
