// Replay guard: accepted nonces until their knock can no longer be fresh, plus a
// watermark below which every knock counts as replayed (PROTOCOL.md §5.3). Pure.
// Bounded: at capacity the oldest entry is forgotten and the watermark rises to its
// timestamp, so a forgotten nonce can still never be accepted again (fail closed).

export interface ReplayEntry {
  readonly nonceKey: string;
  readonly timeSec: number;
}

export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  /** Knocks with timeSec <= watermark are refused whatever their nonce. */
  private watermarkSec = -Infinity;

  constructor(
    private readonly windowSec: number,
    private readonly capacity: number,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  get watermark(): number {
    return this.watermarkSec;
  }

  hasNonce(nonceKey: string): boolean {
    return this.seen.has(nonceKey);
  }

  isBelowWatermark(timeSec: number): boolean {
    return timeSec <= this.watermarkSec;
  }

  /** Records an accepted knock. Returns the entries it had to forget to stay in capacity. */
  add(nonceKey: string, timeSec: number): number {
    let forgotten = 0;
    while (this.seen.size >= this.capacity) {
      const first = this.seen.entries().next();
      if (first.done) break;
      const [k, t] = first.value;
      this.seen.delete(k);
      this.watermarkSec = Math.max(this.watermarkSec, t);
      forgotten++;
    }
    this.seen.set(nonceKey, timeSec);
    return forgotten;
  }

  /** Forgets nonces whose knocks are past the window; they would be stale anyway. */
  sweep(nowSec: number): number {
    const limit = nowSec - this.windowSec;
    let n = 0;
    for (const [k, t] of this.seen) {
      if (t < limit) {
        this.seen.delete(k);
        this.watermarkSec = Math.max(this.watermarkSec, t);
        n++;
      }
    }
    return n;
  }

  /** Restores a persisted watermark (the journal of the shell). */
  raiseWatermark(timeSec: number): void {
    this.watermarkSec = Math.max(this.watermarkSec, timeSec);
  }

  entries(): ReplayEntry[] {
    return Array.from(this.seen, ([nonceKey, timeSec]) => ({ nonceKey, timeSec }));
  }
}

export function nonceKeyOf(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('latin1');
}
