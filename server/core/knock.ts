// Classic port-knock sequences, tracked per source address with knockd 0.8's semantics. Pure.
// No I/O, `now` passed in; the state is a bounded table updated in place by step() and
// returned (treat the old reference as consumed). docs/KNOCKD-SEMANTICS.md cites knockd.c.
import { sameSequence, tcpFlagsMatch } from '../../src/config/sequence.js';
import type { KnockPort, SequenceDoor, TcpFlagRule } from '../../src/config/types.js';
import type { Address } from '../../src/net/address.js';

/** One captured TCP segment or UDP datagram (a decoded Frame fits this shape). */
export interface KnockHit {
  readonly src: Address;
  readonly proto: 'tcp' | 'udp';
  readonly dstPort: number;
  /** TCP flag bits (FIN 0x01 ... URG 0x20); ignored for UDP. */
  readonly tcpFlags: number;
  /** Where it was sent. undefined: to one of this host's own addresses. */
  readonly dst?: Address;
}

/** A sequence door as the machine sees it. */
export interface KnockDoor {
  readonly name: string;
  /**
   * The sequences still usable, the current one first: `[sequence]` for a fixed door, the valid
   * lines of the one_time_sequences file (not yet used) for a one-time door.
   */
  readonly sequences: readonly (readonly KnockPort[])[];
  readonly oneTime: boolean;
  readonly seqTimeoutSec: number;
  readonly tcpFlags: TcpFlagRule;
  readonly target: Address | undefined;
  readonly ignoreDuplicates: boolean;
}

export interface KnockOptions {
  /** Bound of the attempt table; when full, the oldest attempt is evicted. Default 4096. */
  readonly maxAttempts?: number;
  /**
   * This host's addresses (canonical text), as knockd learns them from its interface. Given:
   * a door without `target` only counts hits whose dst is one of them. Not given: every hit
   * without target counts (the capture already saw only traffic to this host).
   */
  readonly localAddresses?: readonly string[];
  /**
   * Reproduce knockd 0.8's list bug (sniff() in knockd.c): when the oldest attempt in the table
   * is removed (opened, broken or timed out), every other attempt is lost with it. Off by
   * default; on only to compare with the real knockd (test/integration/knockd-semantics).
   */
  readonly knockdListBug?: boolean;
}

export const DEFAULT_MAX_ATTEMPTS = 4096;

export type KnockEndReason =
  /** seq_timeout passed between the first knock and this packet. */
  | 'timeout'
  /** A packet that counts for the door (flags match) went to the wrong port or protocol. */
  | 'broken'
  /** The table was full and this was the oldest attempt. */
  | 'evicted'
  /** The door's sequence changed (one-time advance, reload) or it was disabled; or knockdListBug. */
  | 'lost';

export type KnockEffect =
  /** knockd's "Stage N" (N = stage, 1-based, of `of` knocks). */
  | { readonly kind: 'knock-stage'; readonly door: string; readonly src: Address; readonly stage: number; readonly of: number }
  /**
   * One-time door used: persist (comment out `used` in the file) BEFORE carrying out the
   * sequence-open that follows. `next` undefined: no sequence is left and the door is disabled.
   */
  | { readonly kind: 'one-time-advance'; readonly door: string; readonly used: readonly KnockPort[]; readonly next: readonly KnockPort[] | undefined }
  /** knockd's "OPEN SESAME": run the door's start command for src, its stop command after cmd_timeout. */
  | { readonly kind: 'sequence-open'; readonly door: string; readonly src: Address; readonly atMs: number }
  /** An attempt ended without opening (for logs; knockd logs timeouts as "sequence timeout"). */
  | { readonly kind: 'knock-ended'; readonly door: string; readonly src: Address; readonly stage: number; readonly reason: KnockEndReason };

interface Attempt {
  readonly id: number;
  readonly door: string;
  readonly src: Address;
  /** Knocks matched so far (knockd's `stage`). */
  stage: number;
  /** Second of the first knock (knockd keeps pcap's whole seconds). */
  readonly startSec: number;
  /** Only kept while knockdListBug: knockd removes finished attempts at the next packet. */
  dead: boolean;
}

interface DoorState {
  readonly door: KnockDoor;
  /** Index into door.sequences of the current one; >= length: disabled. */
  index: number;
}

