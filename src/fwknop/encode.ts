// Builds a fwknop 2.6 SPA packet, as libfko does (SPEC.md §1): plaintext, AES-256 with the
// MD5-derived key, "Salted__" framing, prefix stripped, HMAC appended. Pure. The salt, the
// random value and the time come in.
import { encodeB64 } from './base64.js';
import { encryptAes, hmacOf, type DigestName, type EncryptionMode } from './crypto.js';
import { encodePlaintext, type PlaintextInput } from './message.js';
import { SALTED_PREFIX } from './verify.js';

export interface FwknopKeys {
  readonly key: Uint8Array;
  /** undefined: no HMAC (legacy clients); our client always sends one. */
  readonly hmacKey: Uint8Array | undefined;
  readonly hmacType: DigestName;
  readonly mode: EncryptionMode;
}

/** `salt` is 8 random bytes, fresh for every packet. Returns the wire string. */
export function encodeFwknop(fields: PlaintextInput, keys: FwknopKeys, salt: Uint8Array): string {
  if (salt.length !== 8) throw new RangeError(`the salt has 8 bytes, got ${salt.length}`);
  const pt = Buffer.from(encodePlaintext(fields), 'latin1');
  const ct = encryptAes(keys.mode, keys.key, salt, pt);
  const e = encodeB64(Buffer.concat([Buffer.from('Salted__', 'latin1'), salt, ct]));
  if (!e.startsWith(SALTED_PREFIX)) throw new Error('salted base64 lost its prefix'); // cannot happen: fixed first 7 bytes
  const data = e.slice(SALTED_PREFIX.length);
  if (keys.hmacKey === undefined) return data;
  return data + encodeB64(hmacOf(keys.hmacType, keys.hmacKey, e));
}

/** libfko's random value: 16 decimal digits (it has no security role; §3.1). */
export function randValueFrom(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; s.length < 16; i++) s += String((bytes[i % bytes.length] ?? 0) % 10);
  return s;
}
