// What the live sections need from a daemon under test (spa-server, fwknopd, knockd): start it
// fresh, send it a knock in-process, read when its open and close commands ran, stop it and
// say how many flood datagrams it saw. Plus the pieces they share. Shell (files, sockets).
import { createSocket, type Socket } from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { wallMs } from './util.js';

/** Garbage that passes the daemon's own cheapest checks, so each datagram costs it the most. */
export interface FloodSpec {
  readonly port: number;
  readonly mode: 'bin' | 'b64';
  readonly size: number;
  /** First byte for 'bin' (-1: random). */
  readonly firstByte: number;
  /** One line saying what the garbage is. */
  readonly what: string;
}

export interface StopReport {
  /** Flood datagrams the daemon itself counted (undefined when it has no such count). */
  readonly seen: number | undefined;
  /** How it ended after SIGTERM: "exit 0", "signal SIGKILL", ... */
  readonly exit: string;
  readonly notes: readonly string[];
  /** spa-server: frames its capture dropped undecoded, and handle reopens, so timers could run. */
  readonly shed?: number;
  readonly reopens?: number;
  /**
   * spa-server: its kernel filter checked tags (issue 13), so right-size garbage with random tags
   * never reached it: `seen` then counts what passed the filter, and the rest was not lost.
   */
  readonly tagFilter?: boolean;
}

export interface Subject {
  readonly name: string;
  readonly flood: FloodSpec;
  /** The door's close timer (cmd_timeout and its kin). */
  readonly timeoutMs: number;
  /** Makes `n` knocks ready to send (fwknop packets are made by the fwknop client). */
  prepare(n: number): Promise<void>;
  /** Starts a fresh daemon (new state, new stamp files); resolves when it listens. */
  start(): Promise<void>;
  readonly pid: number | undefined;
  running(): boolean;
  /** Sends knock i (0 <= i < n); resolves with the wall-clock ms just before its last datagram left. */
  knock(i: number): Promise<number>;
  /** Wall-clock ms at which the open / close command ran, in file order. */
  opens(): number[];
  closes(): number[];
  /** How many open stamps there are (cheap: file size based). */
  openCount(): number;
  stop(): Promise<StopReport>;
  /** spa-server only: when it logged each accepted knock (before its command ran). */
  decisionTimes?(): number[];
}

/**
 * The door command of every daemon: bench/stamp.c compiled into dir. `stamp FILE` appends the
 * time as `date +%s.%N` prints it, with no shell script and no date process of its own.
 */
export function buildStamp(sourceFile: string, dir: string): string {
  const bin = join(dir, 'stamp');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, sourceFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  return bin;
}

/** Stamp lines are 21 bytes each ("1795317606.227437524\n"). */
const STAMP_LINE_BYTES = 21;

export function readStamps(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l) * 1000);
}

export function stampCount(file: string): number {
  try {
    return Math.floor(statSync(file).size / STAMP_LINE_BYTES);
  } catch {
    return 0;
  }
}

/** A UDP socket for in-process knocks to 127.0.0.1. */
export class Sender {
  private sock: Socket | undefined;

  private get socket(): Socket {
    if (!this.sock) {
      this.sock = createSocket('udp4');
      this.sock.on('error', () => undefined);
    }
    return this.sock;
  }

  /** Sends each datagram in order; returns wallMs() taken just before the last send. */
  async send(port: number | readonly number[], datagrams: readonly Uint8Array[]): Promise<number> {
    let t = 0;
    for (let i = 0; i < datagrams.length; i++) {
      const p = typeof port === 'number' ? port : port[i]!;
      t = wallMs();
      await new Promise<void>((resolve) => this.socket.send(datagrams[i]!, p, '127.0.0.1', () => resolve()));
    }
    return t;
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}

/** Polls `pred` every few ms until it holds or timeoutMs passes; returns whether it held. */
export async function waitUntil(pred: () => boolean, timeoutMs: number, everyMs = 2): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

export function exitText(r: { code: number | null; signal: NodeJS.Signals | null }): string {
  return r.code !== null ? `exit ${r.code}` : `signal ${r.signal ?? '?'}`;
}

/** The stamp files of a subject's open and close commands, and their readers (all three subjects). */
export abstract class StampedSubject {
  protected openFile = '';
  protected closeFile = '';

  opens(): number[] {
    return readStamps(this.openFile);
  }

  closes(): number[] {
    return readStamps(this.closeFile);
  }

  openCount(): number {
    return stampCount(this.openFile);
  }
}
