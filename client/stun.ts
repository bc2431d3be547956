// STUN Binding (RFC 8489): encode a request, decode the answer into the reflexive address.
// Pure. The answer comes from the network: every length in it is the sender's claim, checked
// against the datagram before it is used; a bad answer is a reason, never an exception.
import { addressFromBytes, type Address } from '../src/net/address.js';

/** RFC 8489 §5: the fixed header. */
export const HEADER_BYTES = 20;
export const MAGIC_COOKIE = 0x2112a442;
export const TRANSACTION_ID_BYTES = 12;
/**
 * The largest answer read: RFC 8489 keeps messages over UDP within an unknown path's MTU
 * (576 bytes for IPv4, 1280 for IPv6); a Binding answer is about 100 bytes.
 */
export const MAX_MESSAGE_BYTES = 1280;
/** RFC 8489 §8: the default port of STUN over UDP. */
export const STUN_PORT = 3478;

/** RFC 8489 §5: method 0x001 (Binding) in the classes request / success / error response. */
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const BINDING_ERROR = 0x0111;

/** RFC 8489 §18.3 (and RFC 5780, RFC 3489 for the old ones an answer may still carry). */
const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  ERROR_CODE: 0x0009,
  MESSAGE_INTEGRITY: 0x0008,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  XOR_MAPPED_ADDRESS: 0x0020,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
} as const;

/**
 * Comprehension-required attributes (type < 0x8000) a Binding answer may carry that we know
 * and may ignore. RFC 8489 §7.3.3: an answer with any other one is discarded.
 */
const KNOWN_REQUIRED = new Set([
  0x0001, // MAPPED-ADDRESS
  0x0003, // CHANGE-REQUEST (RFC 5780)
  0x0004, // SOURCE-ADDRESS (RFC 3489)
  0x0005, // CHANGED-ADDRESS (RFC 3489)
  0x0006, // USERNAME
  0x0008, // MESSAGE-INTEGRITY
  0x0009, // ERROR-CODE
  0x000a, // UNKNOWN-ATTRIBUTES
  0x0014, // REALM
  0x0015, // NONCE
  0x001c, // MESSAGE-INTEGRITY-SHA256
  0x001d, // PASSWORD-ALGORITHM
  0x001e, // USERHASH
  0x0020, // XOR-MAPPED-ADDRESS
]);

/** RFC 8489 §14.7: the FINGERPRINT value is CRC-32 of the message before it, XOR this. */
const FINGERPRINT_XOR = 0x5354554e;

export type StunReject =
  | 'short' // fewer bytes than a header
  | 'not-stun' // the top two bits or the magic cookie are wrong
  | 'length' // the length field disagrees with the datagram, or is not a multiple of 4
  | 'transaction' // not the answer to our request
  | 'type' // not a Binding response
  | 'error-response' // the server answered with an error (detail: code and phrase)
  | 'attribute' // an attribute runs past the message, or FINGERPRINT is not last
  | 'attribute.unknown' // a comprehension-required attribute we do not know
  | 'fingerprint' // FINGERPRINT present but wrong
  | 'address.missing' // neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS
  | 'address.bad'; // an address attribute with a bad family or length

export interface StunMapped {
  readonly ok: true;
  readonly address: Address;
  readonly port: number;
  /** Which attribute gave it: XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS (servers of RFC 3489). */
  readonly from: 'xor-mapped-address' | 'mapped-address';
  /** The server's SOFTWARE text, printable ASCII only, at most 60 characters. */
  readonly software?: string;
}

export interface StunRejected {
  readonly ok: false;
  readonly reason: StunReject;
  /** For error-response: `CODE PHRASE`; for attribute.unknown: the type in hex. Printable. */
  readonly detail?: string;
}

export type StunAnswer = StunMapped | StunRejected;

/**
 * A Binding request (RFC 8489 §6.1): the header and a FINGERPRINT, 28 bytes. No credentials:
 * a server answers Binding without them (§9). FINGERPRINT lets a server that multiplexes
 * protocols on its port tell STUN apart.
 */
export function encodeBindingRequest(transactionId: Uint8Array): Uint8Array {
  if (transactionId.length !== TRANSACTION_ID_BYTES) throw new RangeError(`a transaction id has ${TRANSACTION_ID_BYTES} bytes, got ${transactionId.length}`);
  const out = new Uint8Array(HEADER_BYTES + 8);
  const v = new DataView(out.buffer);
  v.setUint16(0, BINDING_REQUEST);
  v.setUint16(2, 8);
  v.setUint32(4, MAGIC_COOKIE);
  out.set(transactionId, 8);
  v.setUint16(20, ATTR.FINGERPRINT);
  v.setUint16(22, 4);
  v.setUint32(24, fingerprintOf(out, 20));
  return out;
}

/** RFC 8489 §14.7: CRC-32 (ISO HDLC, as in zlib) of msg[0, end), XOR 0x5354554e. */
export function fingerprintOf(msg: Uint8Array, end: number): number {
  return (crc32(msg.subarray(0, end)) ^ FINGERPRINT_XOR) >>> 0;
}

