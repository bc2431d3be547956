// Key material of v1 as raw bytes, and the per-client values a server derives (PROTOCOL.md §1, §4.1). Pure.
import type { KeyObject } from 'node:crypto';
import { LABEL_FINGERPRINT, LABEL_TAG_KEY } from './constants.js';
import { ed25519PointProblem, x25519PointProblem } from './points.js';
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
  /** The box secret as an OpenSSL key: made once (each import costs a knock's start-up). */
  readonly boxPrivate: KeyObject;
}

/**
 * What a server keeps per authorized client: the symmetric keys precomputed, so a packet
 * costs no public-key work until its box has opened. The Ed25519 KeyObject is made on first
 * use: OpenSSL keeps ~5 KB per key outside the V8 heap, and most of 10,000 keys never knock.
 */
export class AuthorizedClient {
  private key: KeyObject | undefined;
  /** Names the client in the replay guard: its Ed25519 key, which no other entry shares (§1.1). */
  readonly guardKey: string;

  constructor(
    readonly id: string,
    /** Ed25519 public key, raw 32 bytes; valid by §1.1 (checked by authorizeClient). */
    readonly signPublic: Uint8Array,
    /** K = crypto_box_beforenm(client boxPublic, server boxSecret). */
    readonly boxKey: Uint8Array,
    /** HMAC-SHA256(K, "spa/v1 tag key" ‖ A ‖ S_cli ‖ S_srv). */
    readonly tagKey: Uint8Array,
  ) {
    this.guardKey = Buffer.from(signPublic).toString('latin1');
  }

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

/** Why a server public key is refused (§1.1), or undefined. */
export function serverKeyProblem(boxPublic: Uint8Array): string | undefined {
  const p = x25519PointProblem(boxPublic);
  return p && `its X25519 key is ${p === 'low order' ? 'a low-order point' : 'not canonically encoded'}`;
}

/** Why a client public key is refused (§1.1), or undefined. */
export function clientKeyProblem(k: ClientPublicKey): string | undefined {
  const a = ed25519PointProblem(k.signPublic);
  if (a) return `its Ed25519 key is ${a === 'small order' ? 'a small-order point' : a === 'not on the curve' ? 'not a point of the curve' : 'not canonically encoded'}`;
  const b = x25519PointProblem(k.boxPublic);
  return b && `its X25519 key is ${b === 'low order' ? 'a low-order point' : 'not canonically encoded'}`;
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
  const signKey = ed25519PrivateKey(signSeed);
  const boxPrivate = x25519PrivateKey(boxSecret);
  return {
    signSeed,
    boxSecret,
    signKey,
    boxPrivate,
    signPublic: ed25519PublicFromSeed(signKey),
    boxPublic: x25519PublicFromSecret(boxPrivate),
  };
}

/** public = signPublic(32) ‖ boxPublic(32). */
export function clientPublicKey(pub: Uint8Array): ClientPublicKey {
  if (pub.length !== 64) throw new RangeError('a client public key has 64 bytes');
  return { signPublic: pub.slice(0, 32), boxPublic: pub.slice(32, 64) };
}

export interface SharedKeys {
  readonly boxKey: Uint8Array;
  readonly tagKey: Uint8Array;
}

/**
 * tagKey = HMAC-SHA256(K, "spa/v1 tag key" ‖ A ‖ S_cli ‖ S_srv) (§4.1). The box key K depends
 * on the X25519 halves only; the tag key binds the whole client key and the server, so an
 * entry that pairs someone else's X25519 key with its own Ed25519 key has tags of its own.
 */
function tagKeyOf(boxKey: Uint8Array, client: ClientPublicKey, serverBoxPublic: Uint8Array): Uint8Array {
  return hmacSha256(boxKey, ascii(LABEL_TAG_KEY), client.signPublic, client.boxPublic, serverBoxPublic);
}

/** The client's side of §4.1; undefined for a low-order server key. */
export function clientSharedKeys(client: ClientSecretKey, server: ServerPublicKey): SharedKeys | undefined {
  const boxKey = boxBefore(server.boxPublic, client.boxPrivate);
  return boxKey && { boxKey, tagKey: tagKeyOf(boxKey, client, server.boxPublic) };
}

/** The server's side of §4.1; undefined for a low-order client box key. */
export function serverSharedKeys(server: ServerSecretKey, client: ClientPublicKey): SharedKeys | undefined {
  const boxKey = boxBefore(client.boxPublic, server.boxPrivate);
  return boxKey && { boxKey, tagKey: tagKeyOf(boxKey, client, server.boxPublic) };
}

/**
 * The server's per-client precomputation (one X25519 each, at load time).
 * Returns undefined when the client's key is refused by §1.1.
 */
export function authorizeClient(server: ServerSecretKey, id: string, client: ClientPublicKey): AuthorizedClient | undefined {
  if (clientKeyProblem(client)) return undefined;
  const shared = serverSharedKeys(server, client);
  if (!shared) return undefined;
  return new AuthorizedClient(id, client.signPublic, shared.boxKey, shared.tagKey);
}
