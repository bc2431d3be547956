// knockd's value grammars: port sequences (`7000,8000:udp`) and tcpflags (`syn,!ack`). Pure.
// Shared by the config parser and the one_time_sequences file. A bad value yields a message
// (without the directive name), never an exception.
import { LIMITS, TCP_FLAG, type KnockPort, type TcpFlagName, type TcpFlagRule } from './types.js';

/**
 * Parses `PORT[:tcp|udp],...` as knockd's parse_port_sequence does, but strictly: knockd reads
 * each port with atoi, so `x`, an empty item or a trailing comma silently becomes port 0; here
 * they are errors. Spaces around items and a protocol in any case are accepted (knockd trims
 * and upper-cases the protocol). Default protocol: tcp.
 */
export function parseSequence(value: string): KnockPort[] | string {
  const items = value.split(',').map((s) => s.trim());
  if (items.length > LIMITS.sequencePorts) return `at most ${LIMITS.sequencePorts} ports in a sequence (knockd's limit), got ${items.length}`;
  const out: KnockPort[] = [];
  for (const item of items) {
    const m = /^([0-9]{1,5})(?:\s*:\s*([A-Za-z]+))?$/.exec(item);
    if (!m) return `expected PORT[:tcp|udp],... such as 7000,8000:udp,9000, got ${JSON.stringify(item === '' ? value : item)}`;
    const port = Number(m[1]);
    if (port < 1 || port > 65535) return `port must be 1-65535, got ${JSON.stringify(item)}`;
    const p = (m[2] ?? 'tcp').toLowerCase();
    if (p !== 'tcp' && p !== 'udp') return `protocol must be tcp or udp, got ${JSON.stringify(m[2])}`;
    out.push({ proto: p, port });
  }
  return out;
}

/** Canonical text of a sequence, `7000:tcp,8000:udp` (what logs and docs show). */
export function sequenceText(seq: readonly KnockPort[]): string {
  return seq.map((k) => `${k.port}:${k.proto}`).join(',');
}

export function sameSequence(a: readonly KnockPort[], b: readonly KnockPort[]): boolean {
  return a.length === b.length && a.every((k, i) => k.port === b[i]?.port && k.proto === b[i]?.proto);
}

/**
 * Parses knockd's tcpflags: comma-separated fin, syn, rst, psh, ack, urg, each optionally
 * negated with `!`, any case. knockd does not trim the items (`syn, ack` fails there with
 * `unrecognized flag " ACK"`); we do. A flag both required and negated is an error (knockd
 * silently keeps the last one).
 */
export function parseTcpFlags(value: string): TcpFlagRule | string {
  let set = 0;
  let clear = 0;
  for (const raw of value.split(',')) {
    const item = raw.trim().toLowerCase();
    const negated = item.startsWith('!');
    const name = (negated ? item.slice(1).trim() : item) as TcpFlagName;
    if (!Object.prototype.hasOwnProperty.call(TCP_FLAG, name)) {
      return `expected flags from fin, syn, rst, psh, ack, urg (each may be negated with !), got ${JSON.stringify(raw.trim())}`;
    }
    const bit = TCP_FLAG[name];
    if ((negated ? set : clear) & bit) return `${name} is both required and negated`;
    if (negated) clear |= bit;
    else set |= bit;
  }
  return { set, clear };
}

/** True when a TCP packet with these flag bits passes the door's tcpflags (flags_match in knockd.c). */
export function tcpFlagsMatch(rule: TcpFlagRule, flags: number): boolean {
  return (flags & rule.set) === rule.set && (flags & rule.clear) === 0;
}

/** Canonical text of a rule, `syn,!ack` (empty when no flags are constrained). */
export function tcpFlagsText(rule: TcpFlagRule): string {
  const out: string[] = [];
  for (const [name, bit] of Object.entries(TCP_FLAG)) {
    if (rule.set & bit) out.push(name);
    if (rule.clear & bit) out.push(`!${name}`);
  }
  return out.join(',');
}
