// fwknop's symmetric crypto: the MD5 key derivation, AES-256 in the modes clients send, the
// HMAC and inner-digest algorithms (SPEC.md §4–§6). Pure. node:crypto computes, nothing else.
import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';

/** HMAC_DIGEST_TYPE values and the length of their unpadded base64 on the wire (§6). */
export const HMAC_B64_LENGTH = { md5: 22, sha1: 27, sha256: 43, sha384: 64, sha512: 86, sha3_256: 43, sha3_512: 86 } as const;
export type DigestName = keyof typeof HMAC_B64_LENGTH;
export const DIGEST_NAMES = Object.keys(HMAC_B64_LENGTH) as readonly DigestName[];
/** Weak algorithms: refused for HMACs unless a stanza says FWKNOP_ALLOW_WEAK_HMAC Y. */
export const WEAK_DIGESTS: readonly DigestName[] = ['md5', 'sha1'];

const NODE_HASH: Record<DigestName, string> = {
  md5: 'md5', sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512', sha3_256: 'sha3-256', sha3_512: 'sha3-512',
};

/** HMAC_KEY limit: libfko refuses keys over MAX_DIGEST_BLOCK_LEN (136 bytes). */
export const MAX_HMAC_KEY_BYTES = 136;
/** Encryption key: 1..32 bytes (RIJNDAEL_MAX_KEYSIZE); longer ones never decrypt anything. */
export const MAX_KEY_BYTES = 32;

/** ENCRYPTION_MODE values we decrypt. ecb/cfb/ofb exist in libfko but no client uses them by default. */
export type EncryptionMode = 'cbc' | 'ctr' | 'legacy';

export function digestOf(name: DigestName, data: Uint8Array | string): Buffer {
  return createHash(NODE_HASH[name]).update(data).digest();
}

export function hmacOf(name: DigestName, key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac(NODE_HASH[name], key).update(data).digest();
}

/**
 * OpenSSL's EVP_BytesToKey(MD5, count 1): D1 = MD5(pw‖salt), Di = MD5(Di-1‖pw‖salt);
 * key = D1‖D2 (always 256 bits), iv = D3 (§5.2).
 */
export function deriveKeyIv(password: Uint8Array, salt: Uint8Array): { key: Buffer; iv: Buffer } {
  const d1 = createHash('md5').update(password).update(salt).digest();
  const d2 = createHash('md5').update(d1).update(password).update(salt).digest();
  const d3 = createHash('md5').update(d2).update(password).update(salt).digest();
  return { key: Buffer.concat([d1, d2]), iv: d3 };
}

/** Legacy (pre-2.5) key handling: cut to 16 bytes, right-padded with ASCII '0' (§5.2). */
export function legacyPassword(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(16).fill(0x30);
  out.set(key.subarray(0, 16));
  return out;
}

function cipherName(mode: EncryptionMode): string {
  return mode === 'ctr' ? 'aes-256-ctr' : 'aes-256-cbc';
}

/**
 * AES-256 decryption of `ct` (a non-empty multiple of 16 bytes) and strict PKCS#7 removal;
 * undefined when the padding is wrong (a wrong key or mode, almost always).
 */
export function decryptAes(mode: EncryptionMode, password: Uint8Array, salt: Uint8Array, ct: Uint8Array): Buffer | undefined {
  if (ct.length === 0 || ct.length % 16 !== 0) return undefined;
  const { key, iv } = deriveKeyIv(mode === 'legacy' ? legacyPassword(password) : password, salt);
  const d = createDecipheriv(cipherName(mode), key, iv);
  d.setAutoPadding(false);
  const pt = Buffer.concat([d.update(ct), d.final()]);
  const pad = pt[pt.length - 1] as number;
  if (pad < 1 || pad > 16) return undefined;
  for (let i = pt.length - pad; i < pt.length; i++) if (pt[i] !== pad) return undefined;
  return pt.subarray(0, pt.length - pad);
}

/** AES-256 encryption with PKCS#7 padding in every mode, CTR included, as libfko pads (§5.1). */
export function encryptAes(mode: EncryptionMode, password: Uint8Array, salt: Uint8Array, pt: Uint8Array): Buffer {
  const { key, iv } = deriveKeyIv(mode === 'legacy' ? legacyPassword(password) : password, salt);
  const pad = 16 - (pt.length % 16);
  const padded = Buffer.concat([pt, Buffer.alloc(pad, pad)]);
  const c = createCipheriv(cipherName(mode), key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(padded), c.final()]);
}
