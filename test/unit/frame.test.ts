import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeFrame,
  FRAME_REJECT_REASONS,
  isFrameReject,
  linkTypeFromCap,
  MAX_IPV6_EXTENSION_HEADERS,
  TCP_ACK,
  TCP_SYN,
  type Frame,
  type FrameReject,
  type FrameRejectReason,
  type LinkType,
} from '../../server/core/frame.js';
import { concat } from '../../src/bytes.js';
import { ethernet, frameOn, ipv4, ipv6, nullLink, sll, sll2, tcp, udp } from '../helpers/frame-builders.js';

const LINK_TYPES: LinkType[] = ['ETHERNET', 'LINUX_SLL', 'LINUX_SLL2', 'RAW', 'NULL'];
const PAYLOAD = Uint8Array.from({ length: 120 }, (_, i) => (i * 7 + 1) & 0xff);


function decode(link: LinkType, bytes: Uint8Array, nbytes = bytes.length): Frame | FrameReject {
  return decodeFrame(link, bytes, nbytes);
}

function ok(r: Frame | FrameReject): Frame {
  if (isFrameReject(r)) throw new Error(`expected a frame, got ${r.reject}`);
  return r;
}

const v4udp = (): Uint8Array =>
  ipv4({ src: '192.0.2.1', dst: '198.51.100.2', body: udp({ srcPort: 40000, dstPort: 62201, payload: PAYLOAD }) });
const v6udp = (): Uint8Array =>
  ipv6({ src: '2001:db8::1', dst: '2001:db8::2', body: udp({ srcPort: 40000, dstPort: 62201, payload: PAYLOAD }) });

