// Per-epoch lookup tags and the server's table of expected tags (PROTOCOL.md §4.2). Pure.
// The table lets the server name the sender of a datagram with one Map lookup, so
// garbage costs the same whether 1 or 10,000 keys are authorized (P6).
import { EPOCH_SEC, LABEL_TAG, TAG_BYTES } from './constants.js';
import { writeU64BE } from '../bytes.js';
import { ascii, hmacSha256 } from './primitives.js';
import type { AuthorizedClient } from './keys.js';

const TAG_LABEL = ascii(LABEL_TAG);

export function epochOf(timeSec: number): number {
  return Math.floor(timeSec / EPOCH_SEC);
}

/** tag = HMAC-SHA256(tagKey, "spa/v1 tag" ‖ u64be(epoch))[0..16). */
export function computeTag(tagKey: Uint8Array, epoch: number): Uint8Array {
  const e = new Uint8Array(8);
  writeU64BE(e, 0, epoch);
  return hmacSha256(tagKey, TAG_LABEL, e).subarray(0, TAG_BYTES);
}

/**
 * Map key for a tag: its first 31 bits as a small integer. V8 hashes a Smi without
 * allocating, where a string key would cost an allocation per packet; the rest of the tag
 * is compared byte by byte on a hit (PROTOCOL.md §5.1: one lookup per garbage datagram).
 */
function bucketOf(bytes: Uint8Array, offset: number): number {
  return (((bytes[offset] ?? 0) << 23) | ((bytes[offset + 1] ?? 0) << 15) | ((bytes[offset + 2] ?? 0) << 7) | ((bytes[offset + 3] ?? 0) >>> 1)) >>> 0;
}

function sameTag(tag: Uint8Array, bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < TAG_BYTES; i++) if (tag[i] !== bytes[offset + i]) return false;
  return true;
}

export interface TagHit {
  readonly client: AuthorizedClient;
  readonly epoch: number;
}

interface TagEntry extends TagHit {
  readonly tag: Uint8Array;
}

/**
 * Expected tags for every authorized client and every epoch that a timestamp inside
 * the freshness window can fall in: epochOf(now - window) .. epochOf(now + window).
 * refresh(now) adds the epochs that came into the window and drops those that left.
 */
/** Bits of the presence filter in front of the Map: 2^20 bits = 128 KiB, ~5% set by 50,000 tags. */
const FILTER_BITS = 1 << 20;

export class TagTable {
  private readonly byBucket = new Map<number, TagEntry[]>();
  /**
   * One bit per bucket (mod FILTER_BITS), rebuilt when the table changes: most misses are
   * answered from a 128 KiB array that stays in cache, where the Map of 50,000 tags would not.
   */
  private readonly filter = new Uint8Array(FILTER_BITS / 8);
  private readonly epochs = new Map<number, TagEntry[]>();
  private clients: readonly AuthorizedClient[] = [];
  private count = 0;

  constructor(private readonly windowSec: number) {}

  get size(): number {
    return this.count;
  }

  /** Replaces the authorized clients (SIGHUP); all epochs are recomputed. */
  setClients(clients: readonly AuthorizedClient[], nowSec: number): void {
    this.clients = clients;
    this.byBucket.clear();
    this.epochs.clear();
    this.count = 0;
    this.refresh(nowSec);
  }

  private rebuildFilter(): void {
    this.filter.fill(0);
    for (const b of this.byBucket.keys()) {
      const i = b & (FILTER_BITS - 1);
      this.filter[i >>> 3] = (this.filter[i >>> 3] ?? 0) | (1 << (i & 7));
    }
  }

  refresh(nowSec: number): void {
    const first = Math.max(0, epochOf(nowSec - this.windowSec));
    const last = epochOf(nowSec + this.windowSec);
    let changed = false;
    for (const [epoch, entries] of this.epochs) {
      if (epoch >= first && epoch <= last) continue;
      for (const e of entries) this.remove(e);
      this.epochs.delete(epoch);
      changed = true;
    }
    for (let epoch = first; epoch <= last; epoch++) {
      if (this.epochs.has(epoch)) continue;
      changed = true;
      const entries: TagEntry[] = [];
      for (const client of this.clients) {
        const tag = computeTag(client.tagKey, epoch);
        const b = bucketOf(tag, 0);
        // Two clients colliding on a 128-bit tag is a 2^-128 event; the first one keeps it.
        if (this.findInMap(b, tag, 0)) continue;
        const e: TagEntry = { client, epoch, tag };
        const list = this.byBucket.get(b);
        if (list) list.push(e);
        else this.byBucket.set(b, [e]);
        entries.push(e);
        this.count++;
      }
      this.epochs.set(epoch, entries);
    }
    if (changed) this.rebuildFilter();
  }

  private remove(e: TagEntry): void {
    const b = bucketOf(e.tag, 0);
    const list = this.byBucket.get(b);
    if (!list) return;
    const rest = list.filter((x) => x !== e);
    if (rest.length > 0) this.byBucket.set(b, rest);
    else this.byBucket.delete(b);
    this.count--;
  }

  lookup(datagram: Uint8Array, offset: number): TagHit | undefined {
    const b = bucketOf(datagram, offset);
    const i = b & (FILTER_BITS - 1);
    if (((this.filter[i >>> 3] ?? 0) & (1 << (i & 7))) === 0) return undefined;
    return this.findInMap(b, datagram, offset);
  }

  private findInMap(b: number, bytes: Uint8Array, offset: number): TagEntry | undefined {
    const list = this.byBucket.get(b);
    if (!list) return undefined;
    for (const e of list) if (sameTag(e.tag, bytes, offset)) return e;
    return undefined;
  }
}
