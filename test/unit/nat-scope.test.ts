// client/scope.ts (which addresses are global, when auto asks STUN), client/stun-servers.ts
// (--stun and StunServer values) and client/nat-advice.ts (the lines a person reads).
import { describe, expect, it } from 'vitest';
import { parseAddress, type Address } from '../../src/net/address.js';
import { autoDecision, isGlobal, specialRange, unusableReflexive } from '../../client/scope.js';
import { parseStunServer, stunServerText } from '../../client/stun-servers.js';
import { allowWarning, autoNote, natHint } from '../../client/nat-advice.js';

const A = (s: string): Address => {
  const a = parseAddress(s);
  if (!a) throw new Error(`bad test address ${s}`);
  return a;
};

describe('specialRange: the IANA special-purpose blocks', () => {
  it.each([
    ['10.0.0.1', '10.0.0.0/8'],
    ['172.16.0.1', '172.16.0.0/12'],
    ['172.31.255.255', '172.16.0.0/12'],
    ['192.168.77.2', '192.168.0.0/16'],
    ['100.64.0.1', '100.64.0.0/10'],
    ['100.127.255.254', '100.64.0.0/10'],
    ['127.0.0.1', '127.0.0.0/8'],
    ['169.254.1.1', '169.254.0.0/16'],
    ['0.0.0.0', '0.0.0.0/8'],
    ['192.0.2.1', '192.0.2.0/24'],
    ['198.19.0.1', '198.18.0.0/15'],
    ['224.0.0.251', '224.0.0.0/4'],
    ['255.255.255.255', '255.255.255.255/32'],
    ['250.1.1.1', '240.0.0.0/4'],
    ['::1', '::1/128'],
    ['::', '::/128'],
    ['fd00:201:1::2', 'fc00::/7'],
    ['fe80::1', 'fe80::/10'],
    ['ff02::1', 'ff00::/8'],
    ['2001:db8::1', '2001:db8::/32'],
    ['2001:2::1', '2001:2::/48'],
    ['2001::1', '2001::/23'],
    ['3fff::1', '3fff::/20'],
    ['100::1', '100::/64'],
    ['4000::1', '2000::/3'],
  ])('%s is in %s', (a, cidr) => {
    expect(specialRange(A(a))?.cidr).toBe(cidr);
    expect(isGlobal(A(a))).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '100.63.255.255', '100.128.0.0', '172.15.255.255', '172.32.0.0', '192.169.0.1', '11.0.0.1', '2a00:1450:4001::1', '2606:4700::1111', '2001:4860::8888', '64:ff9b::808:808', '2001:20::1'])('%s is global', (a) => {
    expect(specialRange(A(a))).toBeUndefined();
  });

  it('a STUN answer may be private (a server inside a private network sees that), never loopback, multicast or unspecified', () => {
    expect(unusableReflexive(A('10.203.0.2'))).toBeUndefined();
    expect(unusableReflexive(A('100.64.1.1'))).toBeUndefined();
    expect(unusableReflexive(A('203.0.113.5'))).toBeUndefined();
    expect(unusableReflexive(A('127.0.0.1'))).toBe('loopback');
    expect(unusableReflexive(A('0.0.0.0'))).toBe('"this network" (RFC 791)');
    expect(unusableReflexive(A('224.0.0.1'))).toBe('multicast');
    expect(unusableReflexive(A('::'))).toBe('unspecified');
  });
});

describe('autoDecision: when auto asks STUN', () => {
  it.each([
    // source, server, asks STUN?, why
    ['8.8.4.4', '10.0.0.1', false, 'global'],
    ['2a00:1450::1', '2606:4700::1', false, 'global'],
    ['127.0.0.1', '127.0.0.1', false, 'loopback'],
    ['10.0.0.5', '127.0.0.1', false, 'loopback'],
    ['10.201.1.2', '10.201.1.1', false, 'same-range'],
    ['10.1.0.5', '10.200.0.1', false, 'same-range'],
    ['fd00:201:1::2', 'fd00:201:1::1', false, 'same-range'],
    ['192.168.1.5', '192.168.1.10', false, 'same-range'],
    ['192.168.77.2', '10.203.0.1', true, undefined],
    ['192.168.1.5', '203.0.113.10', true, undefined],
    ['192.168.1.5', '8.8.8.8', true, undefined],
    ['100.64.3.3', '8.8.8.8', true, undefined],
    ['fd00::5', '2606:4700::1', true, undefined],
  ])('%s toward %s: STUN %s (%s)', (src, dst, stun, why) => {
    const d = autoDecision(A(src), A(dst));
    expect(d.stun).toBe(stun);
    if (!d.stun) expect(d.why).toBe(why);
  });
});

