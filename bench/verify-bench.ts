// Section 1: the verify pipeline in-process (verifyDatagram with a TagTable and ReplayGuard, as
// the daemon calls it) on five kinds of input, with 1, 100 and 10,000 authorized keys; the
// public-key operations each kind costs, counted; the primitives' own cost; the replay guard's
// memory at capacity. Shell (instruments node:crypto and tweetnacl, reads the clock).
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import nacl from 'tweetnacl';
import { DATAGRAM_BYTES, DEFAULT_REPLAY_TOTAL, DEFAULT_WINDOW_SEC, NONCE_BYTES, OFF_BOX, OFF_NONCE, OFF_TAG, VERSION } from '../src/protocol/constants.js';
import { verifyDatagram, type VerifyContext } from '../src/protocol/datagram.js';
import { authorizeClient, type AuthorizedClient } from '../src/protocol/keys.js';
import { openBox, verifyEd25519 } from '../src/protocol/primitives.js';
import { nonceKeyOf, ReplayGuard } from '../src/protocol/replay.js';
import { TagTable } from '../src/protocol/tag.js';
import { clientPublicKey } from '../src/protocol/keys.js';
import type { BenchKeys } from './bench-keys.js';
import { concat } from '../src/bytes.js';
import { knockMaker } from './knock-maker.js';
import { median, Prng } from './util.js';

export const KEY_COUNTS = [1, 100, 10_000] as const;

export type InputKind = 'garbage' | 'header' | 'forgery' | 'replay' | 'valid';

export const KIND_LABEL: Record<InputKind, string> = {
  garbage: 'random garbage (random length 1-512, random bytes)',
  header: 'right-looking header (185 bytes, version 1, random rest)',
  forgery: 'forgery (a valid tag, random nonce and box)',
  replay: 'replay of a valid datagram',
  valid: 'valid, fresh datagram (verify + replay-guard add)',
};

export interface VerifyRow {
  readonly kind: InputKind;
  readonly keys: number;
  /** Median of the repetitions. */
  readonly perSec: number;
  readonly repetitions: readonly number[];
}

export interface OpCount {
  readonly kind: InputKind;
  readonly datagrams: number;
  readonly reasons: Readonly<Record<string, number>>;
  readonly ed25519: number;
  readonly secretbox: number;
}

