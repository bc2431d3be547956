// Durable files under StateDir: atomic rewrite (tmp, fsync, rename, fsync dir) and
// append-only logs flushed before the caller acts. Shell.
import { closeSync, constants, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SystemError } from '../src/errors.js';

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `file` with `text` so that a crash leaves either the old or the new file, never a
 * mix: tmp file, fsync, rename, fsync of the directory. A symlink is followed (the link stays
 * a link); an existing file keeps its mode and, when we may, its owner (a restarted knockd
 * opens its one_time_sequences file read-write); a new one gets `mode`.
 */
export function writeFileAtomic(file: string, text: string, mode = 0o600): void {
  let real = file;
  let keepMode = mode;
  let owner: { uid: number; gid: number } | undefined;
  try {
    real = realpathSync(file);
    const st = statSync(real);
    keepMode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SystemError('io', `${file}: cannot stat: ${(e as Error).message}`, { cause: e });
  }
  const dir = dirname(real);
  const tmp = join(dir, `.${basename(real)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, keepMode);
    try {
      fchmodSync(fd, keepMode); // open()'s mode is filtered by the umask
      if (owner && process.getuid?.() === 0) fchownSync(fd, owner.uid, owner.gid);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, real);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean up, or not ours to remove (the failure is reported below)
    }
    throw new SystemError('io', `${file}: cannot write: ${(e as Error).message}`, { cause: e });
  }
  try {
    fsyncDir(dir);
  } catch (e) {
    throw new SystemError('io', `${dir}: cannot sync directory: ${(e as Error).message}`, { cause: e });
  }
}

/** Lines of a log file; a torn last line (no newline: a crash mid-append) is dropped. */
export function readLogLines(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SystemError('io', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a torn line
  return lines.filter((l) => l !== '');
}

/** An append-only file whose appends are on disk when append() returns. */
export class AppendLog {
  private fd: number;
  private lines: number;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.lines = readLogLines(file).length;
    this.fd = this.openAppend();
  }

  private openAppend(): number {
    return openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  }

  get lineCount(): number {
    return this.lines;
  }

  /** Writes and flushes; throws SystemError if the disk refuses (the caller must then not act). */
  append(lines: readonly string[]): void {
    if (lines.length === 0) return;
    try {
      writeSync(this.fd, `${lines.join('\n')}\n`);
      fsyncSync(this.fd);
    } catch (e) {
      throw new SystemError('state', `${this.file}: cannot write: ${(e as Error).message}`, { cause: e });
    }
    this.lines += lines.length;
  }

  /** Atomically replaces the whole log (compaction), then appends continue on the new file. */
  rewrite(lines: readonly string[]): void {
    writeFileAtomic(this.file, lines.length ? `${lines.join('\n')}\n` : '');
    closeSync(this.fd);
    this.fd = this.openAppend();
    this.lines = lines.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
