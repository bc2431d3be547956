// Sections 2, 3 and 5: a daemon on lo under a bounded 3 s flood with one valid knock in the
// middle (accepted? how fast? its close timer on time? CPU? alive?), and send-to-command latency
// over 200 knocks on an idle daemon. The same code drives spa-server, fwknopd and knockd. Shell.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpuSeconds, rssBytes, runTracked, spawnTracked } from './procs.js';
import { readStamps, waitUntil, type FloodSpec, type Subject } from './subject.js';
import { sleep, summarize, wallMs, type Summary } from './util.js';

export const FLOOD_MS = 3000;
/** When the valid knock goes out, from the start of the flood. */
export const KNOCK_AT_MS = 1500;

/** Compiles bench/flood.c into dir; returns the binary's path. */
export function buildFlooder(sourceFile: string, dir: string): string {
  const bin = join(dir, 'flood');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, sourceFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  return bin;
}

export interface FloodOutcome {
  readonly sent: number;
  readonly ms: number;
}

/** One bounded flood from 127.0.0.2 to 127.0.0.1 (rate 0 = unpaced). */
export async function runFlood(bin: string, spec: FloodSpec, ratePerSec: number, durationMs: number): Promise<FloodOutcome> {
  const { stdout } = await runTracked('flood', bin, ['127.0.0.1', String(spec.port), '127.0.0.2', String(ratePerSec), String(durationMs), '0', spec.mode, String(spec.size), String(spec.firstByte)], {
    timeoutMs: durationMs + 10_000,
  });
  const r = JSON.parse(stdout.trim()) as { sent: number; ms: number };
  return { sent: r.sent, ms: r.ms };
}

export interface FloodResult {
  readonly subject: string;
  /** Target rate, 0 = unpaced. */
  readonly rate: number;
  readonly label: string;
  readonly what: string;
  readonly sent: number;
  readonly sentPerSec: number;
  /** Flood datagrams the daemon says it examined. */
  readonly seen: number | undefined;
  /** (sent - seen) / sent, percent; undefined where a kernel filter dropped the rest by design. */
  readonly lostPct: number | undefined;
  /** spa-server: its kernel filter checked tags, so `seen` is what passed it. */
  readonly tagFilter: boolean;
  /** The daemon's CPU use during the flood, percent of one core. */
  readonly cpuPct: number | undefined;
  readonly accepted: boolean;
  /** Send to start command, ms. */
  readonly latencyMs: number | undefined;
  /** spa-server: send to its 'accepted' log line, ms (1 ms resolution). */
  readonly decisionMs: number | undefined;
  /**
   * The close command ran this much later than it should, ms: close stamp − (accepted log line
   * for spa-server, open stamp for the others) − timeout.
   */
  readonly timerLateMs: number | undefined;
  readonly shed: number | undefined;
  readonly reopens: number | undefined;
  readonly aliveAfter: boolean;
  readonly exit: string;
  readonly rssBytes: number | undefined;
  readonly notes: readonly string[];
}

export interface FloodRunOptions {
  readonly label?: string;
  /** Flood with this instead of the subject's own garbage. */
  readonly spec?: FloodSpec;
  /** Send the valid knock (default true). */
  readonly knock?: boolean;
}

export async function floodRun(s: Subject, flooder: string, rate: number, o: FloodRunOptions = {}): Promise<FloodResult> {
  const spec = o.spec ?? s.flood;
  const withKnock = o.knock !== false;
  await s.prepare(1);
  await s.start();
  try {
    await sleep(300);
    const pid = s.pid!;
    const cpu0 = cpuSeconds(pid);
    const w0 = wallMs();
    const flooding = runFlood(flooder, spec, rate, FLOOD_MS);
    let sendMs: number | undefined;
    if (withKnock) {
      await sleep(KNOCK_AT_MS);
      sendMs = await s.knock(0);
    }
    const f = await flooding;
    const cpu1 = cpuSeconds(pid);
    const w1 = wallMs();
    if (withKnock) await waitUntil(() => s.openCount() > 0 && s.closes().length > 0, 4000, 10);
    else await sleep(200);
    const aliveAfter = s.running();
    const rss = rssBytes(pid);
    const stop = await s.stop();
    const open = s.opens()[0];
    const close = s.closes()[0];
    const decision = s.decisionTimes?.()[0];
    const timerBase = decision ?? open;
    const seen = stop.seen === undefined ? undefined : Math.min(stop.seen, f.sent);
    return {
      subject: s.name,
      rate,
      label: o.label ?? (rate === 0 ? 'unpaced' : `${rate / 1000}k/s`),
      what: spec.what,
      sent: f.sent,
      sentPerSec: (f.sent * 1000) / Math.max(1, f.ms),
      seen,
      lostPct: seen === undefined || stop.tagFilter === true ? undefined : (Math.max(0, f.sent - seen) * 100) / Math.max(1, f.sent),
      tagFilter: stop.tagFilter === true,
      cpuPct: cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 100 * 1000) / (w1 - w0),
      accepted: withKnock && open !== undefined,
      latencyMs: open !== undefined && sendMs !== undefined ? open - sendMs : undefined,
      decisionMs: decision !== undefined && sendMs !== undefined ? Math.max(0, decision - sendMs) : undefined,
      timerLateMs: timerBase !== undefined && close !== undefined ? close - timerBase - s.timeoutMs : undefined,
      shed: stop.shed,
      reopens: stop.reopens,
      aliveAfter,
      exit: stop.exit,
      rssBytes: rss,
      notes: stop.notes,
    };
  } catch (e) {
    await s.stop().catch(() => undefined);
    throw e;
  }
}

