// What spa-knock reads and writes: the process's streams in the binary, buffers in tests. Shell.
import { homedir } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';

/** The binary's streams, with what bin.ts waits for before it exits. */
export interface ProcessIo extends ClientIo {
  /** Resolves once stdout and stderr have written what is queued for them. */
  flush(): Promise<void>;
}

/**
 * Resolves once what is queued for the stream is written. A write to a pipe is synchronous only
 * while the pipe has room (64 KiB); beyond that it waits for the reader (ssh, a pager), and an
 * exit before then drops it.
 */
function drained(s: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (s === undefined || s.writableLength === 0 || s.destroyed) resolve();
    else s.write('', () => resolve());
  });
}

/** A reader that went away (spa-knock --help | head, or before the exit's flush) is no error worth a stack. */
function ignoreEpipe(s: NodeJS.WriteStream): NodeJS.WriteStream {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  return s;
}

export interface ClientIo {
  stdout(s: string): void;
  stderr(s: string): void;
  readonly env: NodeJS.ProcessEnv;
  readonly homedir: string;
  nowMs(): number;
  random(n: number): Uint8Array;
  /** The byte streams `spa-knock proxy` relays (process.stdin / process.stdout). */
  readonly stdin?: Readable;
  /** stdin's descriptor: proxy reads it directly when it is a pipe or a socket (client/proxy.ts). */
  readonly stdinFd?: number;
  readonly stdoutStream?: Writable;
}

export function processIo(): ProcessIo {
  // process.stdout is made (and its stream modules loaded) on first use: a knock that prints
  // nothing never pays for it.
  let out: NodeJS.WriteStream | undefined;
  const stdout = (): NodeJS.WriteStream => {
    out ??= ignoreEpipe(process.stdout);
    return out;
  };
  let err: NodeJS.WriteStream | undefined;
  return {
    stdout: (s) => void stdout().write(s),
    stderr: (s) => void (err ??= ignoreEpipe(process.stderr)).write(s),
    flush: async () => {
      await Promise.all([drained(out), drained(err)]);
    },
    env: process.env,
    homedir: homedir(),
    nowMs: () => Date.now(),
    random: (n) => new Uint8Array(randomBytes(n)),
    // Getters: only proxy relays bytes.
    get stdin() {
      return process.stdin;
    },
    stdinFd: 0,
    get stdoutStream() {
      return stdout();
    },
  };
}
