// The decrypted fwknop plaintext: fields joined by ':', then the inner digest (SPEC.md §3–§4).
// decodePlaintext follows lib/fko_decode.c field by field; encodePlaintext is its inverse. Pure.
import { decodeB64, encodeB64 } from './base64.js';
import { digestOf, type DigestName } from './crypto.js';

/** fko_message_type_t (lib/fko.h). */
export const MSG = { command: 0, access: 1, natAccess: 2, clientTimeoutAccess: 3, clientTimeoutNatAccess: 4, localNatAccess: 5, clientTimeoutLocalNatAccess: 6 } as const;
const NAT_TYPES: readonly number[] = [2, 4, 5, 6];
const TIMEOUT_TYPES: readonly number[] = [3, 4, 6];

/** Limits of lib/fko_limits.h and fwknopd 2.6.10's decoder (SPEC.md §9). */
export const PT_LIMITS = {
  plaintextChars: { min: 36, max: 1499 },
  usernameB64: 64,
  timestampDigits: 12,
  versionChars: 8,
  messageB64: 256,
  /** fwknopd 2.6.10 refuses a larger client timeout (`2 << 15`). */
  clientTimeoutSec: 65_536,
} as const;

/** Inner digest by length of its base64; for 43 and 86 SHA-2 is tried before SHA-3 (§4). */
const DIGEST_BY_LENGTH: Readonly<Record<number, readonly DigestName[]>> = {
  22: ['md5'], 27: ['sha1'], 43: ['sha256', 'sha3_256'], 64: ['sha384'], 86: ['sha512', 'sha3_512'],
};

export interface SpaFields {
  /** 16 digits; no security role (it is not a nonce, fwknopd never stores it). */
  readonly rand: string;
  readonly username: string;
  /** Client clock, Unix seconds. */
  readonly timestamp: number;
  /** Free text ("3.0.0"); never checked, as fwknopd does not. */
  readonly version: string;
  /** 0..6 (MSG). */
  readonly messageType: number;
  /** The decoded message: `IP,proto/port,...` or `IP,command`. */
  readonly message: string;
  /** The decoded NAT field (types 2, 4, 5, 6). */
  readonly nat: string | undefined;
  /** Client timeout (types 3, 4, 6), else 0. */
  readonly clientTimeoutSec: number;
  readonly digest: DigestName;
}

export type PlaintextResult = { readonly ok: true; readonly fields: SpaFields } | { readonly ok: false; readonly reason: 'digest' | 'format' };

const BAD = { ok: false, reason: 'format' } as const;

function printable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function b64Text(field: string | undefined, maxChars: number): string | undefined {
  if (field === undefined || field.length < 1 || field.length > maxChars) return undefined;
  const bytes = decodeB64(field);
  if (bytes === undefined) return undefined;
  const text = Buffer.from(bytes).toString('latin1');
  return printable(text) ? text : undefined;
}

/** lib/fko_user.c validate_username: printable, none of `"/\[]:;|=,+*?<>`. */
export function isValidUsername(u: string): boolean {
  return u.length >= 1 && printable(u) && !/["/\\[\]:;|=,+*?<>]/.test(u);
}

/** Decodes `plaintext` (the decrypted bytes, padding removed). Never throws. */
export function decodePlaintext(plaintext: Uint8Array): PlaintextResult {
  if (plaintext.length < PT_LIMITS.plaintextChars.min || plaintext.length > PT_LIMITS.plaintextChars.max) return BAD;
  const text = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('latin1');
  if (!printable(text)) return BAD;
  const cut = text.lastIndexOf(':');
  const encoded = text.slice(0, cut);
  const digestB64 = text.slice(cut + 1);
  const candidates = DIGEST_BY_LENGTH[digestB64.length];
  if (cut < 0 || candidates === undefined) return { ok: false, reason: 'digest' };
  const digest = candidates.find((d) => encodeB64(digestOf(d, encoded)) === digestB64);
  if (digest === undefined) return { ok: false, reason: 'digest' };

  const f = encoded.split(':');
  if (f.length < 6 || f.length > 9) return BAD;
  const [rand, userB64, time, version, type, msgB64] = f as [string, string, string, string, string, string];
  if (!/^\d{16}$/.test(rand)) return BAD;
  const username = b64Text(userB64, PT_LIMITS.usernameB64);
  if (username === undefined || !isValidUsername(username)) return BAD;
  if (!/^\d{1,12}$/.test(time)) return BAD;
  if (version.length < 1 || version.length > PT_LIMITS.versionChars) return BAD;
  if (!/^\d{1,2}$/.test(type) || Number(type) > 6) return BAD;
  const messageType = Number(type);
  const message = b64Text(msgB64, PT_LIMITS.messageB64);
  if (message === undefined) return BAD;

  let rest = f.slice(6);
  let nat: string | undefined;
  if (NAT_TYPES.includes(messageType)) {
    nat = b64Text(rest[0], PT_LIMITS.messageB64);
    if (nat === undefined) return BAD;
    rest = rest.slice(1);
  }
  let clientTimeoutSec = 0;
  if (TIMEOUT_TYPES.includes(messageType)) {
    // Optional server auth, then the timeout (lib/fko_decode.c parse_server_auth/parse_client_timeout).
    if (rest.length === 2) {
      if (b64Text(rest[0], PT_LIMITS.messageB64) === undefined) return BAD;
      rest = rest.slice(1);
    }
    const t = rest[0];
    if (rest.length !== 1 || t === undefined || !/^\d{1,6}$/.test(t) || Number(t) > PT_LIMITS.clientTimeoutSec) return BAD;
    clientTimeoutSec = Number(t);
  } else if (rest.length > 1 || (rest.length === 1 && b64Text(rest[0], PT_LIMITS.messageB64) === undefined)) {
    return BAD; // at most a server-auth field, which no client sets and which we ignore
  }
  return { ok: true, fields: { rand, username, timestamp: Number(time), version, messageType, message, nat, clientTimeoutSec, digest } };
}

/** What an access message (types 1 and 3) is made of: the decoded fields without NAT's. */
export type PlaintextInput = Omit<SpaFields, 'nat'>;

/** Builds the plaintext of an access message (types 1 and 3), as lib/fko_encode.c does. */
export function encodePlaintext(p: PlaintextInput): string {
  const b = (s: string): string => encodeB64(Buffer.from(s, 'latin1'));
  const type = p.messageType === MSG.clientTimeoutAccess && p.clientTimeoutSec === 0 ? MSG.access : p.messageType;
  const parts = [p.rand, b(p.username), String(p.timestamp), p.version, String(type), b(p.message)];
  if (type === MSG.clientTimeoutAccess) parts.push(String(p.clientTimeoutSec));
  const encoded = parts.join(':');
  return `${encoded}:${encodeB64(digestOf(p.digest, encoded))}`;
}
