// Encode a knock and verify a received datagram, in the cheap-first order of
// PROTOCOL.md §5: length, version, tag, replay, box, body, epoch, freshness,
// watermark, signature. Pure. Time and the nonce come in as arguments.
import type { KeyObject } from 'node:crypto';
import { concat } from '../bytes.js';
import type { Access } from '../net/access.js';
import { decodeBody, encodeBody, type Allow } from './body.js';
import {
  BODY_BYTES,
  BOX_OVERHEAD_BYTES,
  DATAGRAM_BYTES,
  LABEL_SIGNATURE,
  NONCE_BYTES,
  OFF_BOX,
  OFF_NONCE,
  OFF_TAG,
  SIGNATURE_BYTES,
  TAG_BYTES,
  VERSION,
} from './constants.js';
import { clientSharedKeys, type AuthorizedClient, type ClientSecretKey, type ServerPublicKey } from './keys.js';
import { ascii, openBox, sealBox, signEd25519, verifyEd25519 } from './primitives.js';
import type { Reason } from './reasons.js';
import { nonceKeyOf, type ReplayGuard } from './replay.js';
import { computeTag, epochOf, type TagTable } from './tag.js';

const SIG_LABEL = ascii(LABEL_SIGNATURE);
const VERSION_BYTE = Uint8Array.of(VERSION);

/** The signed message (§4.5): label ‖ version ‖ server fingerprint ‖ tag ‖ nonce ‖ body. */
function signedMessage(fingerprint: Uint8Array, tag: Uint8Array, nonce: Uint8Array, body: Uint8Array): Uint8Array {
  return concat(SIG_LABEL, VERSION_BYTE, fingerprint, tag, nonce, body);
}

export interface KnockInput {
  readonly client: ClientSecretKey;
  readonly server: ServerPublicKey;
  readonly allow: Allow;
  readonly access: readonly Access[];
  readonly timeSec: number;
  /** NONCE_BYTES random bytes, fresh for every knock. */
  readonly nonce: Uint8Array;
}

export function encodeKnock(k: KnockInput): Uint8Array {
  const shared = clientSharedKeys(k.client, k.server);
  if (!shared) throw new RangeError('the server public key is a low-order point');
  return sealDatagram({
    signKey: k.client.signKey,
    boxKey: shared.boxKey,
    fingerprint: k.server.fingerprint,
    tag: computeTag(shared.tagKey, epochOf(k.timeSec)),
    nonce: k.nonce,
    body: encodeBody({ timeSec: k.timeSec, allow: k.allow, access: k.access }),
  });
}

export interface DatagramParts {
  readonly signKey: KeyObject;
  readonly boxKey: Uint8Array;
  readonly fingerprint: Uint8Array;
  readonly tag: Uint8Array;
  readonly nonce: Uint8Array;
  /** BODY_BYTES of body (§3); not checked here, so test vectors can carry broken bodies. */
  readonly body: Uint8Array;
}

/** Assembles a datagram from its parts (§2): version ‖ tag ‖ nonce ‖ box(signature ‖ body). */
export function sealDatagram(p: DatagramParts): Uint8Array {
  if (p.nonce.length !== NONCE_BYTES) throw new RangeError(`the nonce has ${NONCE_BYTES} bytes`);
  if (p.tag.length !== TAG_BYTES) throw new RangeError(`the tag has ${TAG_BYTES} bytes`);
  if (p.body.length !== BODY_BYTES) throw new RangeError(`the body has ${BODY_BYTES} bytes`);
  const signature = signEd25519(p.signKey, signedMessage(p.fingerprint, p.tag, p.nonce, p.body));
  return concat(VERSION_BYTE, p.tag, p.nonce, sealBox(concat(signature, p.body), p.nonce, p.boxKey));
}

export interface VerifyContext {
  readonly server: ServerPublicKey;
  readonly tags: TagTable;
  readonly replay: ReplayGuard;
  readonly windowSec: number;
}

export interface Verified {
  readonly ok: true;
  readonly client: AuthorizedClient;
  /** Replay-guard key of this knock's nonce; record it with replay.add(client.guardKey, …) once accepted. */
  readonly nonceKey: string;
  readonly timeSec: number;
  readonly allow: Allow;
  readonly access: readonly Access[];
}

export interface Rejected {
  readonly ok: false;
  readonly reason: Reason;
  /** Set once the tag named a client (useful in logs; never for garbage). */
  readonly id?: string;
}

const reject = (reason: Reason, id?: string): Rejected => (id === undefined ? { ok: false, reason } : { ok: false, reason, id });

/**
 * Verifies one datagram. Never throws on attacker input; every failure is a Reason.
 * Does not record the nonce: the caller does that after policy accepts (§5.3).
 */
export function verifyDatagram(ctx: VerifyContext, d: Uint8Array, nowClock: number): Verified | Rejected {
  const nowSec = Math.floor(nowClock); // §5: `now` is whole seconds
  // Claims about the attacker: they choose every byte and the length. Each check below
  // only reads inside bounds already established by the length check.
  if (d.length !== DATAGRAM_BYTES) return reject('length.bad');
  if (d[0] !== VERSION) return reject('version.unknown');
  const hit = ctx.tags.lookup(d, OFF_TAG, nowSec);
  if (!hit) return reject('tag.unknown');
  const id = hit.client.id;
  const nonceKey = nonceKeyOf(d, OFF_NONCE, NONCE_BYTES);
  if (ctx.replay.hasNonce(hit.client.guardKey, nonceKey)) return reject('replay.seen', id);
  const nonce = d.subarray(OFF_NONCE, OFF_NONCE + NONCE_BYTES);
  const plain = openBox(d.subarray(OFF_BOX), nonce, hit.client.boxKey);
  if (!plain || plain.length !== DATAGRAM_BYTES - OFF_BOX - BOX_OVERHEAD_BYTES) return reject('box.bad', id);
  const signature = plain.subarray(0, SIGNATURE_BYTES);
  const bodyBytes = plain.subarray(SIGNATURE_BYTES);
  const body = decodeBody(bodyBytes);
  if (!body) return reject('body.malformed', id);
  if (epochOf(body.timeSec) !== hit.epoch) return reject('tag.epoch', id);
  if (body.timeSec < nowSec - ctx.windowSec) return reject('time.stale', id);
  if (body.timeSec > nowSec + ctx.windowSec) return reject('time.future', id);
  if (ctx.replay.isBelowWatermark(hit.client.guardKey, body.timeSec)) return reject('replay.seen', id);
  const tag = d.subarray(OFF_TAG, OFF_TAG + TAG_BYTES);
  const key = hit.client.verifyKey;
  if (!key || !verifyEd25519(key, signedMessage(ctx.server.fingerprint, tag, nonce, bodyBytes), signature)) {
    return reject('signature.bad', id);
  }
  return { ok: true, client: hit.client, nonceKey, timeSec: body.timeSec, allow: body.allow, access: body.access };
}
