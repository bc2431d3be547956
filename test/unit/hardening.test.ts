// The defects of issue 11 (protocol hardening), each as a test that failed on 0.1.0:
// small-order keys, key confusion between entries, a replay guard shared by all clients,
// and tag epochs that lagged the clock at minute boundaries.
import { describe, expect, it } from 'vitest';
import { verify as opensslVerify } from 'node:crypto';
import { concat } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { encodeBody } from '../../src/protocol/body.js';
import { DEFAULT_WINDOW_SEC, EPOCH_SEC, NONCE_BYTES, VERSION } from '../../src/protocol/constants.js';
import { encodeKnock, verifyDatagram, type VerifyContext } from '../../src/protocol/datagram.js';
import {
  AuthorizedClient,
  authorizeClient,
  clientKeyProblem,
  clientSecretKey,
  serverKeyProblem,
  serverSecretKey,
  serverSharedKeys,
  type ClientPublicKey,
} from '../../src/protocol/keys.js';
import { ed25519PointProblem, signatureShapeOk, x25519PointProblem } from '../../src/protocol/points.js';
import { ascii, ed25519PublicKey, sealBox } from '../../src/protocol/primitives.js';
import { nonceKeyOf, ReplayGuard } from '../../src/protocol/replay.js';
import { computeTag, epochOf, TagTable } from '../../src/protocol/tag.js';
import { encodeKey, parseKey } from '../../keys/format.js';
import { parseAuthorizedKeys, sharedHalves } from '../../keys/authorized.js';
import { det, le32 } from '../vectors/generate.js';

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function powMod(b: bigint, e: bigint): bigint {
  let r = 1n;
  for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
  return r;
}
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
/** Every encoding of a small-order edwards25519 point, canonical ones with both signs. */
const SMALL_ORDER_A = [0n, 1n, P - 1n, Y8, P - Y8].flatMap((y) => [le32(y), le32(y | (1n << 255n))]);
const LOW_ORDER_U = [
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
].map(le32);

const server = serverSecretKey(det('h-server', 32));
const alice = clientSecretKey(det('h-alice', 64));
const bob = clientSecretKey(det('h-bob', 64));
const mallory = clientSecretKey(det('h-mallory', 64));
const T = 1_800_000_030;
const ALLOW = parseAddress('198.51.100.7') as Address;

function contextOf(clients: AuthorizedClient[], nowSec = T, replay = new ReplayGuard(DEFAULT_WINDOW_SEC)): VerifyContext {
  const tags = new TagTable(DEFAULT_WINDOW_SEC);
  tags.setClients(clients, nowSec);
  return { server, tags, replay, windowSec: DEFAULT_WINDOW_SEC };
}

const knockOf = (client = alice, o: { timeSec?: number; nonce?: Uint8Array } = {}): Uint8Array =>
  encodeKnock({ client, server, allow: ALLOW, access: [{ proto: 'tcp', port: 22 }], timeSec: o.timeSec ?? T, nonce: o.nonce ?? det(`h-nonce ${Math.random()}`, 24) });

