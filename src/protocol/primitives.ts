// The cryptographic primitives of v1, each over raw bytes (PROTOCOL.md §4). Pure.
// node:crypto does X25519, Ed25519, SHA-256 and HMAC (15-70x faster than tweetnacl here,
// byte-identical results); tweetnacl does HSalsa20 and XSalsa20-Poly1305, which node lacks.
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, sign, verify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { signatureShapeOk } from './points.js';

// DER prefixes that wrap a raw 32-byte key (RFC 8410 §7, §10).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

// tweetnacl exports HSalsa20 at run time but not in its type declarations.
type HSalsa20 = (out: Uint8Array, input: Uint8Array, key: Uint8Array, constant: Uint8Array) => void;
const hsalsa20 = (nacl as unknown as { lowlevel: { crypto_core_hsalsa20: HSalsa20 } }).lowlevel.crypto_core_hsalsa20;

const SIGMA = new TextEncoder().encode('expand 32-byte k');
const ZERO16 = new Uint8Array(16);

function raw32(k: KeyObject): Uint8Array {
  const der = k.export({ format: 'der', type: k.type === 'private' ? 'pkcs8' : 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

export function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
}

export function ed25519PublicKey(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
}

export function ed25519PublicFromSeed(seed: Uint8Array | KeyObject): Uint8Array {
  return raw32(createPublicKey(seed instanceof Uint8Array ? ed25519PrivateKey(seed) : seed));
}

export function x25519PrivateKey(secret: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicFromSecret(secret: Uint8Array | KeyObject): Uint8Array {
  return raw32(createPublicKey(secret instanceof Uint8Array ? x25519PrivateKey(secret) : secret));
}

/**
 * NaCl's crypto_box_beforenm: HSalsa20(X25519(secret, public)), the same bytes as
 * tweetnacl's box.before. Returns undefined for a low-order public key (all-zero
 * shared secret), which OpenSSL refuses and we treat as an invalid key.
 */
export function boxBefore(theirPublic: Uint8Array, mySecret: Uint8Array | KeyObject): Uint8Array | undefined {
  let shared: Buffer;
  try {
    shared = diffieHellman({
      privateKey: mySecret instanceof Uint8Array ? x25519PrivateKey(mySecret) : mySecret,
      publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519, theirPublic]), format: 'der', type: 'spki' }),
    });
  } catch {
    return undefined;
  }
  if (shared.every((b) => b === 0)) return undefined;
  const k = new Uint8Array(32);
  hsalsa20(k, ZERO16, new Uint8Array(shared), SIGMA);
  return k;
}

export function signEd25519(key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key));
}

/**
 * Ed25519 verification as §4.5 pins it: RFC 8032 §5.1.7 (OpenSSL) after the checks libsodium
 * adds, S < L and R canonical and not of small order (points.ts). The key's own checks (A
 * canonical, not of small order) are made when it is read (§1.1).
 */
export function verifyEd25519(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  return signatureShapeOk(signature) && verify(null, message, key, signature);
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** XSalsa20-Poly1305 (NaCl secretbox, i.e. box.after with a precomputed key). */
export function sealBox(plain: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  return nacl.secretbox(plain, nonce, key);
}

/** Opens a box; undefined when it does not authenticate. Sizes are the caller's to check. */
export function openBox(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  return nacl.secretbox.open(box, nonce, key) ?? undefined;
}

export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
