// Deterministic generator of the v1 test vectors (test/vectors/v1.json).
// Every input comes from SHA-256 of a label, so the file can be regenerated and
// compared byte for byte (test/unit/vectors.test.ts does that).
// Regenerate after an intended protocol change: UPDATE_VECTORS=1 npx vitest run test/unit/vectors.test.ts
import { createHash } from 'node:crypto';
import { concat, toHex } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { accessText, parseAccess } from '../../src/net/access.js';
import { encodeBody } from '../../src/protocol/body.js';
import { BODY_OFF_FAMILY, DEFAULT_WINDOW_SEC, EPOCH_SEC } from '../../src/protocol/constants.js';
import { encodeKnock, sealDatagram } from '../../src/protocol/datagram.js';
import { clientSecretKey, serverSecretKey, sharedKeys } from '../../src/protocol/keys.js';
import { computeTag, epochOf } from '../../src/protocol/tag.js';
import { encodeKey } from '../../keys/format.js';

export interface VectorCase {
  name: string;
  comment: string;
  /** Hex inputs. */
  server_secret: string;
  client_secret: string;
  nonce: string;
  /** The knock's timestamp (unix seconds) and the server's clock when it checks it. */
  time: number;
  now: number;
  window: number;
  allow: string;
  access: string[];
  /** Nonces (hex) the server's replay guard already holds. */
  seen_nonces: string[];
  datagram: string;
  expect: string;
}

export interface VectorFile {
  protocol: string;
  description: string;
  keys: { server_public: string; client_public: string; client_id: string };
  cases: VectorCase[];
}

