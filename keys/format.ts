// Key strings: a type prefix, base64url payload and a 4-byte checksum, so that a
// server key, a client key and a secret key can never be mistaken for each other,
// and a mistyped key is caught (docs/PROTOCOL.md §1). Pure.
import { UserError } from '../src/errors.js';
import { sha256 } from '../src/protocol/primitives.js';
import { equalConstantTime } from '../src/bytes.js';

export const KEY_TYPES = {
  'server-public': { prefix: 'spa1-server-pub:', bytes: 32, noun: 'a server public key' },
  'server-secret': { prefix: 'spa1-server-secret:', bytes: 32, noun: 'a server secret key' },
  'client-public': { prefix: 'spa1-client-pub:', bytes: 64, noun: 'a client public key' },
  'client-secret': { prefix: 'spa1-client-secret:', bytes: 64, noun: 'a client secret key' },
} as const;

export type KeyType = keyof typeof KEY_TYPES;

const CHECKSUM_BYTES = 4;

function checksum(prefix: string, payload: Uint8Array): Uint8Array {
  return sha256(new TextEncoder().encode(prefix), payload).subarray(0, CHECKSUM_BYTES);
}

export function encodeKey(type: KeyType, payload: Uint8Array): string {
  const t = KEY_TYPES[type];
  if (payload.length !== t.bytes) throw new RangeError(`${t.noun} has ${t.bytes} bytes`);
  const body = Buffer.concat([payload, checksum(t.prefix, payload)]);
  return t.prefix + body.toString('base64url');
}

/** What kind of key a string claims to be by its prefix, if any. */
export function keyTypeOf(text: string): KeyType | undefined {
  for (const [type, t] of Object.entries(KEY_TYPES)) if (text.startsWith(t.prefix)) return type as KeyType;
  return undefined;
}

/**
 * Parses a key string of the expected type. Messages never echo the key itself
 * (it may be a secret pasted in the wrong place).
 */
export function parseKey(text: string, expected: KeyType, where?: { file?: string; line?: number }): Uint8Array {
  const want = KEY_TYPES[expected];
  const s = text.trim();
  const got = keyTypeOf(s);
  if (got === undefined) {
    throw new UserError('key.parse', `expected ${want.noun} (${want.prefix}...), got something that is not a spa key`, where);
  }
  if (got !== expected) {
    throw new UserError('key.type', `expected ${want.noun} (${want.prefix}...), got ${KEY_TYPES[got].noun}`, where);
  }
  const b64 = s.slice(want.prefix.length);
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw new UserError('key.parse', `${want.noun}: invalid characters (expected base64url)`, where);
  const raw = Buffer.from(b64, 'base64url');
  const n = want.bytes + CHECKSUM_BYTES;
  if (raw.length !== n) {
    throw new UserError('key.parse', `${want.noun}: ${raw.length < n ? 'truncated' : 'too long'} (${raw.length} bytes, expected ${n})`, where);
  }
  const payload = new Uint8Array(raw.subarray(0, want.bytes));
  if (!equalConstantTime(checksum(want.prefix, payload), raw.subarray(want.bytes))) {
    throw new UserError('key.parse', `${want.noun}: checksum mismatch (mistyped or damaged key)`, where);
  }
  return payload;
}

/** Key ids name clients in authorized-keys files, logs and %ID%: a safe, canonical token. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

export function checkKeyId(id: string): string | undefined {
  if (KEY_ID_PATTERN.test(id)) return undefined;
  return `key id must be 1-64 characters of letters, digits, '_', '.', '@', '-', starting with a letter or digit, got ${JSON.stringify(id)}`;
}
