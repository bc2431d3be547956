// Protocol v1 properties: round trips, bit flips, unlinkability, what never appears in clear.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { addressFromBytes, neverAClient, parseAddress, type Address } from '../../src/net/address.js';
import type { Access } from '../../src/net/access.js';
import { DATAGRAM_BYTES, DEFAULT_WINDOW_SEC, EPOCH_SEC, MAX_ACCESS } from '../../src/protocol/constants.js';
import { encodeKnock, verifyDatagram, type VerifyContext } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, serverPublicKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { det } from '../vectors/generate.js';

const server = serverSecretKey(det('p-server', 32));
const client = clientSecretKey(det('p-client', 64));
const T = 1_800_000_030;

function context(nowSec: number, clients = [authorizeClient(server, 'alice', client)!]): VerifyContext {
  const tags = new TagTable(DEFAULT_WINDOW_SEC);
  tags.setClients(clients, nowSec);
  return { server, tags, replay: new ReplayGuard(DEFAULT_WINDOW_SEC, 10_000), windowSec: DEFAULT_WINDOW_SEC };
}

let counter = 0;
const knock = (o: Partial<{ allow: Address; access: Access[]; timeSec: number; nonce: Uint8Array }> = {}): Uint8Array =>
  encodeKnock({
    client,
    server: serverPublicKey(server.boxPublic),
    allow: o.allow ?? (parseAddress('198.51.100.23') as Address),
    access: o.access ?? [{ proto: 'tcp', port: 8022 }],
    timeSec: o.timeSec ?? T,
    nonce: o.nonce ?? det(`nonce ${counter++}`, 24),
  });

const arbAddress = fc
  .oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }))
  .map((b) => addressFromBytes(b))
  .filter((a) => neverAClient(a) === undefined);
const arbAllow = fc.oneof(arbAddress, fc.constant('source' as const));
const arbAccess = fc.uniqueArray(fc.record({ proto: fc.constantFrom('tcp' as const, 'udp' as const), port: fc.integer({ min: 1, max: 65535 }) }), {
  minLength: 1,
  maxLength: MAX_ACCESS,
  selector: (a) => `${a.proto}/${a.port}`,
});

