// Key strings: a type prefix, base64url payload and a 4-byte checksum, so that a
// server key, a client key and a secret key can never be mistaken for each other,
// and a mistyped key is caught (docs/PROTOCOL.md §1). Pure.
import { UserError } from '../src/errors.js';
import { sha256 } from '../src/protocol/primitives.js';
import { equalConstantTime } from '../src/bytes.js';
import { clientKeyProblem, clientPublicKey, serverKeyProblem } from '../src/protocol/keys.js';

export const KEY_TYPES = {
  'server-public': { prefix: 'spa1-server-pub:', bytes: 32, noun: 'a server public key' },
  'server-secret': { prefix: 'spa1-server-secret:', bytes: 32, noun: 'a server secret key' },
  'client-public': { prefix: 'spa1-client-pub:', bytes: 64, noun: 'a client public key' },
  'client-secret': { prefix: 'spa1-client-secret:', bytes: 64, noun: 'a client secret key' },
} as const;

export type KeyType = keyof typeof KEY_TYPES;

const CHECKSUM_BYTES = 4;

/** checksum = SHA-256(prefix ‖ payload)[0..4); the prefix includes its colon (PROTOCOL.md §1). */
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

/** Why the public key in a payload is refused (PROTOCOL.md §1.1), or undefined. */
function publicKeyProblem(type: KeyType, payload: Uint8Array): string | undefined {
  if (type === 'client-public') return clientKeyProblem(clientPublicKey(payload));
  if (type === 'server-public') return serverKeyProblem(payload);
  return undefined;
}

/** Why a key string is refused, as a stable reason (the test vectors name them, PROTOCOL.md §8). */
export type KeyReason = 'key.prefix' | 'key.type' | 'key.base64' | 'key.length' | 'key.checksum' | 'key.point';

/**
 * Checks a key string of the expected type: the right prefix, canonical unpadded base64url
 * (one spelling per key, so a grep for a revoked key finds every copy), the length, the
 * checksum, and for a public key the point checks of §1.1. Messages never echo the key
 * itself (it may be a secret pasted in the wrong place).
 */
export function checkKeyString(text: string, expected: KeyType): { payload: Uint8Array } | { reason: KeyReason; message: string } {
  const want = KEY_TYPES[expected];
  const s = text.trim();
  const got = keyTypeOf(s);
  if (got === undefined) return { reason: 'key.prefix', message: `expected ${want.noun} (${want.prefix}...), got something that is not a spa key` };
  if (got !== expected) return { reason: 'key.type', message: `expected ${want.noun} (${want.prefix}...), got ${KEY_TYPES[got].noun}` };
  const b64 = s.slice(want.prefix.length);
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) return { reason: 'key.base64', message: `${want.noun}: invalid characters (expected base64url)` };
  const raw = Buffer.from(b64, 'base64url');
  const n = want.bytes + CHECKSUM_BYTES;
  if (raw.length !== n) return { reason: 'key.length', message: `${want.noun}: ${raw.length < n ? 'truncated' : 'too long'} (${raw.length} bytes, expected ${n})` };
  // Buffer's decoder ignores the unused low bits of the last character: 4 spellings per key.
  if (raw.toString('base64url') !== b64) return { reason: 'key.base64', message: `${want.noun}: not canonical base64url (the last character's unused bits are not zero)` };
  const payload = new Uint8Array(raw.subarray(0, want.bytes));
  if (!equalConstantTime(checksum(want.prefix, payload), raw.subarray(want.bytes))) {
    return { reason: 'key.checksum', message: `${want.noun}: checksum mismatch (mistyped or damaged key)` };
  }
  const problem = publicKeyProblem(expected, payload);
  if (problem) return { reason: 'key.point', message: `${want.noun}: refused: ${problem}` };
  return { payload };
}

const ERROR_CODE: Record<KeyReason, 'key.parse' | 'key.type' | 'key.invalid'> = {
  'key.prefix': 'key.parse',
  'key.type': 'key.type',
  'key.base64': 'key.parse',
  'key.length': 'key.parse',
  'key.checksum': 'key.parse',
  'key.point': 'key.invalid',
};

/** Parses a key string of the expected type (checkKeyString); a UserError when it is refused. */
export function parseKey(text: string, expected: KeyType, where?: { file?: string; line?: number }): Uint8Array {
  const r = checkKeyString(text, expected);
  if ('reason' in r) throw new UserError(ERROR_CODE[r.reason], r.message, where);
  return r.payload;
}

/** Key ids name clients in authorized-keys files, logs and %ID%: a safe, canonical token. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

export function checkKeyId(id: string): string | undefined {
  if (KEY_ID_PATTERN.test(id)) return undefined;
  return `key id must be 1-64 characters of letters, digits, '_', '.', '@', '-', starting with a letter or digit, got ${JSON.stringify(id)}`;
}
