// The RPM: scripts/create-rpm.sh builds it from this tree (offline rpmbuild of
// conf/early-service.spec), and it holds exactly what scripts/install.sh
// installs, a loadable x86-64 addon and a bundle that starts.
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from './harness';
import { ROOT } from './helpers';

const SCRIPT = path.join(ROOT, 'scripts', 'create-rpm.sh');
const SPEC = path.join(ROOT, 'conf', 'early-service.spec');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const UNITS = '/usr/lib/systemd/system';

function env(): NodeJS.ProcessEnv {
  const childEnv = { ...process.env };
  delete childEnv.NODE_EXTRA_CA_CERTS;
  return childEnv;
}

function run(command: string, args: string[], options: { cwd?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    encoding: 'utf8', env: env(), maxBuffer: 256 * 1024 * 1024, timeout: options.timeout ?? 60_000, cwd: options.cwd,
  });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  return result;
}

/** stdout of a command that must succeed. */
function output(command: string, args: string[], options: { cwd?: string } = {}): string {
  const result = run(command, args, options);
  assert.equal(result.status, 0, `${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

function onPath(tool: string): boolean {
  return run('sh', ['-c', 'command -v "$1"', 'sh', tool]).status === 0;
}

/** What install.sh installs, directories the package owns included. */
function expectedFiles(): string[] {
  const files = [
    '/usr/bin/early-service',
    '/usr/lib/early-service',
    '/usr/lib/early-service/early-service',
    '/usr/lib/early-service/early-service.js',
    '/usr/lib/early-service/early_service.node',
    `${UNITS}/early-service.service`,
    `${UNITS}/early-service-initrd.service`,
    '/usr/lib/sysusers.d/early-service.conf',
    '/usr/lib/dracut/modules.d/99early-service',
    '/usr/lib/dracut/modules.d/99early-service/module-setup.sh',
    '/usr/lib/dracut/modules.d/99early-service/compress.conf.example',
  ];
  const conf = path.join(ROOT, 'conf');
  for (const dropIn of fs.readdirSync(conf).filter((name) => name.endsWith('.service.d'))) {
    files.push(`${UNITS}/${dropIn}`);
    for (const file of fs.readdirSync(path.join(conf, dropIn)).filter((name) => name.endsWith('.conf'))) {
      files.push(`${UNITS}/${dropIn}/${file}`);
    }
  }
  return files.sort();
}

test('the spec\'s default version is package.json\'s', () => {
  const spec = fs.readFileSync(SPEC, 'utf8');
  const match = /^%\{!\?es_version:%global es_version (\S+)\}$/m.exec(spec);
  assert.ok(match, 'no default es_version in the spec');
  assert.equal(match[1], VERSION.replace(/-/g, '~'));
});

test('create-rpm.sh builds an RPM with the installed tree, the nodejs dependency, a loadable addon and a bundle that starts',
  { timeout: 900_000 }, async (t) => {
    const missing = ['rpmbuild', 'rpm', 'rpm2cpio', 'cpio'].filter((tool) => !onPath(tool));
    assert.deepEqual(missing, [], `missing ${missing.join(', ')}: building the RPM needs them ` +
      '(Debian: apt-get install --no-install-recommends rpm cpio, or scripts/setup-debian.sh for everything the tests need; '
      + 'Fedora/CentOS: dnf install rpm-build cpio)');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-rpm-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const topdir = path.join(dir, 'rpmbuild');
    const build = run('bash', [SCRIPT, '--topdir', topdir], { timeout: 840_000 });
    assert.equal(build.status, 0, `create-rpm.sh failed (${build.status}):\n${build.stderr.slice(-20_000)}`);
    const rpm = build.stdout.trim().split('\n').pop() ?? '';
    assert.equal(rpm, path.join(topdir, 'RPMS', 'x86_64', `early-service-${VERSION.replace(/-/g, '~')}-1.x86_64.rpm`),
      build.stdout);
    assert.ok(fs.existsSync(rpm), rpm);

    await t.test('the file list is exactly what install.sh installs', () => {
      const listed = output('rpm', ['-qlp', rpm]).trim().split('\n');
      // rpmbuild adds /usr/lib/.build-id links to ELF objects (here: the addon) on its own.
      const buildIds = listed.filter((file) => file === '/usr/lib/.build-id' || file.startsWith('/usr/lib/.build-id/'));
      assert.deepEqual(listed.filter((file) => !buildIds.includes(file)).sort(), expectedFiles());
      assert.ok(listed.some((file) => file.startsWith(`${UNITS}/early-service-initrd.service.d/`) && file.endsWith('.conf')),
        'no drop-in for the initrd unit');
    });

    await t.test('it is an x86_64 package of this version that requires Node.js >= 20 at /usr/bin/node', () => {
      assert.equal(output('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{ARCH}', rpm]),
        `early-service ${VERSION.replace(/-/g, '~')} x86_64`);
      const requires = output('rpm', ['-qp', '--requires', rpm]).trim().split('\n').map((line) => line.trim());
      assert.ok(requires.some((line) => /^nodejs\b/.test(line)), requires.join('\n'));
      assert.ok(requires.includes('nodejs(engine) >= 20'), requires.join('\n'));
      assert.ok(requires.includes('/usr/bin/node'), requires.join('\n'));
      assert.match(output('rpm', ['-qp', '--qf', '%{LICENSE}', rpm]), /^Apache-2\.0$/);
    });

    await t.test('its scriptlets create the user and never rebuild an initrd', () => {
      const scripts = output('rpm', ['-qp', '--scripts', rpm]);
      assert.match(scripts, /preinstall scriptlet[^]*systemd-sysusers[^]*early-service/);
      assert.match(scripts, /postinstall scriptlet[^]*early-service\.service/);
      // An upgrade reloads the running instance (a handoff to the new program), restarting only if that fails.
      const postun = /postuninstall scriptlet[^\n]*\n([^]*?)(?=\n\S+ scriptlet|$)/.exec(scripts)?.[1] ?? '';
      assert.match(postun, /try-reload-or-restart early-service\.service|mark-reload-system-units early-service\.service/, postun);
      // A restart only as the fallback of a failed reload, never instead of one.
      for (const line of postun.split('\n').filter((l) => /try-restart/.test(l))) assert.match(line, /^\s*systemctl try-restart .*\|\| :$/, postun);
      const commands = scripts.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
      assert.doesNotMatch(commands, /dracut|kernel-install|mkinitrd/);
    });

    await t.test('its payload: an x86-64 ELF shared object that node loads, a bundle that parses and starts', () => {
      const root = path.join(dir, 'payload');
      fs.mkdirSync(root);
      output('sh', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet --no-absolute-filenames', 'sh', rpm], { cwd: root });
      const lib = path.join(root, 'usr', 'lib', 'early-service');

      const addon = path.join(lib, 'early_service.node');
      const header = fs.readFileSync(addon).subarray(0, 20);
      assert.deepEqual([...header.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'not ELF');
      assert.equal(header[4], 2, 'not ELFCLASS64');
      assert.equal(header[5], 1, 'not little-endian');
      assert.equal(header.readUInt16LE(16), 3, 'not ET_DYN (a shared object)');
      assert.equal(header.readUInt16LE(18), 62, 'not EM_X86_64');
      output(process.execPath, ['-e', 'require(process.argv[1])', addon]);

      const bundle = path.join(lib, 'early-service.js');
      const check = run(process.execPath, ['--check', bundle]);
      assert.equal(check.status, 0, check.stderr);

      assert.equal(fs.readlinkSync(path.join(root, 'usr', 'bin', 'early-service')), '../lib/early-service/early-service');
      assert.equal(output('sh', [path.join(root, 'usr', 'bin', 'early-service'), '--version']), `${VERSION}\n`);
    });
  });
