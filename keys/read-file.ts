// Bounded reads of regular files: every file spa reads (config, keys, lists, state) goes
// through here, so a FIFO cannot hang it and /dev/zero cannot fill its memory. Shell (fs).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Size limits of the files we read: a key file is one line; lists and configs are text. */
export const FILE_LIMITS = {
  key: 64 * 1024,
  list: 4 * 1024 * 1024,
  config: 1024 * 1024,
  state: 256 * 1024 * 1024,
} as const;

export type ReadFailure = 'missing' | 'denied' | 'type' | 'size' | 'link';

/** A refusal of readRegularFile: one line (`what: too large ...`) and why. */
export class FileReadError extends Error {
  constructor(
    readonly file: string,
    readonly failure: ReadFailure | 'io',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Reads a regular file of at most maxBytes as UTF-8: a FIFO, device, directory or socket is
 * refused at once (opened non-blocking, so a FIFO cannot hang us), and so is a file larger
 * than the limit (never read past it, so /dev/zero-like files cannot fill memory).
 * `noFollow`: refuse a symbolic link (state files). Throws FileReadError.
 */
export function readRegularFile(file: string, maxBytes: number, opts: { noFollow?: boolean } = {}): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileReadError(file, 'missing', 'no such file', { cause: e });
    if (code === 'EACCES' || code === 'EPERM') throw new FileReadError(file, 'denied', 'permission denied', { cause: e });
    if (code === 'ELOOP') throw new FileReadError(file, 'link', 'is a symbolic link; not following it', { cause: e });
    throw new FileReadError(file, 'io', `cannot open: ${code ?? (e as Error).message}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FileReadError(file, 'type', 'is a directory');
    if (!st.isFile()) throw new FileReadError(file, 'type', 'not a regular file');
    if (st.size > maxBytes) throw new FileReadError(file, 'size', `too large (${st.size} bytes; at most ${maxBytes})`);
    // The size may change under us: read at most one byte past the limit, whatever fstat said.
    const buf = Buffer.alloc(Math.min(maxBytes, st.size) + 1);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw new FileReadError(file, 'io', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
      }
      if (got === 0) break;
      n += got;
      if (n === buf.length) {
        if (n > maxBytes) throw new FileReadError(file, 'size', `too large (more than ${maxBytes} bytes)`);
        break; // grew while we read: what fstat saw is what we take
      }
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