describe('decodeFrame: good frames', () => {
  for (const link of LINK_TYPES) {
    it(`${link}: IPv4 UDP`, () => {
      const f = ok(decode(link, frameOn(link, v4udp())));
      expect(f.src).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]), text: '192.0.2.1' });
      expect(f.dst.text).toBe('198.51.100.2');
      expect(f).toMatchObject({ proto: 'udp', srcPort: 40000, dstPort: 62201, tcpFlags: 0 });
      expect(f.payload).toEqual(PAYLOAD);
    });

    it(`${link}: IPv6 UDP`, () => {
      const f = ok(decode(link, frameOn(link, v6udp())));
      expect(f.src.family).toBe(6);
      expect(f.src.text).toBe('2001:db8::1');
      expect(f.dst.text).toBe('2001:db8::2');
      expect(f).toMatchObject({ proto: 'udp', srcPort: 40000, dstPort: 62201, tcpFlags: 0 });
      expect(f.payload).toEqual(PAYLOAD);
    });

    it(`${link}: IPv4 TCP SYN and IPv6 TCP with data`, () => {
      const syn = ok(decode(link, frameOn(link, ipv4({ proto: 6, body: tcp({ srcPort: 5555, dstPort: 7000, flags: TCP_SYN }) }))));
      expect(syn).toMatchObject({ proto: 'tcp', srcPort: 5555, dstPort: 7000, tcpFlags: TCP_SYN });
      expect(syn.payload.length).toBe(0);
      const data = Uint8Array.from([1, 2, 3]);
      const seg = tcp({ dstPort: 8000, flags: TCP_ACK | 0x08, payload: data, options: Uint8Array.from([1, 1, 1, 0]) });
      const f = ok(decode(link, frameOn(link, ipv6({ proto: 6, body: seg }))));
      expect(f).toMatchObject({ proto: 'tcp', dstPort: 8000, tcpFlags: TCP_ACK | 0x08 });
      expect(f.payload).toEqual(data);
    });
  }

  it('lo as libpcap sees it: 14-byte Ethernet header, 106 bytes for a 64-byte payload', () => {
    const bytes = ethernet(ipv4({ src: '127.0.0.1', dst: '127.0.0.1', body: udp({ payload: new Uint8Array(64) }) }));
    expect(bytes.length).toBe(106);
    expect(ok(decode('ETHERNET', bytes)).payload.length).toBe(64);
  });

  it('one 802.1Q VLAN tag, IPv4 and IPv6', () => {
    expect(ok(decode('ETHERNET', ethernet(v4udp(), { vlan: 42 }))).payload).toEqual(PAYLOAD);
    expect(ok(decode('ETHERNET', ethernet(v6udp(), { vlan: 0x0fff }))).src.text).toBe('2001:db8::1');
  });

  it('IPv4 options (IHL > 5) are skipped', () => {
    const ip = ipv4({ options: Uint8Array.from([1, 1, 1, 0, 1, 1, 1, 0]), body: udp({ dstPort: 9, payload: PAYLOAD }) });
    expect(ok(decode('RAW', ip))).toMatchObject({ dstPort: 9, payload: PAYLOAD });
  });

  it('IPv6 hop-by-hop, routing and destination options headers are walked', () => {
    const ip = ipv6({
      body: udp({ dstPort: 62201, payload: PAYLOAD }),
      extensions: [{ type: 0 }, { type: 43, bytes: 24 }, { type: 60, bytes: 16 }],
    });
    expect(ok(decode('RAW', ip))).toMatchObject({ proto: 'udp', dstPort: 62201, payload: PAYLOAD });
  });

  it(`walks exactly ${MAX_IPV6_EXTENSION_HEADERS} extension headers`, () => {
    const extensions = Array.from({ length: MAX_IPV6_EXTENSION_HEADERS }, () => ({ type: 60 }));
    expect(ok(decode('RAW', ipv6({ body: udp({ payload: PAYLOAD }), extensions }))).payload).toEqual(PAYLOAD);
  });

  it('bounds come from the IP length: Ethernet padding after the packet is not payload', () => {
    const ip = ipv4({ body: udp({ payload: Uint8Array.from([7]) }) }); // 29 bytes, padded to 46
    const padded = concat(ethernet(ip), new Uint8Array(46 - ip.length).fill(0xee));
    expect(ok(decode('ETHERNET', padded)).payload).toEqual(Uint8Array.from([7]));
  });

  it('a UDP length shorter than the IP payload trims the payload (as the kernel does)', () => {
    const ip = ipv4({ body: udp({ payload: PAYLOAD, length: 8 + 10 }) });
    expect(ok(decode('RAW', ip)).payload).toEqual(PAYLOAD.subarray(0, 10));
  });

  it('bytes past nbytes are never read: a buffer bigger than the frame changes nothing', () => {
    const frame = ethernet(v4udp());
    const big = new Uint8Array(65535).fill(0xff);
    big.set(frame);
    const f = ok(decode('ETHERNET', big, frame.length));
    expect(f.payload).toEqual(PAYLOAD);
    // The same frame one byte short: the IP length now claims a byte cap did not copy.
    expect(decode('ETHERNET', big, frame.length - 1)).toEqual({ reject: 'ip.length' });
  });

  it('addresses are copies; the payload is a view of the input (the capture copies it)', () => {
    const bytes = frameOn('ETHERNET', v4udp());
    const f = ok(decode('ETHERNET', bytes));
    bytes.fill(0);
    expect(f.src.text).toBe('192.0.2.1');
    expect(Array.from(f.src.bytes)).toEqual([192, 0, 2, 1]);
    expect(f.payload.every((x) => x === 0)).toBe(true);
  });

  it('addresses are copies even when the input is a Buffer (Buffer#slice is a view)', () => {
    const bytes = Buffer.from(frameOn('ETHERNET', v4udp()));
    const f = ok(decode('ETHERNET', bytes));
    bytes.fill(0);
    expect(f.src.text).toBe('192.0.2.1');
    expect(Array.from(f.src.bytes)).toEqual([192, 0, 2, 1]);
  });

  it('an IPv4-mapped IPv6 source is folded to IPv4 (address.ts canonical form)', () => {
    const f = ok(decode('RAW', ipv6({ src: '::ffff:192.0.2.9', body: udp({ payload: PAYLOAD }) })));
    expect(f.src).toMatchObject({ family: 4, text: '192.0.2.9' });
  });

  it('NULL: AF_INET6 as 10, 24, 28 and 30, little- and big-endian', () => {
    for (const family of [10, 24, 28, 30]) {
      for (const le of [true, false]) {
        expect(ok(decode('NULL', nullLink(v6udp(), family, le))).src.text).toBe('2001:db8::1');
      }
    }
    expect(ok(decode('NULL', nullLink(v4udp(), 2, false))).src.text).toBe('192.0.2.1');
  });
});

