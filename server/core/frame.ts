// Decodes one captured link-layer frame down to UDP/TCP ports and payload. Pure.
// Every byte here is the sender's: bounds come from `nbytes` (what cap copied) and from the
// IP/UDP/TCP length fields, never from the buffer's size; a failed check is a reason, never a throw.
import { addressFromBytes, type Address } from '../../src/net/address.js';

/**
 * Link types we decode. cap 0.2.1's `open()` reports 'ETHERNET', 'LINKTYPE_LINUX_SLL', 'RAW',
 * 'NULL', 'IEEE802_11_RADIO' or 'Unknown linktype N'; linkTypeFromCap maps those names here.
 */
export type LinkType = 'ETHERNET' | 'LINUX_SLL' | 'LINUX_SLL2' | 'RAW' | 'NULL';

export type FrameRejectReason =
  | 'frame.nbytes' // nbytes is not within the buffer: a caller's bug, not the sender's
  | 'frame.short' // shorter than its link-layer header
  | 'frame.linktype' // a link type we do not decode
  | 'frame.ethertype' // not IPv4/IPv6 (ARP, QinQ, 802.3 length field, unknown AF_ value)
  | 'frame.outgoing' // Linux cooked capture says the host sent it: it is not a knock to us
  | 'ip.version' // the IP version nibble disagrees with the link layer
  | 'ip.header' // IP header (or an IPv6 extension header) does not fit
  | 'ip.length' // IP total/payload length disagrees with the header or the bytes captured
  | 'ip.fragment' // any IPv4 fragment, any IPv6 fragment header
  | 'ip.extensions' // more IPv6 extension headers than we walk
  | 'ip.proto' // neither UDP nor TCP (after extension headers)
  | 'udp.header' // fewer than 8 bytes for the UDP header
  | 'udp.length' // UDP length field below 8 or beyond the IP payload
  | 'tcp.header'; // TCP header shorter than 20 bytes, or data offset out of range

export const FRAME_REJECT_REASONS: readonly FrameRejectReason[] = [
  'frame.nbytes',
  'frame.short',
  'frame.linktype',
  'frame.ethertype',
  'frame.outgoing',
  'ip.version',
  'ip.header',
  'ip.length',
  'ip.fragment',
  'ip.extensions',
  'ip.proto',
  'udp.header',
  'udp.length',
  'tcp.header',
];

export interface FrameReject {
  readonly reject: FrameRejectReason;
}

