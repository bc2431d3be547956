// Replay guard: per client, the nonces of its accepted knocks until they can no longer be
// fresh, and a watermark below which every knock of that client counts as replayed
// (PROTOCOL.md §5.3). Pure.
// Keyed by (client, nonce), so no client can spend another's nonce, and bounded per client
// and in all: a client at its capacity forgets its own oldest entry (raising its own
// watermark); at the total capacity the client holding the most entries does. A forgotten
// nonce can never be accepted again (fail closed), and no client can make another's fresh
// knock be refused while it holds no more than its share.
import { DEFAULT_REPLAY_PER_CLIENT, DEFAULT_REPLAY_TOTAL } from './constants.js';

export interface ReplayEntry {
  /** The client's guard key (AuthorizedClient.guardKey: its Ed25519 key, latin1). */
  readonly client: string;
  readonly nonceKey: string;
  readonly timeSec: number;
}

interface ClientGuard {
  /** nonceKey -> timeSec. */
  readonly seen: Map<string, number>;
  /** Knocks of this client with timeSec <= watermark are refused whatever their nonce. */
  watermark: number;
}

export class ReplayGuard {
  private readonly clients = new Map<string, ClientGuard>();
  private total = 0;
  /** A watermark for every client (a 0.1 replay.log, which named no clients, becomes one). */
  private floorSec = -Infinity;

  constructor(
    private readonly windowSec: number,
    readonly perClient: number = DEFAULT_REPLAY_PER_CLIENT,
    readonly capacity: number = DEFAULT_REPLAY_TOTAL,
  ) {
    if (!(perClient >= 1 && capacity >= 1)) throw new RangeError('replay guard capacities must be at least 1');
  }

  get size(): number {
    return this.total;
  }

  /** A client's watermark (-Infinity while it has none), the common floor included. */
  watermark(client: string): number {
    return Math.max(this.floorSec, this.clients.get(client)?.watermark ?? -Infinity);
  }

  get floor(): number {
    return this.floorSec;
  }

  /** Raises the watermark of every client, present and future, to at least timeSec. */
  raiseFloor(timeSec: number): void {
    this.floorSec = Math.max(this.floorSec, timeSec);
  }

  hasNonce(client: string, nonceKey: string): boolean {
    return this.clients.get(client)?.seen.has(nonceKey) ?? false;
  }

  isBelowWatermark(client: string, timeSec: number): boolean {
    return timeSec <= this.watermark(client);
  }

  private guardOf(client: string): ClientGuard {
    let g = this.clients.get(client);
    if (!g) {
      g = { seen: new Map(), watermark: -Infinity };
      this.clients.set(client, g);
    }
    return g;
  }

  /** Forgets g's entry with the smallest timestamp and raises g's watermark to it. */
  private forgetOldest(g: ClientGuard): void {
    let oldestKey: string | undefined;
    let oldest = Infinity;
    for (const [k, t] of g.seen) {
      if (t < oldest) {
        oldest = t;
        oldestKey = k;
      }
    }
    if (oldestKey === undefined) return;
    g.seen.delete(oldestKey);
    g.watermark = Math.max(g.watermark, oldest);
    this.total--;
  }

  /** The client holding the most entries (the one that must give way at the total capacity). */
  private largest(): ClientGuard | undefined {
    let best: ClientGuard | undefined;
    for (const g of this.clients.values()) if (!best || g.seen.size > best.seen.size) best = g;
    return best;
  }

  /** Records an accepted knock. Returns how many entries it had to forget to stay in capacity. */
  add(client: string, nonceKey: string, timeSec: number): number {
    const g = this.guardOf(client);
    if (g.seen.has(nonceKey)) return 0;
    let forgotten = 0;
    for (; g.seen.size >= this.perClient; forgotten++) this.forgetOldest(g);
    for (; this.total >= this.capacity; forgotten++) {
      const victim = this.largest();
      if (!victim || victim.seen.size === 0) break;
      this.forgetOldest(victim);
    }
    g.seen.set(nonceKey, timeSec);
    this.total++;
    return forgotten;
  }

  /** Forgets nonces whose knocks are past the window; check 8 refuses them anyway. */
  sweep(nowSec: number): number {
    const limit = nowSec - this.windowSec;
    let n = 0;
    for (const g of this.clients.values()) {
      for (const [k, t] of g.seen) {
        if (t < limit) {
          g.seen.delete(k);
          g.watermark = Math.max(g.watermark, t);
          n++;
        }
      }
    }
    this.total -= n;
    return n;
  }

  /** Restores a persisted watermark. */
  raiseWatermark(client: string, timeSec: number): void {
    const g = this.guardOf(client);
    g.watermark = Math.max(g.watermark, timeSec);
  }

  /** Every client's watermark, for persisting. */
  watermarks(): { client: string; timeSec: number }[] {
    const out: { client: string; timeSec: number }[] = [];
    for (const [client, g] of this.clients) if (Number.isFinite(g.watermark)) out.push({ client, timeSec: g.watermark });
    return out;
  }

  entries(): ReplayEntry[] {
    const out: ReplayEntry[] = [];
    for (const [client, g] of this.clients) for (const [nonceKey, timeSec] of g.seen) out.push({ client, nonceKey, timeSec });
    return out;
  }
}

export function nonceKeyOf(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1');
}
