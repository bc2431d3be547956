// Per-key token buckets for log lines, bounded in keys; counts are always kept. Pure.

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; lastMs: number; suppressed: number }>();
  private readonly counts = new Map<string, number>();

  /**
   * @param burst lines allowed at once per key
   * @param perSec refill rate per key
   * @param maxKeys bound on distinct keys (the oldest bucket is dropped beyond it)
   */
  constructor(
    private readonly burst: number,
    private readonly perSec: number,
    private readonly maxKeys = 256,
  ) {}

  /** Counts one event; true when it may be logged now. */
  take(key: string, nowMs: number): boolean {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      b = { tokens: this.burst, lastMs: nowMs, suppressed: 0 };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.lastMs) / 1000) * this.perSec);
    b.lastMs = nowMs;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    b.suppressed++;
    return false;
  }

  /** Events not logged since the last call, per key (and resets them). */
  drainSuppressed(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, b] of this.buckets) {
      if (b.suppressed > 0) {
        out[k] = b.suppressed;
        b.suppressed = 0;
      }
    }
    return out;
  }

  totals(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
