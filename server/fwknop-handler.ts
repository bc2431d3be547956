// fwknop packets in the daemon: shape check, the pure verifier, the replay cache made durable
// before anything opens, then a grant through the daemon's usual path (journal, backend,
// timed close). One log line per decision, with the source address and the stanza tried;
// rejections rate-limited. Its crypto work is budgeted per 100 ms so a flood of fwknop-shaped
// garbage (each costs an HMAC per candidate stanza) cannot starve spa knocks, sequences and
// timers. Shell.
import { parseAddress, type Address } from '../src/net/address.js';
import type { Access } from '../src/net/access.js';
import { accessText } from '../src/net/access.js';
import { FWKNOP_REASONS } from '../src/fwknop/reasons.js';
import { ipv4Text, parseIPv4 } from '../src/fwknop/ipv4.js';
import { replayUntil } from '../src/fwknop/replay.js';
import { isKeyFailure, looksLikeFwknop, verifyFwknop } from '../src/fwknop/verify.js';
import type { Frame } from './core/frame.js';
import { RateLimiter } from './core/rate-limit.js';
import { fwknopGrantId } from './fwknop-cmd-cycle.js';
import { FwknopReplayStore } from './fwknop-replay-store.js';
import type { FwknopRuntime } from './fwknop-runtime.js';
import type { Logger } from './log.js';

/** Of every BUDGET_WINDOW_MS, at most BUDGET_MS go to verifying fwknop packets ... */
const BUDGET_WINDOW_MS = 100;
const BUDGET_MS = 25;
/** ... and at most SOURCE_BUDGET_MS of it to one source address, so one flooder leaves room for others. */
const SOURCE_BUDGET_MS = 10;
/** Source addresses tracked per window; beyond this, new ones share one account. */
const MAX_SOURCES = 1024;
/** Payloads (with their source) that failed every stanza's keys: resent, they cost one SHA-256. */
const MAX_KNOWN_BAD = 4096;

export type FwknopGrantFn = (door: string, id: string, addr: Address, access: readonly Access[], untilMs: number) => void;

export class FwknopHandler {
  private readonly rejectLog = new RateLimiter(20, 2);
  private windowStartMs = 0;
  private spentMs = 0;
  private readonly spentBySource = new Map<string, number>();
  private readonly knownBad = new Set<string>();
  private lastShed = 0;
  readonly counters = { accepted: 0, rejected: 0, shed: 0 };

  constructor(
    private rt: FwknopRuntime,
    private readonly store: FwknopReplayStore,
    private readonly log: Logger,
    private readonly grant: FwknopGrantFn,
    private readonly nowMs: () => number,
  ) {}

  static open(rt: FwknopRuntime, stateDir: string, log: Logger, grant: FwknopGrantFn, nowMs: () => number): FwknopHandler {
    const maxAge = rt.globals.agingEnabled ? rt.globals.maxAgeSec : undefined;
    const store = new FwknopReplayStore(stateDir, maxAge);
    const imported = store.load(Math.floor(nowMs() / 1000), rt.digestFile);
    log.info({ stanzas: rt.doors.length, replayEntries: store.table.size, importedFromDigestFile: imported }, 'fwknop stanzas loaded');
    return new FwknopHandler(rt, store, log, grant, nowMs);
  }

  reconfigure(rt: FwknopRuntime): void {
    this.rt = rt;
    this.knownBad.clear(); // new keys may accept what the old ones refused
  }

