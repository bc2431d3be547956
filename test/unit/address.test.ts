import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIP } from 'node:net';
import { addressFromBytes, parseAddress } from '../../src/net/address.js';

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