describe('encode / verify', () => {
  it('round-trips any address, access list, time and nonce', () => {
    fc.assert(
      fc.property(arbAllow, arbAccess, fc.integer({ min: 0, max: 2 ** 40 }).map((t) => t + 200), fc.uint8Array({ minLength: 24, maxLength: 24 }), fc.integer({ min: -120, max: 120 }), (allow, access, timeSec, nonce, skew) => {
        const d = encodeKnock({ client, server, allow, access, timeSec, nonce });
        expect(d.length).toBe(DATAGRAM_BYTES);
        const r = verifyDatagram(context(timeSec + skew), d, timeSec + skew);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.allow).toEqual(allow);
        expect(r.access).toEqual(access);
        expect(r.timeSec).toBe(timeSec);
      }),
      { numRuns: 60 },
    );
  });

  it('stays within 512 bytes of UDP payload with IPv6 and 8 access entries (P1)', () => {
    const access = Array.from({ length: 8 }, (_, i) => ({ proto: 'udp' as const, port: 60000 + i }));
    expect(knock({ allow: parseAddress('2001:db8::1') as Address, access }).length).toBeLessThanOrEqual(512);
  });

  it('rejects every truncation, every 1-bit flip and an appended byte, without throwing', () => {
    const d = knock();
    const ctx = context(T);
    expect(verifyDatagram(ctx, d, T).ok).toBe(true);
    for (let n = 0; n < d.length; n++) expect(verifyDatagram(ctx, d.subarray(0, n), T)).toMatchObject({ ok: false, reason: 'length.bad' });
    expect(verifyDatagram(ctx, Uint8Array.from([...d, 0]), T)).toMatchObject({ ok: false, reason: 'length.bad' });
    const reasons = new Set<string>();
    for (let i = 0; i < d.length * 8; i++) {
      const f = Uint8Array.from(d);
      f[i >> 3] = (f[i >> 3] ?? 0) ^ (1 << (i & 7));
      const r = verifyDatagram(ctx, f, T);
      expect(r.ok, `bit ${i}`).toBe(false);
      if (!r.ok) reasons.add(r.reason);
    }
    expect([...reasons].sort()).toEqual(['box.bad', 'tag.unknown', 'version.unknown']);
  });

  it('never throws on random datagrams of any length', () => {
    const ctx = context(T);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (d) => {
        expect(verifyDatagram(ctx, d, T).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects a knock made for another server (P5) without any signature check', () => {
    const other = serverSecretKey(det('p-other-server', 32));
    const d = encodeKnock({ client, server: other, allow: parseAddress('192.0.2.1') as Address, access: [{ proto: 'tcp', port: 22 }], timeSec: T, nonce: det('x', 24) });
    expect(verifyDatagram(context(T), d, T)).toMatchObject({ ok: false, reason: 'tag.unknown' });
  });

  it('names a key only through its tag: another key with the same id is unknown', () => {
    const stranger = clientSecretKey(det('p-stranger', 64));
    const d = encodeKnock({ client: stranger, server, allow: parseAddress('192.0.2.1') as Address, access: [{ proto: 'tcp', port: 22 }], timeSec: T, nonce: det('y', 24) });
    expect(verifyDatagram(context(T), d, T)).toMatchObject({ ok: false, reason: 'tag.unknown' });
  });

  it('finds the right client among many (tag lookup, no trial decryption)', () => {
    const clients = Array.from({ length: 50 }, (_, i) => authorizeClient(server, `c${i}`, clientSecretKey(det(`many ${i}`, 64)))!);
    const ctx = context(T, [...clients, authorizeClient(server, 'alice', client)!]);
    const r = verifyDatagram(ctx, knock(), T);
    expect(r.ok && r.client.id).toBe('alice');
  });
});

describe('confidentiality and unlinkability (P2, P8)', () => {
  const sameInputs = (nonceLabel: string, timeSec = T): Uint8Array => knock({ timeSec, nonce: det(nonceLabel, 24) });
  const samePositions = (a: Uint8Array, b: Uint8Array, from: number): number => {
    let n = 0;
    for (let i = from; i < a.length; i++) if (a[i] === b[i]) n++;
    return n;
  };

  it('carries neither the id, the ports nor the allow address in clear', () => {
    const allow = parseAddress('198.51.100.23') as Address;
    for (let i = 0; i < 50; i++) {
      const d = Buffer.from(knock({ allow, access: [{ proto: 'tcp', port: 8022 }, { proto: 'udp', port: 5353 }] }));
      expect(d.includes(Buffer.from('alice'))).toBe(false);
      expect(d.includes(Buffer.from(allow.bytes))).toBe(false);
      expect(d.includes(Buffer.from([6, 0x1f, 0x56]))).toBe(false); // tcp/8022 as on the wire
      expect(d.includes(Buffer.from([17, 0x14, 0xe9]))).toBe(false); // udp/5353
    }
  });

  it('two knocks with the same inputs in one epoch share only the version and the tag, plus chance', () => {
    const a = sameInputs('u1');
    const b = sameInputs('u2');
    expect(a.subarray(0, 17)).toEqual(b.subarray(0, 17));
    // 168 positions, each equal with probability 1/256: mean 0.66; 8 or more is a 1e-6 event.
    expect(samePositions(a, b, 17)).toBeLessThan(8);
  });

  it('two knocks in different epochs share only the version byte, plus chance', () => {
    const a = sameInputs('u3', T);
    const b = sameInputs('u4', T + EPOCH_SEC);
    expect(samePositions(a, b, 1)).toBeLessThan(8);
  });
});

describe('TagTable', () => {
  it('keeps the epochs of the window and the next one, and drops those that left', () => {
    const tags = new TagTable(120);
    tags.setClients([authorizeClient(server, 'alice', client)!], T);
    const per = tags.size;
    expect(per).toBeGreaterThanOrEqual(5);
    expect(per).toBeLessThanOrEqual(6);
    const d = knock({ timeSec: T });
    expect(tags.lookup(d, 1, T)).toBeDefined();
    tags.refresh(T + 600);
    expect(tags.lookup(d, 1, T + 600)).toBeUndefined();
    expect(tags.size).toBeLessThanOrEqual(6);
  });

  it('answers for exactly the epochs of the window at the lookup time, however late the refresh', () => {
    const tags = new TagTable(120);
    tags.setClients([authorizeClient(server, 'alice', client)!], T);
    // A knock timestamped in the epoch after now + W: not expected yet, though the table
    // already holds that epoch (its look-ahead).
    const ahead = (Math.floor((T + 120) / EPOCH_SEC) + 1) * EPOCH_SEC;
    const d = knock({ timeSec: ahead });
    expect(tags.lookup(d, 1, T)).toBeUndefined();
    expect(tags.lookup(d, 1, ahead - 120)).toBeDefined();
    // Far in the future with no refresh in between: the lookup brings the table up to date.
    const late = T + 3600;
    expect(tags.lookup(knock({ timeSec: late + 120 }), 1, late)).toBeDefined();
  });
});