describe('1. small-order Ed25519 keys', () => {
  it('OpenSSL alone accepts an all-zero-S signature under every small-order key (why we check)', () => {
    // For each small-order A, some small-order R and message make R = [0]B - [k]A hold.
    const spki = (a: Uint8Array) => ed25519PublicKey(a);
    for (const a of SMALL_ORDER_A.filter((_, i) => i % 2 === 0)) {
      let forged = false;
      for (let m = 0; m < 64 && !forged; m++) {
        for (const r of SMALL_ORDER_A) {
          if (opensslVerify(null, ascii(`m${m}`), spki(a), concat(r, new Uint8Array(32)))) {
            forged = true;
            // ... which our verification refuses: R is of small order.
            expect(signatureShapeOk(concat(r, new Uint8Array(32)))).toBe(false);
            break;
          }
        }
      }
      expect(forged).toBe(true);
    }
  });

  it('refuses every small-order and every non-canonical Ed25519 key where a client key is read', () => {
    for (const a of SMALL_ORDER_A) {
      expect(ed25519PointProblem(a)).toBe('small order');
      const key: ClientPublicKey = { signPublic: a, boxPublic: mallory.boxPublic };
      expect(clientKeyProblem(key)).toMatch(/small-order/);
      expect(authorizeClient(server, 'mallory', key)).toBeUndefined();
      expect(() => parseKey(encodeKey('client-public', concat(a, mallory.boxPublic)), 'client-public')).toThrow(/refused: its Ed25519 key is a small-order point/);
    }
    for (const y of [P, P + 1n, P + 2n, (1n << 255n) - 1n]) {
      expect(ed25519PointProblem(le32(y))).toBe('not canonical');
      expect(() => parseKey(encodeKey('client-public', concat(le32(y), mallory.boxPublic)), 'client-public')).toThrow(/not canonically encoded/);
    }
    expect(ed25519PointProblem(alice.signPublic)).toBeUndefined();
    // y = 2 is canonical and not of small order, but not on the curve.
    expect(ed25519PointProblem(le32(2n))).toBe('not on the curve');
    // ... and every real key is (the check refuses no key a generator makes).
    for (let i = 0; i < 300; i++) expect(ed25519PointProblem(clientSecretKey(det(`h-many ${i}`, 64)).signPublic)).toBeUndefined();
  });

  it('decides "on the curve" as RFC 8032 §5.1.3 does, for random y (about half of them are)', () => {
    // The textbook form: x^2 = u / v, with the inverse and Euler's criterion by square-and-multiply.
    const D = (-121665n * powMod(121666n, P - 2n)) % P;
    const onCurve = (y: bigint): boolean => {
      const y2 = (y * y) % P;
      const x2 = (((y2 - 1n + P) % P) * powMod((((D + P) % P) * y2 + 1n) % P, P - 2n)) % P;
      return x2 === 0n || powMod(x2, (P - 1n) / 2n) === 1n;
    };
    let on = 0;
    for (let i = 0; i < 400; i++) {
      const b = det(`y ${i}`, 32);
      b[31]! &= 0x7f;
      const y = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
      if (y >= P) continue;
      const want = onCurve(y);
      on += want ? 1 : 0;
      expect(ed25519PointProblem(b) !== 'not on the curve', `y = ${y}`).toBe(want);
    }
    expect(on).toBeGreaterThan(150);
    expect(on).toBeLessThan(250);
  });

  it('a knock forged with only the server secret (R = identity, S = 0) is refused even if such a key were loaded', () => {
    const a = le32(1n); // the identity
    const key: ClientPublicKey = { signPublic: a, boxPublic: mallory.boxPublic };
    const shared = serverSharedKeys(server, key)!; // what the thief of s_srv can compute
    const forgedClient = new AuthorizedClient('mallory', a, shared.boxKey, shared.tagKey);
    const nonce = det('forged', 24);
    const tag = computeTag(shared.tagKey, epochOf(T));
    const body = encodeBody({ timeSec: T, allow: ALLOW, access: [{ proto: 'tcp', port: 22 }] });
    const signature = concat(le32(1n), new Uint8Array(32));
    const d = concat(Uint8Array.of(VERSION), tag, nonce, sealBox(concat(signature, body), nonce, shared.boxKey));
    expect(verifyDatagram(contextOf([forgedClient]), d, T)).toMatchObject({ ok: false, reason: 'signature.bad' });
  });

  it('refuses S >= L and a non-canonical or small-order R before the curve equation', () => {
    const good = concat(le32(Y8 + 5n), le32(L - 1n));
    expect(signatureShapeOk(good)).toBe(true);
    expect(signatureShapeOk(concat(le32(Y8 + 5n), le32(L)))).toBe(false);
    expect(signatureShapeOk(concat(le32(Y8 + 5n), le32(L + 7n)))).toBe(false);
    expect(signatureShapeOk(concat(le32(P + 3n), le32(5n)))).toBe(false);
    expect(signatureShapeOk(concat(le32(P - Y8), le32(5n)))).toBe(false);
  });

  it('refuses low-order and non-canonical X25519 keys, of clients and of servers', () => {
    for (const u of LOW_ORDER_U) {
      expect(x25519PointProblem(u)).toBe('low order');
      expect(serverKeyProblem(u)).toMatch(/low-order/);
      expect(() => parseKey(encodeKey('server-public', u), 'server-public')).toThrow(/refused: its X25519 key is a low-order point/);
      expect(() => parseKey(encodeKey('client-public', concat(alice.signPublic, u)), 'client-public')).toThrow(/X25519 key is a low-order point/);
    }
    for (const u of [P, P + 1n, (1n << 255n) | 9n]) expect(x25519PointProblem(le32(u))).toBe('not canonical');
    expect(x25519PointProblem(server.boxPublic)).toBeUndefined();
  });
});