  /** True when the payload has a fwknop packet's shape (then this handler decided it). */
  handle(f: Frame): boolean {
    if (!looksLikeFwknop(f.payload)) return false;
    const nowMs = this.nowMs();
    const src = f.src.family === 4 ? parseIPv4(f.src.text) : undefined;
    if (src === undefined) return this.reject('fwknop.source', f, undefined, nowMs), true;
    if (nowMs - this.windowStartMs >= BUDGET_WINDOW_MS) {
      this.windowStartMs = nowMs;
      this.spentMs = 0;
      this.spentBySource.clear();
    }
    const account = this.spentBySource.has(f.src.text) || this.spentBySource.size < MAX_SOURCES ? f.src.text : '*';
    const bySource = this.spentBySource.get(account) ?? 0;
    if (this.spentMs >= BUDGET_MS || bySource >= SOURCE_BUDGET_MS) {
      this.counters.shed++;
      return true;
    }
    const t0 = process.cpuUsage();
    const dst = f.dst.family === 4 ? parseIPv4(f.dst.text) : undefined;
    const nowSec = Math.floor(nowMs / 1000);
    const v = verifyFwknop(f.payload, { src, dst }, this.rt.stanzas, this.rt.globals, nowSec, (d) => this.store.table.has(d), (d) => this.knownBad.has(`${d} ${f.src.text}`));
    // Charged: CPU time (not wall time, which a busy machine inflates with waits that cost us
    // nothing), and only for packets no stanza's key authenticated. Authentic packets come
    // from key holders and are single-use; charging them let one slow verification on a
    // loaded machine shed the next valid knock from the same address.
    if (!v.ok && !v.authenticated) {
      const used = process.cpuUsage(t0);
      const ms = (used.user + used.system) / 1000;
      this.spentMs += ms;
      this.spentBySource.set(account, bySource + ms);
    }
    const maxAge = this.rt.globals.agingEnabled ? this.rt.globals.maxAgeSec : undefined;
    if (!v.ok && isKeyFailure(v) && v.replayDigest !== undefined) {
      if (this.knownBad.size >= MAX_KNOWN_BAD) this.knownBad.delete(this.knownBad.values().next().value as string);
      this.knownBad.add(`${v.replayDigest} ${f.src.text}`);
    }
    if (!v.ok) {
      // fwknopd burns an authentic packet's digest even when policy refuses it (SPEC.md §8 3.5).
      if (v.authenticated && v.replayDigest !== undefined) this.burn(v.replayDigest, replayUntil(nowSec, nowSec + (maxAge ?? 0), maxAge), f);
      this.reject(v.reason, f, v.stanza, nowMs);
      return true;
    }
    // Durable before anything opens: if the disk refuses, nothing opens (fail closed).
    if (!this.burn(v.replayDigest, replayUntil(nowSec, v.fields.timestamp, maxAge), f)) return true;
    const door = this.rt.doors[v.stanza] as string;
    const addr = parseAddress(v.allowIp);
    if (addr === undefined) return this.reject('fwknop.allow-ip', f, v.stanza, nowMs), true;
    const untilMs = nowMs + v.timeoutSec * 1000;
    this.counters.accepted++;
    this.grant(door, fwknopGrantId(f.src.text, dst === undefined ? undefined : ipv4Text(dst)), addr, v.access, untilMs);
    const st = this.rt.stanzas[v.stanza];
    this.log.info(
      { door, stanza: `${st?.file}:${st?.line}`, src: f.src.text, allow: v.allowIp, user: v.fields.username, access: v.access.map(accessText), until: new Date(untilMs).toISOString() },
      'accepted',
    );
    return true;
  }

  private burn(digest: string, untilSec: number, f: Frame): boolean {
    try {
      this.store.record(digest, untilSec);
      return true;
    } catch (e) {
      this.log.error({ error: (e as Error).message, src: f.src.text }, 'fwknop replay cache not persisted; knock refused');
      return false;
    }
  }

  private reject(reason: keyof typeof FWKNOP_REASONS, f: Frame, stanza: number | undefined, nowMs: number): void {
    this.counters.rejected++;
    if (!this.rejectLog.take(reason, nowMs)) return;
    const st = stanza === undefined ? undefined : this.rt.stanzas[stanza];
    this.log.info({ reason, why: FWKNOP_REASONS[reason], src: f.src.text, stanza: st ? `${st.file}:${st.line}` : undefined }, 'rejected');
  }

  /** Every 5 s: forget stale digests; report shed packets. */
  tick(nowMs: number): void {
    this.store.sweep(Math.floor(nowMs / 1000));
    const s = this.rejectLog.drainSuppressed();
    if (Object.keys(s).length > 0) this.log.info({ suppressed: s }, 'fwknop rejections not logged');
    if (this.counters.shed > this.lastShed) {
      this.log.warn({ shed: this.counters.shed - this.lastShed }, 'fwknop packets dropped unverified: verification budget spent');
      this.lastShed = this.counters.shed;
    }
  }

  close(): void {
    this.store.close();
  }
}
