// The daemon's pure parts: the SPA decision, door choice, the grant table, log rate limits.
import { describe, expect, it } from 'vitest';
import { parseAddress, type Address } from '../../src/net/address.js';
import { DEFAULT_WINDOW_SEC } from '../../src/protocol/constants.js';
import { encodeKnock } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, serverPublicKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { decideSpa, type SpaContext } from '../../server/core/spa.js';
import { det } from '../vectors/generate.js';
import { chooseDoor, type SpaDoorPolicy } from '../../server/core/policy.js';
import { GrantTable, grantKey, openingOf } from '../../server/core/grants.js';
import { RateLimiter } from '../../server/core/rate-limit.js';

const a = (s: string): Address => parseAddress(s) as Address;
const ssh: SpaDoorPolicy = { name: 'ssh', keyIds: new Set(['alice', 'bob']), access: [{ proto: 'tcp', port: 22 }], allowNat: false, allowSource: false, cmdTimeoutSec: 10 };
const web: SpaDoorPolicy = { name: 'web', keyIds: new Set(['bob']), access: [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22 }], allowNat: true, allowSource: false, cmdTimeoutSec: 30 };

describe('chooseDoor', () => {
  const src = a('192.0.2.1');
  it('takes the first door that holds the key and covers the access', () => {
    expect(chooseDoor([ssh, web], 'bob', [{ proto: 'tcp', port: 22 }], src, src)).toMatchObject({ ok: true, door: { name: 'ssh' } });
    expect(chooseDoor([ssh, web], 'bob', [{ proto: 'tcp', port: 443 }], src, src)).toMatchObject({ ok: true, door: { name: 'web' } });
  });
  it('needs every access item inside one door', () => {
    expect(chooseDoor([ssh, web], 'alice', [{ proto: 'tcp', port: 22 }, { proto: 'tcp', port: 443 }], src, src)).toEqual({ ok: false, reason: 'policy.access' });
    expect(chooseDoor([ssh], 'alice', [{ proto: 'udp', port: 22 }], src, src)).toEqual({ ok: false, reason: 'policy.access' });
  });
  it('refuses a key in no door', () => {
    expect(chooseDoor([ssh, web], 'carol', [{ proto: 'tcp', port: 22 }], src, src)).toEqual({ ok: false, reason: 'policy.door' });
  });
  it('refuses another allow address unless the door allows NAT', () => {
    expect(chooseDoor([ssh], 'alice', [{ proto: 'tcp', port: 22 }], a('198.51.100.7'), src)).toEqual({ ok: false, reason: 'policy.address' });
    expect(chooseDoor([ssh, web], 'bob', [{ proto: 'tcp', port: 22 }], a('198.51.100.7'), src)).toMatchObject({ ok: true, door: { name: 'web' } });
  });
  it('compares addresses canonically (IPv6 spelling, mapped IPv4)', () => {
    expect(chooseDoor([ssh], 'alice', [{ proto: 'tcp', port: 22 }], a('2001:db8::1'), a('2001:DB8:0::1'))).toMatchObject({ ok: true });
    expect(chooseDoor([ssh], 'alice', [{ proto: 'tcp', port: 22 }], a('::ffff:192.0.2.1'), src)).toMatchObject({ ok: true });
  });
});