describe('2. one authorized entry cannot shadow another', () => {
  const aliceKey: ClientPublicKey = { signPublic: alice.signPublic, boxPublic: alice.boxPublic };
  const shadow: ClientPublicKey = { signPublic: mallory.signPublic, boxPublic: alice.boxPublic };

  it("an entry of mallory's Ed25519 and alice's X25519 key, placed first, has tags of its own", () => {
    const ctx = contextOf([authorizeClient(server, 'mallory', shadow)!, authorizeClient(server, 'alice', aliceKey)!]);
    const r = verifyDatagram(ctx, knockOf(alice), T);
    expect(r.ok && r.client.id).toBe('alice');
  });

  it('a keys file (and all doors together) with two entries sharing a half is refused, naming both lines', () => {
    const line = (k: ClientPublicKey, id: string): string => `${encodeKey('client-public', concat(k.signPublic, k.boxPublic))} ${id}`;
    const text = [line(aliceKey, 'alice'), '# pasted from mallory', line(shadow, 'mallory')].join('\n');
    const r = parseAuthorizedKeys(text, '/etc/spa/ssh.keys');
    expect(r.problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      '/etc/spa/ssh.keys:3: key "mallory" shares its X25519 half with key "alice" (line 1); every key must be a client\'s own pair',
    ]);
    expect(r.entries.map((e) => e.id)).toEqual(['alice']);
    const across = sharedHalves([
      { file: '/etc/spa/a.keys', entry: { id: 'alice', key: aliceKey, line: 4 } },
      { file: '/etc/spa/b.keys', entry: { id: 'alice', key: aliceKey, line: 9 } },
      { file: '/etc/spa/b.keys', entry: { id: 'eve', key: { signPublic: alice.signPublic, boxPublic: mallory.boxPublic }, line: 10 } },
    ]);
    expect(across.map((p) => `${p.file}:${p.line}`)).toEqual(['/etc/spa/b.keys:10']);
    expect(across[0]?.message).toContain('/etc/spa/a.keys:4');
  });
});