export interface VerifyResults {
  readonly rows: VerifyRow[];
  readonly counts: OpCount[];
  /** False when the instrumentation did not see the valid datagrams' verifications. */
  readonly countingWorks: boolean;
  readonly primitivesNs: { readonly name: string; readonly ns: number }[];
  readonly replayGuard: { readonly entries: number; readonly heapBytes: number };
  readonly setupMs: { readonly authorize10k: number; readonly tagTable10k: number };
  /** Memory held by 10,000 AuthorizedClients and their 5-epoch TagTable, after gc. */
  readonly keysMemory: { readonly heapBytes: number; readonly externalBytes: number; readonly rssBytes: number };
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

interface Pools {
  readonly garbage: Uint8Array[];
  readonly header: Uint8Array[];
  readonly forgery: Uint8Array[];
  readonly replay: Uint8Array[];
  readonly valid: Uint8Array[];
}

function makePools(keys: BenchKeys, nowSec: number, validCount: number): Pools {
  const rng = new Prng(7);
  const make = knockMaker(keys.clients[0]!, keys.server);
  const nonce = (): Uint8Array => rng.bytes(NONCE_BYTES);
  const POOL = 4096;
  const garbage: Uint8Array[] = [];
  const header: Uint8Array[] = [];
  const forgery: Uint8Array[] = [];
  const template = make({ timeSec: nowSec, nonce: nonce() });
  for (let i = 0; i < POOL; i++) {
    garbage.push(rng.bytes(1 + rng.below(512)));
    const h = rng.bytes(DATAGRAM_BYTES);
    h[0] = VERSION;
    header.push(h);
    // Version and tag of a real knock of client 0 (this epoch); nonce and box random.
    forgery.push(concat(template.subarray(0, OFF_NONCE), rng.bytes(DATAGRAM_BYTES - OFF_NONCE)));
  }
  const replay: Uint8Array[] = [];
  for (let i = 0; i < 256; i++) replay.push(make({ timeSec: nowSec, nonce: nonce() }));
  const valid: Uint8Array[] = [];
  for (let i = 0; i < validCount; i++) valid.push(make({ timeSec: nowSec, nonce: nonce() }));
  return { garbage, header, forgery, replay, valid };
}

/** The context the daemon would have with `clients` authorized; replay's nonces recorded. */
function contextFor(keys: BenchKeys, clients: readonly AuthorizedClient[], replayPool: readonly Uint8Array[], nowSec: number): VerifyContext {
  const tags = new TagTable(DEFAULT_WINDOW_SEC);
  tags.setClients(clients, nowSec);
  const replay = new ReplayGuard(DEFAULT_WINDOW_SEC);
  // The replayed datagrams are all made by clients[0] (the pools' signer).
  for (const d of replayPool) replay.add(clients[0]!.guardKey, nonceKeyOf(d, OFF_NONCE, NONCE_BYTES), nowSec);
  return { server: keys.server, tags, replay, windowSec: DEFAULT_WINDOW_SEC };
}

/** Loops over `pool` until at least minMs have passed; returns datagrams per second. */
function rateOf(pool: readonly Uint8Array[], ctx: VerifyContext, nowSec: number, minMs: number): number {
  let n = 0;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  let ns = 0n;
  const limit = BigInt(Math.round(minMs * 1e6));
  do {
    for (let i = 0; i < pool.length; i++) {
      if (verifyDatagram(ctx, pool[i]!, nowSec).ok) sink++;
    }
    n += pool.length;
    ns = process.hrtime.bigint() - t0;
  } while (ns < limit);
  if (sink < 0) throw new Error('unreachable'); // keeps the results observable
  return (n * 1e9) / Number(ns);
}

/** Valid datagrams: each verified once and recorded, as the daemon does after policy. */
function validRate(pool: readonly Uint8Array[], ctx: VerifyContext, nowSec: number): number {
  // One client sends them all in one second: room for all of them (protocol v1 bounds the guard
  // per client, and a full client's oldest knock raises its watermark).
  const replay = new ReplayGuard(DEFAULT_WINDOW_SEC, pool.length);
  const c: VerifyContext = { ...ctx, replay };
  let accepted = 0;
  const t0 = process.hrtime.bigint();
  for (const d of pool) {
    const v = verifyDatagram(c, d, nowSec);
    if (v.ok) {
      replay.add(v.client.guardKey, v.nonceKey, v.timeSec);
      accepted++;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (accepted !== pool.length) throw new Error(`bench: only ${accepted} of ${pool.length} valid datagrams verified`);
  return (pool.length * 1e9) / ns;
}

/**
 * Counts the public-key and symmetric operations each kind costs, by wrapping node:crypto's
 * verify (and re-syncing the ESM bindings the protocol code imported) and tweetnacl's
 * secretbox.open for one pass. The timed passes run unwrapped.
 */
function countOps(pools: Pools, ctx: VerifyContext, nowSec: number): OpCount[] {
  const counts = { ed25519: 0, secretbox: 0 };
  const cryptoObj = crypto as unknown as Record<string, unknown>;
  const box = nacl.secretbox as unknown as Record<string, unknown>;
  const origVerify = cryptoObj['verify'] as (...a: unknown[]) => unknown;
  const origOpen = box['open'] as (...a: unknown[]) => unknown;
  cryptoObj['verify'] = (...a: unknown[]) => {
    counts.ed25519++;
    return origVerify(...a);
  };
  box['open'] = (...a: unknown[]) => {
    counts.secretbox++;
    return origOpen(...a);
  };
  syncBuiltinESMExports();
  try {
    const out: OpCount[] = [];
    for (const kind of ['garbage', 'header', 'forgery', 'replay', 'valid'] as const) {
      const pool = kind === 'valid' ? pools.valid.slice(0, 500) : pools[kind].slice(0, 2000);
      counts.ed25519 = 0;
      counts.secretbox = 0;
      const reasons: Record<string, number> = {};
      for (const d of pool) {
        const v = verifyDatagram(ctx, d, nowSec);
        const r = v.ok ? 'ok' : v.reason;
        reasons[r] = (reasons[r] ?? 0) + 1;
      }
      out.push({ kind, datagrams: pool.length, reasons, ed25519: counts.ed25519, secretbox: counts.secretbox });
    }
    return out;
  } finally {
    cryptoObj['verify'] = origVerify;
    box['open'] = origOpen;
    syncBuiltinESMExports();
  }
}

function nsPerCall(fn: () => unknown, minMs: number): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  let ns = 0;
  do {
    for (let i = 0; i < 64; i++) fn();
    n += 64;
    ns = Number(process.hrtime.bigint() - t0);
  } while (ns < minMs * 1e6);
  return ns / n;
}

function primitives(keys: BenchKeys, pools: Pools, clients: readonly AuthorizedClient[], contexts: ReadonlyMap<number, VerifyContext>, nowSec: number): { name: string; ns: number }[] {
  const c0 = clients[0]!;
  const d = pools.replay[0]!;
  const nonce = d.subarray(OFF_NONCE, OFF_NONCE + NONCE_BYTES);
  if (!openBox(d.subarray(OFF_BOX), nonce, c0.boxKey)) throw new Error('bench: a valid datagram does not open');
  const forged = pools.forgery[0]!;
  // The exact message verifyDatagram checks is internal; a signature over other bytes costs the same.
  const msg = new Uint8Array(128);
  const sig = new Uint8Array(crypto.sign(null, msg, keys.clients[0]!.signKey));
  // A miss in a table of 5 entries (1 key) stays in cache; one of 50,000 (10,000 keys × 5 epochs) does not.
  const header = pools.header;
  let h = 0;
  const lookupIn = (n: number): { name: string; ns: number } => {
    const tags = contexts.get(n)!.tags;
    return { name: `tag table lookup, miss, ${n.toLocaleString('en-US')} key${n === 1 ? '' : 's'} (${tags.size.toLocaleString('en-US')} tags)`, ns: nsPerCall(() => tags.lookup(header[h++ & 4095]!, OFF_TAG, nowSec), 200) };
  };
  return [
    { name: 'Ed25519 verify (node:crypto)', ns: nsPerCall(() => verifyEd25519(c0.verifyKey!, msg, sig), 300) },
    { name: 'secretbox open, 144 bytes, fails (forgery)', ns: nsPerCall(() => openBox(forged.subarray(OFF_BOX), forged.subarray(OFF_NONCE, OFF_BOX), c0.boxKey), 300) },
    { name: 'secretbox open, 144 bytes, succeeds', ns: nsPerCall(() => openBox(d.subarray(OFF_BOX), nonce, c0.boxKey), 300) },
    lookupIn(1),
    lookupIn(10_000),
  ];
}

/** Heap bytes held by a ReplayGuard filled to its default total capacity (1,000 clients). */
function replayGuardHeap(nowSec: number): { entries: number; heapBytes: number } {
  const rng = new Prng(11);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const guard = new ReplayGuard(DEFAULT_WINDOW_SEC);
  const nonce = new Uint8Array(NONCE_BYTES);
  const client = (i: number): string => String(i % 1000).padStart(32, '0');
  for (let i = 0; i < DEFAULT_REPLAY_TOTAL; i++) {
    for (let j = 0; j < NONCE_BYTES; j += 4) {
      const r = rng.u32();
      nonce[j] = r & 0xff;
      nonce[j + 1] = (r >>> 8) & 0xff;
      nonce[j + 2] = (r >>> 16) & 0xff;
      nonce[j + 3] = r >>> 24;
    }
    guard.add(client(i), nonceKeyOf(nonce, 0, NONCE_BYTES), nowSec);
  }
  gc();
  gc();
  const heapBytes = process.memoryUsage().heapUsed - before;
  return { entries: guard.size, heapBytes };
}

export function runVerifyBench(keys: BenchKeys, log: (s: string) => void, opts: { minMs?: number; repetitions?: number } = {}): VerifyResults {
  const minMs = opts.minMs ?? 300;
  const reps = opts.repetitions ?? 3;
  const nowSec = Math.floor(Date.now() / 1000);

  gc();
  gc();
  const mem0 = process.memoryUsage();
  let t = performance.now();
  // As the daemon does at load: keys it cannot use are skipped (it reports them).
  const all: AuthorizedClient[] = keys.publics.flatMap((p, i) => authorizeClient(keys.server, `bench${i}`, clientPublicKey(p)) ?? []);
  if (all[0]?.id !== 'bench0') throw new Error('bench: the knocking client cannot be authorized');
  const authorize10k = performance.now() - t;
  t = performance.now();
  const table10k = new TagTable(DEFAULT_WINDOW_SEC);
  table10k.setClients(all, nowSec);
  const tagTable10k = performance.now() - t;
  gc();
  gc();
  const mem1 = process.memoryUsage();
  const keysMemory = { heapBytes: mem1.heapUsed - mem0.heapUsed, externalBytes: mem1.external - mem0.external, rssBytes: mem1.rss - mem0.rss };
  if (table10k.size === 0) throw new Error('bench: empty tag table');

  log('  making datagram pools');
  const pools = makePools(keys, nowSec, 2000);
  const contexts = new Map(KEY_COUNTS.map((n) => [n, contextFor(keys, all.slice(0, n), pools.replay, nowSec)]));

  // Sanity and operation counts, with 10,000 keys.
  const counts = countOps(pools, contexts.get(10_000)!, nowSec);
  const validCount = counts.find((c) => c.kind === 'valid');
  const countingWorks = validCount !== undefined && validCount.ed25519 === validCount.datagrams && validCount.secretbox === validCount.datagrams;
  const expected: Record<InputKind, string[]> = {
    garbage: ['length.bad', 'version.unknown', 'tag.unknown'],
    header: ['tag.unknown'],
    forgery: ['box.bad'],
    replay: ['replay.seen'],
    valid: ['ok'],
  };
  for (const c of counts) {
    const wrong = Object.keys(c.reasons).filter((r) => !expected[c.kind].includes(r));
    if (wrong.length > 0) throw new Error(`bench: ${c.kind} datagrams gave ${wrong.join(', ')}`);
  }

  const rows: VerifyRow[] = [];
  for (const kind of ['garbage', 'header', 'forgery', 'replay', 'valid'] as const) {
    const byKeys = new Map<number, number[]>(KEY_COUNTS.map((n) => [n, []]));
    // Warm up (JIT) on the first context, then interleave the key counts so drift in the
    // machine's load hits all of them alike.
    if (kind !== 'valid') rateOf(pools[kind], contexts.get(1)!, nowSec, 100);
    else validRate(pools.valid.slice(0, 200), contexts.get(1)!, nowSec);
    for (let r = 0; r < reps; r++) {
      for (const n of KEY_COUNTS) {
        gc();
        const ctx = contexts.get(n)!;
        byKeys.get(n)!.push(kind === 'valid' ? validRate(pools.valid, ctx, nowSec) : rateOf(pools[kind], ctx, nowSec, minMs));
      }
    }
    for (const n of KEY_COUNTS) {
      const v = byKeys.get(n)!;
      rows.push({ kind, keys: n, perSec: median(v), repetitions: v });
    }
    log(`  ${kind}: ${KEY_COUNTS.map((n) => `${n} keys ${Math.round(median(byKeys.get(n)!)).toLocaleString('en-US')}/s`).join(', ')}`);
  }

  const primitivesNs = primitives(keys, pools, all, contexts, nowSec);
  log('  replay guard at its total capacity (1,000,000 entries, 1,000 clients)');
  const replayGuard = replayGuardHeap(nowSec);
  return { rows, counts, countingWorks, primitivesNs, replayGuard, setupMs: { authorize10k, tagTable10k }, keysMemory };
}
