// The fwknop section (issue 14 item 4): the same real-client packets (`fwknop -T`, keys from
// `fwknop --key-gen`) through fwknopd 2.6.10 and through spa-server reading the same
// fwknopd.conf, 1 and 100 stanzas (the client's last): idle send-to-command latency, and how
// many knocks get through an unpaced flood of fwknop-shaped garbage. Then spa-server with a
// spa.conf that serves all three kinds on one port (100 fwknop stanzas, a spa door, a knockd
// sequence door) under the same flood: a spa knock, a sequence and a fwknop knock in turn,
// each timed to its door's command. Every flood is bounded in time; every process is tracked
// (bench/procs.ts). Shell.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORT, NONCE_BYTES } from '../src/protocol/constants.js';
import type { BenchKeys, KeyFiles } from './bench-keys.js';
import { knockMaker } from './knock-maker.js';
import { latencyRun, runFlood } from './live.js';
import { cpuSeconds, isRunning, onLines, spawnTracked, stopTracked } from './procs.js';
import { b64, FIRST_PORT, FwknopdSubject, fwknopKeyGen, makeFwknopPackets } from './subject-fwknopd.js';
import { SPA_SERVER_BIN } from './subject-spa.js';
import { readStamps, Sender, stampCount, waitUntil } from './subject.js';
import { det, sleep, summarize, wallMs, type Summary } from './util.js';

/** A knock counts as through when its command ran within this long of its send. */
export const THROUGH_WITHIN_MS = 1000;
/** The issue's bound for a spa knock and a sequence during the flood. */
export const MIXED_WITHIN_MS = 100;
/** Knocks sent, one at a time, after the flood has run this long. */
const FLOOD_LEAD_MS = 1000;
const SEQ_PORTS = [7101, 7102, 7103];

export interface FwknopIdleRow {
  readonly subject: string;
  readonly knocks: number;
  readonly lost: number;
  readonly latency: Summary;
  /** spa-server: send to its 'accepted' log line (whole milliseconds). */
  readonly decision: Summary | undefined;
}

export interface FwknopFloodRow {
  readonly subject: string;
  readonly sent: number;
  readonly sentPerSec: number;
  readonly trials: number;
  /** Knocks whose command ran within THROUGH_WITHIN_MS. */
  readonly through: number;
  /** Send to command, ms, of the knocks that got through. */
  readonly latencies: readonly number[];
  readonly cpuPct: number | undefined;
  readonly aliveAfter: boolean;
}

export interface MixedRow {
  readonly kind: 'spa knock' | 'knockd sequence' | 'fwknop knock';
  readonly trials: number;
  /** Send (of the last datagram) to the door's command, ms; undefined: not within THROUGH_WITHIN_MS. */
  readonly latencies: readonly (number | undefined)[];
  /** Send to the daemon's decision log line ('accepted', 'sequence accepted'; whole ms), same order. */
  readonly decisions: readonly (number | undefined)[];
}

export interface MixedResult {
  readonly sent: number;
  readonly sentPerSec: number;
  readonly cpuPct: number | undefined;
  readonly rows: readonly MixedRow[];
  readonly aliveAfter: boolean;
}

export interface FwknopBenchResult {
  readonly idle: readonly FwknopIdleRow[];
  readonly floods: readonly FwknopFloodRow[];
  readonly mixed: MixedResult | undefined;
  readonly idleKnocks: number;
  readonly trials: number;
  readonly floodWhat: string;
}

export interface FwknopBenchOptions {
  readonly work: string;
  readonly stamp: string;
  readonly flooder: string;
  readonly keys: BenchKeys;
  readonly files: KeyFiles;
  readonly idleKnocks: number;
  readonly trials: number;
  readonly log: (s: string) => void;
  /** Run in the caller's section wrapper: a failure of one row does not stop the others. */
  readonly row: <T>(name: string, fn: () => Promise<T>) => Promise<T | undefined>;
}

function subjects(o: FwknopBenchOptions): FwknopdSubject[] {
  return [new FwknopdSubject(o.work, 1, o.stamp), new FwknopdSubject(o.work, 1, o.stamp, 'spa-server'), new FwknopdSubject(o.work, 100, o.stamp), new FwknopdSubject(o.work, 100, o.stamp, 'spa-server')];
}