describe('3. the replay guard is per client', () => {
  const clients = (): AuthorizedClient[] => [authorizeClient(server, 'alice', alice)!, authorizeClient(server, 'bob', bob)!];

  it("bob spending alice's nonce first does not void alice's knock", () => {
    const [a, b] = clients();
    const ctx = contextOf([a!, b!]);
    const nonce = det('shared nonce', 24);
    const hers = knockOf(alice, { nonce });
    const his = knockOf(bob, { nonce });
    const vb = verifyDatagram(ctx, his, T);
    expect(vb.ok).toBe(true);
    if (vb.ok) ctx.replay.add(vb.client.guardKey, vb.nonceKey, vb.timeSec);
    const va = verifyDatagram(ctx, hers, T);
    expect(va).toMatchObject({ ok: true });
    if (va.ok) ctx.replay.add(va.client.guardKey, va.nonceKey, va.timeSec);
    expect(verifyDatagram(ctx, hers, T)).toMatchObject({ ok: false, reason: 'replay.seen', id: 'alice' });
  });

  it("a client filling its guard raises only its own watermark", () => {
    const [a, b] = clients();
    const replay = new ReplayGuard(DEFAULT_WINDOW_SEC, 16, 1024);
    const ctx = contextOf([a!, b!], T, replay);
    for (let i = 0; i < 40; i++) replay.add(b!.guardKey, nonceKeyOf(det(`bob ${i}`, 24), 0, NONCE_BYTES), T + 60);
    expect(replay.watermark(b!.guardKey)).toBe(T + 60);
    expect(replay.watermark(a!.guardKey)).toBe(-Infinity);
    expect(verifyDatagram(ctx, knockOf(alice, { timeSec: T - 30 }), T)).toMatchObject({ ok: true });
    expect(verifyDatagram(ctx, knockOf(bob, { timeSec: T - 30 }), T)).toMatchObject({ ok: false, reason: 'replay.seen' });
  });

  it('at the total capacity the client holding the most entries gives way, oldest first', () => {
    const g = new ReplayGuard(DEFAULT_WINDOW_SEC, 100, 20);
    for (let i = 0; i < 5; i++) g.add('alice', `a${i}`, T + i);
    for (let i = 0; i < 30; i++) g.add('bob', `b${i}`, T + 10 + i);
    expect(g.size).toBe(20);
    for (let i = 0; i < 5; i++) expect(g.hasNonce('alice', `a${i}`)).toBe(true);
    expect(g.watermark('alice')).toBe(-Infinity);
    expect(g.entries().filter((e) => e.client === 'bob').map((e) => e.nonceKey)).toEqual(Array.from({ length: 15 }, (_, i) => `b${i + 15}`));
    expect(g.watermark('bob')).toBe(T + 10 + 14);
  });
});

describe('4. tag epochs follow the clock exactly', () => {
  /** The reason §5 gives for a fresh, valid knock timestamped ts, checked at now. */
  function specReason(ts: number, now: number): string {
    const W = DEFAULT_WINDOW_SEC;
    if (epochOf(ts) < epochOf(now - W) || epochOf(ts) > epochOf(now + W)) return 'tag.unknown';
    if (ts < now - W) return 'time.stale';
    if (ts > now + W) return 'time.future';
    return 'ok';
  }

  it('walks every second of two minutes with the daemon refreshing every 5 s', () => {
    const c = authorizeClient(server, 'alice', alice)!;
    const start = 1_800_000_000 - 3; // crosses two minute boundaries
    const ctx = contextOf([c], start);
    const W = DEFAULT_WINDOW_SEC;
    const differences: string[] = [];
    for (let now = start; now < start + 2 * EPOCH_SEC + 6; now++) {
      if (now % 5 === 0) ctx.tags.refresh(now);
      for (const ts of [now - W - 1, now - W, now, now + W, now + W + 1, now + W + 60]) {
        const r = verifyDatagram(ctx, knockOf(alice, { timeSec: ts }), now);
        const got = r.ok ? 'ok' : r.reason;
        if (got !== specReason(ts, now)) differences.push(`now ${now} ts ${ts - now}: ${got}, spec ${specReason(ts, now)}`);
      }
    }
    expect(differences).toEqual([]);
  });
});

describe('key strings', () => {
  it('accept only the canonical base64url spelling', () => {
    const text = encodeKey('server-public', server.boxPublic);
    expect(parseKey(text, 'server-public')).toEqual(server.boxPublic);
    // 36 bytes = 48 characters, no unused bits; a 64-byte client secret + 4 = 68 bytes has 2.
    const cs = encodeKey('client-secret', det('h-alice', 64));
    const last = cs.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const i = alphabet.indexOf(last);
    for (let low = 1; low < 4; low++) {
      const other = cs.slice(0, -1) + alphabet[(i & ~3) | ((i & 3) ^ low)];
      expect(Buffer.from(other.slice(cs.indexOf(':') + 1), 'base64url')).toEqual(Buffer.from(cs.slice(cs.indexOf(':') + 1), 'base64url'));
      expect(() => parseKey(other, 'client-secret')).toThrow(/not canonical base64url/);
    }
  });
});
