// The 64-byte plaintext body: encode and decode with every field rule (PROTOCOL.md §3). Pure.
import { readU16BE, readU64BE, writeU64BE } from '../bytes.js';
import { addressFromBytes, neverAClient, type Address } from '../net/address.js';
import { PROTO_NUMBER, accessText, protoFromNumber, sameAccess, type Access } from '../net/access.js';
import {
  ACCESS_ENTRY_BYTES,
  BODY_BYTES,
  BODY_OFF_ACCESS,
  BODY_OFF_ADDR,
  BODY_OFF_COUNT,
  BODY_OFF_FAMILY,
  BODY_OFF_PAD,
  BODY_OFF_TIME,
  FAMILY_SOURCE,
  MAX_ACCESS,
} from './constants.js';

/**
 * What a knock asks to open for: one address, or `'source'`, the address its datagram
 * arrives from (§3, family 0), which a door accepts only if it allows it.
 */
export type Allow = Address | 'source';

export interface Body {
  readonly timeSec: number;
  readonly allow: Allow;
  readonly access: readonly Access[];
}

export const allowText = (a: Allow): string => (a === 'source' ? 'source' : a.text);

/** Why a body cannot be sent (the encoder's side of the §3 rules), or undefined. */
export function bodyProblem(b: Body): string | undefined {
  if (!Number.isSafeInteger(b.timeSec) || b.timeSec < 0) return 'the timestamp is not a whole number of seconds since 1970';
  if (b.allow !== 'source') {
    const never = neverAClient(b.allow);
    if (never) return `the allow address ${b.allow.text} is ${never}, which is never a client`;
  }
  if (b.access.length < 1 || b.access.length > MAX_ACCESS) return `a knock carries 1 to ${MAX_ACCESS} access entries`;
  for (let i = 0; i < b.access.length; i++) {
    const a = b.access[i]!;
    if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) return `port ${a.port} is not 1-65535`;
    if (b.access.slice(0, i).some((x) => sameAccess(x, a))) return `${accessText(a)} is listed twice`;
  }
  return undefined;
}

export function encodeBody(b: Body): Uint8Array {
  const problem = bodyProblem(b);
  if (problem) throw new RangeError(problem);
  const out = new Uint8Array(BODY_BYTES);
  writeU64BE(out, BODY_OFF_TIME, b.timeSec);
  if (b.allow === 'source') {
    out[BODY_OFF_FAMILY] = FAMILY_SOURCE;
  } else {
    out[BODY_OFF_FAMILY] = b.allow.family;
    out.set(b.allow.bytes, BODY_OFF_ADDR);
  }
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

function decodeAllow(b: Uint8Array): Allow | undefined {
  const family = b[BODY_OFF_FAMILY];
  if (family === FAMILY_SOURCE) return allZero(b, BODY_OFF_ADDR, BODY_OFF_ADDR + 16) ? 'source' : undefined;
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
  return neverAClient(allow) ? undefined : allow;
}

/** Decodes a body; undefined when any field rule is broken (the caller's 'body.malformed'). */
export function decodeBody(b: Uint8Array): Body | undefined {
  if (b.length !== BODY_BYTES) return undefined;
  const timeSec = readU64BE(b, BODY_OFF_TIME);
  const allow = decodeAllow(b);
  if (!allow) return undefined;
  const count = b[BODY_OFF_COUNT] ?? 0;
  if (count < 1 || count > MAX_ACCESS) return undefined;
  const access: Access[] = [];
  for (let i = 0; i < count; i++) {
    const o = BODY_OFF_ACCESS + i * ACCESS_ENTRY_BYTES;
    const proto = protoFromNumber(b[o] ?? 0);
    const port = readU16BE(b, o + 1);
    if (!proto || port === 0) return undefined;
    const entry = { proto, port };
    if (access.some((a) => sameAccess(a, entry))) return undefined;
    access.push(entry);
  }
  if (!allZero(b, BODY_OFF_ACCESS + count * ACCESS_ENTRY_BYTES, BODY_OFF_PAD)) return undefined;
  if (!allZero(b, BODY_OFF_PAD, BODY_BYTES)) return undefined;
  return { timeSec, allow, access };
}
