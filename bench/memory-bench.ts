// Section 4: spa-server's resident memory idle and with 10,000 authorized keys after 100,000
// accepted knocks (all from one key and address, so the grants extend one rule; each knock a
// fresh nonce, so the replay guard holds 100,000 entries). Knocks go out as fast as the daemon
// takes them: at most WINDOW unanswered at a time. Shell.
import { randomBytes } from 'node:crypto';
import { DEFAULT_PORT, NONCE_BYTES } from '../src/protocol/constants.js';
import type { BenchKeys, KeyFiles } from './bench-keys.js';
import { knockMaker } from './knock-maker.js';
import { cpuSeconds, packetRing, rssBytes, socketMappedBytes } from './procs.js';
import { SpaServer } from './subject-spa.js';
import { Sender } from './subject.js';
import { sleep } from './util.js';

export const MEMORY_KEYS = 10_000;
export const MEMORY_KNOCKS = 100_000;
const WINDOW = 256;
const BATCH = 32;

export interface MemorySample {
  readonly rssBytes: number | undefined;
  /** Resident bytes of the pcap ring (the socket mapping in smaps) and its mapped size. */
  readonly ringResidentBytes: number | undefined;
  readonly ringMappedBytes: number | undefined;
}

export interface MemoryResult {
  readonly keys: number;
  readonly pcapBufferMb: number;
  readonly startupMs: number;
  readonly idle: MemorySample;
  /** 2 s after the last knock. */
  readonly afterKnocks: MemorySample;
  /** 12 s after the last knock: time for V8 to collect what the knocks left, if it will. */
  readonly settled: MemorySample;
  readonly accepted: number;
  readonly sent: number;
  readonly rejected: number | undefined;
  readonly knockMs: number;
  readonly acceptedPerSec: number;
  readonly serverCpuPct: number | undefined;
  readonly exit: string;
  /** Replay-guard entries held at the end: the accepted knocks still inside the window. */
  readonly replayEntries: number;
  readonly stateDirNote: string;
  readonly ring: string | undefined;
}

function sample(pid: number): MemorySample {
  const ring = socketMappedBytes(pid);
  return { rssBytes: rssBytes(pid), ringResidentBytes: ring?.resident, ringMappedBytes: ring?.size };
}

export async function runMemoryBench(
  o: { workRoot: string; stateRoot: string; stateDirNote: string; keys: BenchKeys; files: KeyFiles; knocks?: number; deadlineMs?: number },
  log: (s: string) => void,
): Promise<MemoryResult> {
  const knocks = o.knocks ?? MEMORY_KNOCKS;
  const pcapBufferMb = 64;
  const server = new SpaServer({
    workRoot: o.workRoot,
    stateRoot: o.stateRoot,
    authorizedFile: o.files.authorized(MEMORY_KEYS),
    serverKeyFile: o.files.serverKey,
    startCommand: 'true',
    cmdTimeoutSec: 3600,
    pcapBufferMb,
  });
  const sender = new Sender();
  try {
    await server.start();
    const pid = server.proc!.pid;
    const startupMs = server.readyAtMs - server.startedAtMs;
    log(`  started with ${MEMORY_KEYS.toLocaleString('en-US')} keys in ${(startupMs / 1000).toFixed(1)} s`);
    await sleep(1000);
    const idle = sample(pid);
    const ring = packetRing(pid);

    const make = knockMaker(o.keys.clients[0]!, o.keys.server);
    const deadline = performance.now() + (o.deadlineMs ?? 150_000);
    const t0 = performance.now();
    const cpu0 = cpuSeconds(pid);
    let sent = 0;
    let lost = 0;
    let lastAccepted = 0;
    let lastProgress = performance.now();
    let nextReport = 10_000;
    while (server.count('accepted') < knocks && performance.now() < deadline) {
      const accepted = server.count('accepted');
      if (accepted !== lastAccepted) {
        lastAccepted = accepted;
        lastProgress = performance.now();
      }
      if (accepted >= nextReport) {
        log(`  ${accepted.toLocaleString('en-US')} accepted`);
        nextReport += 10_000;
      }
      const inFlight = sent - lost - accepted;
      if (inFlight < WINDOW) {
        const n = Math.min(BATCH, knocks - accepted - inFlight);
        if (n > 0) {
          const timeSec = Math.floor(Date.now() / 1000);
          const ds = Array.from({ length: n }, () => make({ timeSec, nonce: new Uint8Array(randomBytes(NONCE_BYTES)) }));
          await sender.send(DEFAULT_PORT, ds);
          sent += n;
          continue;
        }
      }
      // Nothing answered for 500 ms: what is in flight was lost (capture yield or ring full).
      if (performance.now() - lastProgress > 500) {
        lost = sent - server.count('accepted');
        lastProgress = performance.now();
      }
      await sleep(1);
    }
    const knockMs = performance.now() - t0;
    const cpu1 = cpuSeconds(pid);
    await sleep(2000);
    const afterKnocks = sample(pid);
    await sleep(10_000);
    const settled = sample(pid);
    const accepted = server.count('accepted');
    const stop = await server.stop();
    return {
      keys: MEMORY_KEYS,
      pcapBufferMb,
      startupMs,
      idle,
      afterKnocks,
      settled,
      accepted,
      sent,
      rejected: stop.rejected,
      knockMs,
      acceptedPerSec: (accepted * 1000) / knockMs,
      serverCpuPct: cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 100 * 1000) / knockMs,
      exit: stop.exit,
      // The guard sweeps entries older than the 120 s window; a run shorter than that keeps all.
      replayEntries: knockMs + 2000 < 120_000 ? accepted : NaN,
      stateDirNote: o.stateDirNote,
      ring,
    };
  } finally {
    sender.close();
    await server.stop().catch(() => undefined);
  }
}
