// spa-server under test: the built daemon (dist/server/bin.js run) with libpcap on lo, a
// command door whose start/stop commands write time stamps, knocks made in-process. Shell.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATAGRAM_BYTES, DEFAULT_PORT, NONCE_BYTES, VERSION } from '../src/protocol/constants.js';
import type { BenchKeys, KeyFiles } from './bench-keys.js';
import { knockMaker, type KnockMaker } from './knock-maker.js';
import { isRunning, onLines, packetRing, spawnTracked, stopTracked, type Tracked } from './procs.js';
import { exitText, Sender, StampedSubject, waitUntil, type FloodSpec, type StopReport, type Subject } from './subject.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SPA_SERVER_BIN = join(ROOT, 'dist/server/bin.js');
export const SPA_KNOCK_BIN = join(ROOT, 'dist/client/spa-knock.cjs');

/** Latency knocks ask for tcp/(FIRST_PORT + i): each opens a new rule, so each runs start_command. */
export const FIRST_PORT = 20000;
export const MAX_KNOCKS = 200;
/** The daemon's housekeeping interval (server/daemon.ts tick), which logs capture overloads. */
const TICK_MS = 5000;

export interface SpaServerOptions {
  readonly workRoot: string;
  /** Where StateDir goes (its filesystem decides the fsync cost). */
  readonly stateRoot: string;
  readonly authorizedFile: string;
  readonly serverKeyFile: string;
  readonly startCommand: string;
  readonly stopCommand?: string;
  readonly cmdTimeoutSec: number;
  readonly pcapBufferMb?: number;
}

/** One spa-server process and what its log says. */
export class SpaServer {
  readonly dir: string;
  proc: Tracked | undefined;
  readonly counts = new Map<string, number>();
  /** Log lines other than accepted/rejected (those are only counted). */
  readonly lines: Record<string, unknown>[] = [];
  /** Times (ms, from the log line's `time`) of the first 1,000 'accepted' lines. */
  readonly acceptedTimes: number[] = [];
  startedAtMs = 0;
  readyAtMs = 0;

  constructor(private readonly o: SpaServerOptions) {
    this.dir = mkdtempSync(join(o.workRoot, 'spa-'));
  }

  async start(): Promise<void> {
    const conf = join(this.dir, 'spa.conf');
    const stateDir = mkdtempSync(join(this.o.stateRoot, 'spa-bench-state-'));
    const ports = Array.from({ length: MAX_KNOCKS }, (_, i) => `tcp/${FIRST_PORT + i}`);
    writeFileSync(
      conf,
      [
        '[options]',
        'Interface = lo',
        `SPAPort = ${DEFAULT_PORT}`,
        `ServerKey = ${this.o.serverKeyFile}`,
        `StateDir = ${stateDir}`,
        ...(this.o.pcapBufferMb !== undefined ? [`PcapBufferMB = ${this.o.pcapBufferMb}`] : []),
        '',
        '[bench]',
        `spa_keys = ${this.o.authorizedFile}`,
        `access = tcp/22,${ports.join(',')}`,
        `start_command = ${this.o.startCommand}`,
        `cmd_timeout = ${this.o.cmdTimeoutSec}`,
        ...(this.o.stopCommand !== undefined ? [`stop_command = ${this.o.stopCommand}`] : []),
        '',
      ].join('\n'),
    );
    this.startedAtMs = performance.now();
    const p = spawnTracked('spa-server', process.execPath, [SPA_SERVER_BIN, 'run', '--config', conf]);
    this.proc = p;
    let stderr = '';
    p.child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    onLines(p.child.stdout, (line) => {
      // Accepted/rejected lines can number 100,000: count them without parsing.
      if (line.includes('"msg":"accepted"')) {
        if (this.acceptedTimes.length < 1000) this.acceptedTimes.push(Date.parse(/"time":"([^"]+)"/.exec(line)?.[1] ?? ''));
        return this.bump('accepted');
      }
      if (line.includes('"msg":"rejected"')) return this.bump('rejected');
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        o = { raw: line };
      }
      this.bump(String(o['msg']));
      if (this.lines.length < 500) this.lines.push(o);
    });
    const ok = await waitUntil(() => (this.counts.get('started') ?? 0) > 0 || !isRunning(p), 120_000, 10);
    if (!ok || !isRunning(p)) throw new Error(`spa-server did not start: ${stderr.trim()}`);
    this.readyAtMs = performance.now();
  }

  private bump(msg: string): void {
    this.counts.set(msg, (this.counts.get(msg) ?? 0) + 1);
  }

  count(msg: string): number {
    return this.counts.get(msg) ?? 0;
  }

  /**
   * SIGTERM; the 'stopped' line carries the daemon's own accepted/rejected counters. The capture's
   * counters (frames received, pauses) are only logged by the 5 s tick, and only when it paused:
   * with `waitForTick` the daemon is left running until its first tick has passed.
   */
  async stop(waitForTick = false): Promise<{ exit: string; accepted?: number; rejected?: number; shed?: number; reopens?: number; received?: number }> {
    if (!this.proc) return { exit: 'not started' };
    if (waitForTick && isRunning(this.proc)) {
      const wait = this.readyAtMs + TICK_MS + 300 - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
    const r = await stopTracked(this.proc, 'SIGTERM', 10_000);
    // Let the last stdout chunk arrive.
    await new Promise((res) => setTimeout(res, 50));
    const stopped = this.lines.find((l) => l['msg'] === 'stopped');
    // 'capture overloaded' lines carry the capture's counters: shed (frames dropped undecoded so
    // timers could run), reopens (handle closed and reopened), received (frames cap handed over).
    const overloaded = this.lines.filter((l) => typeof l['shed'] === 'number' || typeof l['pauses'] === 'number');
    const last = overloaded[overloaded.length - 1];
    const num = (k: string): number | undefined => (typeof last?.[k] === 'number' ? (last[k] as number) : undefined);
    return {
      exit: exitText(r),
      shed: num('shed') ?? 0,
      reopens: num('reopens') ?? num('pauses') ?? 0,
      received: num('received'),
      accepted: typeof stopped?.['accepted'] === 'number' ? stopped['accepted'] : undefined,
      rejected: typeof stopped?.['rejected'] === 'number' ? stopped['rejected'] : undefined,
    };
  }
}

