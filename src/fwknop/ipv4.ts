// IPv4 addresses and networks as fwknop writes them: dotted quads, `a.b.c.d/nn`,
// `a.b.c.d/m.m.m.m`, `ANY` (access.c add_int_ent). fwknop is IPv4-only (SPEC.md §7.1). Pure.

/** A network: (ip & mask) === net. */
export interface Net4 {
  readonly net: number;
  readonly mask: number;
}

/**
 * A canonical dotted quad (four decimal octets, no leading zeros) as an unsigned 32-bit
 * number; undefined otherwise. Stricter than inet_aton, which also reads `127.1` and octal
 * `010.0.0.1`: a value that reaches a command is one that has only one meaning.
 */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part.startsWith('0'))) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function ipv4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffff_ffff << (32 - bits)) >>> 0;
}

/** One entry of a SOURCE/DESTINATION list; a message when it is wrong. */
export function parseNet4(s: string): Net4 | string {
  const [addr, suffix, extra] = s.split('/');
  const ip = parseIPv4(addr ?? '');
  if (ip === undefined || extra !== undefined) return `expected an IPv4 address, a.b.c.d/NN or a.b.c.d/m.m.m.m, got ${JSON.stringify(s)}`;
  if (suffix === undefined) return { net: ip, mask: 0xffff_ffff };
  let mask: number | undefined;
  if (/^\d{1,2}$/.test(suffix) && Number(suffix) >= 1 && Number(suffix) <= 32) mask = maskOf(Number(suffix));
  else {
    const m = parseIPv4(suffix);
    // A netmask must be contiguous ones.
    if (m !== undefined && ((~m >>> 0) & ((~m >>> 0) + 1)) === 0) mask = m;
  }
  if (mask === undefined) return `bad netmask in ${JSON.stringify(s)} (expected /1../32 or a contiguous a.b.c.d mask)`;
  return { net: (ip & mask) >>> 0, mask };
}

/** `ANY` (any case) or a comma list with optional blanks; a message when wrong. */
export function parseNetList(s: string): 'any' | readonly Net4[] | string {
  if (/^any$/i.test(s.trim())) return 'any';
  const out: Net4[] = [];
  for (const part of s.split(',')) {
    const p = part.trim();
    if (/^any$/i.test(p)) return 'any';
    const n = parseNet4(p);
    if (typeof n === 'string') return n;
    out.push(n);
  }
  return out;
}

export function netListHas(list: 'any' | readonly Net4[], ip: number): boolean {
  if (list === 'any') return true;
  for (const n of list) if (((ip & n.mask) >>> 0) === n.net) return true;
  return false;
}
