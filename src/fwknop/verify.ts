// Decides a fwknop 2.6 SPA packet (symmetric mode) against access.conf stanzas, cheapest check
// first: size, alphabet, prefix, SOURCE/DESTINATION, replay digest; then per candidate stanza
// the HMAC (constant time), AES, the inner digest, the fields, and the policy (SPEC.md §8).
// Pure. `now` and the replay lookup come in; every failure is a typed reason, nothing throws.
import { timingSafeEqual } from 'node:crypto';
import type { Access, Proto } from '../net/access.js';
import { decodeB64, encodeB64, isB64Bytes } from './base64.js';
import { decryptAes, digestOf, HMAC_B64_LENGTH, hmacOf } from './crypto.js';
import { ipv4Text, netListHas, parseIPv4 } from './ipv4.js';
import { decodePlaintext, MSG, type SpaFields } from './message.js';
import { REASON_RANK, type FwknopReason } from './reasons.js';
import type { FwknopGlobals, FwknopStanza } from './stanza.js';

/** What fwknopd looks at (MIN_SPA_DATA_SIZE, MAX_SPA_PACKET_LEN). */
export const FWKNOP_PAYLOAD = { min: 140, max: 1500 } as const;
/** The base64 of "Salted__" that clients strip (B64_RIJNDAEL_SALT, SPEC.md §5.3). */
export const SALTED_PREFIX = 'U2FsdGVkX1';
const SALTED_PREFIX_BYTES = Buffer.from(SALTED_PREFIX, 'latin1');

/** The packet's network-layer addresses (IPv4 as unsigned 32-bit numbers). */
export interface PacketAddresses {
  readonly src: number;
  /** undefined in UDP-socket mode, where (as in fwknopd) DESTINATION cannot match. */
  readonly dst: number | undefined;
}

export interface FwknopGrant {
  readonly ok: true;
  /** Index of the accepting stanza. */
  readonly stanza: number;
  readonly replayDigest: string;
  /** The address to open: the allow IP, or the packet's source for 0.0.0.0. */
  readonly allowIp: string;
  readonly access: readonly Access[];
  /** How long to open: the client's timeout capped by MAX_FW_TIMEOUT, else the stanza's. */
  readonly timeoutSec: number;
  readonly fields: SpaFields;
}

export interface FwknopRefusal {
  readonly ok: false;
  readonly reason: FwknopReason;
  /** The stanza that got furthest; undefined for a packet-level reason. */
  readonly stanza: number | undefined;
  readonly replayDigest: string | undefined;
  /**
   * Some stanza's keys authenticated and decrypted the packet: fwknopd then burns its replay
   * digest even if policy refuses it (SPEC.md §8 step 3.5), and so do we.
   */
  readonly authenticated: boolean;
}

export type FwknopVerdict = FwknopGrant | FwknopRefusal;

/** b64(SHA-256(payload)), fwknop's replay digest: over the bytes as received (§8 step 2). */
export function replayDigestOf(payload: Uint8Array): string {
  return encodeB64(digestOf('sha256', payload));
}

/** Refusals that depend only on the bytes and the stanzas' keys: the same bytes fail again. */
export function isKeyFailure(v: FwknopRefusal): boolean {
  return !v.authenticated && (v.reason === 'fwknop.hmac' || v.reason === 'fwknop.no-hmac' || v.reason === 'fwknop.decrypt' || v.reason === 'fwknop.digest' || v.reason === 'fwknop.format');
}

/** True when `payload` has the shape of a fwknop packet (size and alphabet); no crypto. */
export function looksLikeFwknop(payload: Uint8Array): boolean {
  return payload.length >= FWKNOP_PAYLOAD.min && payload.length <= FWKNOP_PAYLOAD.max && isB64Bytes(payload);
}

type StanzaResult = { ok: true; grant: Omit<FwknopGrant, 'stanza' | 'replayDigest'> } | { ok: false; reason: FwknopReason; authenticated: boolean };

function refuse(reason: FwknopReason, authenticated = false): StanzaResult {
  return { ok: false, reason, authenticated };
}

/** `IP,tcp/22,udp/53` of an access message; undefined parts when wrong. */
function splitAccess(message: string): { ip: string; access: Access[] | undefined } {
  const comma = message.indexOf(',');
  const ip = comma < 0 ? message : message.slice(0, comma);
  const access: Access[] = [];
  for (const item of comma < 0 ? [] : message.slice(comma + 1).split(',')) {
    const m = /^(tcp|udp)\/(\d{1,5})$/.exec(item);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65535) return { ip, access: undefined };
    if (!access.some((a) => a.proto === m[1] && a.port === port)) access.push({ proto: m[1] as Proto, port });
  }
  return { ip, access: access.length > 0 ? access : undefined };
}

function listed(list: readonly Access[], a: Access): boolean {
  return list.some((x) => x.proto === a.proto && x.port === a.port);
}

