// The keyword table of spa.conf / knockd.conf: each directive's canonical name, aliases, where it
// may appear and how its value is read. Pure. Keys are case-insensitive, as in knockd (it
// upper-cases them); docs/CONFIGURATION.md documents each entry, and a test keeps both in step.
import { closestWord } from '../suggest.js';
import { parseAccessList, type Access } from '../net/access.js';
import { parseAddress, type Address } from '../net/address.js';
import { UserError } from '../errors.js';
import { parseSequence, parseTcpFlags } from './sequence.js';
import { FIREWALL_NAMES, LIMITS, type FirewallName, type KnockPort, type TcpFlagRule } from './types.js';

/** Which section a directive belongs to; for door directives, which kind of door may use it. */
export type Where = 'options' | 'door' | 'spa-door' | 'sequence-door';

/** A parsed value, tagged so the assembler knows what it holds. */
export type Value =
  | { readonly t: 'flag' }
  | { readonly t: 'text'; readonly v: string }
  | { readonly t: 'int'; readonly v: number }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'firewall'; readonly v: FirewallName }
  | { readonly t: 'sequence'; readonly v: readonly KnockPort[] }
  | { readonly t: 'tcpflags'; readonly v: TcpFlagRule }
  | { readonly t: 'address'; readonly v: Address }
  | { readonly t: 'access'; readonly v: readonly Access[] };

export interface Directive {
  /** Canonical spelling, used in messages and as the key of `lines`. */
  readonly name: string;
  /** Other names knockd accepts for it (`command` for start_command). */
  readonly aliases: readonly string[];
  readonly where: Where;
  /** A bare word with no `= value` (only UseSyslog, as in knockd). */
  readonly bare: boolean;
  /** True for knockd 0.8's own directives; false for ours. */
  readonly knockd: boolean;
  /** Reads the trimmed value; a string is an error message (without the directive name). */
  readonly read: (value: string) => Value | string;
}

function text(allowEmpty: boolean): (v: string) => Value | string {
  return (v) => {
    if (v === '' && !allowEmpty) return 'expected a value';
    // A NUL cannot reach exec(2) or a file name: refused here, not at the first knock.
    if (v.includes('\0')) return 'a value cannot contain NUL';
    return { t: 'text', v };
  };
}

/** Linux PATH_MAX, with its NUL. */
const PATH_MAX = 4096;

function path(v: string): Value | string {
  if (v === '') return 'expected a file path';
  if (v.includes('\0')) return 'a path cannot contain NUL';
  if (new TextEncoder().encode(v).length >= PATH_MAX) return `path too long (${new TextEncoder().encode(v).length} bytes; at most ${PATH_MAX - 1})`;
  return { t: 'text', v };
}

/** A path the daemon writes outside StateDir (MetricsFile): absolute, so it never depends on the cwd. */
function absolutePath(v: string): Value | string {
  const r = path(v);
  if (typeof r === 'string') return r;
  return v.startsWith('/') ? r : `expected an absolute path, got ${JSON.stringify(v)}`;
}

function int(min: number, max: number, unit: string): (v: string) => Value | string {
  return (v) => {
    if (!/^[0-9]{1,10}$/.test(v)) return `expected ${unit} as a whole number ${min}-${max}, got ${JSON.stringify(v)}`;
    const n = Number(v);
    if (n < min || n > max) return `expected ${unit} as a whole number ${min}-${max}, got ${JSON.stringify(v)}`;
    return { t: 'int', v: n };
  };
}

function yesNo(v: string): Value | string {
  const s = v.toLowerCase();
  if (s === 'yes') return { t: 'bool', v: true };
  if (s === 'no') return { t: 'bool', v: false };
  return `expected yes or no, got ${JSON.stringify(v)}`;
}

function firewall(v: string): Value | string {
  const s = v.toLowerCase() as FirewallName;
  if (FIREWALL_NAMES.includes(s)) return { t: 'firewall', v: s };
  return `expected one of ${FIREWALL_NAMES.join(', ')}, got ${JSON.stringify(v)}`;
}

function iface(v: string): Value | string {
  // Linux IFNAMSIZ is 16 with the NUL; no '/' or whitespace (knockd: "not the path to the device").
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(v)) return `expected an interface name such as eth0 or lo, got ${JSON.stringify(v)}`;
  return { t: 'text', v };
}

function sequence(v: string): Value | string {
  const r = parseSequence(v);
  return typeof r === 'string' ? r : { t: 'sequence', v: r };
}