// One or more frames for every reason decodeFrame can give.
const REJECT_CASES: [string, FrameRejectReason, LinkType, Uint8Array, number?][] = [
  ['nbytes beyond the buffer', 'frame.nbytes', 'RAW', v4udp(), v4udp().length + 1],
  ['negative nbytes', 'frame.nbytes', 'RAW', v4udp(), -1],
  ['fractional nbytes', 'frame.nbytes', 'RAW', v4udp(), 3.5],
  ['Ethernet runt', 'frame.short', 'ETHERNET', new Uint8Array(13)],
  ['VLAN tag cut', 'frame.short', 'ETHERNET', ethernet(v4udp(), { vlan: 1 }).subarray(0, 17)],
  ['SLL runt', 'frame.short', 'LINUX_SLL', new Uint8Array(15)],
  ['SLL2 runt', 'frame.short', 'LINUX_SLL2', new Uint8Array(19)],
  ['NULL runt', 'frame.short', 'NULL', new Uint8Array(3)],
  ['RAW empty', 'frame.short', 'RAW', new Uint8Array(0)],
  ['unknown link type', 'frame.linktype', 'IEEE802_11_RADIO' as LinkType, ethernet(v4udp())],
  ['ARP', 'frame.ethertype', 'ETHERNET', ethernet(v4udp(), { ethertype: 0x0806 })],
  ['802.3 length field', 'frame.ethertype', 'ETHERNET', ethernet(v4udp(), { ethertype: 100 })],
  ['QinQ (two tags)', 'frame.ethertype', 'ETHERNET', ethernet(v4udp(), { vlan: 1, innerType: 0x8100 })],
  ['SLL with ARP', 'frame.ethertype', 'LINUX_SLL', sll(v4udp(), { protocol: 0x0806 })],
  ['SLL2 with ARP', 'frame.ethertype', 'LINUX_SLL2', sll2(v4udp(), { protocol: 0x0806 })],
  ['NULL with AF 7', 'frame.ethertype', 'NULL', nullLink(v4udp(), 7)],
  ['SLL outgoing', 'frame.outgoing', 'LINUX_SLL', sll(v4udp(), { pktType: 4 })],
  ['SLL2 outgoing', 'frame.outgoing', 'LINUX_SLL2', sll2(v4udp(), { pktType: 4 })],
  ['ethertype IPv4, version 6', 'ip.version', 'ETHERNET', ethernet(v6udp(), { ethertype: 0x0800 })],
  ['ethertype IPv6, version 4', 'ip.version', 'ETHERNET', ethernet(v4udp(), { ethertype: 0x86dd })],
  ['RAW version 5', 'ip.version', 'RAW', ipv4({ version: 5, body: udp() })],
  ['NULL AF_INET6, version 4', 'ip.version', 'NULL', nullLink(v4udp(), 30)],
  ['Ethernet header only', 'ip.header', 'ETHERNET', ethernet(new Uint8Array(0), { ethertype: 0x0800 })],
  ['IPv4 header cut', 'ip.header', 'RAW', v4udp().subarray(0, 19)],
  ['IPv4 IHL 4', 'ip.header', 'RAW', ipv4({ ihlWords: 4, body: udp() })],
  ['IPv4 IHL beyond capture', 'ip.header', 'RAW', ipv4({ ihlWords: 15, body: new Uint8Array(8) })],
  ['IPv6 header cut', 'ip.header', 'RAW', v6udp().subarray(0, 39)],
  ['IPv6 extension header cut', 'ip.header', 'RAW', ipv6({ body: new Uint8Array(0), extensions: [{ type: 0 }], payloadLength: 1 })],
  ['IPv6 extension length beyond payload', 'ip.header', 'RAW', ipv6({ body: udp(), extensions: [{ type: 60, lengthByte: 9 }] })],
  ['IPv4 total length beyond capture', 'ip.length', 'RAW', ipv4({ totalLength: 200, body: udp() })],
  ['IPv4 total length below header', 'ip.length', 'RAW', ipv4({ totalLength: 19, body: udp() })],
  ['IPv6 payload length beyond capture', 'ip.length', 'RAW', ipv6({ payloadLength: 500, body: udp() })],
  ['IPv4 first fragment (MF)', 'ip.fragment', 'RAW', ipv4({ flagsFragment: 0x2000, body: udp({ payload: PAYLOAD }) })],
  ['IPv4 later fragment', 'ip.fragment', 'RAW', ipv4({ flagsFragment: 0x0010, body: PAYLOAD })],
  ['IPv4 last fragment', 'ip.fragment', 'RAW', ipv4({ flagsFragment: 0x0001, body: PAYLOAD })],
  ['IPv6 fragment header', 'ip.fragment', 'RAW', ipv6({ body: udp({ payload: PAYLOAD }), extensions: [{ type: 44 }] })],
  ['IPv6 fragment after hop-by-hop', 'ip.fragment', 'RAW', ipv6({ body: udp(), extensions: [{ type: 0 }, { type: 44 }] })],
  [
    'too many IPv6 extension headers',
    'ip.extensions',
    'RAW',
    ipv6({ body: udp(), extensions: Array.from({ length: MAX_IPV6_EXTENSION_HEADERS + 1 }, () => ({ type: 60 })) }),
  ],
  ['ICMP', 'ip.proto', 'RAW', ipv4({ proto: 1, body: new Uint8Array(8) })],
  ['IPv6 no next header', 'ip.proto', 'RAW', ipv6({ proto: 59, body: new Uint8Array(0) })],
  ['IPv6 AH', 'ip.proto', 'RAW', ipv6({ proto: 51, body: new Uint8Array(16) })],
  ['UDP header cut by IP length', 'udp.header', 'RAW', ipv4({ body: udp().subarray(0, 7) })],
  ['IPv6 jumbo (payload length 0)', 'udp.header', 'RAW', ipv6({ payloadLength: 0, body: udp() })],
  ['UDP length 7', 'udp.length', 'RAW', ipv4({ body: udp({ length: 7 }) })],
  ['UDP length beyond IP payload', 'udp.length', 'RAW', ipv4({ body: udp({ payload: PAYLOAD, length: 8 + 121 }) })],
  ['IPv6 UDP length 0', 'udp.length', 'RAW', ipv6({ body: udp({ payload: PAYLOAD, length: 0 }) })],
  ['TCP header cut', 'tcp.header', 'RAW', ipv4({ proto: 6, body: tcp().subarray(0, 19) })],
  ['TCP data offset 4', 'tcp.header', 'RAW', ipv4({ proto: 6, body: tcp({ dataOffsetWords: 4 }) })],
  ['TCP data offset beyond IP payload', 'tcp.header', 'RAW', ipv6({ proto: 6, body: tcp({ dataOffsetWords: 15 }) })],
];