export interface KnockState {
  readonly doors: readonly DoorState[];
  readonly byName: ReadonlyMap<string, DoorState>;
  /** Insertion order = age order: the first entry is the oldest. */
  readonly attempts: Map<number, Attempt>;
  /** Attempt ids per source address text, oldest first. */
  readonly bySrc: Map<string, number[]>;
  /** `proto/port` -> doors whose current sequence has it (knockd's pcap filter). */
  ports: Map<string, DoorState[]>;
  nextId: number;
  readonly maxAttempts: number;
  /** Replaced (never mutated) by setLocalAddresses. */
  local: ReadonlySet<string> | undefined;
  readonly knockdListBug: boolean;
}

export interface StepResult {
  readonly state: KnockState;
  readonly effects: readonly KnockEffect[];
}

/** The machine's view of a parsed sequence door; `oneTime` lists the file's unused sequences. */
export function knockDoorOf(door: SequenceDoor, oneTime?: readonly (readonly KnockPort[])[]): KnockDoor {
  const fixed = door.sequence;
  return {
    name: door.name,
    sequences: door.oneTimeSequences !== undefined ? (oneTime ?? []) : fixed ? [fixed] : [],
    oneTime: door.oneTimeSequences !== undefined,
    seqTimeoutSec: door.seqTimeoutSec,
    tcpFlags: door.tcpFlags,
    target: door.target,
    ignoreDuplicates: door.ignoreDuplicates,
  };
}

export function createKnockState(doors: readonly KnockDoor[], options: KnockOptions = {}): KnockState {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError('maxAttempts must be a positive integer');
  const states = doors.map((door) => ({ door, index: 0 }));
  const state: KnockState = {
    doors: states,
    byName: new Map(states.map((d) => [d.door.name, d])),
    attempts: new Map(),
    bySrc: new Map(),
    ports: new Map(),
    nextId: 1,
    maxAttempts,
    local: options.localAddresses ? new Set(options.localAddresses) : undefined,
    knockdListBug: options.knockdListBug ?? false,
  };
  indexPorts(state);
  return state;
}

/**
 * New doors (SIGHUP): attempts on a door that still exists with the same current sequence
 * and timeout are kept; the others end as 'lost'.
 */
export function reloadKnockState(old: KnockState, doors: readonly KnockDoor[]): StepResult {
  const state = createKnockState(doors, {
    maxAttempts: old.maxAttempts,
    localAddresses: old.local ? [...old.local] : undefined,
    knockdListBug: old.knockdListBug,
  });
  const effects: KnockEffect[] = [];
  for (const a of old.attempts.values()) {
    if (a.dead) continue;
    const before = old.byName.get(a.door);
    const after = state.byName.get(a.door);
    const seqBefore = before ? currentSequence(before) : undefined;
    const seqAfter = after ? currentSequence(after) : undefined;
    if (seqBefore && seqAfter && sameSequence(seqBefore, seqAfter) && before?.door.seqTimeoutSec === after?.door.seqTimeoutSec) {
      addAttempt(state, { ...a, id: state.nextId++ });
    } else {
      effects.push(ended(a, 'lost'));
    }
  }
  return { state, effects };
}

/**
 * New addresses of this host (the capture interface's, which may change at run time: DHCP, a
 * hot-plugged link). Attempts in progress are kept; from now on only hits to these count for a
 * door without target. undefined: every hit counts (see KnockOptions.localAddresses).
 */
export function setLocalAddresses(state: KnockState, addresses: readonly string[] | undefined): KnockState {
  state.local = addresses ? new Set(addresses) : undefined;
  return state;
}

/** The sequence a door now expects, or undefined when it is disabled (one-time list used up). */
export function currentSequenceOf(state: KnockState, door: string): readonly KnockPort[] | undefined {
  const d = state.byName.get(door);
  return d ? currentSequence(d) : undefined;
}

/** Number of attempts in the table (live ones, plus finished ones under knockdListBug). */
export function attemptCount(state: KnockState): number {
  return state.attempts.size;
}

/**
 * Feeds one packet to the machine (knockd.c sniff(), minus capture and exec). `nowMs` is the
 * capture time; like knockd, only its whole seconds count for seq_timeout.
 */