export function det(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, block = 0; i < n; block++) {
    const h = createHash('sha256').update(`spa v1 test vectors/${label}/${block}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
    i += 32;
  }
  return out;
}

export function generateVectors(): VectorFile {
  const serverSecret = det('server', 32);
  const clientSecret = det('client', 64);
  const otherClient = clientSecretKey(det('other client', 64));
  const server = serverSecretKey(serverSecret);
  const client = clientSecretKey(clientSecret);
  const shared = sharedKeys(client.boxPublic, server.boxSecret)!;
  const time = 1_790_000_000; // 2026-09-21T14:13:20Z, inside an epoch, 20 s after its start
  const allow4 = parseAddress('192.0.2.7') as Address;
  const allow6 = parseAddress('2001:db8:85a3::8a2e:370:7334') as Address;
  const window = DEFAULT_WINDOW_SEC;
  const cases: VectorCase[] = [];
  const base = {
    server_secret: toHex(serverSecret),
    client_secret: toHex(clientSecret),
    window,
    seen_nonces: [] as string[],
  };
  const knock = (name: string, comment: string, o: { nonce: string; allow: Address; access: string[]; time?: number; now?: number; expect?: string; seen?: string[]; mutate?: (d: Uint8Array) => Uint8Array }): void => {
    const nonce = det(o.nonce, 24);
    const t = o.time ?? time;
    let d = encodeKnock({ client, server, allow: o.allow, access: o.access.map((a) => parseAccess(a)), timeSec: t, nonce });
    if (o.mutate) d = o.mutate(d);
    cases.push({ name, comment, ...base, nonce: toHex(nonce), time: t, now: o.now ?? time, allow: o.allow.text, access: o.access, seen_nonces: o.seen ?? [], datagram: toHex(d), expect: o.expect ?? 'ok' });
  };
  const parts = (nonceLabel: string, body: Uint8Array, over: Partial<{ signKey: typeof client.signKey; tag: Uint8Array }> = {}): Uint8Array =>
    sealDatagram({
      signKey: over.signKey ?? client.signKey,
      boxKey: shared.boxKey,
      fingerprint: server.fingerprint,
      tag: over.tag ?? computeTag(shared.tagKey, epochOf(time)),
      nonce: det(nonceLabel, 24),
      body,
    });
  const body4 = (t = time): Uint8Array => encodeBody({ timeSec: t, allow: allow4, access: [parseAccess('tcp/22')] });

  knock('ok-ipv4', 'IPv4 allow address, one access entry, checked at the knock time', { nonce: 'n1', allow: allow4, access: ['tcp/22'] });
  knock('ok-ipv6-eight', 'IPv6 allow address and the most access entries (8)', {
    nonce: 'n2',
    allow: allow6,
    access: ['tcp/22', 'udp/53', 'tcp/443', 'udp/60001', 'tcp/1', 'tcp/65535', 'udp/123', 'tcp/8443'],
  });
  knock('ok-edge-of-window', 'checked 120 s after the knock: still fresh', { nonce: 'n3', allow: allow4, access: ['tcp/22'], now: time + window });
  knock('length-bad-short', 'one byte short', { nonce: 'n4', allow: allow4, access: ['tcp/22'], expect: 'length.bad', mutate: (d) => d.subarray(0, d.length - 1) });
  knock('length-bad-long', 'one byte appended', { nonce: 'n5', allow: allow4, access: ['tcp/22'], expect: 'length.bad', mutate: (d) => concat(d, Uint8Array.of(0)) });
  knock('version-unknown', 'version byte 2', { nonce: 'n6', allow: allow4, access: ['tcp/22'], expect: 'version.unknown', mutate: (d) => concat(Uint8Array.of(2), d.subarray(1)) });
  knock('tag-unknown', 'a tag of another epoch far outside the window', {
    nonce: 'n7',
    allow: allow4,
    access: ['tcp/22'],
    expect: 'tag.unknown',
    mutate: (d) => concat(d.subarray(0, 1), computeTag(shared.tagKey, epochOf(time) + 1000), d.subarray(17)),
  });
  knock('replay-seen', 'the server already accepted this nonce', { nonce: 'n8', allow: allow4, access: ['tcp/22'], expect: 'replay.seen', seen: [toHex(det('n8', 24))] });
  knock('box-bad', 'last ciphertext byte flipped', {
    nonce: 'n9',
    allow: allow4,
    access: ['tcp/22'],
    expect: 'box.bad',
    mutate: (d) => {
      const c = Uint8Array.from(d);
      c[c.length - 1] = (c[c.length - 1] ?? 0) ^ 0x01;
      return c;
    },
  });
  const badFamily = body4();
  badFamily[BODY_OFF_FAMILY] = 5;
  cases.push({ name: 'body-malformed', comment: 'address family 5 inside a valid box and signature', ...base, nonce: toHex(det('n10', 24)), time, now: time, allow: allow4.text, access: ['tcp/22'], datagram: toHex(parts('n10', badFamily)), expect: 'body.malformed' });
  const nextEpochTime = (epochOf(time) + 1) * EPOCH_SEC;
  cases.push({
    name: 'tag-epoch',
    comment: 'body timestamp in the epoch after the one its tag was made for',
    ...base,
    nonce: toHex(det('n11', 24)),
    time: nextEpochTime,
    now: time,
    allow: allow4.text,
    access: ['tcp/22'],
    datagram: toHex(parts('n11', body4(nextEpochTime))),
    expect: 'tag.epoch',
  });
  knock('time-stale', 'checked 121 s after the knock', { nonce: 'n12', allow: allow4, access: ['tcp/22'], now: time + window + 1, expect: 'time.stale' });
  knock('time-future', 'checked 121 s before the knock', { nonce: 'n13', allow: allow4, access: ['tcp/22'], now: time - window - 1, expect: 'time.future' });
  cases.push({
    name: 'signature-bad',
    comment: "boxed with the right key but signed by another client's Ed25519 key",
    ...base,
    nonce: toHex(det('n14', 24)),
    time,
    now: time,
    allow: allow4.text,
    access: ['tcp/22'],
    datagram: toHex(parts('n14', body4(), { signKey: otherClient.signKey })),
    expect: 'signature.bad',
  });
  return {
    protocol: 'spa v1',
    description: 'Generated by test/vectors/generate.ts from SHA-256 of fixed labels; docs/PROTOCOL.md §8 explains each field.',
    keys: {
      server_public: encodeKey('server-public', server.boxPublic),
      client_public: encodeKey('client-public', concat(client.signPublic, client.boxPublic)),
      client_id: 'alice',
    },
    cases: cases.map((c) => ({ ...c, access: c.access.map((a) => accessText(parseAccess(a))) })),
  };
}
