// Builds the libpcap filter expression that keeps garbage in the kernel, and plans which tag
// epochs it carries. Pure.
// The SPA clause carries the protocol's cheapest checks (UDP length, version byte) and, when the
// keys fit, the tag check itself (the first 4 tag bytes must be one the server accepts now) and
// the nonces of knocks already accepted, so a flood of random datagrams, of right-size garbage
// and of replays never wakes the process. Sequence-door ports are OR'ed in.
import { EPOCH_SEC, OFF_NONCE, OFF_TAG } from '../src/protocol/constants.js';

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
  /** The tag clause; absent: length and version only (the fallback filter). */
  readonly tags?: TagClause;
  /** More clauses OR-ed in as they are (the fwknop packet shape, server/fwknop-filter.ts). */
  readonly extraClauses?: readonly string[];
}

export interface TagClause {
  /** First 4 tag bytes, big-endian, of every tag the server accepts (every client, every epoch). */
  readonly tagPrefixes: readonly number[];
  /** First 4 nonce bytes, big-endian, of knocks accepted within the window: replays are dropped. */
  readonly noncePrefixes: readonly number[];
}

/** The kernel's limit on a classic BPF program (BPF_MAXINSNS, include/uapi/linux/bpf_common.h). */
export const KERNEL_MAX_INSTRUCTIONS = 4096;
/** What a filter may take by `estimateInstructions`, leaving the estimate some room. */
export const FILTER_BUDGET_INSTRUCTIONS = 4000;
/** Accepted knocks whose nonces the filter excludes at once; older ones reach the replay guard. */
export const MAX_EXCLUDED_NONCES = 16;
/** The filter carries at most this many epochs ahead of need, so few keys mean rare swaps. */
export const MAX_LOOKAHEAD_EPOCHS = 30;

const UDP_HEADER_BYTES = 8;
const IPV6_HEADER_BYTES = 40;
const PROTO_UDP = 17;
// Measured with `tcpdump -d` (libpcap 1.10.3, the optimizer on): the fixed part of the filter
// compiles to ~42 instructions, a tag or nonce comparison to 1 (2 once the chains are longer than
// a conditional jump reaches), a sequence port to ~4. These are upper bounds, checked by
// test/integration/kernel-filter.test.ts against libpcap itself.
const BASE_INSTRUCTIONS = 60;
const PER_COMPARISON_PER_FAMILY = 2;
const PER_PORT = 6;
/** An extra clause (the fwknop shape: port, a length range, four first bytes) compiles to ~15. */
export const PER_EXTRA_CLAUSE = 30;

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
  const udpLength = checkInt(spec.datagramBytes, spec.tags ? OFF_NONCE + 4 : 1, 0xffff - UDP_HEADER_BYTES, 'datagramBytes') + UDP_HEADER_BYTES;
  const version = checkInt(spec.version, 0, 0xff, 'version');
  const p = UDP_HEADER_BYTES; // the datagram's offset in the UDP header's indexing
  const o = IPV6_HEADER_BYTES;
  const tagsV4 = spec.tags ? tagChecks(spec.tags, (off) => `udp[${p + off}:4]`) : '';
  const tagsV6 = spec.tags ? tagChecks(spec.tags, (off) => `ip6[${o + p + off}:4]`) : '';
  const v4 = `(udp dst port ${port} and udp[4:2] = ${udpLength} and udp[${p}] = ${version}${tagsV4})`;
  const v6 =
    `(ip6 and ip6[6] = ${PROTO_UDP} and ip6[${o + 2}:2] = ${port}` +
    ` and ip6[${o + 4}:2] = ${udpLength} and ip6[${o + p}] = ${version}${tagsV6})`;
  const clauses = [v4, v6];
  for (const q of unique(spec.tcpPorts, 'tcpPorts')) clauses.push(`(tcp dst port ${q})`);
  for (const q of unique(spec.udpPorts, 'udpPorts')) clauses.push(`(udp dst port ${q})`);
  for (const c of spec.extraClauses ?? []) clauses.push(c);
  return clauses.join(' or ');
}