describe('decodeFrame: rejections', () => {
  it.each(REJECT_CASES)('%s -> %s', (_name, reason, link, bytes, nbytes) => {
    expect(decode(link, bytes, nbytes ?? bytes.length)).toEqual({ reject: reason });
  });

  it('every reason has a case above', () => {
    const covered = new Set(REJECT_CASES.map((c) => c[1]));
    expect(FRAME_REJECT_REASONS.filter((r) => !covered.has(r))).toEqual([]);
  });
});

describe('linkTypeFromCap', () => {
  it.each([
    ['ETHERNET', 'ETHERNET'],
    ['LINKTYPE_LINUX_SLL', 'LINUX_SLL'],
    ['Unknown linktype 276', 'LINUX_SLL2'],
    ['RAW', 'RAW'],
    ['Unknown linktype 228', 'RAW'],
    ['Unknown linktype 229', 'RAW'],
    ['NULL', 'NULL'],
    ['Unknown linktype 108', 'NULL'],
    ['IEEE802_11_RADIO', undefined],
    ['Unknown linktype 147', undefined],
  ])('%s -> %s', (name, expected) => {
    expect(linkTypeFromCap(name)).toBe(expected);
  });
});

describe('decodeFrame never throws', () => {
  const reasons = new Set<string>(FRAME_REJECT_REASONS);
  const linkArb = fc.constantFrom<LinkType>(...LINK_TYPES);

  function wellFormed(r: Frame | FrameReject, nbytes: number, bytes: Uint8Array): void {
    if (isFrameReject(r)) {
      expect(reasons.has(r.reject)).toBe(true);
      return;
    }
    // A frame's payload lies inside bytes[0, nbytes).
    expect(r.payload.buffer).toBe(bytes.buffer);
    expect(r.payload.byteOffset - bytes.byteOffset + r.payload.length).toBeLessThanOrEqual(nbytes);
    expect(r.srcPort).toBeGreaterThanOrEqual(0);
    expect(r.srcPort).toBeLessThan(65536);
  }

  it('on random bytes and any nbytes up to their length', () => {
    fc.assert(
      fc.property(linkArb, fc.uint8Array({ maxLength: 200 }), fc.nat(), (link, bytes, n) => {
        const nbytes = bytes.length === 0 ? 0 : n % (bytes.length + 1);
        wellFormed(decodeFrame(link, bytes, nbytes), nbytes, bytes);
      }),
      { numRuns: 5000 },
    );
  });

  // Random bytes rarely get past the link header; start from valid frames and damage them.
  const validArb = fc
    .tuple(
      linkArb,
      fc.boolean(),
      fc.boolean(),
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.constantFrom(0, 43, 60), { maxLength: 3 }),
    )
    .map(([link, v6, isTcp, payload, ext]) => {
      const body = isTcp ? tcp({ payload }) : udp({ payload });
      const proto = isTcp ? 6 : 17;
      const ip = v6 ? ipv6({ proto, body, extensions: ext.map((type) => ({ type })) }) : ipv4({ proto, body });
      return { link, bytes: frameOn(link, ip) };
    });

  it('valid frames decode; every truncation of one is a rejection', () => {
    fc.assert(
      fc.property(validArb, fc.nat(), ({ link, bytes }, cut) => {
        expect(isFrameReject(decodeFrame(link, bytes, bytes.length))).toBe(false);
        const nbytes = cut % bytes.length;
        const r = decodeFrame(link, bytes, nbytes);
        expect(isFrameReject(r)).toBe(true);
        wellFormed(r, nbytes, bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('byte flips of valid frames give a frame or a reason', () => {
    fc.assert(
      fc.property(validArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), ({ link, bytes }, flips) => {
        const b = Uint8Array.from(bytes);
        for (const [at, v] of flips) b[at % b.length] = v;
        wellFormed(decodeFrame(link, b, b.length), b.length, b);
      }),
      { numRuns: 5000 },
    );
  });
});
