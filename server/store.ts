// Durable files under StateDir: atomic rewrite (tmp, fsync, rename, fsync dir) and
// append-only logs flushed before the caller acts. Shell.
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SystemError } from '../src/errors.js';
import { FILE_LIMITS, FileReadError, readRegularFile } from '../keys/read-file.js';

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
 * opens its one_time_sequences file read-write); a new one gets `mode`. With `noFollow`
 * (state files) a symlink is refused instead. The tmp file is created exclusively and
 * never through a link.
 */
export function writeFileAtomic(file: string, text: string, mode = 0o600, opts: { noFollow?: boolean } = {}): void {
  let real = file;
  let keepMode = mode;
  let owner: { uid: number; gid: number } | undefined;
  try {
    if (opts.noFollow && lstatSync(file).isSymbolicLink()) throw new SystemError('state', `${file}: is a symbolic link; not writing through it`);
    real = opts.noFollow ? file : realpathSync(file);
    const st = statSync(real);
    keepMode = st.mode & 0o7777;
    owner = { uid: st.uid, gid: st.gid };
  } catch (e) {
    if (e instanceof SystemError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new SystemError('io', `${file}: cannot stat: ${(e as Error).message}`, { cause: e });
  }
  const dir = dirname(real);
  const tmp = join(dir, `.${basename(real)}.${process.pid}.tmp`);
  try {
    const excl = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    let fd: number;
    try {
      fd = openSync(tmp, excl, keepMode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      unlinkSync(tmp); // left by a crash of a process with our pid (or planted: removing a link is safe)
      fd = openSync(tmp, excl, keepMode);
    }
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

/**
 * Lines of a state log file; a torn last line (no newline: a crash mid-append) is dropped.
 * The file must be a regular file (never a link) of at most FILE_LIMITS.state bytes.
 */
export function readLogLines(file: string, opts: { keepEmpty?: boolean } = {}): string[] {
  let text: string;
  try {
    text = readRegularFile(file, FILE_LIMITS.state, { noFollow: true });
  } catch (e) {
    if (e instanceof FileReadError && e.failure === 'missing') return [];
    throw new SystemError('state', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a torn line
  return opts.keepEmpty ? lines : lines.filter((l) => l !== '');
}

/** An append-only file whose appends are on disk when append() returns. */
export class AppendLog {
  private fd: number;
  private lines: number;

  /** The directory must exist already (the daemon creates and checks StateDir). */
  constructor(readonly file: string) {
    this.lines = readLogLines(file).length;
    this.fd = this.openAppend();
  }

  /** Never through a symlink; the file must be a regular one. */
  private openAppend(): number {
    let fd: number;
    try {
      fd = openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SystemError('state', `${this.file}: cannot open: ${code === 'ELOOP' ? 'is a symbolic link; not following it' : (code ?? (e as Error).message)}`, { cause: e });
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new SystemError('state', `${this.file}: not a regular file`);
    }
    return fd;
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
    writeFileAtomic(this.file, lines.length ? `${lines.join('\n')}\n` : '', 0o600, { noFollow: true });
    closeSync(this.fd);
    this.fd = this.openAppend();
    this.lines = lines.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
