// fwknop's replay cache, bounded: each digest (b64 SHA-256 of the packet as received, as in
// fwknopd's digest.cache) is kept only while its packet could still pass the age check, so the
// table holds at most the knocks of two age windows (fwknopd keeps every digest forever).
// Pure. Times come in.

/** The latest second at which a packet first seen at `seenSec` with timestamp `stampSec` can pass the age check. */
export function replayUntil(seenSec: number, stampSec: number | undefined, maxAgeSec: number | undefined): number {
  if (maxAgeSec === undefined) return Number.POSITIVE_INFINITY; // aging off: never forget
  return Math.max(seenSec, stampSec ?? seenSec) + maxAgeSec;
}

export class FwknopReplayTable {
  private readonly until = new Map<string, number>();

  get size(): number {
    return this.until.size;
  }

  has(digest: string): boolean {
    return this.until.has(digest);
  }

  add(digest: string, untilSec: number): void {
    this.until.set(digest, Math.max(untilSec, this.until.get(digest) ?? untilSec));
  }

  /** Forgets digests whose packets are stale at nowSec. */
  sweep(nowSec: number): void {
    for (const [d, u] of this.until) if (u < nowSec) this.until.delete(d);
  }

  entries(): { digest: string; untilSec: number }[] {
    return [...this.until].map(([digest, untilSec]) => ({ digest, untilSec }));
  }
}

const DIGEST = /^[A-Za-z0-9+/]{43}$/;

/**
 * fwknopd's digest.cache (`<digest> <proto> <src> <sport> <dst> <dport> <time>` per line,
 * server/replay_cache.c): the digests that may still matter, each with its expiry.
 */
export function parseDigestCache(text: string, maxAgeSec: number | undefined): { digest: string; untilSec: number }[] {
  const out: { digest: string; untilSec: number }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const d = f[0] ?? '';
    const t = f[f.length - 1] ?? '';
    if (!DIGEST.test(d) || f.length < 2 || !/^\d{1,12}$/.test(t)) continue;
    // The time is when fwknopd saw it; its packet's timestamp was at most maxAge earlier or later.
    out.push({ digest: d, untilSec: replayUntil(Number(t), Number(t) + (maxAgeSec ?? 0), maxAgeSec) });
  }
  return out;
}

/** Our log: `<digest> <untilSec>` per line (`inf` when aging is off). */
export function parseReplayLog(lines: readonly string[]): { digest: string; untilSec: number }[] {
  const out: { digest: string; untilSec: number }[] = [];
  for (const line of lines) {
    const [d, u] = line.split(' ');
    if (d !== undefined && DIGEST.test(d) && u !== undefined && (u === 'inf' || /^\d{1,12}$/.test(u))) out.push({ digest: d, untilSec: u === 'inf' ? Number.POSITIVE_INFINITY : Number(u) });
  }
  return out;
}

export function replayLogLine(digest: string, untilSec: number): string {
  return `${digest} ${Number.isFinite(untilSec) ? untilSec : 'inf'}`;
}
