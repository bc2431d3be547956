// Builds the libpcap filter expression that keeps garbage in the kernel. Pure.
// The SPA clause carries the protocol's cheapest checks (UDP length, version byte), so a flood of
// random datagrams to the SPA port never wakes the process; sequence-door ports are OR'ed in.

export interface FilterSpec {
  /** UDP port the SPA datagrams are sent to (sniffed, never bound). */
  readonly spaPort: number;
  /** Exact UDP payload length of an SPA datagram. */
  readonly datagramBytes: number;
  /** The protocol version byte, the datagram's first byte. */
  readonly version: number;
  /** Sequence-door ports, matched on destination port only. */
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  /** More clauses OR-ed in as they are (the fwknop packet shape, server/fwknop-filter.ts). */
  readonly extraClauses?: readonly string[];
}

const UDP_HEADER_BYTES = 8;
const IPV6_HEADER_BYTES = 40;
const PROTO_UDP = 17;

/**
 * libpcap 1.10's `udp[...]` indexing compiles for IPv4 only (for IPv6 it silently matches
 * nothing: checked with bpf_dump), so the IPv6 clause reads fixed offsets from the IPv6 header.
 * That assumes UDP directly after the 40-byte header: an SPA datagram behind IPv6 extension
 * headers is dropped in the kernel. Our client never sends any; the frame decoder still walks them.
 * `udp dst port` and `udp[...]` on IPv4 already refuse non-first fragments (libpcap adds the
 * fragment-offset test); the decoder refuses the rest.
 */
export function buildFilter(spec: FilterSpec): string {
  const port = checkPort(spec.spaPort, 'spaPort');
  const udpLength = checkInt(spec.datagramBytes, 1, 0xffff - UDP_HEADER_BYTES, 'datagramBytes') + UDP_HEADER_BYTES;
  const version = checkInt(spec.version, 0, 0xff, 'version');
  const v4 = `(udp dst port ${port} and udp[4:2] = ${udpLength} and udp[8] = ${version})`;
  const o = IPV6_HEADER_BYTES;
  const v6 =
    `(ip6 and ip6[6] = ${PROTO_UDP} and ip6[${o + 2}:2] = ${port}` +
    ` and ip6[${o + 4}:2] = ${udpLength} and ip6[${o + 8}] = ${version})`;
  const clauses = [v4, v6];
  for (const p of unique(spec.tcpPorts, 'tcpPorts')) clauses.push(`(tcp dst port ${p})`);
  for (const p of unique(spec.udpPorts, 'udpPorts')) clauses.push(`(udp dst port ${p})`);
  for (const c of spec.extraClauses ?? []) clauses.push(c);
  return clauses.join(' or ');
}

function unique(ports: readonly number[], what: string): number[] {
  return [...new Set(ports.map((p) => checkPort(p, what)))].sort((a, b) => a - b);
}

// Ports and sizes come from validated config; a bad one here is a bug, so it throws.
function checkPort(p: number, what: string): number {
  return checkInt(p, 1, 0xffff, what);
}

function checkInt(n: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${what}: expected an integer in [${min}, ${max}], got ${String(n)}`);
  }
  return n;
}
