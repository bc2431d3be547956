// Wire constants of protocol v1 (docs/PROTOCOL.md §2-§4). Pure.
// Group 1 is the spec: changing any of these makes a different protocol.
// Group 2 is this implementation's defaults, which a server may configure.

// ---- Group 1: spec (PROTOCOL.md) ----

/** First byte of every v1 datagram (§2). */
export const VERSION = 0x01;
/** Per-epoch lookup tag: HMAC-SHA256(tagKey, ...) truncated (§4.2). */
export const TAG_BYTES = 16;
/** XSalsa20-Poly1305 nonce, random per knock; also the replay-guard key (§4.3). */
export const NONCE_BYTES = 24;
/** Poly1305 authenticator prepended by secretbox (§4.4). */
export const BOX_OVERHEAD_BYTES = 16;
/** Ed25519 signature (§4.5). */
export const SIGNATURE_BYTES = 64;
/** Fixed-size body so length says nothing about address family or access count (§3). */
export const BODY_BYTES = 64;
/** Most access entries in one knock (§3). */
export const MAX_ACCESS = 8;
/** The whole datagram: version, tag, nonce, box(signature ‖ body). */
export const DATAGRAM_BYTES = 1 + TAG_BYTES + NONCE_BYTES + BOX_OVERHEAD_BYTES + SIGNATURE_BYTES + BODY_BYTES;
/** Tag epochs are this long; the tag changes from one epoch to the next (§4.2). */
export const EPOCH_SEC = 60;

/** Datagram offsets (§2 table). */
export const OFF_VERSION = 0;
export const OFF_TAG = 1;
export const OFF_NONCE = OFF_TAG + TAG_BYTES; // 17
export const OFF_BOX = OFF_NONCE + NONCE_BYTES; // 41

/** Body offsets (§3 table). */
export const BODY_OFF_TIME = 0; // u64 BE, unix seconds
export const BODY_OFF_FAMILY = 8; // 4, 6, or FAMILY_SOURCE
export const BODY_OFF_ADDR = 9; // 16 bytes; IPv4 uses the first 4, the rest zero
export const BODY_OFF_COUNT = 25; // 1..MAX_ACCESS
export const BODY_OFF_ACCESS = 26; // MAX_ACCESS × (proto u8, port u16 BE)
export const ACCESS_ENTRY_BYTES = 3;
/** Address family 0: "open for the address this datagram arrives from"; the 16 address bytes are zero. */
export const FAMILY_SOURCE = 0;
export const BODY_OFF_PAD = BODY_OFF_ACCESS + MAX_ACCESS * ACCESS_ENTRY_BYTES; // 50

/** Domain-separation labels (§4): ASCII, no terminator. */
export const LABEL_TAG_KEY = 'spa/v1 tag key';
export const LABEL_TAG = 'spa/v1 tag';
export const LABEL_SIGNATURE = 'spa/v1 knock';
export const LABEL_FINGERPRINT = 'spa/v1 server';

// ---- Group 2: implementation defaults ----

/** Default UDP port, fwknop's (62201) so existing firewall notes still apply. */
export const DEFAULT_PORT = 62201;
/** Default freshness window each way, seconds (P4). */
export const DEFAULT_WINDOW_SEC = 120;
/**
 * Replay guard capacity per client (§5.3): beyond it the client's entry with the smallest
 * timestamp is forgotten and raises that client's watermark. 1,024 accepted knocks inside
 * twice the window is far more than a person makes.
 */
export const DEFAULT_REPLAY_PER_CLIENT = 1024;
/**
 * Replay guard capacity in all (§5.3): beyond it the client holding the most entries loses
 * its oldest, so no client can push out another's while it holds fewer than its share.
 */
export const DEFAULT_REPLAY_TOTAL = 1_000_000;