export async function runFwknopBench(o: FwknopBenchOptions): Promise<FwknopBenchResult> {
  const idle: FwknopIdleRow[] = [];
  const floods: FwknopFloodRow[] = [];
  const fmt = (s: Summary): string => `median ${s.median.toFixed(1)} ms, p95 ${s.p95.toFixed(1)} ms`;
  for (const s of subjects(o)) {
    const r = await o.row(`fwknop idle latency, ${o.idleKnocks} knocks: ${s.name}`, () => latencyRun(s, o.idleKnocks));
    if (r) {
      idle.push({ subject: r.subject, knocks: r.knocks, lost: r.lost, latency: r.latency, decision: r.decision });
      o.log(`  ${fmt(r.latency)}, lost ${r.lost}${r.decision ? `; to decision ${fmt(r.decision)}` : ''}`);
    }
  }
  let floodWhat = '';
  for (const s of subjects(o)) {
    floodWhat = s.flood.what;
    const r = await o.row(`fwknop flood, ${o.trials} knocks: ${s.name}`, () => fwknopFloodRun(s, o.flooder, o.trials));
    if (r) {
      floods.push(r);
      o.log(`  sent ${Math.round(r.sentPerSec)}/s, through ${r.through}/${r.trials}${r.latencies.length ? ` (${fmt(summarize(r.latencies))})` : ''}, cpu ${r.cpuPct?.toFixed(0) ?? 'n/a'}%, alive ${r.aliveAfter}`);
    }
  }
  const mixed = await o.row(`fwknop flood, spa.conf with all three kinds, ${o.trials} rounds`, () => mixedRun(o));
  const within = (xs: readonly (number | undefined)[]): number => xs.filter((x) => x !== undefined && x <= MIXED_WITHIN_MS).length;
  if (mixed) for (const m of mixed.rows) o.log(`  ${m.kind}: within ${MIXED_WITHIN_MS} ms: decided ${within(m.decisions)}/${m.trials}, command ran ${within(m.latencies)}/${m.trials}; through ${m.latencies.filter((x) => x !== undefined).length}/${m.trials}`);
  return { idle, floods, mixed, idleKnocks: o.idleKnocks, trials: o.trials, floodWhat };
}