function tcpflags(v: string): Value | string {
  const r = parseTcpFlags(v);
  return typeof r === 'string' ? r : { t: 'tcpflags', v: r };
}

function address(v: string): Value | string {
  const a = parseAddress(v);
  // knockd compares the packet's destination as text (inet_ntoa / inet_ntop) with target, so
  // only an IP literal can ever match there; a host name would be a door that never opens.
  return a ? { t: 'address', v: a } : `expected an IPv4 or IPv6 address, got ${JSON.stringify(v)}`;
}

function access(v: string): Value | string {
  try {
    return { t: 'access', v: parseAccessList(v, 'access') };
  } catch (e) {
    if (e instanceof UserError) return e.message.replace(/^access: /, '');
    throw e;
  }
}

const flag = (): Value => ({ t: 'flag' });

function d(name: string, where: Where, read: Directive['read'], opts: { aliases?: string[]; bare?: boolean; knockd?: boolean } = {}): Directive {
  return { name, aliases: opts.aliases ?? [], where, bare: opts.bare ?? false, knockd: opts.knockd ?? false, read };
}

const T = LIMITS.timeoutSec;

/** Every directive, knockd 0.8's first (in the order of its man page), then ours. */
export const DIRECTIVES: readonly Directive[] = [
  d('UseSyslog', 'options', flag, { bare: true, knockd: true }),
  d('LogFile', 'options', text(true), { knockd: true }),
  d('PidFile', 'options', text(true), { knockd: true }),
  d('Interface', 'options', (v) => (v === '' ? { t: 'text', v } : iface(v)), { knockd: true }),
  d('sequence', 'sequence-door', sequence, { knockd: true }),
  d('one_time_sequences', 'sequence-door', path, { knockd: true }),
  d('seq_timeout', 'sequence-door', int(T.min, T.max, 'seconds'), { aliases: ['timeout'], knockd: true }),
  d('tcpflags', 'sequence-door', tcpflags, { knockd: true }),
  d('target', 'sequence-door', address, { knockd: true }),
  d('start_command', 'door', text(true), { aliases: ['command'], knockd: true }),
  d('start_command_6', 'door', text(true), { aliases: ['command_6'], knockd: true }),
  d('cmd_timeout', 'door', int(T.min, T.max, 'seconds'), { knockd: true }),
  d('stop_command', 'door', text(true), { knockd: true }),
  d('stop_command_6', 'door', text(true), { knockd: true }),
  d('SPAPort', 'options', int(1, 65535, 'a UDP port')),
  d('ServerKey', 'options', path),
  d('StateDir', 'options', path),
  d('UDPSocket', 'options', yesNo),
  d('UDPListen', 'options', address),
  d('Window', 'options', int(LIMITS.windowSec.min, LIMITS.windowSec.max, 'seconds')),
  d('ReplayPerClient', 'options', int(LIMITS.replayPerClient.min, LIMITS.replayPerClient.max, 'entries')),
  d('ReplayTotal', 'options', int(LIMITS.replayTotal.min, LIMITS.replayTotal.max, 'entries')),
  d('Firewall', 'options', firewall),
  d('CloseOnExit', 'options', yesNo),
  d('PcapBufferMB', 'options', int(LIMITS.pcapBufferMb.min, LIMITS.pcapBufferMb.max, 'MiB')),
  d('UDPBufferMB', 'options', int(LIMITS.pcapBufferMb.min, LIMITS.pcapBufferMb.max, 'MiB')),
  d('MetricsFile', 'options', absolutePath),
  d('spa_keys', 'spa-door', path),
  d('fwknop_access', 'spa-door', path),
  d('access', 'spa-door', access),
  d('spa_allow_nat', 'spa-door', yesNo),
  d('spa_allow_source', 'spa-door', yesNo),
  d('firewall', 'spa-door', firewall),
  d('protect', 'spa-door', yesNo),
  d('ignore_duplicates', 'sequence-door', yesNo),
];

/** Looks a key up (any case) among the directives of one place: [options] or a door. */
export function findDirective(key: string, section: 'options' | 'door'): Directive | undefined {
  const k = key.toLowerCase();
  return DIRECTIVES.find(
    (x) => (section === 'options' ? x.where === 'options' : x.where !== 'options') && (x.name.toLowerCase() === k || x.aliases.includes(k)),
  );
}

/** The closest directive name, for `did you mean` hints (edit distance at most 2). */
export function suggestDirective(key: string): string | undefined {
  return closestWord(key, DIRECTIVES.flatMap((x) => [x.name, ...x.aliases]));
}
