// STUN server names as given (--stun HOST[:PORT], the profile's StunServer) and the
// built-in list asked when neither gives one. Pure.
import { parseAddress } from '../src/net/address.js';
import { STUN_PORT } from './stun.js';

export interface StunServer {
  /** Host name or address literal, without brackets. */
  readonly host: string;
  readonly port: number;
}

/**
 * Well-known public STUN servers, asked two at a time in this order when neither --stun nor
 * StunServer names one. Two operators, so one outage or one blocked name does not stop it.
 */
export const DEFAULT_STUN_SERVERS: readonly StunServer[] = [
  { host: 'stun.l.google.com', port: 19302 },
  { host: 'stun.cloudflare.com', port: 3478 },
  { host: 'stun1.l.google.com', port: 19302 },
];

/** The whole time given to discovery, name lookups included: a knock should not hang on a helper. */
export const STUN_BUDGET_MS = 1000;

/** Servers asked at once; the next in the list starts when one fails. */
export const STUN_PARALLEL = 2;

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * HOST, HOST:PORT, an IPv4 address with or without :PORT, a bare IPv6 address, or
 * [IPv6]:PORT. Returns a message (without the flag's name) when it is none of these.
 */
export function parseStunServer(s: string): StunServer | string {
  const bad = `expected HOST[:PORT] or [IPv6]:PORT, got ${JSON.stringify(s)}`;
  let host = s;
  let port: string | undefined;
  const bracket = /^\[([^\]]*)\](?::([^:]*))?$/.exec(s);
  if (bracket) {
    host = bracket[1] ?? '';
    port = bracket[2];
    if (parseAddress(host)?.family !== 6) return bad;
  } else if (parseAddress(s)?.family === 6) {
    return { host: parseAddress(s)!.text, port: STUN_PORT };
  } else {
    const i = s.lastIndexOf(':');
    if (i >= 0) {
      host = s.slice(0, i);
      port = s.slice(i + 1);
    }
    if (!HOST_NAME.test(host) && parseAddress(host)?.family !== 4) return bad;
  }
  if (port === undefined) return { host: parseAddress(host)?.text ?? host, port: STUN_PORT };
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return `expected a port 1-65535 after the host, got ${JSON.stringify(s)}`;
  return { host: parseAddress(host)?.text ?? host, port: Number(port) };
}

/** HOST:PORT, [IPv6]:PORT. */
export function stunServerText(s: StunServer): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}
