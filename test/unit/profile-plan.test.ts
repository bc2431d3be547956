// planKnock: flags over the profile over the defaults; SPA, explicit sequence, and the fallback.
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { planKnock, firstTcp, type KnockFlags } from '../../client/plan.js';
import { DEFAULT_STUN_SERVERS } from '../../client/stun-servers.js';
import type { Profile } from '../../client/profile.js';

const ctx = { home: '/h/.config/spa-knock', defaultAccess: [{ proto: 'tcp' as const, port: 22 }] };
const none: KnockFlags = { access: [] };
const full: Profile = {
  hostName: 'web1.example.org',
  key: { kind: 'id', id: 'alice' },
  serverKey: '/h/.config/spa-knock/web.pub',
  port: 62001,
  access: [{ proto: 'tcp', port: 443 }],
  allowIp: parseAddress('203.0.113.7') as Address,
  sequence: [{ proto: 'tcp', port: 7000 }],
  delayMs: 100,
  addressFamily: 'inet6',
  matchedLines: [1],
};

function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e.message;
    throw e;
  }
  throw new Error('no error');
}

describe('planKnock', () => {
  it('a profile alone gives a complete SPA knock (a Sequence is only a fallback)', () => {
    expect(planKnock('web1', none, full, ctx)).toEqual({
      kind: 'spa',
      host: 'web1',
      target: 'web1.example.org',
      family: 6,
      access: [{ proto: 'tcp', port: 443 }],
      keyId: 'alice',
      keyFile: '/h/.config/spa-knock/alice.key',
      keyById: true,
      serverKey: '/h/.config/spa-knock/web.pub',
      port: 62001,
      allow: { kind: 'address', address: parseAddress('203.0.113.7'), from: 'AllowIP' },
      stun: { servers: DEFAULT_STUN_SERVERS, from: 'built-in' },
    });
  });

  it('every flag wins over the profile', () => {
    const p = planKnock(
      'web1',
      { key: 'bob', keyDir: '/k', serverKey: 'spa1-server-pub:x', port: 1000, access: [{ proto: 'udp', port: 53 }], allowIp: 'auto', family: 4 },
      full,
      ctx,
    );
    expect(p).toMatchObject({ kind: 'spa', keyId: 'bob', keyFile: '/k/bob.key', serverKey: 'spa1-server-pub:x', port: 1000, access: [{ proto: 'udp', port: 53 }], allow: { kind: 'auto' }, family: 4 });
    expect(planKnock('web1', { access: [], allowIp: '192.0.2.1' }, full, ctx)).toMatchObject({ allow: { kind: 'address', address: { text: '192.0.2.1' }, from: '--allow-ip' } });
    expect(planKnock('web1', { access: [], allowIp: 'SOURCE' }, full, ctx)).toMatchObject({ allow: { kind: 'source' } });
    const stun = [{ host: 'stun.example.org', port: 3478 }];
    expect(planKnock('web1', { access: [], stun }, { ...full, stunServers: 'none' }, ctx)).toMatchObject({ stun: { servers: stun, from: '--stun' } });
    expect(planKnock('web1', { access: [], stun: 'none' }, { ...full, stunServers: stun }, ctx)).toMatchObject({ stun: { servers: [], from: 'none' } });
  });

  it('--key-dir also applies to a profile Key given by id, not to one given as a file', () => {
    expect(planKnock('web1', { access: [], keyDir: '/k' }, full, ctx)).toMatchObject({ keyFile: '/k/alice.key', keyById: true });
    expect(planKnock('web1', { access: [], keyDir: '/k' }, { ...full, key: { kind: 'file', file: '/x/ops.key' } }, ctx)).toMatchObject({
      keyFile: '/x/ops.key',
      keyId: 'ops',
      keyById: false,
    });
  });

  it('without a profile: the host itself, tcp/22, the default port, the kernel-chosen allow address', () => {
    expect(planKnock('192.0.2.1', { access: [], key: 'a', serverKey: 's' }, { matchedLines: [] }, ctx)).toEqual({
      kind: 'spa',
      host: '192.0.2.1',
      target: '192.0.2.1',
      family: undefined,
      access: [{ proto: 'tcp', port: 22 }],
      keyId: 'a',
      keyFile: '/h/.config/spa-knock/a.key',
      keyById: true,
      serverKey: 's',
      port: 62201,
      allow: { kind: 'auto' },
      stun: { servers: DEFAULT_STUN_SERVERS, from: 'built-in' },
    });
  });

  it('AllowIP source and StunServer come from the profile when no flag says', () => {
    const stun = [{ host: '192.0.2.9', port: 3478 }];
    expect(planKnock('web1', none, { ...full, allowIp: 'source', stunServers: stun }, ctx)).toMatchObject({ allow: { kind: 'source' }, stun: { servers: stun, from: 'StunServer' } });
    expect(planKnock('web1', none, { ...full, allowIp: 'auto', stunServers: 'none' }, ctx)).toMatchObject({ allow: { kind: 'auto' }, stun: { servers: [], from: 'none' } });
  });

  it('--sequence knocks the sequence even when a key is set up, with the profile Delay', () => {
    const seq = [{ proto: 'udp' as const, port: 9 }];
    expect(planKnock('web1', { access: [], sequence: seq }, full, ctx)).toMatchObject({ kind: 'sequence', sequence: seq, delayMs: 100, why: 'flag', target: 'web1.example.org' });
    expect(planKnock('web1', { access: [], sequence: seq, delayMs: 0 }, full, ctx)).toMatchObject({ delayMs: 0 });
  });

  it('no key from flags or profile but a Sequence: the fallback', () => {
    const { key: _k, ...noKey } = full;
    expect(planKnock('old1', none, noKey, ctx)).toMatchObject({ kind: 'sequence', sequence: [{ proto: 'tcp', port: 7000 }], why: 'fallback', access: [{ proto: 'tcp', port: 443 }] });
    // A key on the command line turns the fallback off.
    expect(planKnock('old1', { access: [], key: 'alice' }, noKey, ctx)).toMatchObject({ kind: 'spa' });
  });

  it('no key and no sequence, or no server key: usage errors naming the host', () => {
    expect(userError(() => planKnock('h', none, { matchedLines: [] }, ctx))).toBe('no key for h: use --key ID, or Key (or Sequence) in its profile (see spa-knock keygen --help)');
    expect(userError(() => planKnock('h', { access: [], key: 'a' }, { matchedLines: [] }, ctx))).toBe('no server key for h: use --server-key KEY_OR_FILE');
    expect(userError(() => planKnock('h', { access: [], key: '../a' }, full, ctx))).toMatch(/^--key: key id must be/);
  });

  it('firstTcp picks what --wait waits for', () => {
    expect(firstTcp([{ proto: 'udp', port: 53 }, { proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22 }])).toEqual({ proto: 'tcp', port: 443 });
    expect(firstTcp([{ proto: 'udp', port: 53 }])).toBeUndefined();
  });
});
