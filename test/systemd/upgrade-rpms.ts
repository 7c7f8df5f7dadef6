// Two RPMs of this tree that differ only in their version, for the upgrade
// scenario: scripts/create-rpm.sh takes the version from package.json (the
// bundle's `early-service -V` too), so each is built from a copy of the
// tree with package.json's (and package-lock.json's) version changed.
// Cached under the harness's cache by a hash of the tree's files (those
// create-rpm.sh packs: tracked, and untracked ones not ignored), so the two
// Debian versions, and later runs on the same tree, share one build.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './harness';

export interface UpgradeRpm {
  /** npm's spelling (package.json, `early-service -V`). */
  version: string;
  /** RPM's (create-rpm.sh turns '-' into '~'). */
  rpmVersion: string;
  file: string;
}

/** The files create-rpm.sh puts into the source tarball. */
function treeFiles(): string[] {
  const listed = spawnSync('git', ['-C', REPO, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`);
  return [...new Set(listed.stdout.split('\0').filter((f) => f !== ''))]
    .filter((f) => fs.existsSync(path.join(REPO, f))).sort();
}

function treeKey(files: string[]): string {
  const hash = crypto.createHash('sha256');
  for (const f of files) {
    const full = path.join(REPO, f);
    const stat = fs.lstatSync(full);
    hash.update(`${f}\0${stat.mode}\0`);
    hash.update(stat.isSymbolicLink() ? fs.readlinkSync(full) : fs.readFileSync(full));
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The versions: the tree's own X.Y.Z (without a pre-release part) and
 * X.Y.Z+1. Not pre-releases: the spec's %check compares `early-service -V`
 * (npm's 1.0.0-rc.1) with %{version} (RPM's 1.0.0~rc.1) and fails for them.
 */
export function upgradeVersions(): { old: string; new: string } {
  const { version } = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  const [major, minor, patch] = version.replace(/[-+].*$/, '').split('.').map(Number) as [number, number, number];
  return { old: `${major}.${minor}.${patch}`, new: `${major}.${minor}.${patch + 1}` };
}

function run(command: string, args: string[], cwd: string, log: string): Promise<string> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const logStream = fs.createWriteStream(log);
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.pipe(logStream);
    child.on('error', reject);
    child.on('close', (code) => {
      logStream.end();
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code} (log: ${log})`));
    });
  });
}

/** A copy of the tree's files with `version` in package.json and package-lock.json, built into an RPM. */
async function buildOne(files: string[], version: string, work: string): Promise<string> {
  const tree = path.join(work, `tree-${version}`);
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(tree, f)), { recursive: true });
    fs.cpSync(path.join(REPO, f), path.join(tree, f), { verbatimSymlinks: true });
  }
  for (const name of ['package.json', 'package-lock.json']) {
    const file = path.join(tree, name);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string; packages?: Record<string, { version?: string }> };
    json.version = version;
    if (json.packages?.['']) json.packages[''].version = version;
    fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  }
  // create-rpm.sh lists the files through git.
  await run('git', ['init', '-q'], tree, path.join(work, `git-${version}.log`));
  const out = await run('bash', ['scripts/create-rpm.sh', '--topdir', path.join(work, `rpmbuild-${version}`)], tree,
    path.join(work, `create-rpm-${version}.log`));
  const rpm = out.trim().split('\n').pop() ?? '';
  if (!fs.existsSync(rpm)) throw new Error(`create-rpm.sh for ${version} printed no RPM path: ${out}`);
  return rpm;
}

/** The older and the newer RPM (built in parallel on the first call for this tree, then cached). */
export async function upgradeRpms(cacheDir: string): Promise<{ old: UpgradeRpm; new: UpgradeRpm; built: boolean }> {
  const versions = upgradeVersions();
  const files = treeFiles();
  const dir = path.join(cacheDir, `rpms-${treeKey(files)}`);
  const entry = (version: string): UpgradeRpm => ({ version, rpmVersion: version.replace(/-/g, '~'), file: path.join(dir, `early-service-${version}.rpm`) });
  const result = { old: entry(versions.old), new: entry(versions.new) };
  if (fs.existsSync(result.old.file) && fs.existsSync(result.new.file)) return { ...result, built: false };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'es-upgrade-rpms-'));
  try {
    const [oldRpm, newRpm] = await Promise.all([buildOne(files, versions.old, work), buildOne(files, versions.new, work)]);
    fs.mkdirSync(dir, { recursive: true });
    for (const [from, to] of [[oldRpm!, result.old.file], [newRpm!, result.new.file]] as const) {
      fs.copyFileSync(from, `${to}.tmp`);
      fs.renameSync(`${to}.tmp`, to);
    }
  } catch (error) {
    // The logs stay for a look.
    throw new Error(`${error instanceof Error ? error.message : String(error)}; work directory kept: ${work}`);
  }
  fs.rmSync(work, { recursive: true, force: true });
  return { ...result, built: true };
}
