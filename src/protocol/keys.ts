// Key material of v1 as raw bytes, and the per-client values a server derives (PROTOCOL.md §1, §4.1). Pure.
import type { KeyObject } from 'node:crypto';
import { LABEL_FINGERPRINT, LABEL_TAG_KEY } from './constants.js';
import { ascii, boxBefore, ed25519PrivateKey, ed25519PublicFromSeed, ed25519PublicKey, hmacSha256, sha256, x25519PrivateKey, x25519PublicFromSecret } from './primitives.js';

export interface ServerPublicKey {
  /** X25519 public key. */
  readonly boxPublic: Uint8Array;
  /** SHA-256("spa/v1 server" ‖ boxPublic): names this server inside every signature (P5). */
  readonly fingerprint: Uint8Array;
}

export interface ServerSecretKey extends ServerPublicKey {
  readonly boxSecret: Uint8Array;
  /** The same secret as an OpenSSL key, made once for every client's X25519. */
  readonly boxPrivate: KeyObject;
}

export interface ClientPublicKey {
  /** Ed25519 public key: verifies the knock's signature. */
  readonly signPublic: Uint8Array;
  /** X25519 public key: the server boxes against it. */
  readonly boxPublic: Uint8Array;
}

export interface ClientSecretKey extends ClientPublicKey {
  readonly signSeed: Uint8Array;
  readonly boxSecret: Uint8Array;
  readonly signKey: KeyObject;
}

/**
 * What a server keeps per authorized client: the symmetric keys precomputed, so a packet
 * costs no public-key work until its box has opened. The Ed25519 KeyObject is made on first
 * use: OpenSSL keeps ~5 KB per key outside the V8 heap, and most of 10,000 keys never knock.
 */
export class AuthorizedClient {
  private key: KeyObject | undefined;

  constructor(
    readonly id: string,
    /** Ed25519 public key, raw 32 bytes. */
    readonly signPublic: Uint8Array,
    /** K = crypto_box_beforenm(client boxPublic, server boxSecret). */
    readonly boxKey: Uint8Array,
    /** HMAC-SHA256(K, "spa/v1 tag key"). */
    readonly tagKey: Uint8Array,
  ) {}

  /** The verifying KeyObject; undefined if OpenSSL refuses the key (then no signature verifies). */
  get verifyKey(): KeyObject | undefined {
    if (this.key === undefined) {
      try {
        this.key = ed25519PublicKey(this.signPublic);
      } catch {
        return undefined;
      }
    }
    return this.key;
  }
}

export function serverFingerprint(boxPublic: Uint8Array): Uint8Array {
  return sha256(ascii(LABEL_FINGERPRINT), boxPublic);
}

export function serverPublicKey(boxPublic: Uint8Array): ServerPublicKey {
  return { boxPublic: Uint8Array.from(boxPublic), fingerprint: serverFingerprint(boxPublic) };
}

export function serverSecretKey(boxSecret: Uint8Array): ServerSecretKey {
  const boxPublic = x25519PublicFromSecret(boxSecret);
  return { boxSecret: Uint8Array.from(boxSecret), boxPrivate: x25519PrivateKey(boxSecret), ...serverPublicKey(boxPublic) };
}

/** secret = signSeed(32) ‖ boxSecret(32), as stored in a client secret key. */
export function clientSecretKey(secret: Uint8Array): ClientSecretKey {
  if (secret.length !== 64) throw new RangeError('a client secret key has 64 bytes');
  const signSeed = secret.slice(0, 32);
  const boxSecret = secret.slice(32, 64);
  return {
    signSeed,
    boxSecret,
    signKey: ed25519PrivateKey(signSeed),
    signPublic: ed25519PublicFromSeed(signSeed),
    boxPublic: x25519PublicFromSecret(boxSecret),
  };
}

/** public = signPublic(32) ‖ boxPublic(32). */
export function clientPublicKey(pub: Uint8Array): ClientPublicKey {
  if (pub.length !== 64) throw new RangeError('a client public key has 64 bytes');
  return { signPublic: pub.slice(0, 32), boxPublic: pub.slice(32, 64) };
}

/** Symmetric keys shared by a client and a server (§4.1); undefined for a low-order box key. */
export function sharedKeys(theirBoxPublic: Uint8Array, myBoxSecret: Uint8Array | KeyObject): { boxKey: Uint8Array; tagKey: Uint8Array } | undefined {
  const boxKey = boxBefore(theirBoxPublic, myBoxSecret);
  if (!boxKey) return undefined;
  return { boxKey, tagKey: hmacSha256(boxKey, ascii(LABEL_TAG_KEY)) };
}

/**
 * The server's per-client precomputation (one X25519 each, at load time).
 * Returns undefined when the client's box key is unusable (a low-order X25519 point).
 */
export function authorizeClient(server: ServerSecretKey, id: string, client: ClientPublicKey): AuthorizedClient | undefined {
  const shared = sharedKeys(client.boxPublic, server.boxPrivate);
  if (!shared) return undefined;
  return new AuthorizedClient(id, client.signPublic, shared.boxKey, shared.tagKey);
}
