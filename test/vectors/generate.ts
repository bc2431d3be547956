// Deterministic generator of the v1 test vectors (test/vectors/v1.json), 0.2.0 revision.
// Every input comes from SHA-256 of a label, so the file can be regenerated and compared
// byte for byte (test/unit/vectors.test.ts does that), and every case carries what a second
// implementation needs to rebuild its datagram from its inputs: the signer's secret, the
// tag's epoch, the body bytes, the signature where it is not Ed25519's, the change made to
// the finished datagram, the replay guard's state and the door the policy applies.
// Regenerate after an intended protocol change: UPDATE_VECTORS=1 npx vitest run test/unit/vectors.test.ts
import { createHash } from 'node:crypto';
import { concat, toHex } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { accessText, parseAccess } from '../../src/net/access.js';
import { allowText, encodeBody, type Allow } from '../../src/protocol/body.js';
import { BODY_BYTES, BODY_OFF_ACCESS, BODY_OFF_ADDR, BODY_OFF_COUNT, BODY_OFF_FAMILY, BODY_OFF_PAD, DEFAULT_WINDOW_SEC, EPOCH_SEC, VERSION } from '../../src/protocol/constants.js';
import { sealDatagram } from '../../src/protocol/datagram.js';
import { clientSecretKey, clientSharedKeys, serverSecretKey, type ClientSecretKey } from '../../src/protocol/keys.js';
import { openBox, sealBox } from '../../src/protocol/primitives.js';
import { computeTag, epochOf } from '../../src/protocol/tag.js';
import { encodeKey, type KeyReason, type KeyType } from '../../keys/format.js';

/** A change applied to the finished datagram (offsets into the datagram). */
export type Mutation = { op: 'truncate'; length: number } | { op: 'append'; hex: string } | { op: 'xor'; offset: number; hex: string };

export interface Door {
  /** Key ids the door holds. */
  keys: string[];
  access: string[];
  allow_nat: boolean;
  allow_source: boolean;
}

export interface GuardState {
  /** Accepted knocks: the client's Ed25519 public key, the nonce and the timestamp (hex, hex, seconds). */
  entries: { client: string; nonce: string; time: number }[];
  /** Per-client watermarks: knocks of that client at or before `time` are refused. */
  watermarks: { client: string; time: number }[];
}

export interface VectorCase {
  name: string;
  comment: string;
  /** Hex. The server's X25519 secret; the client whose key boxes and tags the datagram. */
  server_secret: string;
  client_secret: string;
  /** Hex. The client secret whose Ed25519 seed signs (usually the same client). */
  signer_secret: string;
  /** The epoch the tag was computed for (§4.2). */
  tag_epoch: number;
  nonce: string;
  /** The body's timestamp; the receiver's clock (whole seconds) and window. */
  time: number;
  now: number;
  window: number;
  /** The 64 body bytes (hex), exactly as boxed; `allow`/`access` say the same when it is valid. */
  body: string;
  allow?: string;
  access?: string[];
  /** Hex. Present when the signature is not Ed25519-Sign(signer, message) (crafted cases). */
  signature?: string;
  mutation?: Mutation;
  guard: GuardState;
  /** The server's only door, and the packet's source address (the policy of §5.4). */
  door: Door;
  src: string;
  datagram: string;
  /** `ok`, or the reason of §5 (checks 1-11) or of the policy (§5.4). */
  expect: string;
  /** For `ok`: the address the door opens for. */
  open_for?: string;
}

export interface KeyCase {
  name: string;
  comment: string;
  type: KeyType;
  text: string;
  /** `ok` or the reason of §1.2. */
  expect: 'ok' | KeyReason;
}

export interface KeysFileCase {
  name: string;
  comment: string;
  /** An authorized-keys file. */
  text: string;
  /** Lines refused, with the reason of §1.3. */
  refused: { line: number; reason: string }[];
}

