// Which addresses are globally routable, and when an allow address needs STUN: the IANA
// special-purpose registries (RFC 6890) as a table, and the rule spa-knock(1) documents. Pure.
import type { Address } from '../src/net/address.js';
import { parseAddress } from '../src/net/address.js';

export interface SpecialRange {
  /** CIDR text, such as 192.168.0.0/16. */
  readonly cidr: string;
  /** A short name for messages: "private (RFC 1918)". */
  readonly name: string;
}

/**
 * Blocks whose addresses are not globally reachable: IANA's IPv4 and IPv6 Special-Purpose
 * Address Registries ("Globally Reachable: False"), plus multicast, and for IPv6 everything
 * outside 2000::/3 (global unicast). Order: a more specific block before one containing it.
 */
const RANGES: readonly SpecialRange[] = [
  { cidr: '0.0.0.0/8', name: '"this network" (RFC 791)' },
  { cidr: '10.0.0.0/8', name: 'private (RFC 1918)' },
  { cidr: '100.64.0.0/10', name: 'carrier-grade NAT (RFC 6598)' },
  { cidr: '127.0.0.0/8', name: 'loopback' },
  { cidr: '169.254.0.0/16', name: 'link-local (RFC 3927)' },
  { cidr: '172.16.0.0/12', name: 'private (RFC 1918)' },
  { cidr: '192.0.0.0/24', name: 'IETF protocol assignments (RFC 6890)' },
  { cidr: '192.0.2.0/24', name: 'documentation (RFC 5737)' },
  { cidr: '192.168.0.0/16', name: 'private (RFC 1918)' },
  { cidr: '198.18.0.0/15', name: 'benchmarking (RFC 2544)' },
  { cidr: '198.51.100.0/24', name: 'documentation (RFC 5737)' },
  { cidr: '203.0.113.0/24', name: 'documentation (RFC 5737)' },
  { cidr: '224.0.0.0/4', name: 'multicast' },
  { cidr: '255.255.255.255/32', name: 'broadcast' },
  { cidr: '240.0.0.0/4', name: 'reserved (RFC 1112)' },
  { cidr: '::/128', name: 'unspecified' },
  { cidr: '::1/128', name: 'loopback' },
  { cidr: '64:ff9b:1::/48', name: 'local-use translation (RFC 8215)' },
  { cidr: '100::/64', name: 'discard-only (RFC 6666)' },
  { cidr: 'fc00::/7', name: 'unique local (RFC 4193)' },
  { cidr: 'fe80::/10', name: 'link-local' },
  { cidr: 'ff00::/8', name: 'multicast' },
  { cidr: '2001:2::/48', name: 'benchmarking (RFC 5180)' },
  { cidr: '2001:db8::/32', name: 'documentation (RFC 3849)' },
  { cidr: '2001::/23', name: 'IETF protocol assignments (RFC 2928)' },
  { cidr: '3fff::/20', name: 'documentation (RFC 9637)' },
  { cidr: '5f00::/16', name: 'segment routing (RFC 9602)' },
];

/** IPv6 outside global unicast (2000::/3) and outside every block above. */
const NOT_GLOBAL_UNICAST: SpecialRange = { cidr: '2000::/3', name: 'outside IPv6 global unicast (2000::/3)' };

interface Block {
  readonly range: SpecialRange;
  readonly prefix: Address;
  readonly bits: number;
}

function blockOf(range: SpecialRange): Block {
  const [base = '', bits = ''] = range.cidr.split('/');
  const prefix = parseAddress(base);
  if (!prefix) throw new Error(`scope table: bad ${range.cidr}`);
  return { range, prefix, bits: Number(bits) };
}

/**
 * The table parsed per family on first use: a knock pays only for its own family (the
 * first IPv6 parse compiles node's isIPv6 pattern, ~10 ms of spa-knock's start-up).
 */
const parsed: { 4?: readonly Block[]; 6?: readonly Block[] } = {};
function blocksOf(family: 4 | 6): readonly Block[] {
  return (parsed[family] ??= RANGES.filter((r) => r.cidr.includes(':') === (family === 6)).map(blockOf));
}

/**
 * Entries IANA marks globally reachable inside blocks that are not: the NAT64 well-known
 * prefix (outside 2000::/3), and in 2001::/23 TURN anycast, AMT, AS112 and ORCHIDv2.
 */
const GLOBAL_EXCEPTIONS = ['64:ff9b::/96', '2001:1::1/128', '2001:1::2/128', '2001:3::/32', '2001:4:112::/48', '2001:20::/28'];
let globalExceptions: readonly Block[] | undefined;

function within(a: Address, b: Block): boolean {
  if (a.family !== b.prefix.family) return false;
  const full = b.bits >> 3;
  for (let i = 0; i < full; i++) if (a.bytes[i] !== b.prefix.bytes[i]) return false;
  const rest = b.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a.bytes[full] ?? 0) & mask) === ((b.prefix.bytes[full] ?? 0) & mask);
}

/** The special-purpose block `a` is in, or undefined when `a` is globally routable. */
export function specialRange(a: Address): SpecialRange | undefined {
  if (a.family === 6 && (globalExceptions ??= GLOBAL_EXCEPTIONS.map((cidr) => blockOf({ cidr, name: 'global' }))).some((b) => within(a, b))) return undefined;
  const hit = blocksOf(a.family).find((b) => within(a, b));
  if (hit) return hit.range;
  if (a.family === 6 && ((a.bytes[0] ?? 0) & 0xe0) !== 0x20) return NOT_GLOBAL_UNICAST;
  return undefined;
}

export function isGlobal(a: Address): boolean {
  return specialRange(a) === undefined;
}

const NEVER_A_HOST = new Set(['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '255.255.255.255/32', '240.0.0.0/4', '::/128', '::1/128', 'ff00::/8']);

/**
 * Why an address a STUN server reports cannot be ours as seen from elsewhere ("loopback",
 * "multicast", ...), or undefined. A private or CGNAT answer is kept: a STUN server inside
 * the same private network sees just that.
 */
export function unusableReflexive(a: Address): string | undefined {
  const r = specialRange(a);
  return r !== undefined && NEVER_A_HOST.has(r.cidr) ? r.name : undefined;
}

/** Why `auto` signs the kernel's source address as it is, or asks STUN for the public one. */
export type AutoDecision =
  | { readonly stun: false; readonly why: 'global' | 'loopback' | 'same-range'; readonly range?: SpecialRange }
  | { readonly stun: true; readonly range: SpecialRange };

/**
 * spa-knock(1), --allow-ip auto: the source address the kernel uses toward the server is
 * signed as it is when
 *  - it is globally routable (no NAT rewrites it; most IPv6), or
 *  - it or the server's address is loopback (the same machine), or
 *  - the server's address is in the same special-purpose block (both 10/8, both
 *    192.168/16, both fc00::/7, ...): one private network, a LAN or a VPN, not a NAT.
 * Otherwise (a private, CGNAT or link-local source toward a global address or another
 * private block) a NAT probably rewrites it on the way, and STUN is asked.
 */
export function autoDecision(source: Address, server: Address): AutoDecision {
  const src = specialRange(source);
  if (src === undefined) return { stun: false, why: 'global' };
  const dst = specialRange(server);
  if (src.name === 'loopback' || dst?.name === 'loopback') return { stun: false, why: 'loopback', range: src };
  if (dst !== undefined && dst.cidr === src.cidr) return { stun: false, why: 'same-range', range: src };
  return { stun: true, range: src };
}
