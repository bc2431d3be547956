// The values of spa-knock's flags: each parser returns the value or throws. A FlagValueError
// becomes commander's "option '...' argument '...' is invalid. MESSAGE" (client/cli.ts); any
// other error is thrown as it is. Pure.
import { UserError } from '../src/errors.js';
import { parseAccess, type Access } from '../src/net/access.js';
import { parseAddress } from '../src/net/address.js';
import { parseSequence } from '../src/config/sequence.js';
import type { KnockPort } from '../src/config/types.js';
import { MAX_DELAY_MS } from './profile.js';
import { parseStunServer, type StunServer } from './stun-servers.js';

export class FlagValueError extends Error {}

export const MAX_TIMEOUT_SEC = 600;

export function parsePort(s: string): number {
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new FlagValueError(`expected a port 1-65535, got ${JSON.stringify(s)}`);
  return Number(s);
}

export function collectAccess(s: string, prev: Access[]): Access[] {
  try {
    return [...prev, parseAccess(s, '-A')];
  } catch (e) {
    throw new FlagValueError(e instanceof UserError ? e.message.replace(/^-A: /, '') : String(e));
  }
}

export function parseSequenceFlag(s: string): KnockPort[] {
  const r = parseSequence(s);
  if (typeof r === 'string') throw new FlagValueError(r);
  return r;
}

export function parseDelay(s: string): number {
  if (!/^[0-9]{1,6}$/.test(s) || Number(s) > MAX_DELAY_MS) throw new FlagValueError(`expected milliseconds 0-${MAX_DELAY_MS}, got ${JSON.stringify(s)}`);
  return Number(s);
}

export function parseTimeout(s: string): number {
  const n = Number(s);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(s) || n <= 0 || n > MAX_TIMEOUT_SEC) throw new FlagValueError(`expected seconds, more than 0 and at most ${MAX_TIMEOUT_SEC}, got ${JSON.stringify(s)}`);
  return n;
}

/** A UserError (not a FlagValueError): its message names the flag itself. */
export function parseAllowIp(s: string): string {
  const w = s.toLowerCase();
  if (w === 'auto' || w === 'source') return w;
  if (!parseAddress(s)) throw new UserError('address.parse', `--allow-ip: expected an IPv4 or IPv6 address, auto or source, got ${JSON.stringify(s)}`);
  return s;
}

export function collectStun(s: string, prev: StunServer[] | 'none' | undefined): StunServer[] | 'none' {
  if (s.toLowerCase() === 'none') {
    if (prev !== undefined && prev !== 'none') throw new FlagValueError('none cannot be given with a server');
    return 'none';
  }
  if (prev === 'none') throw new FlagValueError('none cannot be given with a server');
  const r = parseStunServer(s);
  if (typeof r === 'string') throw new FlagValueError(r);
  return [...(prev ?? []), r];
}
