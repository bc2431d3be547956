// fwknop 2.6 packets made by the REAL fwknop client (test/fixtures/fwknop/packets.json, made by
// make-packets.mjs with fresh --key-gen keys) against the pure verifier, plus refusals.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeB64Padded } from '../../src/fwknop/base64.js';
import type { DigestName, EncryptionMode } from '../../src/fwknop/crypto.js';
import { encodeFwknop } from '../../src/fwknop/encode.js';
import { parseIPv4, parseNetList } from '../../src/fwknop/ipv4.js';
import { FWKNOP_DEFAULTS, type FwknopGlobals, type FwknopStanza } from '../../src/fwknop/stanza.js';
import { isKeyFailure, replayDigestOf, verifyFwknop, type PacketAddresses } from '../../src/fwknop/verify.js';
import { ROOT } from '../helpers/cli.js';

interface Fixture {
  name: string;
  stanza: Record<string, string>;
  wire: string;
  timestamp: number;
  fields: { username: string; messageType: number; message: string; clientTimeout: number };
}
const file = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/fwknop/packets.json'), 'utf8')) as { madeAt: number; cases: Fixture[] };
const fx = (name: string): Fixture => {
  const c = file.cases.find((x) => x.name === name);
  if (!c) throw new Error(`no fixture ${name}`);
  return c;
};

const LO: PacketAddresses = { src: parseIPv4('127.0.0.1') as number, dst: parseIPv4('127.0.0.1') as number };
const G: FwknopGlobals = { agingEnabled: true, maxAgeSec: 120 };
const never = (): boolean => false;

function keyOf(s: Record<string, string>, b64: string, text: string): Uint8Array | undefined {
  if (s[b64] !== undefined) return decodeB64Padded(s[b64] as string);
  if (s[text] !== undefined) return new Uint8Array(Buffer.from(s[text] as string, 'latin1'));
  return undefined;
}

function stanzaOf(s: Record<string, string>, over: Partial<FwknopStanza> = {}): FwknopStanza {
  return {
    file: 'access.conf', line: 1, sources: 'any', destinations: 'any',
    key: keyOf(s, 'KEY_BASE64', 'KEY') as Uint8Array,
    hmacKey: keyOf(s, 'HMAC_KEY_BASE64', 'HMAC_KEY'),
    hmacType: (s.HMAC_DIGEST_TYPE ?? 'sha256') as DigestName,
    mode: (s.ENCRYPTION_MODE ?? 'cbc').toLowerCase() as EncryptionMode,
    openPorts: undefined, restrictPorts: [], accessTimeoutSec: 30, maxTimeoutSec: 300,
    requireSourceAddress: false, requireUsername: undefined, expireSec: undefined, cmdCycle: undefined,
    ...over,
  };
}

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
function verify(c: Fixture, over: Partial<FwknopStanza> = {}, opts: { now?: number; g?: FwknopGlobals; pkt?: PacketAddresses; wire?: string } = {}) {
  return verifyFwknop(bytes(opts.wire ?? c.wire), opts.pkt ?? LO, [stanzaOf(c.stanza, over)], opts.g ?? G, opts.now ?? c.timestamp, never);
}

const ACCEPTED = [
  'hmac-sha256', 'hmac-sha512', 'hmac-sha384', 'hmac-sha1', 'hmac-md5', 'hmac-sha3-256', 'hmac-sha3-512',
  'digest-md5', 'digest-sha1', 'digest-sha384', 'digest-sha512', 'digest-sha3-256', 'digest-sha3-512',
  'two-ports', 'ctr', 'username', 'other-ip', 'many-ports', 'passphrase', 'fw-timeout', 'source-ip',
];

