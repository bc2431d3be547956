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

/** A tag's first 31 bits: the hash of the index below (tags are HMAC output, uniform already). */
function hashOf(bytes: Uint8Array, offset: number): number {
  return (((bytes[offset] ?? 0) << 23) | ((bytes[offset + 1] ?? 0) << 15) | ((bytes[offset + 2] ?? 0) << 7) | ((bytes[offset + 3] ?? 0) >>> 1)) >>> 0;
}

export interface TagHit {
  readonly client: AuthorizedClient;
  readonly epoch: number;
}

/** The tags of every client for one epoch, 16 bytes each, in client order. */
interface EpochBlock {
  readonly epoch: number;
  readonly tags: Uint8Array;
}

/** Bits of the presence filter: 2^20 bits = 128 KiB, ~5% set by 50,000 tags. */
const FILTER_BITS = 1 << 20;

/**
 * Expected tags for every authorized client and every epoch that a timestamp inside
 * the freshness window can fall in: epochOf(now - window) .. epochOf(now + window).
 * refresh(now) adds the epochs that came into the window and drops those that left.
 *
 * Layout, for a lookup that allocates nothing and stays in cache (PROTOCOL.md §5.1): each
 * epoch's tags in one byte array; an open-addressing index (Int32Array, load <= 1/2) of
 * entry numbers; and in front of it a presence bitmap that answers most misses alone.
 * With 10,000 keys and 5 epochs that is about 0.8 MiB of tags, 0.5 MiB of index, 128 KiB
 * of bitmap, rebuilt in a few ms when an epoch comes or goes (once a minute).
 */
export class TagTable {
  private clients: readonly AuthorizedClient[] = [];
  private blocks: EpochBlock[] = [];
  private slots = new Int32Array(2);
  private readonly filter = new Uint8Array(FILTER_BITS / 8);
  private count = 0;
  /** The epochs the blocks hold, first to last. */
  private covered: [number, number] = [1, 0];

  constructor(private readonly windowSec: number) {}

  get size(): number {
    return this.count;
  }

  /** Replaces the authorized clients (SIGHUP); all epochs are recomputed. */
  setClients(clients: readonly AuthorizedClient[], nowSec: number): void {
    this.clients = clients;
    this.blocks = [];
    this.refresh(nowSec);
  }

  /**
   * Makes the table hold the epochs a fresh timestamp can fall in at nowSec (§4.2), plus the
   * next one, so that the daemon's periodic refresh is never late at a minute boundary.
   */
  refresh(nowSec: number): void {
    const [first, wanted] = this.window(nowSec);
    const last = wanted + 1;
    const kept = this.blocks.filter((b) => b.epoch >= first && b.epoch <= last);
    let changed = kept.length !== this.blocks.length;
    for (let epoch = first; epoch <= last; epoch++) {
      if (kept.some((b) => b.epoch === epoch)) continue;
      const tags = new Uint8Array(this.clients.length * TAG_BYTES);
      this.clients.forEach((c, i) => tags.set(computeTag(c.tagKey, epoch), i * TAG_BYTES));
      kept.push({ epoch, tags });
      changed = true;
    }
    this.blocks = kept;
    this.covered = [first, last];
    if (changed) this.reindex();
  }

  /** The epochs §4.2 expects at nowSec: epochOf(now - W) .. epochOf(now + W). */
  private window(nowSec: number): [number, number] {
    return [Math.max(0, epochOf(nowSec - this.windowSec)), epochOf(nowSec + this.windowSec)];
  }

  /** Rebuilds the index and the bitmap from the blocks. */
  private reindex(): void {
    const n = this.clients.length;
    let capacity = 2;
    while (capacity < 2 * n * this.blocks.length) capacity *= 2;
    const slots = new Int32Array(capacity);
    this.filter.fill(0);
    this.count = 0;
    this.blocks.forEach((block, bi) => {
      for (let ci = 0; ci < n; ci++) {
        const off = ci * TAG_BYTES;
        // Two clients colliding on a 128-bit tag is a 2^-128 event; the first one keeps it.
        if (this.find(slots, block.tags, off) !== undefined) continue;
        const h = hashOf(block.tags, off);
        let s = h & (capacity - 1);
        while (slots[s] !== 0) s = (s + 1) & (capacity - 1);
        slots[s] = bi * n + ci + 1;
        const f = h & (FILTER_BITS - 1);
        this.filter[f >>> 3] = (this.filter[f >>> 3] ?? 0) | (1 << (f & 7));
        this.count++;
      }
    });
    this.slots = slots;
  }

  /** The entry number (block * clients + client) of these 16 bytes, or undefined. */
  private find(slots: Int32Array, bytes: Uint8Array, offset: number): number | undefined {
    const n = this.clients.length;
    const mask = slots.length - 1;
    for (let s = hashOf(bytes, offset) & mask; ; s = (s + 1) & mask) {
      const e = slots[s] ?? 0;
      if (e === 0) return undefined;
      const block = this.blocks[Math.floor((e - 1) / n)];
      const base = ((e - 1) % n) * TAG_BYTES;
      let same = block !== undefined;
      for (let i = 0; same && i < TAG_BYTES; i++) same = block!.tags[base + i] === bytes[offset + i];
      if (same) return e - 1;
    }
  }

  /**
   * The client and epoch of the 16 tag bytes at offset, if they are a tag §4.2 expects at
   * nowSec: exactly the epochs of the window, whenever the last refresh was.
   */
  lookup(datagram: Uint8Array, offset: number, nowSec: number): TagHit | undefined {
    const [first, last] = this.window(nowSec);
    if (first < this.covered[0] || last > this.covered[1]) this.refresh(nowSec);
    const f = hashOf(datagram, offset) & (FILTER_BITS - 1);
    if (((this.filter[f >>> 3] ?? 0) & (1 << (f & 7))) === 0) return undefined;
    const e = this.find(this.slots, datagram, offset);
    if (e === undefined) return undefined;
    const n = this.clients.length;
    const client = this.clients[e % n];
    const block = this.blocks[Math.floor(e / n)];
    if (!client || !block || block.epoch < first || block.epoch > last) return undefined;
    return { client, epoch: block.epoch };
  }

  /**
   * Read-only, for the capture filter (server/bpf.ts): the first 4 tag bytes (big-endian) of
   * every client for any `epoch` (those outside the table too: the filter looks ahead).
   */
  tagPrefixes(epoch: number): Uint32Array {
    const out = new Uint32Array(this.clients.length);
    this.clients.forEach((c, i) => {
      const t = computeTag(c.tagKey, epoch);
      out[i] = (((t[0] ?? 0) << 24) | ((t[1] ?? 0) << 16) | ((t[2] ?? 0) << 8) | (t[3] ?? 0)) >>> 0;
    });
    return out;
  }
}