export interface Frame {
  readonly src: Address;
  readonly dst: Address;
  readonly proto: 'udp' | 'tcp';
  readonly srcPort: number;
  readonly dstPort: number;
  /** TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN, bit 7..0); 0 for UDP. */
  readonly tcpFlags: number;
  /**
   * UDP payload bounded by the UDP length, or TCP segment data bounded by the IP length.
   * A view into the input bytes: copy it before the input is reused.
   */
  readonly payload: Uint8Array;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

/** How many IPv6 extension headers we walk before giving up (RFC 8200 §4.1 expects few). */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERNET_HEADER_BYTES = 14;
const VLAN_TAG_BYTES = 4;
const SLL_HEADER_BYTES = 16;
const SLL2_HEADER_BYTES = 20;
const NULL_HEADER_BYTES = 4;
const SLL_PACKET_OUTGOING = 4; // linux/if_packet.h PACKET_OUTGOING
const IPV4_MIN_HEADER_BYTES = 20;
const IPV6_HEADER_BYTES = 40;
const UDP_HEADER_BYTES = 8;
const TCP_MIN_HEADER_BYTES = 20;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_DESTINATION_OPTIONS = 60;

// One frozen object per reason: a flood of garbage allocates nothing on the reject path.
const REJECTS = Object.fromEntries(FRAME_REJECT_REASONS.map((r) => [r, Object.freeze({ reject: r })])) as {
  readonly [R in FrameRejectReason]: FrameReject;
};

export function isFrameReject(x: Frame | FrameReject): x is FrameReject {
  return (x as FrameReject).reject !== undefined;
}

/** Maps the link-type name cap's `open()` returns to ours; undefined for the ones we cannot decode. */
export function linkTypeFromCap(name: string): LinkType | undefined {
  switch (name) {
    case 'ETHERNET':
      return 'ETHERNET';
    case 'LINKTYPE_LINUX_SLL':
      return 'LINUX_SLL';
    case 'RAW':
    case 'Unknown linktype 101': // LINKTYPE_RAW as a DLT number
    case 'Unknown linktype 228': // DLT_IPV4
    case 'Unknown linktype 229': // DLT_IPV6
      return 'RAW';
    case 'NULL':
    case 'Unknown linktype 108': // DLT_LOOP (OpenBSD): network-order AF_; decodeNull reads both orders
      return 'NULL';
    case 'Unknown linktype 276': // DLT_LINUX_SLL2
      return 'LINUX_SLL2';
    default:
      return undefined;
  }
}

/**
 * Decodes bytes[0, nbytes) captured on a link of type linkType.
 * Returns a Frame for an unfragmented IPv4/IPv6 UDP or TCP packet, else the first failed check.
 */
export function decodeFrame(linkType: LinkType, bytes: Uint8Array, nbytes: number): Frame | FrameReject {
  // nbytes comes from cap, not the sender; still, never read past what exists.
  if (!Number.isInteger(nbytes) || nbytes < 0 || nbytes > bytes.length) return REJECTS['frame.nbytes'];
  const b = bytes;
  let off: number;
  let ipVersion: number; // what the link layer says; 0 = look at the version nibble (raw IP)
  switch (linkType) {
    case 'ETHERNET': {
      // The sender chose the frame length; a runt cannot hold the 14-byte header.
      if (nbytes < ETHERNET_HEADER_BYTES) return REJECTS['frame.short'];
      let type = u16(b, 12);
      off = ETHERNET_HEADER_BYTES;
      if (type === ETHERTYPE_VLAN) {
        // One 802.1Q tag: TCI(2) then the real ethertype. A second tag (QinQ) is not IP below.
        if (nbytes < ETHERNET_HEADER_BYTES + VLAN_TAG_BYTES) return REJECTS['frame.short'];
        type = u16(b, 16);
        off += VLAN_TAG_BYTES;
      }
      ipVersion = ethertypeVersion(type);
      break;
    }
    case 'LINUX_SLL': {
      // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
      if (nbytes < SLL_HEADER_BYTES) return REJECTS['frame.short'];
      if (u16(b, 0) === SLL_PACKET_OUTGOING) return REJECTS['frame.outgoing'];
      ipVersion = ethertypeVersion(u16(b, 14));
      off = SLL_HEADER_BYTES;
      break;
    }
    case 'LINUX_SLL2': {
      // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
      if (nbytes < SLL2_HEADER_BYTES) return REJECTS['frame.short'];
      if (b[10] === SLL_PACKET_OUTGOING) return REJECTS['frame.outgoing'];
      ipVersion = ethertypeVersion(u16(b, 0));
      off = SLL2_HEADER_BYTES;
      break;
    }
    case 'RAW':
      if (nbytes < 1) return REJECTS['frame.short'];
      ipVersion = 0;
      off = 0;
      break;
    case 'NULL': {
      // A 4-byte AF_ value in the capturing host's byte order (DLT_LOOP: network order).
      if (nbytes < NULL_HEADER_BYTES) return REJECTS['frame.short'];
      ipVersion = nullFamilyVersion(b);
      off = NULL_HEADER_BYTES;
      break;
    }
    default:
      // linkType is typed, but a JS caller (or cap) may hand us anything.
      return REJECTS['frame.linktype'];
  }
  if (ipVersion < 0) return REJECTS['frame.ethertype'];
  // Raw IP with no bytes at all is not a header; below, every read is checked against nbytes.
  if (off >= nbytes) return REJECTS['ip.header'];
  const nibble = b[off]! >> 4;
  if (ipVersion === 0) ipVersion = nibble;
  if (nibble !== ipVersion) return REJECTS['ip.version'];
  if (ipVersion === 4) return decodeIpv4(b, off, nbytes);
  if (ipVersion === 6) return decodeIpv6(b, off, nbytes);
  return REJECTS['ip.version'];
}

function decodeIpv4(b: Uint8Array, off: number, end: number): Frame | FrameReject {
  // The sender claims a header; it must fit in what we captured before we read any field.
  if (off + IPV4_MIN_HEADER_BYTES > end) return REJECTS['ip.header'];
  const ihl = (b[off]! & 0x0f) * 4;
  // IHL is sender-chosen: below 5 words is malformed, beyond the capture is a lie or a truncation.
  if (ihl < IPV4_MIN_HEADER_BYTES || off + ihl > end) return REJECTS['ip.header'];
  const total = u16(b, off + 2);
  // Total length bounds everything after; it may be shorter than the frame (Ethernet padding)
  // but never shorter than its own header nor longer than the bytes we have.
  if (total < ihl || off + total > end) return REJECTS['ip.length'];
  // MF set or a non-zero offset: a piece of a datagram. We never reassemble (nor does the filter
  // see the ports of later pieces), so every fragment, first one included, is refused.
  if ((u16(b, off + 6) & 0x3fff) !== 0) return REJECTS['ip.fragment'];
  const proto = b[off + 9]!;
  const src = ipv4Address(b, off + 12);
  const dst = ipv4Address(b, off + 16);
  return decodeTransport(b, proto, off + ihl, off + total, src, dst);
}

function decodeIpv6(b: Uint8Array, off: number, end: number): Frame | FrameReject {
  // The fixed header is 40 bytes; a shorter capture cannot name a source.
  if (off + IPV6_HEADER_BYTES > end) return REJECTS['ip.header'];
  const payloadLength = u16(b, off + 4);
  const payloadEnd = off + IPV6_HEADER_BYTES + payloadLength;
  // The sender's payload length must fit in what we captured (0 = jumbogram: no payload here).
  if (payloadEnd > end) return REJECTS['ip.length'];
  let next = b[off + 6]!;
  let p = off + IPV6_HEADER_BYTES;
  // Walk at most MAX_IPV6_EXTENSION_HEADERS headers: the chain is the sender's and could be long.
  for (let i = 0; ; i++) {
    if (next === IPV6_FRAGMENT) return REJECTS['ip.fragment'];
    if (next !== IPV6_HOP_BY_HOP && next !== IPV6_ROUTING && next !== IPV6_DESTINATION_OPTIONS) break;
    if (i === MAX_IPV6_EXTENSION_HEADERS) return REJECTS['ip.extensions'];
    // next-header(1) hdr-ext-len(1) in 8-byte units not counting the first 8: both must fit.
    if (p + 2 > payloadEnd) return REJECTS['ip.header'];
    const len = (b[p + 1]! + 1) * 8;
    if (p + len > payloadEnd) return REJECTS['ip.header'];
    next = b[p]!;
    p += len;
  }
  const src = addressFromBytes(b.subarray(off + 8, off + 24));
  const dst = addressFromBytes(b.subarray(off + 24, off + 40));
  return decodeTransport(b, next, p, payloadEnd, src, dst);
}

function decodeTransport(
  b: Uint8Array,
  proto: number,
  off: number,
  end: number,
  src: Address,
  dst: Address,
): Frame | FrameReject {
  if (proto === PROTO_UDP) {
    // end is the IP layer's bound; the UDP header must fit inside it.
    if (off + UDP_HEADER_BYTES > end) return REJECTS['udp.header'];
    const udpLength = u16(b, off + 4);
    // The UDP length is the sender's too: at least its own header, never past the IP payload.
    // Shorter than the IP payload is allowed (the kernel trims the same way); we trim too.
    if (udpLength < UDP_HEADER_BYTES || off + udpLength > end) return REJECTS['udp.length'];
    return {
      src,
      dst,
      proto: 'udp',
      srcPort: u16(b, off),
      dstPort: u16(b, off + 2),
      tcpFlags: 0,
      payload: b.subarray(off + UDP_HEADER_BYTES, off + udpLength),
    };
  }
  if (proto === PROTO_TCP) {
    if (off + TCP_MIN_HEADER_BYTES > end) return REJECTS['tcp.header'];
    const dataOffset = (b[off + 12]! >> 4) * 4;
    // The data offset is sender-chosen: at least 5 words, and inside the IP payload.
    if (dataOffset < TCP_MIN_HEADER_BYTES || off + dataOffset > end) return REJECTS['tcp.header'];
    return {
      src,
      dst,
      proto: 'tcp',
      srcPort: u16(b, off),
      dstPort: u16(b, off + 2),
      tcpFlags: b[off + 13]!,
      payload: b.subarray(off + dataOffset, end),
    };
  }
  return REJECTS['ip.proto'];
}

/** 4 or 6 for an IP ethertype, -1 for anything else. */
function ethertypeVersion(type: number): number {
  if (type === ETHERTYPE_IPV4) return 4;
  if (type === ETHERTYPE_IPV6) return 6;
  return -1;
}

/** AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (Net/OpenBSD), 28 (FreeBSD), 30 (Darwin). */
function nullFamilyVersion(b: Uint8Array): number {
  const le = b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
  // A small value read little-endian is a little-endian header; otherwise it was big-endian.
  const family = (le & 0xffff0000) === 0 ? le : (b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!;
  if (family === 2) return 4;
  if (family === 10 || family === 24 || family === 28 || family === 30) return 6;
  return -1;
}

// Callers have checked o + 1 < nbytes.
function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

// IPv4 addresses are built here rather than through addressFromBytes: one copy, no arrays.
// (Not b.slice(): on a Buffer that is a view, and cap reuses its Buffer for the next frame.)
function ipv4Address(b: Uint8Array, o: number): Address {
  const bytes = new Uint8Array(4);
  bytes[0] = b[o]!;
  bytes[1] = b[o + 1]!;
  bytes[2] = b[o + 2]!;
  bytes[3] = b[o + 3]!;
  return { family: 4, bytes, text: `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` };
}