describe('packets from the real fwknop 2.6.10 client', () => {
  it('the fixture file holds real-client packets', () => {
    expect(file.cases.length).toBeGreaterThanOrEqual(27);
    for (const c of file.cases) expect(c.wire).toMatch(/^[89+/][A-Za-z0-9+/]+$/);
  });

  it.each(ACCEPTED)('%s is accepted with its fields as the client printed them', (name) => {
    const c = fx(name);
    const v = verify(c);
    expect(v).toMatchObject({ ok: true, stanza: 0 });
    if (!v.ok) return;
    expect(v.fields.username).toBe(c.fields.username);
    expect(v.fields.message).toBe(c.fields.message);
    expect(v.fields.messageType).toBe(c.fields.messageType);
    expect(v.fields.clientTimeoutSec).toBe(c.fields.clientTimeout);
    expect(v.fields.timestamp).toBe(c.timestamp);
    expect(v.replayDigest).toBe(replayDigestOf(bytes(c.wire)));
  });

  it('-A tcp/22,udp/53 asks for both', () => {
    expect(verify(fx('two-ports'))).toMatchObject({ ok: true, allowIp: '127.0.0.1', access: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }] });
  });

  it('-s (allow IP 0.0.0.0) opens for the packet source, and is refused with REQUIRE_SOURCE_ADDRESS', () => {
    const src = { src: parseIPv4('10.1.2.3') as number, dst: LO.dst };
    expect(verify(fx('source-ip'), {}, { pkt: src })).toMatchObject({ ok: true, allowIp: '10.1.2.3' });
    expect(verify(fx('source-ip'), { requireSourceAddress: true })).toMatchObject({ ok: false, reason: 'fwknop.require-source', authenticated: true });
  });

  it('an allow IP other than the source is honoured, as fwknopd honours it', () => {
    expect(verify(fx('other-ip'))).toMatchObject({ ok: true, allowIp: '192.0.2.7' });
  });

  it('--fw-timeout 600 is capped by MAX_FW_TIMEOUT; without it FW_ACCESS_TIMEOUT applies', () => {
    expect(verify(fx('fw-timeout'))).toMatchObject({ ok: true, timeoutSec: 300 });
    expect(verify(fx('fw-timeout'), { maxTimeoutSec: 1000 })).toMatchObject({ ok: true, timeoutSec: 600 });
    expect(verify(fx('hmac-sha256'), { accessTimeoutSec: 45 })).toMatchObject({ ok: true, timeoutSec: 45 });
  });

  it('a packet over 400 characters (refused by fwknopd 2.6.10) is accepted', () => {
    expect(fx('many-ports').wire.length).toBeGreaterThan(400);
    expect(verify(fx('many-ports'))).toMatchObject({ ok: true });
  });

  it('the legacy-mode packet decrypts with a legacy stanza without HMAC', () => {
    expect(verify(fx('legacy'))).toMatchObject({ ok: true });
    expect(verify(fx('no-hmac'))).toMatchObject({ ok: true });
  });
});