export class SpaSubject extends StampedSubject implements Subject {
  readonly name: string;
  readonly flood: FloodSpec = {
    port: DEFAULT_PORT,
    mode: 'bin',
    size: DATAGRAM_BYTES,
    firstByte: VERSION,
    what: `${DATAGRAM_BYTES}-byte datagrams, version byte 1, random tag and rest: the kernel filter checks the tag (issue 13) and drops them; a random tag passes with odds keys × epochs / 2^32`,
  };
  readonly timeoutMs = 1000;
  private server: SpaServer | undefined;
  private readonly make: KnockMaker;
  private readonly sender = new Sender();
  /** The daemon's PACKET_MMAP ring as `ss` shows it (version, frame size, frames). */
  ring: string | undefined;

  constructor(
    private readonly workRoot: string,
    private readonly stateRoot: string,
    keys: BenchKeys,
    private readonly files: KeyFiles,
    private readonly stamp: string,
    private readonly pcapBufferMb?: number,
  ) {
    super();
    this.name = pcapBufferMb === undefined ? 'spa-server' : `spa-server, PcapBufferMB ${pcapBufferMb}`;
    this.make = knockMaker(keys.clients[0]!, keys.server);
  }

  get pid(): number | undefined {
    return this.server?.proc?.pid;
  }

  running(): boolean {
    return this.server?.proc !== undefined && isRunning(this.server.proc);
  }

  async prepare(n: number): Promise<void> {
    if (n > MAX_KNOCKS) throw new Error(`bench: at most ${MAX_KNOCKS} spa knocks per run`);
  }

  async start(): Promise<void> {
    const dir = mkdtempSync(join(this.workRoot, 'spa-stamps-'));
    mkdirSync(dir, { recursive: true });
    this.openFile = join(dir, 'open.stamps');
    this.closeFile = join(dir, 'close.stamps');
    this.server = new SpaServer({
      workRoot: this.workRoot,
      stateRoot: this.stateRoot,
      authorizedFile: this.files.authorized(1),
      serverKeyFile: this.files.serverKey,
      startCommand: `${this.stamp} ${this.openFile}`,
      stopCommand: `${this.stamp} ${this.closeFile}`,
      cmdTimeoutSec: this.timeoutMs / 1000,
      ...(this.pcapBufferMb !== undefined ? { pcapBufferMb: this.pcapBufferMb } : {}),
    });
    await this.server.start();
    this.ring = packetRing(this.server.proc!.pid);
  }

  /** Knock i asks for tcp/(20000 + i), a rule of its own; a new nonce and the current time. */
  knock(i: number): Promise<number> {
    const d = this.make({ timeSec: Math.floor(Date.now() / 1000), nonce: new Uint8Array(randomBytes(NONCE_BYTES)), access: [{ proto: 'tcp', port: FIRST_PORT + i }] });
    return this.sender.send(DEFAULT_PORT, [d]);
  }


  async stop(): Promise<StopReport> {
    const s = this.server;
    if (!s) return { seen: undefined, exit: 'not started', notes: [] };
    const r = await s.stop(true);
    this.sender.close();
    const notes: string[] = [];
    if (r.shed) notes.push(`the capture shed ${r.shed.toLocaleString('en-US')} frames (dropped undecoded after holding the event loop 100 ms)`);
    if (r.reopens) notes.push(`the capture closed and reopened its pcap handle ${r.reopens} time(s), losing the frames in its ring`);
    if (this.ring) notes.push(`pcap ring: ${this.ring}`);
    const tagFilter = s.count('kernel tag filter on') > 0 && s.count('kernel tag filter off: right-size datagrams reach the daemon') === 0;
    return { seen: r.rejected, exit: r.exit, notes, shed: r.shed ?? 0, reopens: r.reopens ?? 0, tagFilter };
  }

  /** When the daemon logged each knock accepted (millisecond resolution: pino's isoTime). */
  decisionTimes(): number[] {
    return this.server?.acceptedTimes ?? [];
  }
}
