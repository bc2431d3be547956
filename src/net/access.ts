// Access specs `proto/port` (tcp/22, udp/53): parse, validate, canonical text. Pure.
import { UserError } from '../errors.js';

export type Proto = 'tcp' | 'udp';

export interface Access {
  readonly proto: Proto;
  /** 1..65535 */
  readonly port: number;
}

/** IANA protocol numbers, as carried on the wire (PROTOCOL.md §3). */
export const PROTO_NUMBER: Readonly<Record<Proto, number>> = { tcp: 6, udp: 17 };

export function protoFromNumber(n: number): Proto | undefined {
  if (n === 6) return 'tcp';
  if (n === 17) return 'udp';
  return undefined;
}

export function accessText(a: Access): string {
  return `${a.proto}/${a.port}`;
}

/** Parses one `proto/port`; returns a message (not a value) when it is wrong. */
export function checkAccessSpec(s: string): Access | string {
  const m = /^(tcp|udp)\/([0-9]{1,5})$/i.exec(s.trim());
  if (!m) return `expected PROTO/PORT such as tcp/22 or udp/53, got ${JSON.stringify(s)}`;
  const port = Number(m[2]);
  if (port < 1 || port > 65535 || (m[2] ?? '').startsWith('0')) return `port must be 1-65535 without leading zeros, got ${JSON.stringify(s)}`;
  return { proto: (m[1] ?? '').toLowerCase() as Proto, port };
}

export function parseAccess(s: string, what = 'access'): Access {
  const r = checkAccessSpec(s);
  if (typeof r === 'string') throw new UserError('access.parse', `${what}: ${r}`);
  return r;
}

/** Parses a comma-separated list (`tcp/22,udp/53`), dropping duplicates, keeping order. */
export function parseAccessList(s: string, what = 'access'): Access[] {
  const items = s.split(',').map((x) => x.trim());
  if (items.some((x) => x === '')) throw new UserError('access.parse', `${what}: empty item in ${JSON.stringify(s)}`);
  return dedupeAccess(items.map((x) => parseAccess(x, what)));
}

export function dedupeAccess(list: readonly Access[]): Access[] {
  const seen = new Set<string>();
  const out: Access[] = [];
  for (const a of list) {
    const k = accessText(a);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(a);
    }
  }
  return out;
}

export function sameAccess(a: Access, b: Access): boolean {
  return a.proto === b.proto && a.port === b.port;
}
