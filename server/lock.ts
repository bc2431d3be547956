// One daemon per StateDir: an exclusive flock(2) on StateDir/lock, held for the daemon's
// life (released by the kernel when the process dies, however it dies). Node has no flock,
// so util-linux's flock(1) takes it on our open file description (`flock -xn 3`, the
// shell's `exec 9>lock; flock -n 9` idiom): the lock belongs to the description, which
// stays open here after flock(1) exits. The holder's pid is written into the file. Shell.
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError } from '../src/errors.js';

export const LOCK_FILE = 'lock';

/** util-linux's flock(1) (Debian: essential) where Debian puts it, whatever PATH says; else PATH. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}) ?? 'flock';

export interface StateLock {
  release(): void;
}

function readPid(fd: number): string {
  const buf = Buffer.alloc(32);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const text = buf.subarray(0, n).toString('utf8').trim();
  return /^\d{1,10}$/.test(text) ? text : 'unknown';
}

/** Takes the lock or throws SystemError: naming the running daemon's pid when it holds the lock. */
export function lockStateDir(stateDir: string): StateLock {
  const file = join(stateDir, LOCK_FILE);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (e) {
    throw new SystemError('state', `${file}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new SystemError('state', `${file}: not a regular file`);
  }
  // -E 75: "busy" told apart from flock(1)'s own failures (exit 1 or 64+).
  const r = spawnSync(FLOCK, ['--exclusive', '--nonblock', '--conflict-exit-code', '75', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8', timeout: 10_000 });
  if (r.status === 75) {
    const pid = readPid(fd);
    closeSync(fd);
    throw new SystemError('state', `StateDir ${stateDir} is in use by another spa-server (pid ${pid}); one daemon per StateDir`);
  }
  if (r.status !== 0) {
    closeSync(fd);
    const why = r.error ? ((r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'flock (util-linux) not found' : r.error.message) : (r.stderr ?? '').trim() || `flock exit status ${r.status}`;
    throw new SystemError('state', `${file}: cannot lock: ${why}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return { release: () => closeSync(fd) };
}