/** A fresh daemon, an unpaced flood, `trials` real-client knocks one at a time during it. */
async function fwknopFloodRun(s: FwknopdSubject, flooder: string, trials: number): Promise<FwknopFloodRow> {
  await s.prepare(trials);
  await s.start();
  try {
    await sleep(300);
    const pid = s.pid!;
    const cpu0 = cpuSeconds(pid);
    const w0 = wallMs();
    const flooding = runFlood(flooder, s.flood, 0, FLOOD_LEAD_MS + trials * (THROUGH_WITHIN_MS + 100) + 500);
    await sleep(FLOOD_LEAD_MS);
    const latencies: number[] = [];
    for (let i = 0; i < trials; i++) {
      const before = s.openCount();
      const t = await s.knock(i);
      if (await waitUntil(() => s.openCount() > before, THROUGH_WITHIN_MS, 2)) {
        const open = s.opens()[before];
        if (open !== undefined) latencies.push(open - t);
      }
      await sleep(100);
    }
    const f = await flooding;
    const cpu1 = cpuSeconds(pid);
    const w1 = wallMs();
    const aliveAfter = s.running();
    await s.stop();
    return {
      subject: s.name,
      sent: f.sent,
      sentPerSec: (f.sent * 1000) / Math.max(1, f.ms),
      trials,
      through: latencies.length,
      latencies,
      cpuPct: cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 100 * 1000) / (w1 - w0),
      aliveAfter,
    };
  } catch (e) {
    await s.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * spa-server serving a spa door, 100 fwknop stanzas (the client's last) and a knockd sequence
 * door on one port, under the unpaced fwknop-shaped flood: per round, a spa knock, then the
 * sequence, then a real-client fwknop knock, each sent when the previous one's command ran (or
 * THROUGH_WITHIN_MS passed). Each door's command stamps a file of its own.
 */
async function mixedRun(o: FwknopBenchOptions): Promise<MixedResult> {
  const dir = mkdtempSync(join(o.work, 'mixed-'));
  const { key, hmacKey } = fwknopKeyGen();
  const stanza = (k: string, h: string): string => `SOURCE ANY\nKEY_BASE64 ${k}\nHMAC_KEY_BASE64 ${h}\n`;
  const others = Array.from({ length: 99 }, (_, i) => stanza(b64(det(`fwknop other key ${i}`, 32)), b64(det(`fwknop other hmac ${i}`, 64))));
  const access = join(dir, 'access.conf');
  writeFileSync(access, [...others, stanza(key, hmacKey)].join('\n'), { mode: 0o600 });
  const stamps = { spa: join(dir, 'spa.stamps'), seq: join(dir, 'seq.stamps'), fwknop: join(dir, 'fwknop.stamps') };
  const ports = Array.from({ length: o.trials }, (_, i) => `tcp/${FIRST_PORT + i}`).join(',');
  const conf = join(dir, 'spa.conf');
  writeFileSync(
    conf,
    [
      '[options]',
      'Interface = lo',
      `SPAPort = ${DEFAULT_PORT}`,
      `ServerKey = ${o.files.serverKey}`,
      `StateDir = ${join(dir, 'state')}`,
      '',
      '[ssh]',
      `spa_keys = ${o.files.authorized(1)}`,
      `access = ${ports}`,
      `start_command = ${o.stamp} ${stamps.spa}`,
      'cmd_timeout = 1',
      '',
      '[fwknop]',
      `fwknop_access = ${access}`,
      `access = ${ports}`,
      `start_command = ${o.stamp} ${stamps.fwknop}`,
      'cmd_timeout = 1',
      '',
      '[seq]',
      `sequence = ${SEQ_PORTS.map((p) => `${p}:udp`).join(',')}`,
      `start_command = ${o.stamp} ${stamps.seq}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const packets = await makeFwknopPackets(o.work, o.trials, key, hmacKey);
  const make = knockMaker(o.keys.clients[0]!, o.keys.server);
  const sender = new Sender();
  const p = spawnTracked('spa-server', process.execPath, [SPA_SERVER_BIN, 'run', '--config', conf]);
  let started = false;
  let text = '';
  // When the daemon decided, per door (pino's time: whole milliseconds).
  const decided: Record<'ssh' | 'seq' | 'fwknop', number[]> = { ssh: [], seq: [], fwknop: [] };
  const onLine = (line: string): void => {
    const door = /"door":"(ssh|seq|fwknop)"/.exec(line)?.[1] as 'ssh' | 'seq' | 'fwknop' | undefined;
    if (door !== undefined && (line.includes('"msg":"accepted"') || line.includes('"msg":"sequence accepted"'))) {
      decided[door].push(Date.parse(/"time":"([^"]+)"/.exec(line)?.[1] ?? ''));
      return;
    }
    if (line.includes('"msg":"started"')) started = true;
    else if (text.length < 4000 && !line.includes('"msg":"rejected"')) text += `${line}\n`;
  };
  onLines(p.child.stdout, onLine);
  onLines(p.child.stderr, onLine);
  try {
    if (!(await waitUntil(() => started || !isRunning(p), 30_000, 10)) || !isRunning(p)) throw new Error(`spa-server did not start: ${text.trim()}`);
    await sleep(300);
    const cpu0 = cpuSeconds(p.pid!);
    const w0 = wallMs();
    // Bounded: a round takes ~0.3 s when all three get through, 3 s when none does; rounds stop
    // when the flood does, so every knock counted was sent during it.
    const flooding = runFlood(o.flooder, { port: DEFAULT_PORT, mode: 'b64', size: 204, firstByte: -1, what: '' }, 0, FLOOD_LEAD_MS + o.trials * 1200);
    let floodDone = false;
    void flooding.then(
      () => (floodDone = true),
      () => (floodDone = true),
    );
    await sleep(FLOOD_LEAD_MS);
    const lat = { spa: [] as (number | undefined)[], seq: [] as (number | undefined)[], fwknop: [] as (number | undefined)[] };
    const dec = { spa: [] as (number | undefined)[], seq: [] as (number | undefined)[], fwknop: [] as (number | undefined)[] };
    const timed = async (kind: 'spa' | 'seq' | 'fwknop', door: 'ssh' | 'seq' | 'fwknop', send: () => Promise<number>): Promise<void> => {
      const file = stamps[kind];
      const before = stampCount(file);
      const decidedBefore = decided[door].length;
      const t = await send();
      const ran = await waitUntil(() => stampCount(file) > before, THROUGH_WITHIN_MS, 2);
      const at = ran ? readStamps(file)[before] : undefined;
      lat[kind].push(at === undefined ? undefined : at - t);
      // A log time is truncated to the millisecond: up to 1 ms before the send's own time.
      const d = decided[door][decidedBefore];
      dec[kind].push(d === undefined ? undefined : Math.max(0, d - t));
    };
    for (let i = 0; i < o.trials && !floodDone; i++) {
      const knock = make({ timeSec: Math.floor(Date.now() / 1000), nonce: new Uint8Array(randomBytes(NONCE_BYTES)), access: [{ proto: 'tcp', port: FIRST_PORT + i }] });
      await timed('spa', 'ssh', () => sender.send(DEFAULT_PORT, [knock]));
      await timed('seq', 'seq', () => sender.send(SEQ_PORTS, SEQ_PORTS.map(() => new Uint8Array([0x58]))));
      await timed('fwknop', 'fwknop', () => sender.send(DEFAULT_PORT, [packets[i]!]));
      await sleep(50);
    }
    const f = await flooding;
    const cpu1 = cpuSeconds(p.pid!);
    const w1 = wallMs();
    const aliveAfter = isRunning(p);
    return {
      sent: f.sent,
      sentPerSec: (f.sent * 1000) / Math.max(1, f.ms),
      cpuPct: cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 100 * 1000) / (w1 - w0),
      aliveAfter,
      rows: [
        { kind: 'spa knock', trials: lat.spa.length, latencies: lat.spa, decisions: dec.spa },
        { kind: 'knockd sequence', trials: lat.seq.length, latencies: lat.seq, decisions: dec.seq },
        { kind: 'fwknop knock', trials: lat.fwknop.length, latencies: lat.fwknop, decisions: dec.fwknop },
      ],
    };
  } finally {
    sender.close();
    await stopTracked(p, 'SIGTERM', 5000);
  }
}