export interface VectorFile {
  protocol: string;
  revision: string;
  description: string;
  keys: {
    server_public: string;
    client_public: string;
    client_id: string;
    /** Derived values for this server and client (§1, §4.1): fingerprint, K and the tag key. */
    fingerprint: string;
    box_key: string;
    tag_key: string;
  };
  cases: VectorCase[];
  key_cases: KeyCase[];
  keys_file_cases: KeysFileCase[];
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

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
const U8 = 39382357235489614581723060781553021112529911719440698176882885853963445705823n;
/** A 32-byte little-endian encoding of n (points and scalars). */
export function le32(n: bigint): Uint8Array {
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) b[i] = Number(n & 0xffn);
  return b;
}
function leValue(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] ?? 0);
  return n;
}

function applyMutation(d: Uint8Array, m: Mutation | undefined): Uint8Array {
  if (!m) return d;
  if (m.op === 'truncate') return d.subarray(0, m.length);
  if (m.op === 'append') return concat(d, Buffer.from(m.hex, 'hex'));
  const out = Uint8Array.from(d);
  Buffer.from(m.hex, 'hex').forEach((x, i) => (out[m.offset + i] = (out[m.offset + i] ?? 0) ^ x));
  return out;
}

export function generateVectors(): VectorFile {
  const serverSecret = det('server', 32);
  const clientSecret = det('client', 64);
  const otherSecret = det('other client', 64);
  const server = serverSecretKey(serverSecret);
  const client = clientSecretKey(clientSecret);
  const other = clientSecretKey(otherSecret);
  const third = clientSecretKey(det('third client', 64));
  const shared = clientSharedKeys(client, server)!;
  const aliceA = toHex(client.signPublic);
  const otherA = toHex(other.signPublic);
  const time = 1_790_000_000; // 2026-09-21T14:13:20Z, 20 s into its epoch
  const W = DEFAULT_WINDOW_SEC;
  const allow4 = parseAddress('192.0.2.7') as Address;
  const allow6 = parseAddress('2001:db8:85a3::8a2e:370:7334') as Address;
  const ssh = ['tcp/22'];
  const sshDoor: Door = { keys: ['alice'], access: ['tcp/22'], allow_nat: true, allow_source: false };
  const emptyGuard: GuardState = { entries: [], watermarks: [] };
  const cases: VectorCase[] = [];

  interface Spec {
    nonce: string;
    time?: number;
    now?: number;
    allow?: Allow;
    access?: string[];
    body?: Uint8Array;
    epoch?: number;
    signer?: ClientSecretKey;
    signature?: Uint8Array;
    mutation?: Mutation;
    guard?: GuardState;
    door?: Door;
    src?: string;
    expect?: string;
    openFor?: string;
  }
  const add = (name: string, comment: string, s: Spec): void => {
    const t = s.time ?? time;
    const allow = s.allow ?? allow4;
    const access = s.access ?? ssh;
    const body = s.body ?? encodeBody({ timeSec: t, allow, access: access.map((a) => parseAccess(a)) });
    const nonce = det(s.nonce, 24);
    const epoch = s.epoch ?? epochOf(t);
    const tag = computeTag(shared.tagKey, epoch);
    const signer = s.signer ?? client;
    let d = s.signature
      ? concat(Uint8Array.of(VERSION), tag, nonce, sealBox(concat(s.signature, body), nonce, shared.boxKey))
      : sealDatagram({ signKey: signer.signKey, boxKey: shared.boxKey, fingerprint: server.fingerprint, tag, nonce, body });
    d = applyMutation(d, s.mutation);
    const expect = s.expect ?? 'ok';
    const c: VectorCase = {
      name,
      comment,
      server_secret: toHex(serverSecret),
      client_secret: toHex(clientSecret),
      signer_secret: toHex(signer === client ? clientSecret : otherSecret),
      tag_epoch: epoch,
      nonce: toHex(nonce),
      time: t,
      now: s.now ?? t,
      window: W,
      body: toHex(body),
      ...(s.body ? {} : { allow: allowText(allow), access: access.map((a) => accessText(parseAccess(a))) }),
      ...(s.signature ? { signature: toHex(s.signature) } : {}),
      ...(s.mutation ? { mutation: s.mutation } : {}),
      guard: s.guard ?? emptyGuard,
      door: s.door ?? sshDoor,
      src: s.src ?? allow4.text,
      datagram: toHex(d),
      expect,
      ...(expect === 'ok' ? { open_for: s.openFor ?? (allow === 'source' ? (s.src ?? allow4.text) : allow.text) } : {}),
    };
    cases.push(c);
  };
  /** A valid body with one byte set to another value (for the §3 rules). */
  const bodyWith = (base: { allow?: Allow; access?: string[] }, edits: [number, number][]): Uint8Array => {
    const b = encodeBody({ timeSec: time, allow: base.allow ?? allow4, access: (base.access ?? ssh).map((a) => parseAccess(a)) });
    for (const [off, v] of edits) b[off] = v;
    return b;
  };

  // ---- accepted ----
  add('ok-ipv4', 'IPv4 allow address, one access entry, checked at the knock time', { nonce: 'n1' });
  add('ok-ipv6-eight', 'IPv6 allow address and the most access entries (8)', {
    nonce: 'n2',
    allow: allow6,
    access: ['tcp/22', 'udp/53', 'tcp/443', 'udp/60001', 'tcp/1', 'tcp/65535', 'udp/123', 'tcp/8443'],
    door: { ...sshDoor, access: ['tcp/1', 'tcp/22', 'udp/53', 'udp/123', 'tcp/443', 'tcp/8443', 'udp/60001', 'tcp/65535'] },
    src: allow6.text,
  });
  add('ok-source', 'address family 0: open for the source address; the door allows it', {
    nonce: 'n3',
    allow: 'source',
    door: { ...sshDoor, allow_nat: false, allow_source: true },
    src: '203.0.113.9',
  });
  add('ok-window-past-edge', 'checked W s after the knock: still fresh (check 8 is >=)', { nonce: 'n4', now: time + W });
  add('ok-window-future-edge', 'checked W s before the knock: still fresh (check 9 is <=)', { nonce: 'n5', now: time - W });
  add('ok-other-client-same-nonce', 'the guard holds the same nonce for another client: it does not count for this one', {
    nonce: 'n6',
    guard: { entries: [{ client: otherA, nonce: toHex(det('n6', 24)), time }], watermarks: [{ client: otherA, time: time + 60 }] },
  });

  // ---- checks 1-4 ----
  add('length-bad-short', 'one byte short', { nonce: 'n10', mutation: { op: 'truncate', length: 184 }, expect: 'length.bad' });
  add('length-bad-long', 'one byte appended', { nonce: 'n11', mutation: { op: 'append', hex: '00' }, expect: 'length.bad' });
  add('version-unknown', 'version byte 0x02 (a one-bit change of the first byte fails check 2)', { nonce: 'n12', mutation: { op: 'xor', offset: 0, hex: '03' }, expect: 'version.unknown' });
  add('tag-unknown', 'a tag of an epoch far outside the window', { nonce: 'n13', epoch: epochOf(time) + 1000, expect: 'tag.unknown' });
  const epochStart = (epochOf(time) + 1) * EPOCH_SEC;
  add('tag-unknown-future-epoch', 'timestamp = now + W + 1 at the first second of an epoch: its epoch is not yet expected (check 3, not 9)', {
    nonce: 'n14',
    time: epochStart,
    now: epochStart - W - 1,
    expect: 'tag.unknown',
  });
  add('tag-unknown-past-epoch', 'timestamp = now - W - 1 at the last second of an epoch: its epoch is no longer expected (check 3, not 8)', {
    nonce: 'n15',
    time: epochStart - 1,
    now: epochStart + W,
    expect: 'tag.unknown',
  });
  add('replay-seen', "the guard holds this client's nonce", {
    nonce: 'n16',
    guard: { entries: [{ client: aliceA, nonce: toHex(det('n16', 24)), time }], watermarks: [] },
    expect: 'replay.seen',
  });

  // ---- checks 5-7 ----
  add('box-bad', 'last ciphertext byte flipped', { nonce: 'n20', mutation: { op: 'xor', offset: 184, hex: '01' }, expect: 'box.bad' });
  add('box-bad-tag-flip', 'a bit of the tag flipped, which names no client (check 3)', { nonce: 'n21', mutation: { op: 'xor', offset: 1, hex: '80' }, expect: 'tag.unknown' });
  const malformed: [string, string, Uint8Array][] = [
    ['family-5', 'address family 5', bodyWith({}, [[BODY_OFF_FAMILY, 5]])],
    ['ipv4-tail', 'family 4 with a non-zero byte after the 4 address bytes', bodyWith({}, [[BODY_OFF_ADDR + 4, 1]])],
    ['ipv4-mapped', 'family 6 carrying ::ffff:192.0.2.7 (must be sent as family 4)', bodyWith({}, [[BODY_OFF_FAMILY, 6], [BODY_OFF_ADDR, 0], [BODY_OFF_ADDR + 1, 0], [BODY_OFF_ADDR + 2, 0], [BODY_OFF_ADDR + 3, 0], [BODY_OFF_ADDR + 10, 0xff], [BODY_OFF_ADDR + 11, 0xff], [BODY_OFF_ADDR + 12, 192], [BODY_OFF_ADDR + 13, 0], [BODY_OFF_ADDR + 14, 2], [BODY_OFF_ADDR + 15, 7]])],
    ['source-with-address', 'family 0 (source) with a non-zero address byte', bodyWith({ allow: 'source' }, [[BODY_OFF_ADDR + 15, 1]])],
    ['ipv4-unspecified', 'allow address 0.0.0.0', bodyWith({}, [[BODY_OFF_ADDR, 0], [BODY_OFF_ADDR + 1, 0], [BODY_OFF_ADDR + 2, 0], [BODY_OFF_ADDR + 3, 0]])],
    ['ipv4-this-network', 'allow address 0.1.2.3 (0.0.0.0/8)', bodyWith({}, [[BODY_OFF_ADDR, 0], [BODY_OFF_ADDR + 1, 1], [BODY_OFF_ADDR + 2, 2], [BODY_OFF_ADDR + 3, 3]])],
    ['ipv4-multicast', 'allow address 224.0.0.1', bodyWith({}, [[BODY_OFF_ADDR, 224], [BODY_OFF_ADDR + 1, 0], [BODY_OFF_ADDR + 2, 0], [BODY_OFF_ADDR + 3, 1]])],
    ['ipv4-broadcast', 'allow address 255.255.255.255', bodyWith({}, [[BODY_OFF_ADDR, 255], [BODY_OFF_ADDR + 1, 255], [BODY_OFF_ADDR + 2, 255], [BODY_OFF_ADDR + 3, 255]])],
    ['ipv6-unspecified', 'allow address ::', bodyWith({ allow: allow6 }, Array.from({ length: 16 }, (_, i) => [BODY_OFF_ADDR + i, 0] as [number, number]))],
    ['ipv6-multicast', 'allow address ff02::1', bodyWith({ allow: allow6 }, Array.from({ length: 16 }, (_, i) => [BODY_OFF_ADDR + i, i === 0 ? 0xff : i === 1 ? 2 : i === 15 ? 1 : 0] as [number, number]))],
    ['count-0', 'access count 0', bodyWith({}, [[BODY_OFF_COUNT, 0], [BODY_OFF_ACCESS, 0], [BODY_OFF_ACCESS + 2, 0]])],
    ['count-9', 'access count 9', bodyWith({}, [[BODY_OFF_COUNT, 9]])],
    ['proto-1', 'protocol 1 (ICMP) in an access entry', bodyWith({}, [[BODY_OFF_ACCESS, 1]])],
    ['port-0', 'port 0 in an access entry', bodyWith({}, [[BODY_OFF_ACCESS + 2, 0]])],
    ['duplicate-access', 'tcp/22 twice', bodyWith({ access: ['tcp/22', 'tcp/23'] }, [[BODY_OFF_ACCESS + 5, 22]])],
    ['unused-slot', 'a non-zero byte in slot n (after the last entry)', bodyWith({}, [[BODY_OFF_ACCESS + 3, 6]])],
    ['padding', 'a non-zero padding byte', bodyWith({}, [[BODY_OFF_PAD + 13, 1]])],
  ];
  malformed.forEach(([n, comment, body], i) => add(`body-malformed-${n}`, `${comment}, inside a valid box and signature`, { nonce: `n3${i}`, body, expect: 'body.malformed' }));
  if (malformed.some(([, , b]) => b.length !== BODY_BYTES)) throw new Error('vectors: a body is not 64 bytes');
  add('tag-epoch', 'body timestamp in the epoch after the one its tag was made for', { nonce: 'n50', time: epochStart, now: time, epoch: epochOf(time), expect: 'tag.epoch' });

  // ---- checks 8-11 ----
  add('time-stale', 'checked W + 1 s after the knock, in an expected epoch', { nonce: 'n60', now: time + W + 1, expect: 'time.stale' });
  add('time-future', 'checked W + 1 s before the knock, in an expected epoch', { nonce: 'n61', now: time - W - 1, expect: 'time.future' });
  add('replay-watermark', "at or below this client's watermark (check 10)", { nonce: 'n62', guard: { entries: [], watermarks: [{ client: aliceA, time }] }, expect: 'replay.seen' });
  add('signature-bad', "boxed and tagged with the right key but signed by another client's Ed25519 key", { nonce: 'n63', signer: other, expect: 'signature.bad' });
  add('signature-small-order-r', 'R = the identity point, S = 0 (what a holder of the server key can box; libsodium refuses it)', {
    nonce: 'n64',
    signature: concat(le32(1n), le32(0n)),
    expect: 'signature.bad',
  });
  add('signature-small-order-r-8', 'R of order 8, S = 0', { nonce: 'n65', signature: concat(le32(Y8), le32(0n)), expect: 'signature.bad' });
  const realSig = (nonceLabel: string): Uint8Array => {
    const body = encodeBody({ timeSec: time, allow: allow4, access: [parseAccess('tcp/22')] });
    const nonce = det(nonceLabel, 24);
    const tag = computeTag(shared.tagKey, epochOf(time));
    const d = sealDatagram({ signKey: client.signKey, boxKey: shared.boxKey, fingerprint: server.fingerprint, tag, nonce, body });
    // The signature is the first 64 plaintext bytes of the box; reopen it to read them.
    const opened = openBox(d.subarray(41), nonce, shared.boxKey);
    if (!opened) throw new Error('vectors: cannot reopen our own box');
    return opened.subarray(0, 64);
  };
  const sig66 = realSig('n66');
  add('signature-s-plus-l', "a valid signature with L added to S (the same point equation; S >= L is refused)", {
    nonce: 'n66',
    signature: concat(sig66.subarray(0, 32), le32(leValue(sig66.subarray(32)) + L)),
    expect: 'signature.bad',
  });
  add('signature-non-canonical-r', 'R encoded as y + p (y = 3, not canonical), S = 1', { nonce: 'n67', signature: concat(le32(P + 3n), le32(1n)), expect: 'signature.bad' });

  // ---- policy (§5.4) ----
  add('policy-door', 'the key is in no door (spa-server never gets here: it makes tags only for keys some door holds)', { nonce: 'n70', door: { ...sshDoor, keys: [] }, expect: 'policy.door' });
  add('policy-access', 'asks for tcp/23, the door allows tcp/22', { nonce: 'n71', access: ['tcp/23'], expect: 'policy.access' });
  add('policy-address', 'signed 192.0.2.7, arrives from 198.51.100.1, the door does not allow NAT', { nonce: 'n72', src: '198.51.100.1', door: { ...sshDoor, allow_nat: false }, expect: 'policy.address' });
  add('ok-nat', 'signed 192.0.2.7, arrives from 198.51.100.1, the door allows NAT: opens for the signed address', { nonce: 'n73', src: '198.51.100.1' });
  add('policy-source', 'asks for its source address; the door does not allow that', { nonce: 'n74', allow: 'source', src: '203.0.113.9', expect: 'policy.source' });

  // ---- key strings (§1.2) ----
  const clientPub = encodeKey('client-public', concat(client.signPublic, client.boxPublic));
  const serverPub = encodeKey('server-public', server.boxPublic);
  const lastBitsOff = (s: string): string => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    return s.slice(0, -1) + alphabet[alphabet.indexOf(s.at(-1)!) ^ 1];
  };
  const clientSec = encodeKey('client-secret', clientSecret);
  const key_cases: KeyCase[] = [
    { name: 'client-public-ok', comment: "alice's public key", type: 'client-public', text: clientPub, expect: 'ok' },
    { name: 'server-public-ok', comment: "the server's public key", type: 'server-public', text: serverPub, expect: 'ok' },
    { name: 'not-a-key', comment: 'an OpenSSH key where a spa key belongs', type: 'client-public', text: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB', expect: 'key.prefix' },
    { name: 'wrong-type', comment: 'a server public key where a client public key belongs', type: 'client-public', text: serverPub, expect: 'key.type' },
    { name: 'secret-for-public', comment: 'a client secret key where a client public key belongs', type: 'client-public', text: clientSec, expect: 'key.type' },
    { name: 'prefix-swapped', comment: "a server secret key's text with its prefix edited to server-pub (same length): the checksum covers the prefix", type: 'server-public', text: `spa1-server-pub:${encodeKey('server-secret', serverSecret).slice('spa1-server-secret:'.length)}`, expect: 'key.checksum' },
    { name: 'wrong-length', comment: "a client public key's payload under the server-pub prefix", type: 'server-public', text: `spa1-server-pub:${clientPub.slice('spa1-client-pub:'.length)}`, expect: 'key.length' },
    { name: 'bad-character', comment: "'+' is base64, not base64url", type: 'server-public', text: serverPub.slice(0, -2) + '+' + serverPub.slice(-1), expect: 'key.base64' },
    { name: 'padded', comment: 'base64 padding is not allowed', type: 'client-secret', text: `${clientSec}=`, expect: 'key.base64' },
    { name: 'non-canonical', comment: "the last character's unused bits set (decodes to the same bytes)", type: 'client-secret', text: lastBitsOff(clientSec), expect: 'key.base64' },
    { name: 'truncated', comment: 'one character short', type: 'server-public', text: serverPub.slice(0, -1), expect: 'key.length' },
    { name: 'checksum', comment: 'one payload bit changed', type: 'server-public', text: encodeKey('server-public', server.boxPublic).replace(/^(spa1-server-pub:)(.)/, (_, p: string, c: string) => p + (c === 'A' ? 'B' : 'A')), expect: 'key.checksum' },
    ...[
      ['identity', 1n],
      ['order-2', P - 1n],
      ['order-4', 0n],
      ['order-8', Y8],
      ['order-8-neg', P - Y8],
      ['order-8-sign-bit', Y8 | (1n << 255n)],
    ].map(([n, y]) => ({
      name: `ed25519-small-order-${n as string}`,
      comment: `client key whose Ed25519 half is a small-order point (${n as string})`,
      type: 'client-public' as const,
      text: encodeKey('client-public', concat(le32(y as bigint), client.boxPublic)),
      expect: 'key.point' as const,
    })),
    { name: 'ed25519-non-canonical', comment: 'Ed25519 half encodes y = p + 3', type: 'client-public', text: encodeKey('client-public', concat(le32(P + 3n), client.boxPublic)), expect: 'key.point' },
    { name: 'ed25519-not-on-curve', comment: 'Ed25519 half y = 2: canonical, but no x makes it a point of the curve', type: 'client-public', text: encodeKey('client-public', concat(le32(2n), client.boxPublic)), expect: 'key.point' },
    { name: 'superfluous-character', comment: 'one character more than the 48 of 36 bytes: decodes to the same bytes', type: 'server-public', text: `${serverPub}A`, expect: 'key.base64' },
    { name: 'x25519-client-low-order', comment: "client key whose X25519 half is a point of order 8", type: 'client-public', text: encodeKey('client-public', concat(client.signPublic, le32(U8))), expect: 'key.point' },
    { name: 'x25519-client-zero', comment: 'client key whose X25519 half is 0', type: 'client-public', text: encodeKey('client-public', concat(client.signPublic, le32(0n))), expect: 'key.point' },
    { name: 'x25519-server-low-order', comment: 'server public key u = 1', type: 'server-public', text: encodeKey('server-public', le32(1n)), expect: 'key.point' },
    { name: 'x25519-server-non-canonical', comment: 'server public key u = p + 9 (9 reduced mod p is the base point)', type: 'server-public', text: encodeKey('server-public', le32(P + 9n)), expect: 'key.point' },
  ];

  // ---- authorized-keys files (§1.3) ----
  const shadowPub = encodeKey('client-public', concat(other.signPublic, client.boxPublic));
  const otherPub = encodeKey('client-public', concat(other.signPublic, other.boxPublic));
  const keys_file_cases: KeysFileCase[] = [
    { name: 'two-clients', comment: 'two clients, a comment and a blank line', text: `# door ssh\n${clientPub} alice\n\n${otherPub} bob\n`, refused: [] },
    {
      name: 'shared-x25519-half',
      comment: "an entry pasted from bob's Ed25519 and alice's X25519 key: refused, naming alice's line",
      text: `${clientPub} alice\n${shadowPub} mallory\n`,
      refused: [{ line: 2, reason: 'shared-half' }],
    },
    { name: 'same-key-two-ids', comment: 'one key under two ids', text: `${clientPub} alice\n${clientPub} alice2\n`, refused: [{ line: 2, reason: 'shared-half' }] },
    { name: 'duplicate-id', comment: 'one id for two keys', text: `${clientPub} alice\n${otherPub} alice\n`, refused: [{ line: 2, reason: 'duplicate-id' }] },
    { name: 'same-line-twice', comment: 'the same key and id twice in one file: the id repeats', text: `${clientPub} alice\n${clientPub} alice\n`, refused: [{ line: 2, reason: 'duplicate-id' }] },
    {
      name: 'refused-line-not-counted',
      comment: "line 2 (bob's Ed25519 + alice's X25519) is refused; line 3 shares bob's Ed25519 half only with that refused line, so it is accepted",
      text: `${clientPub} alice\n${shadowPub} mallory\n${encodeKey('client-public', concat(other.signPublic, third.boxPublic))} eve\n`,
      refused: [{ line: 2, reason: 'shared-half' }],
    },
    { name: 'crlf-and-indent', comment: 'CRLF line ends, leading whitespace, an indented comment', text: `  # keys\r\n\t${clientPub}   alice \r\n`, refused: [] },
    { name: 'comment-after-id', comment: 'nothing may follow the id, not even a comment', text: `${clientPub} alice # laptop\n`, refused: [{ line: 1, reason: 'fields' }] },
    { name: 'bad-id', comment: 'an id must start with a letter or digit', text: `${clientPub} -alice\n`, refused: [{ line: 1, reason: 'id' }] },
    { name: 'three-fields', comment: 'nothing may follow the id', text: `${clientPub} alice extra\n`, refused: [{ line: 1, reason: 'fields' }] },
    { name: 'small-order-key', comment: 'a small-order Ed25519 half', text: `${encodeKey('client-public', concat(le32(1n), other.boxPublic))} mallory\n`, refused: [{ line: 1, reason: 'key.point' }] },
  ];

  return {
    protocol: 'spa v1',
    revision: '0.2.0',
    description: 'Generated by test/vectors/generate.ts from SHA-256 of fixed labels; docs/PROTOCOL.md §8 explains each field.',
    keys: {
      server_public: serverPub,
      client_public: clientPub,
      client_id: 'alice',
      fingerprint: toHex(server.fingerprint),
      box_key: toHex(shared.boxKey),
      tag_key: toHex(shared.tagKey),
    },
    cases,
    key_cases,
    keys_file_cases,
  };
}
