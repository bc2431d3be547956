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

/** Map key for 16 tag bytes: a latin1 string is the cheapest exact key in V8. */
export function tagKeyOf(bytes: Uint8Array, offset: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, TAG_BYTES).toString('latin1');
}

export interface TagHit {
  readonly client: AuthorizedClient;
  readonly epoch: number;
}

/**
 * Expected tags for every authorized client and every epoch that a timestamp inside
 * the freshness window can fall in: epochOf(now - window) .. epochOf(now + window).
 * refresh(now) adds the epochs that came into the window and drops those that left.
 */
export class TagTable {
  private readonly byTag = new Map<string, TagHit>();
  private readonly epochs = new Map<number, string[]>();
  private clients: readonly AuthorizedClient[] = [];

  constructor(private readonly windowSec: number) {}

  get size(): number {
    return this.byTag.size;
  }

  /** Replaces the authorized clients (SIGHUP); all epochs are recomputed. */
  setClients(clients: readonly AuthorizedClient[], nowSec: number): void {
    this.clients = clients;
    this.byTag.clear();
    this.epochs.clear();
    this.refresh(nowSec);
  }

  refresh(nowSec: number): void {
    const first = Math.max(0, epochOf(nowSec - this.windowSec));
    const last = epochOf(nowSec + this.windowSec);
    for (const [epoch, keys] of this.epochs) {
      if (epoch < first || epoch > last) {
        for (const k of keys) this.byTag.delete(k);
        this.epochs.delete(epoch);
      }
    }
    for (let epoch = first; epoch <= last; epoch++) {
      if (this.epochs.has(epoch)) continue;
      const keys: string[] = [];
      for (const client of this.clients) {
        const k = tagKeyOf(computeTag(client.tagKey, epoch), 0);
        // Two clients colliding on a 128-bit tag is a 2^-128 event; the first one keeps it.
        if (!this.byTag.has(k)) {
          this.byTag.set(k, { client, epoch });
          keys.push(k);
        }
      }
      this.epochs.set(epoch, keys);
    }
  }

  lookup(datagram: Uint8Array, offset: number): TagHit | undefined {
    return this.byTag.get(tagKeyOf(datagram, offset));
  }
}