export function step(state: KnockState, hit: KnockHit, nowMs: number): StepResult {
  const effects: KnockEffect[] = [];
  // knockd's pcap filter: only packets to a port of some door's current sequence (with that
  // door's tcpflags, to its target or to this host) ever reach sniff(); nothing else touches
  // the table. So a port in no sequence never resets a knock.
  if (!passesFilter(state, hit)) return { state, effects };
  const nowSec = Math.floor(nowMs / 1000);
  cleanup(state, nowSec, effects);

  const src = hit.src.text;
  // sniff(): this address's attempts whose door is the one this packet was sent to.
  const found: Attempt[] = [];
  for (const id of state.bySrc.get(src) ?? []) {
    const a = state.attempts.get(id);
    if (!a || a.dead) continue;
    const d = state.byName.get(a.door);
    const seq = d ? currentSequence(d) : undefined;
    if (!d || !seq || a.stage >= seq.length) {
      // The door's sequence changed under the attempt (knockd: removed as "successful").
      removeAttempt(state, a);
      effects.push(ended(a, 'lost'));
      continue;
    }
    if (nowSec - a.startSec >= d.door.seqTimeoutSec) {
      removeAttempt(state, a);
      effects.push(ended(a, 'timeout'));
      continue;
    }
    if (dstMatches(state, d.door, hit)) found.push(a);
  }

  if (found.length > 0) {
    // While an attempt from this address is alive, no door can start: the packet is judged
    // only against the attempts in progress (and a packet that breaks one is not a new start).
    for (const a of found) {
      const d = state.byName.get(a.door);
      const seq = d ? currentSequence(d) : undefined;
      if (!d || !seq || a.stage >= seq.length) continue; // changed by an advance in this loop
      const flagsOk = hit.proto !== 'tcp' || tcpFlagsMatch(d.door.tcpFlags, hit.tcpFlags);
      if (!flagsOk) continue; // knockd: a TCP packet whose flags don't match is ignored
      if (matches(seq[a.stage], hit)) {
        advance(state, d, a, nowMs, effects);
      } else if (d.door.ignoreDuplicates && a.stage > 0 && matches(seq[a.stage - 1], hit)) {
        // Ours (knock PR #90): a repeat of the knock just matched, such as a retransmitted SYN.
      } else {
        finish(state, a);
        effects.push(ended(a, 'broken'));
      }
    }
    return { state, effects };
  }

  // No attempt from this address: does the packet start one, for every door it is the first
  // knock of (several doors may share a first port and then run side by side)?
  for (const d of state.doors) {
    const seq = currentSequence(d);
    if (!seq) continue;
    if (hit.proto === 'tcp' && !tcpFlagsMatch(d.door.tcpFlags, hit.tcpFlags)) continue;
    if (!matches(seq[0], hit) || !dstMatches(state, d.door, hit)) continue;
    const a: Attempt = { id: state.nextId++, door: d.door.name, src: hit.src, stage: 0, startSec: nowSec, dead: false };
    if (state.attempts.size >= state.maxAttempts) evictOldest(state, effects);
    addAttempt(state, a);
    advance(state, d, a, nowMs, effects);
  }
  return { state, effects };
}

/**
 * Drops timed-out attempts (the daemon may call this on a timer to free memory; results of
 * step() do not depend on it, since step() checks timeouts itself).
 */
export function sweep(state: KnockState, nowMs: number): StepResult {
  const nowSec = Math.floor(nowMs / 1000);
  const effects: KnockEffect[] = [];
  for (const a of [...state.attempts.values()]) {
    const d = state.byName.get(a.door);
    if (a.dead) {
      if (!state.knockdListBug) removeAttempt(state, a);
      continue;
    }
    if (!d || nowSec - a.startSec >= d.door.seqTimeoutSec) {
      removeAttempt(state, a);
      effects.push(ended(a, d ? 'timeout' : 'lost'));
    }
  }
  return { state, effects };
}

function currentSequence(d: DoorState): readonly KnockPort[] | undefined {
  return d.door.sequences[d.index];
}

function matches(k: KnockPort | undefined, hit: KnockHit): boolean {
  return k !== undefined && k.proto === hit.proto && k.port === hit.dstPort;
}

/** knockd's target_strcmp: the door's target if it has one, else one of this host's addresses. */
function dstMatches(state: KnockState, door: KnockDoor, hit: KnockHit): boolean {
  if (door.target) return hit.dst !== undefined && hit.dst.text === door.target.text;
  if (state.local && hit.dst !== undefined) return state.local.has(hit.dst.text);
  return true;
}

function passesFilter(state: KnockState, hit: KnockHit): boolean {
  for (const d of state.ports.get(`${hit.proto}/${hit.dstPort}`) ?? []) {
    if (hit.proto === 'tcp' && !tcpFlagsMatch(d.door.tcpFlags, hit.tcpFlags)) continue;
    if (dstMatches(state, d.door, hit)) return true;
  }
  return false;
}

