// Why a fwknop packet was refused: stable codes with one-line descriptions. Pure.
// Packet reasons come first (they end processing), stanza reasons after (the next stanza is
// tried); a refusal reports the stanza that got furthest (REASON_RANK).

export const FWKNOP_REASONS = {
  'fwknop.size': 'payload not 140..1500 bytes',
  'fwknop.charset': 'payload is not base64 text',
  'fwknop.prefix': 'payload starts with U2FsdGVkX1 (a replayed packet with its prefix put back)',
  'fwknop.source': 'no stanza for this source or destination address',
  'fwknop.replay': 'packet seen before (replay digest in the cache)',
  'fwknop.known-bad': 'the same bytes from the same source already failed every stanza (cached)',
  'fwknop.expired': 'stanza expired (ACCESS_EXPIRE)',
  'fwknop.hmac': 'HMAC does not match (wrong HMAC key or type)',
  'fwknop.no-hmac': 'stanza has no HMAC key and the packet is not a valid HMAC-less one',
  'fwknop.decrypt': 'decryption failed (wrong key or mode)',
  'fwknop.digest': 'inner digest does not match',
  'fwknop.format': 'malformed SPA fields',
  'fwknop.age': 'timestamp outside MAX_SPA_PACKET_AGE',
  'fwknop.msg-type': 'message type refused (command or NAT messages are not supported)',
  'fwknop.allow-ip': 'allow IP in the message is not a valid IPv4 address',
  'fwknop.require-source': 'allow IP 0.0.0.0 but REQUIRE_SOURCE_ADDRESS is Y',
  'fwknop.username': 'username does not match REQUIRE_USERNAME',
  'fwknop.ports': 'requested port not allowed by OPEN_PORTS/RESTRICT_PORTS',
} as const;

export type FwknopReason = keyof typeof FWKNOP_REASONS;

/** How far a stanza got: a refusal names the stanza with the highest rank. */
export const REASON_RANK: Readonly<Record<FwknopReason, number>> = {
  'fwknop.size': 0, 'fwknop.charset': 0, 'fwknop.prefix': 0, 'fwknop.source': 0, 'fwknop.replay': 0, 'fwknop.known-bad': 0,
  'fwknop.expired': 1, 'fwknop.hmac': 2, 'fwknop.no-hmac': 2, 'fwknop.decrypt': 3, 'fwknop.digest': 4, 'fwknop.format': 4,
  'fwknop.age': 5, 'fwknop.msg-type': 5, 'fwknop.allow-ip': 5, 'fwknop.require-source': 5, 'fwknop.username': 5, 'fwknop.ports': 5,
};

export function describeFwknopReason(r: FwknopReason): string {
  return FWKNOP_REASONS[r];
}
