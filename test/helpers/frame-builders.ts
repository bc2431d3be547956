// Hand-built link/IP/UDP/TCP frames for decoder and pipeline tests. Test helper, pure.
// Lengths default to the honest values; every field a test wants to lie about can be overridden.
import { concat } from '../../src/bytes.js';
import { parseAddress } from '../../src/net/address.js';
import type { LinkType } from '../../server/core/frame.js';

export function addr(text: string): Uint8Array {
  const a = parseAddress(text);
  if (!a) throw new Error(`not an address: ${text}`);
  return a.bytes;
}

/** 16 bytes; an IPv4 address (or one parseAddress folded from ::ffff:a.b.c.d) becomes IPv4-mapped. */
export function addr16(text: string): Uint8Array {
  const b = addr(text);
  return b.length === 16 ? b : Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...b]);
}

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

export interface UdpSpec {
  srcPort?: number;
  dstPort?: number;
  payload?: Uint8Array;
  /** UDP length field; default 8 + payload length. */
  length?: number;
}

export function udp(s: UdpSpec = {}): Uint8Array {
  const payload = s.payload ?? new Uint8Array(0);
  const length = s.length ?? 8 + payload.length;
  return concat(Uint8Array.from([...u16(s.srcPort ?? 40000), ...u16(s.dstPort ?? 62201), ...u16(length), 0, 0]), payload);
}

export interface TcpSpec {
  srcPort?: number;
  dstPort?: number;
  flags?: number;
  payload?: Uint8Array;
  /** Data offset in 32-bit words; default 5 + options/4. */
  dataOffsetWords?: number;
  options?: Uint8Array;
}

export function tcp(s: TcpSpec = {}): Uint8Array {
  const options = s.options ?? new Uint8Array(0);
  const words = s.dataOffsetWords ?? 5 + options.length / 4;
  const header = Uint8Array.from([
    ...u16(s.srcPort ?? 40000),
    ...u16(s.dstPort ?? 22),
    0, 0, 0, 1, // seq
    0, 0, 0, 0, // ack
    (words & 0x0f) << 4,
    s.flags ?? 0x02,
    ...u16(65535), // window
    0, 0, // checksum
    0, 0, // urgent
  ]);
  return concat(header, options, s.payload ?? new Uint8Array(0));
}

export interface Ipv4Spec {
  src?: string;
  dst?: string;
  proto?: number;
  body: Uint8Array;
  /** IHL in words; default 5 + options/4. */
  ihlWords?: number;
  options?: Uint8Array;
  totalLength?: number;
  /** The 16-bit flags+fragment-offset field; default DF (0x4000). */
  flagsFragment?: number;
  /** Version nibble; default 4. */
  version?: number;
}

export function ipv4(s: Ipv4Spec): Uint8Array {
  const options = s.options ?? new Uint8Array(0);
  const ihl = s.ihlWords ?? 5 + options.length / 4;
  const total = s.totalLength ?? 20 + options.length + s.body.length;
  const header = Uint8Array.from([
    ((s.version ?? 4) << 4) | (ihl & 0x0f),
    0,
    ...u16(total),
    0x12, 0x34, // id
    ...u16(s.flagsFragment ?? 0x4000),
    64,
    s.proto ?? 17,
    0, 0, // checksum (the decoder does not check it; loopback captures carry partial sums)
    ...addr(s.src ?? '192.0.2.1'),
    ...addr(s.dst ?? '198.51.100.2'),
  ]);
  return concat(header, options, s.body);
}

export interface Ipv6Extension {
  /** The header's own type: 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, ... */
  type: number;
  /** Total length in bytes, a multiple of 8 (default 8). */
  bytes?: number;
  /** Override the hdr-ext-len byte. */
  lengthByte?: number;
}

export interface Ipv6Spec {
  src?: string;
  dst?: string;
  /** Upper-layer protocol after the extension headers; default 17. */
  proto?: number;
  body: Uint8Array;
  extensions?: Ipv6Extension[];
  payloadLength?: number;
  version?: number;
}

export function ipv6(s: Ipv6Spec): Uint8Array {
  const ext = s.extensions ?? [];
  const parts: Uint8Array[] = [];
  ext.forEach((e, i) => {
    const n = e.bytes ?? 8;
    const h = new Uint8Array(n);
    h[0] = ext[i + 1]?.type ?? s.proto ?? 17;
    h[1] = e.lengthByte ?? n / 8 - 1;
    parts.push(h);
  });
  const payload = concat(...parts, s.body);
  const header = Uint8Array.from([
    ((s.version ?? 6) << 4) | 0,
    0, 0, 0,
    ...u16(s.payloadLength ?? payload.length),
    ext[0]?.type ?? s.proto ?? 17,
    64,
    ...addr16(s.src ?? '2001:db8::1'),
    ...addr16(s.dst ?? '2001:db8::2'),
  ]);
  return concat(header, payload);
}

const MAC_A = [0x02, 0, 0, 0, 0, 0xaa];
const MAC_B = [0x02, 0, 0, 0, 0, 0xbb];

export function ethernet(ip: Uint8Array, o: { ethertype?: number; vlan?: number; innerType?: number } = {}): Uint8Array {
  const type = o.ethertype ?? ((ip[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800);
  if (o.vlan !== undefined) {
    return concat(Uint8Array.from([...MAC_A, ...MAC_B, 0x81, 0x00, ...u16(o.vlan), ...u16(o.innerType ?? type)]), ip);
  }
  return concat(Uint8Array.from([...MAC_A, ...MAC_B, ...u16(type)]), ip);
}

/** Linux cooked capture v1 (DLT_LINUX_SLL); pktType 0 = to us, 4 = outgoing. */
export function sll(ip: Uint8Array, o: { protocol?: number; pktType?: number } = {}): Uint8Array {
  const protocol = o.protocol ?? ((ip[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800);
  return concat(
    Uint8Array.from([...u16(o.pktType ?? 0), ...u16(1), ...u16(6), ...MAC_A, 0, 0, ...u16(protocol)]),
    ip,
  );
}

/** Linux cooked capture v2 (DLT_LINUX_SLL2). */
export function sll2(ip: Uint8Array, o: { protocol?: number; pktType?: number } = {}): Uint8Array {
  const protocol = o.protocol ?? ((ip[0] ?? 0) >> 4 === 6 ? 0x86dd : 0x0800);
  return concat(
    Uint8Array.from([...u16(protocol), 0, 0, 0, 0, 0, 1, ...u16(1), o.pktType ?? 0, 6, ...MAC_A, 0, 0]),
    ip,
  );
}

/** BSD loopback (DLT_NULL): a 4-byte AF_ value in the given byte order. */
export function nullLink(ip: Uint8Array, family: number, littleEndian = true): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, family, littleEndian);
  return concat(h, ip);
}

/** An IP packet framed for a link type, as libpcap would hand it over. */
export function frameOn(link: LinkType, ip: Uint8Array): Uint8Array {
  switch (link) {
    case 'ETHERNET':
      return ethernet(ip);
    case 'LINUX_SLL':
      return sll(ip);
    case 'LINUX_SLL2':
      return sll2(ip);
    case 'RAW':
      return ip;
    case 'NULL':
      return nullLink(ip, (ip[0] ?? 0) >> 4 === 6 ? 30 : 2);
  }
}