describe('refusals', () => {
  const c = fx('hmac-sha256');
  const other = fx('hmac-sha512');

  it('a wrong HMAC key, a wrong encryption key, a wrong HMAC type', () => {
    expect(verify(c, { hmacKey: stanzaOf(other.stanza).hmacKey })).toMatchObject({ ok: false, reason: 'fwknop.hmac', authenticated: false });
    expect(verify(c, { key: stanzaOf(other.stanza).key })).toMatchObject({ ok: false, reason: 'fwknop.decrypt' });
    expect(verify(c, { hmacType: 'sha3_256' })).toMatchObject({ ok: false, reason: 'fwknop.hmac' });
    expect(verify(fx('ctr'), { mode: 'cbc' })).toMatchObject({ ok: false, reason: 'fwknop.decrypt' });
  });

  it('a stale packet, and one from the future, outside MAX_SPA_PACKET_AGE; aging off accepts', () => {
    const stale = fx('stale');
    expect(verify(stale, {}, { now: file.madeAt })).toMatchObject({ ok: false, reason: 'fwknop.age', authenticated: true });
    expect(verify(c, {}, { now: c.timestamp - 121 })).toMatchObject({ ok: false, reason: 'fwknop.age' });
    expect(verify(c, {}, { now: c.timestamp + 120 })).toMatchObject({ ok: true });
    expect(verify(stale, {}, { now: file.madeAt, g: { agingEnabled: false, maxAgeSec: 120 } })).toMatchObject({ ok: true });
  });

  it('ports outside OPEN_PORTS or inside RESTRICT_PORTS, also for CMD_CYCLE stanzas', () => {
    const two = fx('two-ports');
    expect(verify(two, { openPorts: [{ proto: 'tcp', port: 22 }] })).toMatchObject({ ok: false, reason: 'fwknop.ports' });
    expect(verify(two, { openPorts: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }] })).toMatchObject({ ok: true });
    expect(verify(two, { restrictPorts: [{ proto: 'udp', port: 53 }] })).toMatchObject({ ok: false, reason: 'fwknop.ports' });
    const cycle = { open: ['/bin/true'], close: undefined, timerSec: 10 };
    expect(verify(c, { openPorts: [{ proto: 'tcp', port: 23 }], cmdCycle: cycle })).toMatchObject({ ok: false, reason: 'fwknop.ports' });
    expect(verify(c, { cmdCycle: cycle })).toMatchObject({ ok: true, timeoutSec: 10 });
  });

  it('REQUIRE_USERNAME is an exact match', () => {
    expect(verify(fx('username'), { requireUsername: 'alice smith' })).toMatchObject({ ok: true });
    expect(verify(fx('username'), { requireUsername: 'Alice smith' })).toMatchObject({ ok: false, reason: 'fwknop.username' });
  });

  it('command and NAT messages are refused after authentication', () => {
    for (const n of ['command', 'nat', 'nat-local']) expect(verify(fx(n)), n).toMatchObject({ ok: false, reason: 'fwknop.msg-type', authenticated: true });
  });

  it('SOURCE, DESTINATION and ACCESS_EXPIRE filter stanzas', () => {
    expect(verify(c, { sources: parseNetList('10.0.0.0/8') as never })).toMatchObject({ ok: false, reason: 'fwknop.source', stanza: undefined });
    expect(verify(c, { sources: parseNetList('127.0.0.0/255.0.0.0') as never })).toMatchObject({ ok: true });
    expect(verify(c, { destinations: parseNetList('192.0.2.1') as never })).toMatchObject({ ok: false, reason: 'fwknop.source' });
    expect(verify(c, { destinations: parseNetList('127.0.0.1') as never }, { pkt: { src: LO.src, dst: undefined } })).toMatchObject({ ok: false, reason: 'fwknop.source' });
    expect(verify(c, { expireSec: c.timestamp })).toMatchObject({ ok: false, reason: 'fwknop.expired' });
    expect(verify(c, { expireSec: c.timestamp + 1 })).toMatchObject({ ok: true });
  });

  it('a packet with its U2FsdGVkX1 prefix put back, a short one, a non-base64 one', () => {
    expect(verify(c, {}, { wire: 'U2FsdGVkX1' + c.wire })).toMatchObject({ ok: false, reason: 'fwknop.prefix' });
    expect(verify(c, {}, { wire: c.wire.slice(0, 139) })).toMatchObject({ ok: false, reason: 'fwknop.size' });
    expect(verify(c, {}, { wire: 'A'.repeat(1501) })).toMatchObject({ ok: false, reason: 'fwknop.size' });
    expect(verify(c, {}, { wire: c.wire.slice(0, 100) + '=' + c.wire.slice(101) })).toMatchObject({ ok: false, reason: 'fwknop.charset' });
    expect(verify(c, {}, { wire: c.wire + '\n' })).toMatchObject({ ok: false, reason: 'fwknop.charset' });
  });

  it('a replay: the digest is looked up before any crypto', () => {
    const d = replayDigestOf(bytes(c.wire));
    const seen = (x: string): boolean => x === d;
    expect(verifyFwknop(bytes(c.wire), LO, [stanzaOf(c.stanza)], G, c.timestamp, seen)).toMatchObject({ ok: false, reason: 'fwknop.replay' });
  });

  it('a payload that failed every stanza once is refused from the caller\'s cache without crypto', () => {
    const st = [stanzaOf(other.stanza)];
    const first = verifyFwknop(bytes(c.wire), LO, st, G, c.timestamp, never);
    expect(first).toMatchObject({ ok: false, reason: 'fwknop.hmac' });
    expect(!first.ok && isKeyFailure(first)).toBe(true);
    const d = replayDigestOf(bytes(c.wire));
    expect(verifyFwknop(bytes(c.wire), LO, st, G, c.timestamp, never, (x) => x === d)).toMatchObject({ ok: false, reason: 'fwknop.known-bad' });
    // Policy refusals depend on time and source: never cached.
    const stale = verify(c, {}, { now: c.timestamp + 1000 });
    expect(!stale.ok && isKeyFailure(stale)).toBe(false);
  });

  it('a stanza without HMAC refuses a packet that carries one, and vice versa', () => {
    expect(verify(c, { hmacKey: undefined })).toMatchObject({ ok: false });
    const n = fx('no-hmac');
    expect(verify(n, { hmacKey: stanzaOf(c.stanza).hmacKey })).toMatchObject({ ok: false, reason: 'fwknop.hmac' });
  });

  it('stanzas are tried in order; the first that accepts wins; the furthest refusal is reported', () => {
    const wrong = stanzaOf(other.stanza);
    const right = stanzaOf(c.stanza);
    const v = verifyFwknop(bytes(c.wire), LO, [wrong, stanzaOf(c.stanza, { openPorts: [{ proto: 'tcp', port: 23 }] }), right], G, c.timestamp, never);
    expect(v).toMatchObject({ ok: true, stanza: 2 });
    const r = verifyFwknop(bytes(c.wire), LO, [wrong, stanzaOf(c.stanza, { openPorts: [{ proto: 'tcp', port: 23 }] }), wrong], G, c.timestamp, never);
    expect(r).toMatchObject({ ok: false, stanza: 1, reason: 'fwknop.ports', authenticated: true });
  });

  it('every truncation, byte flip and appended byte of a real packet is refused and never throws', () => {
    const st = [stanzaOf(c.stanza)];
    const w = bytes(c.wire);
    for (let i = 0; i < w.length; i++) {
      const flipped = Uint8Array.from(w);
      flipped[i] = (flipped[i] as number) ^ 0x01;
      expect(verifyFwknop(flipped, LO, st, G, c.timestamp, never).ok, `flip ${i}`).toBe(false);
      expect(verifyFwknop(w.subarray(0, i), LO, st, G, c.timestamp, never).ok, `cut ${i}`).toBe(false);
    }
    for (const ch of 'A+/9') expect(verifyFwknop(bytes(c.wire + ch), LO, st, G, c.timestamp, never).ok).toBe(false);
  });

  it('an HMAC-less stanza sees malleated ciphertext fail decryption or the digest, never throw', () => {
    const n = fx('no-hmac');
    const st = [stanzaOf(n.stanza)];
    for (let i = 0; i < n.wire.length; i++) {
      const chars = [...n.wire];
      chars[i] = chars[i] === 'A' ? 'B' : 'A';
      const v = verifyFwknop(bytes(chars.join('')), LO, st, G, n.timestamp, never);
      expect(v.ok, `char ${i}`).toBe(false);
    }
  });
});

describe('our encoder against our verifier', () => {
  it('round-trips every mode and digest, with the default timeouts', () => {
    const key = new Uint8Array(32).fill(7);
    const hmacKey = new Uint8Array(64).fill(9);
    for (const mode of ['cbc', 'ctr'] as const) {
      for (const hmacType of ['sha256', 'sha512', 'sha3_256'] as const) {
        const wire = encodeFwknop(
          { rand: '1234567890123456', username: 'root', timestamp: 1_800_000_000, version: '3.0.0', messageType: 1, message: '127.0.0.1,tcp/22', clientTimeoutSec: 0, digest: 'sha256' },
          { key, hmacKey, hmacType, mode }, new Uint8Array(8).fill(1));
        const st: FwknopStanza = { ...stanzaOf({}), key, hmacKey, hmacType, mode };
        expect(verifyFwknop(bytes(wire), LO, [st], G, 1_800_000_000, never)).toMatchObject({ ok: true, timeoutSec: FWKNOP_DEFAULTS.accessTimeoutSec });
      }
    }
  });
});