describe('parseStunServer', () => {
  it.each([
    ['stun.example.org', 'stun.example.org', 3478],
    ['stun.example.org:19302', 'stun.example.org', 19302],
    ['192.0.2.9', '192.0.2.9', 3478],
    ['192.0.2.9:5000', '192.0.2.9', 5000],
    ['2001:db8::9', '2001:db8::9', 3478],
    ['[2001:DB8::9]:5000', '2001:db8::9', 5000],
    ['[2001:db8::9]', '2001:db8::9', 3478],
  ])('%s', (s, host, port) => {
    expect(parseStunServer(s)).toEqual({ host, port });
  });

  it.each(['', 'a b', 'host:', 'host:0', 'host:65536', 'host:x', '[10.0.0.1]:3478', '[2001:db8::9', '-bad.example', 'a..b', 'exa_mple.org', '1.2.3.4:5:6'])('refuses %j', (s) => {
    expect(typeof parseStunServer(s)).toBe('string');
  });

  it('writes IPv6 in brackets', () => {
    expect(stunServerText({ host: '2001:db8::9', port: 3478 })).toBe('[2001:db8::9]:3478');
    expect(stunServerText({ host: 'stun.example.org', port: 1 })).toBe('stun.example.org:1');
  });
});

describe('what a person reads', () => {
  it('warns when a given address is private and the server is not on that network, else not', () => {
    expect(allowWarning({ how: 'given', address: A('192.168.1.5'), from: '--allow-ip' }, A('203.0.113.10'))).toBe(
      'warning: --allow-ip 192.168.1.5 is private (RFC 1918) and 203.0.113.10 is not on that network: through a NAT the server sees another address and refuses; use auto (the default) or source',
    );
    expect(allowWarning({ how: 'given', address: A('100.64.0.9'), from: 'AllowIP' }, A('8.8.8.8'))).toMatch(/^warning: AllowIP 100\.64\.0\.9 is carrier-grade NAT \(RFC 6598\)/);
    expect(allowWarning({ how: 'given', address: A('198.51.100.7'), from: '--allow-ip' }, A('127.0.0.1'))).toBeUndefined();
    expect(allowWarning({ how: 'given', address: A('10.0.0.7'), from: '--allow-ip' }, A('10.9.9.9'))).toBeUndefined();
    expect(allowWarning({ how: 'given', address: A('8.8.4.4'), from: '--allow-ip' }, A('8.8.8.8'))).toBeUndefined();
    expect(allowWarning({ how: 'source' }, A('8.8.8.8'))).toBeUndefined();
  });

  it('-v says why auto asks STUN or not', () => {
    expect(autoNote(autoDecision(A('192.168.77.2'), A('10.203.0.1')), A('192.168.77.2'), A('10.203.0.1'), false, ['10.203.0.1:3478'])).toBe(
      '192.168.77.2, the source address toward 10.203.0.1, is private (RFC 1918): asking STUN for the address a NAT gives it (10.203.0.1:3478)',
    );
    expect(autoNote(autoDecision(A('192.168.77.2'), A('10.203.0.1')), A('192.168.77.2'), A('10.203.0.1'), true, [])).toBe(
      'allow 192.168.77.2: the source address toward 10.203.0.1, private (RFC 1918); STUN is off (none), so it is signed as it is',
    );
    expect(autoNote(autoDecision(A('10.201.1.2'), A('10.201.1.1')), A('10.201.1.2'), A('10.201.1.1'), false, [])).toBe(
      'allow 10.201.1.2: the source address toward 10.201.1.1, both private (RFC 1918) (10.0.0.0/8), one network (no STUN asked)',
    );
  });

  it('the hint after a shut door names what was signed and what to try', () => {
    expect(natHint({ how: 'stun', address: A('198.51.100.7'), source: A('192.168.1.5'), server: 'stun.example.org:3478' })).toMatch(/^hint: the knock asked to open for 198\.51\.100\.7, the address stun\.example\.org:3478 saw; .*--allow-ip source/);
    expect(natHint({ how: 'source' })).toMatch(/spa_allow_source = yes/);
    expect(natHint({ how: 'kernel', address: A('10.1.1.1'), decision: autoDecision(A('10.1.1.1'), A('10.2.2.2')), stunOff: false })).toMatch(/^hint: the knock asked to open for 10\.1\.1\.1, the source address; if a NAT changes it on the way \(the usual cause\)/);
    expect(natHint({ how: 'kernel', address: A('127.0.0.1'), decision: autoDecision(A('127.0.0.1'), A('127.0.0.1')), stunOff: false })).toBeUndefined();
    expect(natHint({ how: 'given', address: A('192.0.2.4'), from: 'AllowIP' })).toMatch(/^hint: the knock asked to open for 192\.0\.2\.4 \(AllowIP\)/);
  });
});
