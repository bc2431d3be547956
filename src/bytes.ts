// Byte helpers: hex, concat, constant-time equality, big-endian integers. Pure.
import { timingSafeEqual } from 'node:crypto';

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Strict lowercase/uppercase hex to bytes; throws RangeError on odd length or non-hex. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new RangeError('not a hex string');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-time comparison for secrets and MACs (length is not secret). */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

export function writeU64BE(out: Uint8Array, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError('u64 out of range');
  const hi = Math.floor(value / 0x1_0000_0000);
  const lo = value >>> 0;
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(offset, hi);
  v.setUint32(offset + 4, lo);
}

/** Reads a u64 BE; values above 2^53 come back as Infinity so they fail any window check. */
export function readU64BE(b: Uint8Array, offset: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hi = v.getUint32(offset);
  const lo = v.getUint32(offset + 4);
  if (hi >= 0x20_0000) return Infinity;
  return hi * 0x1_0000_0000 + lo;
}

export function readU16BE(b: Uint8Array, offset: number): number {
  return ((b[offset] ?? 0) << 8) | (b[offset + 1] ?? 0);
}
