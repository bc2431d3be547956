// The 64-byte plaintext body: encode and decode with every field rule (PROTOCOL.md §3). Pure.
import { readU16BE, readU64BE, writeU64BE } from '../bytes.js';
import { addressFromBytes, type Address } from '../net/address.js';
import { PROTO_NUMBER, protoFromNumber, type Access } from '../net/access.js';
import {
  ACCESS_ENTRY_BYTES,
  BODY_BYTES,
  BODY_OFF_ACCESS,
  BODY_OFF_ADDR,
  BODY_OFF_COUNT,
  BODY_OFF_FAMILY,
  BODY_OFF_PAD,
  BODY_OFF_TIME,
  MAX_ACCESS,
} from './constants.js';

export interface Body {
  readonly timeSec: number;
  readonly allow: Address;
  readonly access: readonly Access[];
}

export function encodeBody(b: Body): Uint8Array {
  if (b.access.length < 1 || b.access.length > MAX_ACCESS) throw new RangeError(`a knock carries 1 to ${MAX_ACCESS} access entries`);
  const out = new Uint8Array(BODY_BYTES);
  writeU64BE(out, BODY_OFF_TIME, b.timeSec);
  out[BODY_OFF_FAMILY] = b.allow.family;
  out.set(b.allow.bytes, BODY_OFF_ADDR);
  out[BODY_OFF_COUNT] = b.access.length;
  b.access.forEach((a, i) => {
    const o = BODY_OFF_ACCESS + i * ACCESS_ENTRY_BYTES;
    out[o] = PROTO_NUMBER[a.proto];
    out[o + 1] = a.port >> 8;
    out[o + 2] = a.port & 0xff;
  });
  return out;
}

const allZero = (b: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
};

/** Decodes a body; undefined when any field rule is broken (the caller's 'body.malformed'). */
export function decodeBody(b: Uint8Array): Body | undefined {
  if (b.length !== BODY_BYTES) return undefined;
  const timeSec = readU64BE(b, BODY_OFF_TIME);
  const family = b[BODY_OFF_FAMILY];
  let allow: Address;
  if (family === 4) {
    if (!allZero(b, BODY_OFF_ADDR + 4, BODY_OFF_ADDR + 16)) return undefined;
    allow = addressFromBytes(b.subarray(BODY_OFF_ADDR, BODY_OFF_ADDR + 4));
  } else if (family === 6) {
    allow = addressFromBytes(b.subarray(BODY_OFF_ADDR, BODY_OFF_ADDR + 16));
    // An IPv4-mapped address must be sent as family 4: one canonical encoding per address.
    if (allow.family !== 6) return undefined;
  } else {
    return undefined;
  }
  const count = b[BODY_OFF_COUNT] ?? 0;
  if (count < 1 || count > MAX_ACCESS) return undefined;
  const access: Access[] = [];
  for (let i = 0; i < count; i++) {
    const o = BODY_OFF_ACCESS + i * ACCESS_ENTRY_BYTES;
    const proto = protoFromNumber(b[o] ?? 0);
    const port = readU16BE(b, o + 1);
    if (!proto || port === 0) return undefined;
    access.push({ proto, port });
  }
  if (!allZero(b, BODY_OFF_ACCESS + count * ACCESS_ENTRY_BYTES, BODY_OFF_PAD)) return undefined;
  if (!allZero(b, BODY_OFF_PAD, BODY_BYTES)) return undefined;
  return { timeSec, allow, access };
}