function tryStanza(st: FwknopStanza, wire: string, pkt: PacketAddresses, g: FwknopGlobals, nowSec: number): StanzaResult {
  if (st.expireSec !== undefined && nowSec >= st.expireSec) return refuse('fwknop.expired');
  let data = wire;
  if (st.hmacKey !== undefined) {
    const n = HMAC_B64_LENGTH[st.hmacType];
    if (wire.length <= n) return refuse('fwknop.hmac');
    data = wire.slice(0, wire.length - n);
    // The MAC covers the ciphertext's base64 WITH the stripped prefix (SPEC.md §6).
    const want = Buffer.from(encodeB64(hmacOf(st.hmacType, st.hmacKey, SALTED_PREFIX + data)), 'latin1');
    const got = Buffer.from(wire.slice(wire.length - n), 'latin1');
    if (want.length !== got.length || !timingSafeEqual(want, got)) return refuse('fwknop.hmac');
  }
  const raw = decodeB64(SALTED_PREFIX + data);
  // "Salted__" ‖ salt(8) ‖ ciphertext (a non-empty multiple of 16 bytes).
  if (raw === undefined || raw.length < 32 || (raw.length - 16) % 16 !== 0) return refuse(st.hmacKey ? 'fwknop.decrypt' : 'fwknop.no-hmac');
  const pt = decryptAes(st.mode, st.key, raw.subarray(8, 16), raw.subarray(16));
  if (pt === undefined || !/^\d{16}:/.test(pt.subarray(0, 17).toString('latin1'))) return refuse('fwknop.decrypt');
  const decoded = decodePlaintext(pt);
  if (!decoded.ok) return refuse(decoded.reason === 'digest' ? 'fwknop.digest' : 'fwknop.format');
  const f = decoded.fields;
  // From here the packet is authentic for this stanza: its digest is burned even if refused.
  if (g.agingEnabled && Math.abs(nowSec - f.timestamp) > g.maxAgeSec) return refuse('fwknop.age', true);
  if (f.messageType !== MSG.access && f.messageType !== MSG.clientTimeoutAccess) return refuse('fwknop.msg-type', true);
  const { ip, access } = splitAccess(f.message);
  const allow = parseIPv4(ip);
  if (allow === undefined) return refuse('fwknop.allow-ip', true);
  if (access === undefined) return refuse('fwknop.format', true);
  if (allow === 0 && st.requireSourceAddress) return refuse('fwknop.require-source', true);
  if (st.requireUsername !== undefined && f.username !== st.requireUsername) return refuse('fwknop.username', true);
  // Unlike fwknopd 2.6.10, the port lists hold for CMD_CYCLE stanzas too (issue 14 item 3).
  const open = st.openPorts;
  if ((open !== undefined && !access.every((a) => listed(open, a))) || access.some((a) => listed(st.restrictPorts, a))) {
    return refuse('fwknop.ports', true);
  }
  const fallback = st.cmdCycle?.timerSec ?? st.accessTimeoutSec;
  const timeoutSec = f.clientTimeoutSec > 0 ? Math.min(f.clientTimeoutSec, st.maxTimeoutSec) : fallback;
  return { ok: true, grant: { ok: true, allowIp: ipv4Text(allow === 0 ? pkt.src : allow), access, timeoutSec, fields: f } };
}

/**
 * The verdict on one UDP (or TCP) payload. `seen` says whether a replay digest is in the
 * cache; stanzas are tried in file order and the first that accepts wins (CONFIG.md §1.2).
 */
export function verifyFwknop(
  payload: Uint8Array,
  pkt: PacketAddresses,
  stanzas: readonly FwknopStanza[],
  g: FwknopGlobals,
  nowSec: number,
  seen: (digest: string) => boolean,
  knownBad: (digest: string) => boolean = () => false,
): FwknopVerdict {
  const early = (reason: FwknopReason, replayDigest?: string): FwknopRefusal => ({ ok: false, reason, stanza: undefined, replayDigest, authenticated: false });
  if (payload.length < FWKNOP_PAYLOAD.min || payload.length > FWKNOP_PAYLOAD.max) return early('fwknop.size');
  if (!isB64Bytes(payload)) return early('fwknop.charset');
  if (SALTED_PREFIX_BYTES.equals(payload.subarray(0, SALTED_PREFIX.length))) return early('fwknop.prefix');
  const candidates: number[] = [];
  for (let i = 0; i < stanzas.length; i++) {
    const st = stanzas[i] as FwknopStanza;
    if (netListHas(st.sources, pkt.src) && (st.destinations === 'any' || (pkt.dst !== undefined && netListHas(st.destinations, pkt.dst)))) candidates.push(i);
  }
  if (candidates.length === 0) return early('fwknop.source');
  const replayDigest = replayDigestOf(payload);
  if (seen(replayDigest)) return early('fwknop.replay', replayDigest);
  // The caller's cache of payloads that failed every stanza's HMAC before (same source, same
  // stanzas): a resent garbage packet costs one SHA-256 instead of an HMAC per stanza.
  if (knownBad(replayDigest)) return early('fwknop.known-bad', replayDigest);
  const wire = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
  let best: FwknopRefusal | undefined;
  let authenticated = false;
  for (const i of candidates) {
    const r = tryStanza(stanzas[i] as FwknopStanza, wire, pkt, g, nowSec);
    if (r.ok) return { ...r.grant, stanza: i, replayDigest };
    authenticated ||= r.authenticated;
    if (best === undefined || REASON_RANK[r.reason] > REASON_RANK[best.reason]) best = { ok: false, reason: r.reason, stanza: i, replayDigest, authenticated: false };
  }
  return { ...(best as FwknopRefusal), authenticated };
}
