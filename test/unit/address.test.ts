import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIP, isIPv4 as netIsIPv4, isIPv6 as netIsIPv6 } from 'node:net';
import { addressFromBytes, IPV4_PATTERN, isIPv4, isIPv6, parseAddress } from '../../src/net/address.js';

describe('parseAddress', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['::1', '::1'],
    ['::', '::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['2001:db8::', '2001:db8::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ])('%s -> %s', (input, text) => {
    expect(parseAddress(input)?.text).toBe(text);
  });

  it.each(['01.2.3.4', '1.2.3', '256.1.1.1', 'fe80::1%eth0', 'localhost', '', ' 1.2.3.4', '1.2.3.4/32'])(
    'refuses %j',
    (input) => {
      expect(parseAddress(input)).toBeUndefined();
    },
  );

  it('round-trips any 16 bytes through canonical text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        const a = addressFromBytes(b);
        expect(isIP(a.text)).toBe(a.family);
        expect(parseAddress(a.text)).toEqual(a);
      }),
    );
  });
});

// address.ts carries node:net's two expressions so that spa-knock need not load node:net.
describe('isIPv4 and isIPv6 agree with node:net', () => {
  const samples = [
    '1.2.3.4', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 ',
    '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::', '::ffff:1.2.3.4', '::1.2.3.4',
    '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%eth0', 'fe80::1%', '12345::', 'g::', ':::', '1:::2',
    '2001:db8::1::2', '[::1]', '', 'localhost', '1.2.3.4%eth0', '::ffff:256.1.1.1', 'FFFF::', '::1%1.2',
  ];
  it.each(samples)('%j', (s) => {
    expect(isIPv4(s)).toBe(netIsIPv4(s));
    expect(isIPv6(s)).toBe(netIsIPv6(s));
  });

  it('isIPv4 on dotted strings of digits', () => {
    const field = fc.oneof(fc.nat(300).map(String), fc.constantFrom('', '0', '00', '01', '000', '255', '256', '1000', '0255', 'a', ' 1'));
    const text = fc.array(field, { minLength: 1, maxLength: 6 }).map((a) => a.join('.'));
    fc.assert(
      fc.property(text, (s) => {
        expect(isIPv4(s)).toBe(netIsIPv4(s));
        expect(isIPv4(s)).toBe(IPV4_PATTERN.test(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('on strings built from address characters', () => {
    const text = fc.array(fc.constantFrom(...'0123456789abcdefABCDEFg:.%'), { maxLength: 45 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, (s) => {
        expect(isIPv4(s)).toBe(netIsIPv4(s));
        expect(isIPv6(s)).toBe(netIsIPv6(s));
      }),
      { numRuns: 20_000 },
    );
  });
});