describe('decideSpa', () => {
  const server = serverSecretKey(det('spa-server', 32));
  const alice = clientSecretKey(det('spa-alice', 64));
  const T = 1_800_000_030;
  const ctx = (over: Partial<SpaContext> = {}): SpaContext => {
    const tags = new TagTable(DEFAULT_WINDOW_SEC);
    tags.setClients([authorizeClient(server, 'alice', alice)!], T);
    return { server, tags, replay: new ReplayGuard(DEFAULT_WINDOW_SEC, 10_000), windowSec: DEFAULT_WINDOW_SEC, doors: [ssh, web], ...over };
  };
  const knock = (access = [{ proto: 'tcp' as const, port: 22 }], allow = '192.0.2.1'): Uint8Array =>
    encodeKnock({ client: alice, server: serverPublicKey(server.boxPublic), allow: a(allow), access, timeSec: T, nonce: det(`n ${allow} ${access.length}`, 24) });

  it("accepts into the chosen door until its own cmd_timeout, and says what the replay guard must hold", () => {
    const d = decideSpa(ctx(), knock(), a('192.0.2.1'), T * 1000 + 250);
    expect(d).toMatchObject({ ok: true, door: { name: 'ssh' }, id: 'alice', addr: { text: '192.0.2.1' }, untilMs: T * 1000 + 250 + 10_000, replay: { timeSec: T } });
    const longer = decideSpa(ctx({ doors: [{ ...ssh, cmdTimeoutSec: 600 }] }), knock(), a('192.0.2.1'), T * 1000);
    expect(longer).toMatchObject({ ok: true, untilMs: T * 1000 + 600_000 });
  });
  it('rejects with the reason and, once the key is known, its id; decides nothing without a server key', () => {
    expect(decideSpa(ctx({ doors: [web] }), knock(), a('192.0.2.1'), T * 1000)).toEqual({ ok: false, reason: 'policy.door', id: 'alice' });
    expect(decideSpa(ctx(), knock(), a('198.51.100.9'), T * 1000)).toEqual({ ok: false, reason: 'policy.address', id: 'alice' });
    expect(decideSpa(ctx(), knock().subarray(1), a('192.0.2.1'), T * 1000)).toEqual({ ok: false, reason: 'length.bad', id: undefined });
    expect(decideSpa(ctx({ server: undefined }), knock(), a('192.0.2.1'), T * 1000)).toEqual({ ok: false, reason: 'tag.unknown', id: undefined });
  });
  it('does not record the nonce itself: the shell does, once it is durable', () => {
    const c = ctx();
    const d = knock();
    expect(decideSpa(c, d, a('192.0.2.1'), T * 1000).ok).toBe(true);
    expect(decideSpa(c, d, a('192.0.2.1'), T * 1000).ok).toBe(true);
  });
});

describe('GrantTable', () => {
  it('opens new grants and extends existing ones, never shortening them', () => {
    const t = new GrantTable();
    const addr = a('192.0.2.1');
    const [first] = t.plan('ssh', 'alice', addr, [{ proto: 'tcp', port: 22 }], 10_000);
    expect(first?.kind).toBe('open');
    t.set(first!.grant);
    const effects = t.plan('ssh', 'alice', addr, [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }], 5_000);
    expect(effects.map((e) => [e.kind, e.grant.untilMs])).toEqual([
      ['extend', 10_000],
      ['open', 5_000],
    ]);
    expect(t.due(9_999)).toEqual([]);
    expect(t.due(10_000)).toHaveLength(1);
    expect(t.delete(grantKey(first!.grant))).toEqual(first!.grant);
    expect(t.size).toBe(0);
  });
  it("an extend by another key keeps the opening's own values (its stop gets what its start got)", () => {
    const t = new GrantTable();
    const addr = a('192.0.2.1');
    const [open] = t.plan('ssh', 'alice', addr, [{ proto: 'tcp', port: 22 }], 10_000);
    t.set({ ...open!.grant, backend: 'command' });
    const [ext] = t.plan('ssh', 'bob', addr, [{ proto: 'tcp', port: 22 }], 20_000);
    expect(ext).toMatchObject({ kind: 'extend', grant: { id: 'alice', backend: 'command', untilMs: 20_000 }, previousUntilMs: 10_000 });
  });
  it('gives backends a timeout of at least one second', () => {
    const g = { door: 'ssh', id: 'alice', addr: a('192.0.2.1'), access: { proto: 'tcp' as const, port: 22 }, untilMs: 10_500 };
    expect(openingOf(g, 0).timeoutSec).toBe(11);
    expect(openingOf(g, 10_400).timeoutSec).toBe(1);
    expect(openingOf({ ...g, access: undefined }, 0).access).toEqual({ proto: 'tcp', port: 1 });
  });
});

describe('RateLimiter', () => {
  it('lets a burst through, then refills at its rate, counting everything', () => {
    const r = new RateLimiter(3, 1);
    const taken = Array.from({ length: 10 }, () => r.take('tag.unknown', 0));
    expect(taken.filter(Boolean)).toHaveLength(3);
    expect(r.take('tag.unknown', 999)).toBe(false);
    expect(r.take('tag.unknown', 2000)).toBe(true);
    expect(r.take('replay.seen', 2000)).toBe(true);
    expect(r.totals()).toEqual({ 'tag.unknown': 12, 'replay.seen': 1 });
    expect(r.drainSuppressed()).toEqual({ 'tag.unknown': 8 });
    expect(r.drainSuppressed()).toEqual({});
  });
  it('keeps a bounded number of keys', () => {
    const r = new RateLimiter(1, 1, 4);
    for (let i = 0; i < 100; i++) r.take(`k${i}`, 0);
    expect(Object.keys(r.drainSuppressed())).toHaveLength(0);
    // The oldest buckets were dropped: k0 starts a fresh bucket with a full burst.
    expect(r.take('k0', 0)).toBe(true);
  });
});
