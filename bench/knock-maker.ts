// Makes valid v1 datagrams fast for the benchmark: the client-server shared keys are computed
// once, then each knock is one Ed25519 signature and one secretbox (no X25519 per knock, which
// encodeKnock would redo every call). Byte-identical to encodeKnock. Pure (nonce and time in).
import { parseAddress, type Address } from '../src/net/address.js';
import type { Access } from '../src/net/access.js';
import { encodeBody } from '../src/protocol/body.js';
import { sealDatagram } from '../src/protocol/datagram.js';
import { clientSharedKeys, type ClientSecretKey, type ServerPublicKey } from '../src/protocol/keys.js';
import { computeTag, epochOf } from '../src/protocol/tag.js';

export type KnockMaker = (o: { timeSec: number; nonce: Uint8Array; access?: readonly Access[]; allow?: Address }) => Uint8Array;

const LOOPBACK = parseAddress('127.0.0.1') as Address;
const SSH: readonly Access[] = [{ proto: 'tcp', port: 22 }];

export function knockMaker(client: ClientSecretKey, server: ServerPublicKey): KnockMaker {
  const shared = clientSharedKeys(client, server);
  if (!shared) throw new Error('bench: the server key is a low-order point');
  const tags = new Map<number, Uint8Array>();
  return (o) => {
    const epoch = epochOf(o.timeSec);
    let tag = tags.get(epoch);
    if (!tag) {
      tag = computeTag(shared.tagKey, epoch);
      tags.set(epoch, tag);
    }
    return sealDatagram({
      signKey: client.signKey,
      boxKey: shared.boxKey,
      fingerprint: server.fingerprint,
      tag,
      nonce: o.nonce,
      body: encodeBody({ timeSec: o.timeSec, allow: o.allow ?? LOOPBACK, access: o.access ?? SSH }),
    });
  };
}
