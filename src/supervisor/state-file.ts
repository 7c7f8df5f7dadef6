// The counter on disk (--state-file), for a restart that finds no predecessor
// to take over from: a crash of the rootfs instance, restarted by systemd.
//
// Saved atomically: a temporary file in the same directory is written and
// fsync()ed, renamed over the old one, and the directory fsync()ed, so a
// power cut leaves either the old or the new file, never a torn one. Read
// with suspicion: a file that is not ours (wrong magic, wrong owner, not a
// regular file, too big) or is damaged (bad checksum, bad number) is reported
// and ignored, never trusted.
//
//   early-service-state 1
//   counter 1234
//   saved 2026-11-28T07:42:08.123Z pid 321
//   checksum 9f0c1e2d3b4a5968    (FNV-1a 64 of the lines above)
import fs from 'node:fs';
import path from 'node:path';
import { parseCounter } from '../ipc/protocol';
import { FROZEN } from '../ipc/shared-state';

const MAGIC = 'early-service-state 1';
const MAX_BYTES = 4096;

export type LoadResult =
  | { kind: 'loaded'; counter: bigint; saved: string }
  | { kind: 'missing' }
  | { kind: 'rejected'; reason: string };

export function formatState(counter: bigint, now = new Date(), pid = process.pid): string {
  const body = `${MAGIC}\ncounter ${counter}\nsaved ${now.toISOString()} pid ${pid}\n`;
  return `${body}checksum ${fnv1a64(body)}\n`;
}

export function parseState(text: string): LoadResult {
  if (!text.startsWith(`${MAGIC}\n`)) return { kind: 'rejected', reason: 'not an early-service state file' };
  const match = /^(.*\n)checksum ([0-9a-f]{16})\n$/s.exec(text);
  if (match === null) return { kind: 'rejected', reason: 'no checksum line' };
  const [, body, checksum] = match as unknown as [string, string, string];
  if (fnv1a64(body) !== checksum) return { kind: 'rejected', reason: 'checksum mismatch' };
  const fields = /^[^\n]*\ncounter ([^\n]*)\nsaved ([^\n]*)\n$/.exec(body);
  if (fields === null) return { kind: 'rejected', reason: 'unexpected layout' };
  const counter = parseCounter(fields[1]!);
  if (counter === undefined) return { kind: 'rejected', reason: `bad counter "${fields[1]}"` };
  return { kind: 'loaded', counter, saved: fields[2]! };
}

export class StateFile {
  private saving: Promise<void> = Promise.resolve();
  private lastSaved: bigint | undefined;

  constructor(readonly file: string) {}

  load(): LoadResult {
    let fd: number;
    try {
      // O_NOFOLLOW: a symlink planted here is not followed to someone else's
      // file. O_NONBLOCK: a FIFO planted here does not hang the open (the
      // type is checked next); it changes nothing for a regular file.
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'rejected', reason: code === 'ELOOP' ? 'is a symbolic link' : `cannot open (${code})` };
    }
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) return { kind: 'rejected', reason: 'not a regular file' };
      const uid = process.getuid?.() ?? 0;
      if (stat.uid !== uid && stat.uid !== 0) return { kind: 'rejected', reason: `owned by uid ${stat.uid}, not by us` };
      if (stat.size > MAX_BYTES) return { kind: 'rejected', reason: `${stat.size} bytes, more than a state file holds` };
      const buffer = Buffer.alloc(MAX_BYTES + 1);
      const size = fs.readSync(fd, buffer, 0, buffer.length, 0);
      const result = parseState(buffer.toString('utf8', 0, size));
      if (result.kind === 'loaded') this.lastSaved = result.counter;
      return result;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Saves `counter` unless it is what the file already holds. Saves run one
   * at a time, in order; the promise settles when this one is on disk.
   * Failures are reported through `onError` and leave the old file in place.
   */
  save(counter: bigint, onError: (message: string) => void): Promise<void> {
    this.saving = this.saving.then(async () => {
      if (counter === this.lastSaved) return;
      // The handoff's marker is never a value (a bug upstream, not a reason to lose the file).
      if (counter === FROZEN) {
        onError(`refusing to save the frozen marker to ${this.file}`);
        return;
      }
      try {
        await writeAtomically(this.file, formatState(counter));
        this.lastSaved = counter;
      } catch (error) {
        onError(`cannot save the counter to ${this.file}: ${(error as Error).message}`);
      }
    });
    return this.saving;
  }

  /** Resolves once every save asked for so far is done. */
  idle(): Promise<void> {
    return this.saving;
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.tmp-${process.pid}`;
  // Left over by an earlier process with our pid, or planted: not ours to
  // follow or to write into. O_EXCL|O_NOFOLLOW creates a new file or fails.
  await fs.promises.rm(temporary, { force: true });
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const handle = await fs.promises.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.promises.rename(temporary, file);
  } catch (error) {
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
  // The rename itself is durable only once the directory is.
  const directory = await fs.promises.open(path.dirname(file), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/** FNV-1a, 64 bits, as 16 hex digits: catches torn or edited files, not forgers. */
export function fnv1a64(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}
