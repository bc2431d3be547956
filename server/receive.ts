// The per-packet path: a frame to the SPA port goes to the fwknop handler or to the pure SPA
// decision (core/spa.ts), any other to the sequence doors; an accepted knock is made durable
// in the replay log, then handed to the effects runner; one log line per decision, rejections
// rate-limited. Synchronous: it decides and queues effects, never throws. Shell.
import { accessText, type Access } from '../src/net/access.js';
import type { Address } from '../src/net/address.js';
import type { ReplayGuard } from '../src/protocol/replay.js';
import type { TagTable } from '../src/protocol/tag.js';
import type { Frame } from './core/frame.js';
import { RateLimiter } from './core/rate-limit.js';
import { decideSpa } from './core/spa.js';
import type { GrantRunner } from './effects.js';
import type { FwknopHandler } from './fwknop-handler.js';
import type { Logger } from './log.js';
import type { MetricsWriter } from './metrics.js';
import type { Runtime } from './runtime.js';
import type { SequenceEngine } from './sequences.js';
import type { ReplayStore } from './state.js';
import type { PacketSource } from './udp-source.js';

const SECOND = 1000;
/** Rejection log lines: a burst of 20 per reason, then 2 a second (the rest are counted). */
const REJECT_LOG_BURST = 20;
const REJECT_LOG_PER_SEC = 2;

/** What the receiver reads from the daemon at each packet (a reload or a reopen changes them). */
export interface ReceiveParts {
  readonly runtime: () => Runtime;
  readonly tags: TagTable;
  readonly replay: ReplayGuard;
  readonly replayStore: ReplayStore;
  readonly effects: GrantRunner;
  readonly log: Logger;
  readonly nowMs: () => number;
  readonly source: () => PacketSource | undefined;
  readonly sequences: () => SequenceEngine | undefined;
  readonly fwknop: () => FwknopHandler | undefined;
  readonly metrics: () => MetricsWriter | undefined;
}

export class Receiver {
  private readonly rejectLog = new RateLimiter(REJECT_LOG_BURST, REJECT_LOG_PER_SEC);
  readonly counters = { accepted: 0, rejected: 0 };

  constructor(private readonly p: ReceiveParts) {}

  /** The per-packet entry point. Synchronous: decides and queues effects; never throws. */
  handleFrame(f: Frame): void {
    try {
      if (f.proto === 'udp' && f.dstPort === this.p.runtime().config.options.spaPort) {
        // A fwknop packet is base64 text; a v1 datagram starts with 0x01, which is not.
        if (!this.p.fwknop()?.handle(f)) this.handleSpa(f);
      } else this.p.sequences()?.hit(f, this.p.nowMs());
    } catch (e) {
      this.p.log.error({ err: e }, 'packet handling failed');
    }
  }

  private handleSpa(f: Frame): void {
    const nowMs = this.p.nowMs();
    const nowSec = Math.floor(nowMs / SECOND);
    const rt = this.p.runtime();
    const d = decideSpa({ server: rt.server, tags: this.p.tags, replay: this.p.replay, windowSec: rt.config.options.windowSec, doors: rt.spaDoors }, f.payload, f.src, nowMs);
    if (!d.ok) return this.reject(d.reason, f, d.id, nowMs);
    // PROTOCOL.md §5.3: durable before any action; if the disk refuses, nothing opens.
    try {
      this.p.replayStore.record(d.replay.client, d.replay.nonceKey, d.replay.timeSec);
    } catch (e) {
      this.p.log.error({ error: (e as Error).message, id: d.id, src: f.src.text }, 'replay guard not persisted; knock refused');
      return;
    }
    this.p.replay.add(d.replay.client, d.replay.nonceKey, d.replay.timeSec);
    this.p.source()?.accepted?.(f.payload, nowSec);
    this.counters.accepted++;
    this.p.metrics()?.metrics.accepted(d.door.name);
    this.p.effects.grantAccess(d.door.name, d.id, d.addr, d.access, d.untilMs);
    this.p.log.info({ door: d.door.name, id: d.id, src: f.src.text, allow: d.addr.text, access: d.access.map(accessText), until: new Date(d.untilMs).toISOString() }, 'accepted');
  }

  /** A fwknop stanza accepted a packet: the usual grant path (issue 14). */
  grantFwknop(door: string, id: string, addr: Address, access: readonly Access[], untilMs: number): void {
    this.counters.accepted++;
    this.p.metrics()?.metrics.accepted(door);
    this.p.effects.grantAccess(door, id, addr, access, untilMs);
  }

  private reject(reason: string, f: Frame, id: string | undefined, nowMs: number): void {
    this.counters.rejected++;
    this.p.metrics()?.metrics.rejected(reason);
    if (this.rejectLog.take(reason, nowMs)) this.p.log.info({ reason, src: f.src.text, id }, 'rejected');
  }

  /** The daemon's timer: one line counting the rejections not logged since the last. */
  reportSuppressed(): void {
    const s = this.rejectLog.drainSuppressed();
    if (Object.keys(s).length > 0) this.p.log.info({ suppressed: s }, 'rejections not logged');
  }
}