/** ` and (TAG = a or TAG = b ...) and not (NONCE = x or ...)`: prefixes sorted, duplicates once. */
function tagChecks(t: TagClause, at: (datagramOffset: number) => string): string {
  const tags = words(t.tagPrefixes, 'tagPrefixes');
  // No tag at all (no keys): nothing can be accepted, so nothing need wake the process.
  if (tags.length === 0) return ' and 0 = 1';
  let s = ` and (${tags.map((w) => `${at(OFF_TAG)} = ${hex(w)}`).join(' or ')})`;
  const nonces = words(t.noncePrefixes, 'noncePrefixes');
  if (nonces.length > 0) s += ` and not (${nonces.map((w) => `${at(OFF_NONCE)} = ${hex(w)}`).join(' or ')})`;
  return s;
}

/** An upper bound on the BPF instructions libpcap compiles `buildFilter(spec)` into. */
export function estimateInstructions(spec: FilterSpec): number {
  const comparisons = spec.tags ? new Set(spec.tags.tagPrefixes).size + new Set(spec.tags.noncePrefixes).size : 0;
  const ports = new Set(spec.tcpPorts).size + new Set(spec.udpPorts).size;
  return BASE_INSTRUCTIONS + 2 * PER_COMPARISON_PER_FAMILY * comparisons + PER_PORT * ports + PER_EXTRA_CLAUSE * (spec.extraClauses?.length ?? 0);
}

/** The epochs a tag filter carries: [first, last]. */
export interface EpochRange {
  readonly first: number;
  readonly last: number;
}

const epochOf = (sec: number): number => Math.floor(sec / EPOCH_SEC);

/**
 * The epochs whose tags must pass the filter at nowSec: every epoch a fresh knock's timestamp can
 * fall in (PROTOCOL.md §4.2: now ± window), plus the next one, so the filter that replaces this
 * one is installed a whole epoch before it is needed (no gap, however late the swap).
 */
export function neededEpochs(nowSec: number, windowSec: number): EpochRange {
  return { first: Math.max(0, epochOf(nowSec - windowSec)), last: epochOf(nowSec + windowSec) + 1 };
}

/** Most epochs `neededEpochs` ever spans for this window. */
export function maxNeededEpochs(windowSec: number): number {
  return Math.ceil((2 * windowSec) / EPOCH_SEC) + 2;
}

/** Most keys the tag filter takes for this window and these sequence ports (docs/CONFIGURATION.md). */
export function maxFilterKeys(windowSec: number, ports: number): number {
  return Math.floor(tagBudget(ports) / maxNeededEpochs(windowSec));
}

/** Tag comparisons (per address family) the budget leaves beside the nonces and the ports. */
function tagBudget(ports: number): number {
  const comparisons = Math.floor((FILTER_BUDGET_INSTRUCTIONS - BASE_INSTRUCTIONS - PER_PORT * ports) / (2 * PER_COMPARISON_PER_FAMILY));
  return Math.max(0, comparisons - MAX_EXCLUDED_NONCES);
}

/**
 * The epochs to put in a new filter at nowSec for `keys` clients, or undefined when they do not
 * fit (the caller falls back to the filter without tags). As many epochs ahead as fit, up to
 * MAX_LOOKAHEAD_EPOCHS: the filter must be replaced only when time leaves them (each replacement
 * costs a capture handle, server/capture.ts).
 */
export function planEpochs(nowSec: number, windowSec: number, keys: number, ports: number): EpochRange | undefined {
  const fit = maxFilterKeys(windowSec, ports);
  if (keys > fit) return undefined;
  const need = neededEpochs(nowSec, windowSec);
  const maxEpochs = keys === 0 ? Infinity : Math.floor(tagBudget(ports) / keys);
  const ahead = Math.min(MAX_LOOKAHEAD_EPOCHS, maxEpochs - maxNeededEpochs(windowSec));
  return { first: need.first, last: need.last + Math.max(0, ahead) };
}

/** Whether an installed filter's epochs still cover what is needed at nowSec. */
export function covers(installed: EpochRange, nowSec: number, windowSec: number): boolean {
  const need = neededEpochs(nowSec, windowSec);
  return installed.first <= need.first && need.last <= installed.last;
}

function words(ws: readonly number[], what: string): number[] {
  return [...new Set(ws.map((w) => checkInt(w, 0, 0xffffffff, what)))].sort((a, b) => a - b);
}

const hex = (w: number): string => `0x${w.toString(16).padStart(8, '0')}`;

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
