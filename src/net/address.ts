// IP addresses: parse text to a validated, canonical form and to bytes, and back. Pure.
// Canonical text is what node's net.isIP accepts and what every command sees:
// IPv4 dotted quad without leading zeros, IPv6 in RFC 5952 form (lowercase, :: compressed).
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded to the IPv4 address it carries.
import { UserError } from '../errors.js';

// node:net's isIPv4 and isIPv6, with Node 20's own expressions (lib/internal/net.js): importing
// node:net loads ~25 stream modules, a fifth of spa-knock's start-up beyond `node -e 0`.
// test/unit/address.test.ts checks they agree with node:net.
const V4_SEG = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4_STR = `(?:${V4_SEG}\\.){3}${V4_SEG}`;
const V6_SEG = '(?:[0-9a-fA-F]{1,4})';
const IPV4_RE = new RegExp(`^${V4_STR}$`);
const IPV6_RE = new RegExp(
  '^(?:' +
    `(?:${V6_SEG}:){7}(?:${V6_SEG}|:)|` +
    `(?:${V6_SEG}:){6}(?:${V4_STR}|:${V6_SEG}|:)|` +
    `(?:${V6_SEG}:){5}(?::${V4_STR}|(?::${V6_SEG}){1,2}|:)|` +
    `(?:${V6_SEG}:){4}(?:(?::${V6_SEG}){0,1}:${V4_STR}|(?::${V6_SEG}){1,3}|:)|` +
    `(?:${V6_SEG}:){3}(?:(?::${V6_SEG}){0,2}:${V4_STR}|(?::${V6_SEG}){1,4}|:)|` +
    `(?:${V6_SEG}:){2}(?:(?::${V6_SEG}){0,3}:${V4_STR}|(?::${V6_SEG}){1,5}|:)|` +
    `(?:${V6_SEG}:){1}(?:(?::${V6_SEG}){0,4}:${V4_STR}|(?::${V6_SEG}){1,6}|:)|` +
    `(?::(?:(?::${V6_SEG}){0,5}:${V4_STR}|(?::${V6_SEG}){1,7}|:))` +
    ')(?:%[0-9a-zA-Z-.:]{1,})?$',
);

/**
 * node:net's isIPv4 (IPV4_RE), without a regular expression: compiling one costs a knock ~1 ms
 * at start-up. Four decimal fields 0-255, no leading zeros, nothing else.
 */
export function isIPv4(s: string): boolean {
  let fields = 0;
  let i = 0;
  while (i < s.length) {
    const start = i;
    let v = 0;
    while (i < s.length && i - start < 4) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(start) === 48)) return false;
    fields++;
    if (i === s.length) return fields === 4;
    if (s.charCodeAt(i) !== 46 || fields === 4) return false;
    i++;
  }
  return false;
}

/** The expression isIPv4 implements, kept to test it against (test/unit/address.test.ts). */
export const IPV4_PATTERN = IPV4_RE;

/** node:net's isIPv6 (zone ids included). */
export function isIPv6(s: string): boolean {
  return IPV6_RE.test(s);
}

export type Family = 4 | 6;

export interface Address {
  readonly family: Family;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  /** Canonical text (RFC 5952 for IPv6). */
  readonly text: string;
}

/** Parses an IP literal; returns undefined when it is not one. Zone ids (%eth0) are refused. */
export function parseAddress(s: string): Address | undefined {
  if (isIPv4(s)) {
    const parts = s.split('.');
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return addressFromBytes(Uint8Array.from(parts.map((p) => Number(p))));
  }
  if (isIPv6(s) && !s.includes('%')) return addressFromBytes(ipv6Bytes(s));
  return undefined;
}

/** Like parseAddress, but a bad value is a UserError naming what was given. */
export function parseAddressOrThrow(s: string, what = 'address'): Address {
  const a = parseAddress(s);
  if (!a) throw new UserError('address.parse', `${what}: expected an IPv4 or IPv6 address, got ${JSON.stringify(s)}`);
  return a;
}

export function addressFromBytes(b: Uint8Array): Address {
  if (b.length === 4) {
    const bytes = Uint8Array.from(b);
    return { family: 4, bytes, text: Array.from(bytes).join('.') };
  }
  if (b.length === 16) {
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    if (mapped) return addressFromBytes(b.subarray(12, 16));
    const bytes = Uint8Array.from(b);
    return { family: 6, bytes, text: ipv6Text(bytes) };
  }
  throw new RangeError(`an address has 4 or 16 bytes, not ${b.length}`);
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.family === b.family && a.text === b.text;
}

function ipv6Bytes(s: string): Uint8Array {
  // s is known valid (isIPv6). Rewrite an embedded IPv4 tail as two hex words, then fill the :: gap.
  let text = s;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const q = v4.slice(1, 5).map(Number) as [number, number, number, number];
    text = text.slice(0, v4.index) + `${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const halves = text.split('::');
  const words = (h: string | undefined): number[] => (h ? h.split(':').map((x) => parseInt(x, 16)) : []);
  const l = words(halves[0]);
  const r = words(halves[1]);
  const all = halves.length === 2 ? [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r] : l;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[i * 2] = (w >> 8) & 0xff;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

function ipv6Text(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((b[i * 2] ?? 0) << 8) | (b[i * 2 + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run (>= 2) of zero words, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Why an address can never be the source of a client, or undefined: IPv4 "this network"
 * (0.0.0.0/8), multicast (224.0.0.0/4, ff00::/8), the limited broadcast 255.255.255.255 and
 * the IPv6 unspecified address. A knock may not ask to open for one (PROTOCOL.md §3).
 */
export function neverAClient(a: Address): string | undefined {
  const b0 = a.bytes[0] ?? 0;
  if (a.family === 4) {
    if (b0 === 0) return 'an unspecified ("this network") address';
    if (b0 >= 224 && b0 <= 239) return 'a multicast address';
    if (a.bytes.every((x) => x === 255)) return 'the broadcast address';
    return undefined;
  }
  if (a.bytes.every((x) => x === 0)) return 'the unspecified address';
  if (b0 === 0xff) return 'a multicast address';
  return undefined;
}
