// Properties: attacker input never throws. Random payloads (bytes, and base64 text shaped like
// a fwknop packet) through the verifier; random text through the three config parsers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAccessConf } from '../../src/fwknop/access-conf.js';
import { decodePlaintext } from '../../src/fwknop/message.js';
import { parseFwknopdConf } from '../../src/fwknop/fwknopd-conf.js';
import { parseFwknoprc } from '../../src/fwknop/rc.js';
import type { FwknopStanza } from '../../src/fwknop/stanza.js';
import { verifyFwknop } from '../../src/fwknop/verify.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const stanza = (over: Partial<FwknopStanza>): FwknopStanza => ({
  file: 'a', line: 1, sources: 'any', destinations: 'any', key: new Uint8Array(32).fill(1), hmacKey: new Uint8Array(64).fill(2), hmacType: 'sha256', mode: 'cbc',
  openPorts: undefined, restrictPorts: [], accessTimeoutSec: 30, maxTimeoutSec: 300, requireSourceAddress: false, requireUsername: undefined, expireSec: undefined, cmdCycle: undefined, ...over,
});
const STANZAS = [stanza({}), stanza({ hmacKey: undefined }), stanza({ hmacKey: undefined, mode: 'ctr' }), stanza({ hmacType: 'sha512' }), stanza({ hmacKey: undefined, mode: 'legacy' })];
const G = { agingEnabled: true, maxAgeSec: 120 };
const b64Text = fc.array(fc.constantFrom(...B64), { minLength: 130, maxLength: 600 }).map((a) => a.join(''));

describe('fwknop input never throws', () => {
  it('random bytes through the verifier', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1600 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (p, src) => {
      expect(verifyFwknop(p, { src, dst: undefined }, STANZAS, G, 1_800_000_000, () => false).ok).toBe(false);
    }), { numRuns: 300 });
  });

  it('random base64 text (the shape that reaches the crypto), HMAC-less stanzas included', () => {
    fc.assert(fc.property(b64Text, (t) => {
      expect(verifyFwknop(new Uint8Array(Buffer.from(t, 'latin1')), { src: 0x7f000001, dst: 0x7f000001 }, STANZAS, G, 1_800_000_000, () => false).ok).toBe(false);
    }), { numRuns: 300 });
  });

  it('random plaintext through the field decoder', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1600 }), (p) => {
      decodePlaintext(p);
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.array(fc.oneof(fc.constantFrom(':', '0', '1', '3', 'MTI3LjAuMC4xLHRjcC8yMg', 'cm9vdA'), fc.string({ maxLength: 20 })), { maxLength: 14 }), (parts) => {
      decodePlaintext(new Uint8Array(Buffer.from(['1234567890123456', ...parts].join(':'), 'latin1')));
    }), { numRuns: 300 });
  });

  const lines = fc.array(fc.oneof(
    fc.constantFrom('SOURCE ANY', 'SOURCE 10.0.0.0/8', 'KEY x', 'KEY_BASE64 AAAA', 'HMAC_KEY_BASE64 ====', 'HMAC_DIGEST_TYPE sha1', 'ENCRYPTION_MODE legacy', '%include a', '%include_keys a', '%include_folder d',
      'CMD_CYCLE_OPEN /bin/true $IP', 'CMD_CYCLE_CLOSE NONE', 'OPEN_PORTS tcp/22,udp/0', 'ACCESS_EXPIRE 02/30/2030', '[x]', '[default]', 'PCAP_FILTER udp port 1', 'ENABLE_UDP_SERVER maybe', 'SPA_SERVER h', 'ACCESS tcp/1', 'ALLOW_IP source'),
    fc.string({ maxLength: 40 }),
  ), { maxLength: 30 }).map((a) => a.join('\n'));

  it('random config text through the three parsers', () => {
    fc.assert(fc.property(lines, (text) => {
      const reader = { readText: () => ({ text }), listDir: () => ({ names: ['a.conf'] }) };
      parseAccessConf('/a', reader);
      parseFwknopdConf('/f', text);
      parseFwknoprc('/rc', text, 'x');
    }), { numRuns: 300 });
  });
});