/**
 * Decodes the answer to the request with `transactionId`. Checks, cheapest first: size,
 * header bits and cookie, length field against the datagram, transaction id, type; then each
 * attribute's length against what is left. Takes XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS.
 */
export function decodeBindingResponse(msg: Uint8Array, transactionId: Uint8Array): StunAnswer {
  if (msg.length < HEADER_BYTES) return no('short');
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const type = v.getUint16(0);
  if ((type & 0xc000) !== 0 || v.getUint32(4) !== MAGIC_COOKIE) return no('not-stun');
  const length = v.getUint16(2);
  // The sender's length must describe exactly the bytes that arrived (one message per datagram).
  if (length % 4 !== 0 || HEADER_BYTES + length !== msg.length) return no('length');
  for (let i = 0; i < TRANSACTION_ID_BYTES; i++) if (msg[8 + i] !== transactionId[i]) return no('transaction');
  if (type !== BINDING_SUCCESS && type !== BINDING_ERROR) return no('type');

  let xorMapped: StunAnswer | undefined;
  let mapped: StunAnswer | undefined;
  let software: string | undefined;
  let error: string | undefined;
  let afterIntegrity = false;
  let at = HEADER_BYTES;
  while (at < msg.length) {
    // Each attribute: type(2) length(2) value(length) padding to 4; `at` stays 4-aligned.
    if (msg.length - at < 4) return no('attribute');
    const attr = v.getUint16(at);
    const len = v.getUint16(at + 2);
    const start = at + 4;
    if (len > msg.length - start) return no('attribute');
    const value = msg.subarray(start, start + len);
    const next = start + ((len + 3) & ~3);
    if (next > msg.length) return no('attribute');
    if (attr === ATTR.FINGERPRINT) {
      // §14.7: FINGERPRINT is the last attribute, and it must match.
      if (len !== 4 || next !== msg.length) return no('attribute');
      if (v.getUint32(start) !== fingerprintOf(msg, at)) return no('fingerprint');
    } else if (attr < 0x8000 && !KNOWN_REQUIRED.has(attr)) {
      return { ok: false, reason: 'attribute.unknown', detail: `0x${attr.toString(16).padStart(4, '0')}` };
    } else if (afterIntegrity) {
      // §14.5: attributes after MESSAGE-INTEGRITY are ignored, but for FINGERPRINT.
    } else if (attr === ATTR.MESSAGE_INTEGRITY || attr === ATTR.MESSAGE_INTEGRITY_SHA256) {
      afterIntegrity = true;
    } else if (attr === ATTR.XOR_MAPPED_ADDRESS) {
      xorMapped ??= decodeAddressValue(value, msg.subarray(4, HEADER_BYTES), 'xor-mapped-address');
    } else if (attr === ATTR.MAPPED_ADDRESS) {
      mapped ??= decodeAddressValue(value, undefined, 'mapped-address');
    } else if (attr === ATTR.SOFTWARE) {
      software ??= printable(value.subarray(0, 240));
    } else if (attr === ATTR.ERROR_CODE && value.length >= 4) {
      // §14.8: 21 bits reserved, class (3 bits, 3-6), number (0-99), then a UTF-8 phrase.
      error ??= `${(value[2] ?? 0) & 7}${String(value[3] ?? 0).padStart(2, '0')} ${printable(value.subarray(4, 4 + 240))}`.trim();
    }
    at = next;
  }
  if (type === BINDING_ERROR) return { ok: false, reason: 'error-response', detail: error ?? 'no ERROR-CODE' };
  const found = xorMapped ?? mapped;
  if (found === undefined) return no('address.missing');
  if (!found.ok || software === undefined || software === '') return found;
  return { ...found, software };
}

/**
 * MAPPED-ADDRESS (§14.1) or XOR-MAPPED-ADDRESS (§14.2): 0, family (1: IPv4, 2: IPv6), port,
 * address; XORed with the cookie (port, IPv4) or cookie ‖ transaction id (IPv6) when `xor`
 * holds those 16 header bytes.
 */
function decodeAddressValue(value: Uint8Array, xor: Uint8Array | undefined, from: StunMapped['from']): StunAnswer {
  const family = value[1];
  const size = family === 1 ? 4 : family === 2 ? 16 : 0;
  if (size === 0 || value.length !== 4 + size) return no('address.bad');
  const port = (((value[2] ?? 0) << 8) | (value[3] ?? 0)) ^ (xor ? ((xor[0] ?? 0) << 8) | (xor[1] ?? 0) : 0);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (value[4 + i] ?? 0) ^ (xor ? (xor[i] ?? 0) : 0);
  const address = addressFromBytes(bytes);
  // An IPv4-mapped IPv6 answer folds to IPv4; keep the family the attribute said.
  if ((address.family === 4) !== (family === 1)) return no('address.bad');
  return { ok: true, address, port, from };
}

function no(reason: StunReject): StunRejected {
  return { ok: false, reason };
}

/** Untrusted text for one line of output: printable ASCII, other bytes as `?`, at most 60. */
function printable(b: Uint8Array): string {
  let s = '';
  for (const c of b) {
    if (s.length >= 60) return `${s}...`;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s.trim();
}

let crcTable: Uint32Array | undefined;

function crc32(b: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const x of b) c = (crcTable[(c ^ x) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