export interface LatencyResult {
  readonly subject: string;
  readonly knocks: number;
  readonly lost: number;
  readonly latency: Summary;
  /** Send to the daemon's 'accepted' log line (spa-server), ms at 1 ms resolution. */
  readonly decision: Summary | undefined;
  readonly idleRssBytes: number | undefined;
}

/**
 * n knocks, one at a time: each is sent after the previous one's command ran (or 1 s passed),
 * after a random 10-30 ms pause so the sends fall at every phase of a daemon's polling loop.
 */
export async function latencyRun(s: Subject, n: number): Promise<LatencyResult> {
  await s.prepare(n);
  await s.start();
  try {
    await sleep(500);
    const idleRssBytes = rssBytes(s.pid!);
    const sends: number[] = [];
    for (let i = 0; i < n; i++) {
      await sleep(10 + Math.random() * 20);
      sends.push(await s.knock(i));
      await waitUntil(() => s.openCount() > i, 1000, 1);
    }
    await waitUntil(() => s.closes().length >= s.opens().length, s.timeoutMs + 2000, 20);
    await s.stop();
    const opens = s.opens();
    const latencies = matchToSends(sends, opens, 0);
    // Log times are whole milliseconds, truncated: a line logged in the send's own millisecond
    // can carry a time up to 1 ms before it.
    const decisions = s.decisionTimes ? matchToSends(sends, s.decisionTimes(), 1) : undefined;
    return { subject: s.name, knocks: n, lost: n - latencies.length, latency: summarize(latencies), decision: decisions && decisions.length > 0 ? summarize(decisions) : undefined, idleRssBytes };
  } catch (e) {
    await s.stop().catch(() => undefined);
    throw e;
  }
}

/**
 * Event i happened in [send i - slackMs, send i+1): the next knock left only after knock i's
 * command ran (or 1 s passed). Returns event - send for each knock that has one.
 */
function matchToSends(sends: readonly number[], events: readonly number[], slackMs: number): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < sends.length; i++) {
    const from = sends[i]! - slackMs;
    const to = (sends[i + 1] ?? Infinity) - slackMs;
    while (j < events.length && events[j]! < from) j++;
    if (j < events.length && events[j]! < to) out.push(Math.max(0, events[j++]! - sends[i]!));
  }
  return out;
}

/** The door command's own time: from Node spawning `/bin/sh -c 'stamp FILE'` to its stamp. */
export async function commandOwnTime(workRoot: string, stamp: string, n = 50): Promise<Summary> {
  const dir = mkdtempSync(join(workRoot, 'cmd-'));
  const file = join(dir, 'stamps');
  const starts: number[] = [];
  for (let i = 0; i < n; i++) {
    starts.push(wallMs());
    const p = spawnTracked('sh', '/bin/sh', ['-c', `${stamp} ${file}`], { stdio: 'ignore' });
    await p.exited;
  }
  const stamps = readStamps(file);
  rmSync(dir, { recursive: true, force: true });
  return summarize(stamps.map((t, i) => t - starts[i]!));
}

export interface ProcessTime {
  readonly name: string;
  readonly command: string;
  readonly ms: Summary;
  readonly failures: number;
}

/** Whole-process wall time of each command, runs interleaved so load drift hits all alike. */
export async function processTimes(cmds: readonly { name: string; file: string; args: string[]; env?: NodeJS.ProcessEnv }[], runs: number, warmup = 2): Promise<ProcessTime[]> {
  const times = cmds.map(() => [] as number[]);
  const failures = cmds.map(() => 0);
  for (let r = -warmup; r < runs; r++) {
    for (let c = 0; c < cmds.length; c++) {
      const cmd = cmds[c]!;
      const t0 = performance.now();
      const { code } = await spawnTracked(cmd.name, cmd.file, cmd.args, { stdio: 'ignore', env: cmd.env ?? process.env }).exited;
      const ms = performance.now() - t0;
      if (code !== 0) failures[c]!++;
      if (r >= 0) times[c]!.push(ms);
    }
  }
  return cmds.map((c, i) => ({ name: c.name, command: [c.file, ...c.args].join(' '), ms: summarize(times[i]!), failures: failures[i]! }));
}