function indexPorts(state: KnockState): void {
  const ports = new Map<string, DoorState[]>();
  for (const d of state.doors) {
    for (const k of currentSequence(d) ?? []) {
      const key = `${k.proto}/${k.port}`;
      const list = ports.get(key) ?? [];
      if (!list.includes(d)) list.push(d);
      ports.set(key, list);
    }
  }
  state.ports = ports;
}

/**
 * knockd removes opened, broken and timed-out attempts at the start of every packet that
 * passes its filter. We drop opened and broken ones at once and timed-out ones when their
 * address knocks again (same results); here only the oldest few, to keep memory in check.
 * Under knockdListBug the head of the list decides: if it goes, everything goes.
 */
function cleanup(state: KnockState, nowSec: number, effects: KnockEffect[]): void {
  const expired = (a: Attempt): boolean => {
    const d = state.byName.get(a.door);
    const seq = d ? currentSequence(d) : undefined;
    return a.dead || !d || !seq || a.stage >= seq.length || nowSec - a.startSec >= d.door.seqTimeoutSec;
  };
  const reason = (a: Attempt): KnockEndReason => {
    const d = state.byName.get(a.door);
    const seq = d ? currentSequence(d) : undefined;
    return d && seq && a.stage < seq.length ? 'timeout' : 'lost';
  };
  if (state.knockdListBug) {
    const head = state.attempts.values().next().value;
    if (head === undefined) return;
    if (expired(head)) {
      // knockd.c sniff(): `if(lp == attempts) attempts = NULL;` drops the rest of the list too.
      for (const a of [...state.attempts.values()]) {
        removeAttempt(state, a);
        if (!a.dead) effects.push(ended(a, a === head ? reason(a) : 'lost'));
      }
      return;
    }
    for (const a of [...state.attempts.values()]) {
      if (!expired(a)) continue;
      removeAttempt(state, a);
      if (!a.dead) effects.push(ended(a, reason(a)));
    }
    return;
  }
  // Amortized: each packet retires at most a few expired attempts from the old end.
  for (let i = 0; i < 4; i++) {
    const head = state.attempts.values().next().value;
    if (head === undefined || !expired(head)) return;
    removeAttempt(state, head);
    effects.push(ended(head, reason(head)));
  }
}

function advance(state: KnockState, d: DoorState, a: Attempt, nowMs: number, effects: KnockEffect[]): void {
  const seq = currentSequence(d);
  if (!seq) return;
  a.stage += 1;
  effects.push({ kind: 'knock-stage', door: d.door.name, src: a.src, stage: a.stage, of: seq.length });
  if (a.stage < seq.length) return;
  finish(state, a);
  if (d.door.oneTime) {
    // knockd.c process_attempt: the used line is disabled and the next one read at once, so
    // other addresses' attempts on this door now face the new sequence.
    d.index += 1;
    indexPorts(state);
    effects.push({ kind: 'one-time-advance', door: d.door.name, used: seq, next: currentSequence(d) });
  }
  effects.push({ kind: 'sequence-open', door: d.door.name, src: a.src, atMs: nowMs });
}

/** An attempt that opened or broke: gone now, or kept dead until the next packet (knockdListBug). */
function finish(state: KnockState, a: Attempt): void {
  if (state.knockdListBug) a.dead = true;
  else removeAttempt(state, a);
}

function addAttempt(state: KnockState, a: Attempt): void {
  state.attempts.set(a.id, a);
  const key = a.src.text;
  const ids = state.bySrc.get(key);
  if (ids) ids.push(a.id);
  else state.bySrc.set(key, [a.id]);
}

function removeAttempt(state: KnockState, a: Attempt): void {
  if (!state.attempts.delete(a.id)) return;
  const key = a.src.text;
  const ids = state.bySrc.get(key);
  if (!ids) return;
  const i = ids.indexOf(a.id);
  if (i >= 0) ids.splice(i, 1);
  if (ids.length === 0) state.bySrc.delete(key);
}

function evictOldest(state: KnockState, effects: KnockEffect[]): void {
  const oldest = state.attempts.values().next().value;
  if (oldest === undefined) return;
  removeAttempt(state, oldest);
  if (!oldest.dead) effects.push(ended(oldest, 'evicted'));
}

function ended(a: Attempt, reason: KnockEndReason): KnockEffect {
  return { kind: 'knock-ended', door: a.door, src: a.src, stage: a.stage, reason };
}
