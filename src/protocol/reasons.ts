// Rejection reasons of the verify pipeline, each with a one-line description. Pure.
// The order of this list is the order of the checks (PROTOCOL.md §5).

export const REASONS = {
  'length.bad': 'the datagram is not exactly the v1 size',
  'version.unknown': 'the first byte is not a protocol version this server speaks',
  'tag.unknown': 'the lookup tag matches no authorized key in the current epochs',
  'replay.seen': 'this nonce was already accepted, or the knock is older than the replay watermark',
  'box.bad': 'the encrypted box does not authenticate under the tagged key',
  'body.malformed': 'the decrypted body breaks a field rule (family, address, count, protocol, port, duplicate, padding)',
  'tag.epoch': 'the body timestamp is not in the epoch its tag was made for',
  'time.stale': 'the timestamp is older than the freshness window',
  'time.future': 'the timestamp is further ahead than the freshness window',
  'signature.bad': 'the Ed25519 signature does not verify with the authorized public key',
  'replay.full': 'the replay guard is full and cannot record the knock (fail closed)',
  'policy.door': "the key is in no door's spa_keys",
  'policy.access': "a requested access is outside the door's access list",
  'policy.address': 'the allow address differs from the source address and the door does not allow NAT',
  'policy.source': 'the knock asks to open for its source address and the door does not allow that (spa_allow_source)',
} as const;

export type Reason = keyof typeof REASONS;

export function describeReason(r: Reason): string {
  return REASONS[r];
}
