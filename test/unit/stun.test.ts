// client/stun.ts: the Binding request we send, and the bounded decoding of answers, against
// RFC 5769's sample messages and hand-built edge cases. Decoding never throws.
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBindingResponse, encodeBindingRequest, fingerprintOf, MAGIC_COOKIE, type StunAnswer } from '../../client/stun.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// RFC 5769 §2.1-2.3 (Appendix A's byte arrays). Password "VOkJxbRl1RmTxUk/WvJxBt".
const RFC5769_REQUEST = hex(`00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`);
const RFC5769_IPV4 = hex(`01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);
const RFC5769_IPV6 = hex(`01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);
const TXID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae');

type Attr = readonly [type: number, value: Uint8Array];

/** A STUN message with these attributes (padded), and a FINGERPRINT when asked. */
function message(type: number, txid: Uint8Array, attrs: readonly Attr[], fingerprint = false): Uint8Array {
  const parts: number[] = [];
  for (const [t, v] of attrs) {
    parts.push(t >> 8, t & 0xff, v.length >> 8, v.length & 0xff, ...v);
    while (parts.length % 4 !== 0) parts.push(0);
  }
  const len = parts.length + (fingerprint ? 8 : 0);
  const out = new Uint8Array(20 + len);
  const v = new DataView(out.buffer);
  v.setUint16(0, type);
  v.setUint16(2, len);
  v.setUint32(4, MAGIC_COOKIE);
  out.set(txid, 8);
  out.set(parts, 20);
  if (fingerprint) {
    const at = 20 + parts.length;
    v.setUint16(at, 0x8028);
    v.setUint16(at + 2, 4);
    v.setUint32(at + 4, fingerprintOf(out, at));
  }
  return out;
}

/** XOR-MAPPED-ADDRESS for an IPv4 address and port (RFC 8489 §14.2). */
function xorV4(ip: readonly number[], port: number): Attr {
  const c = [0x21, 0x12, 0xa4, 0x42];
  return [0x0020, Uint8Array.from([0, 1, (port >> 8) ^ 0x21, (port & 0xff) ^ 0x12, ...ip.map((b, i) => b ^ (c[i] ?? 0))])];
}
const plainV4 = (ip: readonly number[], port: number): Attr => [0x0001, Uint8Array.from([0, 1, port >> 8, port & 0xff, ...ip])];
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

const reasonOf = (a: StunAnswer): string => (a.ok ? 'ok' : a.reason);

describe('RFC 5769 sample messages', () => {
  it('the IPv4 response gives 192.0.2.1 port 32853 from XOR-MAPPED-ADDRESS, and the SOFTWARE text', () => {
    expect(decodeBindingResponse(RFC5769_IPV4, TXID)).toEqual({ ok: true, address: expect.objectContaining({ family: 4, text: '192.0.2.1' }), port: 32853, from: 'xor-mapped-address', software: 'test vector' });
  });

  it('the IPv6 response gives 2001:db8:1234:5678:11:2233:4455:6677 port 32853', () => {
    const a = decodeBindingResponse(RFC5769_IPV6, TXID);
    expect(a).toMatchObject({ ok: true, address: { family: 6, text: '2001:db8:1234:5678:11:2233:4455:6677' }, port: 32853, from: 'xor-mapped-address' });
  });

  it('our FINGERPRINT equals each sample message\'s, and zlib\'s CRC-32 agrees', () => {
    for (const m of [RFC5769_REQUEST, RFC5769_IPV4, RFC5769_IPV6]) {
      const at = m.length - 8;
      const claimed = new DataView(m.buffer, m.byteOffset).getUint32(at + 4);
      expect(fingerprintOf(m, at)).toBe(claimed);
      expect((crc32(m.subarray(0, at)) ^ 0x5354554e) >>> 0).toBe(claimed);
    }
  });

  it('the sample request is not an answer; another transaction id is not ours', () => {
    expect(reasonOf(decodeBindingResponse(RFC5769_REQUEST, TXID))).toBe('type');
    const other = Uint8Array.from(TXID);
    other[11]! ^= 1;
    expect(reasonOf(decodeBindingResponse(RFC5769_IPV4, other))).toBe('transaction');
  });

  it('every truncation and appended byte is refused; no flipped bit yields another address; nothing throws', () => {
    for (const m of [RFC5769_IPV4, RFC5769_IPV6]) {
      const right = decodeBindingResponse(m, TXID);
      if (!right.ok) throw new Error('sample refused');
      for (let n = 0; n < m.length; n++) expect(decodeBindingResponse(m.subarray(0, n), TXID).ok, `first ${n} bytes`).toBe(false);
      expect(reasonOf(decodeBindingResponse(Uint8Array.from([...m, 0]), TXID))).toBe('length');
      for (let i = 0; i < m.length * 8; i++) {
        const f = Uint8Array.from(m);
        f[i >> 3]! ^= 1 << (i & 7);
        const a = decodeBindingResponse(f, TXID);
        if (!a.ok) continue;
        // FINGERPRINT is optional (most public servers send none), so a flip that makes an
        // earlier attribute swallow it goes unseen; it must not change what we learn.
        expect([a.address.text, a.port], `bit ${i}`).toEqual([right.address.text, right.port]);
      }
    }
  });
});

describe('encodeBindingRequest', () => {
  it('is the 20-byte header of a Binding request and a FINGERPRINT, 28 bytes', () => {
    const r = encodeBindingRequest(TXID);
    expect(Buffer.from(r.subarray(0, 24)).toString('hex')).toBe('00010008' + '2112a442' + 'b7e7a701bc34d686fa87dfae' + '80280004');
    expect(new DataView(r.buffer).getUint32(24)).toBe((crc32(r.subarray(0, 20)) ^ 0x5354554e) >>> 0);
  });

  it('refuses a transaction id that is not 12 bytes (a bug, not input)', () => {
    expect(() => encodeBindingRequest(new Uint8Array(16))).toThrow('a transaction id has 12 bytes, got 16');
  });
});

describe('decodeBindingResponse, edge cases', () => {
  const ok = (attrs: readonly Attr[], fp = false): StunAnswer => decodeBindingResponse(message(0x0101, TXID, attrs, fp), TXID);

  it('MAPPED-ADDRESS alone (an RFC 3489 server) is used; XOR-MAPPED-ADDRESS wins when both come', () => {
    expect(ok([plainV4([198, 51, 100, 7], 4000)])).toMatchObject({ ok: true, address: { text: '198.51.100.7' }, port: 4000, from: 'mapped-address' });
    expect(ok([plainV4([198, 51, 100, 7], 4000), xorV4([203, 0, 113, 9], 5000)], true)).toMatchObject({ address: { text: '203.0.113.9' }, port: 5000, from: 'xor-mapped-address' });
  });

  it('attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5); unknown optional ones always', () => {
    expect(ok([[0x0008, new Uint8Array(20)], xorV4([203, 0, 113, 9], 5000)])).toMatchObject({ ok: false, reason: 'address.missing' });
    expect(ok([[0x802b, new Uint8Array(8)], [0xc057, new Uint8Array(3)], xorV4([203, 0, 113, 9], 5000)])).toMatchObject({ ok: true, port: 5000 });
  });

  it('an unknown comprehension-required attribute discards the answer (RFC 8489 §7.3.3)', () => {
    expect(ok([xorV4([203, 0, 113, 9], 5000), [0x0042, new Uint8Array(4)]])).toEqual({ ok: false, reason: 'attribute.unknown', detail: '0x0042' });
  });

  it('an error answer says its code and phrase, printable only', () => {
    const a = decodeBindingResponse(message(0x0111, TXID, [[0x0009, Uint8Array.from([0, 0, 4, 20, ...ascii('Bad\x1b[31m Request')])]]), TXID);
    expect(a).toEqual({ ok: false, reason: 'error-response', detail: '420 Bad?[31m Request' });
  });

  it('SOFTWARE is cut to 60 printable characters', () => {
    const a = ok([[0x8022, ascii(`${'x'.repeat(100)}\n`)], xorV4([203, 0, 113, 9], 5000)]);
    expect(a.ok && a.software).toBe(`${'x'.repeat(60)}...`);
  });

  it('lengths are the sender\'s claims and are checked', () => {
    // The header's length longer or shorter than what arrived, or not a multiple of 4.
    const good = message(0x0101, TXID, [xorV4([203, 0, 113, 9], 5000)]);
    for (const len of [good.length - 20 + 4, good.length - 20 - 4, good.length - 20 - 1]) {
      const m = Uint8Array.from(good);
      new DataView(m.buffer).setUint16(2, len);
      expect(reasonOf(decodeBindingResponse(m, TXID)), `length ${len}`).toBe('length');
    }
    // An attribute whose length runs past the message.
    const m = Uint8Array.from(good);
    new DataView(m.buffer).setUint16(22, 200);
    expect(reasonOf(decodeBindingResponse(m, TXID))).toBe('attribute');
    // An attribute length that fits but whose padding does not.
    const tail = message(0x0101, TXID, [xorV4([203, 0, 113, 9], 5000), [0x8023, new Uint8Array(4)]]);
    new DataView(tail.buffer).setUint16(34, 5);
    expect(reasonOf(decodeBindingResponse(tail, TXID))).toBe('attribute');
  });

  it('FINGERPRINT must be last and right', () => {
    expect(reasonOf(decodeBindingResponse(message(0x0101, TXID, [[0x8028, new Uint8Array(4)], xorV4([203, 0, 113, 9], 5000)]), TXID))).toBe('attribute');
    const m = message(0x0101, TXID, [xorV4([203, 0, 113, 9], 5000)], true);
    m[m.length - 1]! ^= 1;
    expect(reasonOf(decodeBindingResponse(m, TXID))).toBe('fingerprint');
  });

  it('an address attribute of the wrong size or family is refused', () => {
    expect(reasonOf(ok([[0x0020, Uint8Array.from([0, 1, 0, 0, 1, 2, 3])]]))).toBe('address.bad');
    expect(reasonOf(ok([[0x0020, Uint8Array.from([0, 3, 0, 0, 1, 2, 3, 4])]]))).toBe('address.bad');
    expect(reasonOf(ok([[0x0020, Uint8Array.from([0, 2, 0, 0, 1, 2, 3, 4])]]))).toBe('address.bad');
    // An IPv6 attribute carrying an IPv4-mapped address is not an IPv6 answer.
    const mapped = Uint8Array.from([0, 2, 0, 0, ...new Uint8Array(10), 0xff, 0xff, 1, 2, 3, 4]);
    const x = Uint8Array.from([0x21, 0x12, 0xa4, 0x42, ...TXID]);
    for (let i = 0; i < 16; i++) mapped[4 + i]! ^= x[i]!;
    expect(reasonOf(ok([[0x0020, mapped]]))).toBe('address.bad');
  });

  it('a success answer without an address says so', () => {
    expect(reasonOf(ok([]))).toBe('address.missing');
  });

  it('random bytes, and random bytes behind a valid header, never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        expect(decodeBindingResponse(b, TXID).ok).toBe(false);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }).map((b) => b.subarray(0, b.length & ~3)), (body) => {
        const m = message(0x0101, TXID, []);
        const all = new Uint8Array(20 + body.length);
        all.set(m.subarray(0, 20));
        all.set(body, 20);
        new DataView(all.buffer).setUint16(2, body.length);
        const a = decodeBindingResponse(all, TXID);
        if (a.ok) expect([4, 6]).toContain(a.address.family);
      }),
    );
  });
});
