// Firewall backend types: an Opening, the Step a backend returns (argv, never a shell
// line), and the re-validation every backend applies before it builds argv. Pure.
import type { Access } from '../../src/net/access.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { checkKeyId } from '../../keys/format.js';
import { LIMITS } from '../../src/config/types.js';

/** One grant: door `door` lets key `id` reach `access` from `addr` for `timeoutSec`. */
export interface Opening {
  readonly door: string;
  readonly id: string;
  readonly addr: Address;
  readonly access: Access;
  /** Seconds the access lasts from now (open) or from now again (extend). */
  readonly timeoutSec: number;
}

/** What a door asks of a backend's base rules (setup/teardown). */
export interface DoorRules {
  readonly door: string;
  /** protect = yes: the backend itself drops `access` for everyone not opened. */
  readonly protect: boolean;
  /** The ports the door guards (its `access` list). */
  readonly access: readonly Access[];
}

/**
 * A probe decides whether a step runs: exit 0 means "present", an exit code in
 * `absentCodes` means "absent", anything else (a missing tool, a timeout, another
 * code) fails the step. This is how iptables' -C makes setup and close idempotent.
 */
export interface Probe {
  readonly argv: readonly string[];
  readonly absentCodes: readonly number[];
}

export interface Step {
  readonly argv: readonly string[];
  /** Fed to the command's standard input (iptables-restore); none when absent. */
  readonly stdin?: string;
  /** Run argv only when the probe says the thing is absent (create) or present (delete). */
  readonly when?: { readonly probe: Probe; readonly is: 'absent' | 'present' };
}

export type BackendName = 'nftables' | 'iptables' | 'ufw' | 'firewalld' | 'command';
export const BACKEND_NAMES: readonly BackendName[] = ['nftables', 'iptables', 'ufw', 'firewalld', 'command'];

/**
 * A backend is pure: it turns intentions into Steps. Every method validates what it is
 * given again and throws RangeError on a bad value (a bug in the caller: config and
 * packets are checked before they get here).
 */
export interface Backend {
  readonly name: BackendName;
  /** Base rules; safe to run again (at every start). Keeps current openings. */
  setup(doors: readonly DoorRules[]): Step[];
  /**
   * A probe that says whether setup's rules are still in place (exit 0) or gone (an
   * absent code: `nft flush ruleset`, another tool's reload), for the daemon's periodic
   * check. Absent for backends whose base rules cannot be asked for.
   */
  installed?(doors: readonly DoorRules[]): Probe;
  open(o: Opening): Step[];
  /** Make an existing opening last o.timeoutSec from now (re-creating it if it vanished). */
  extend(o: Opening): Step[];
  /** Safe to run when the opening is already gone (expired, rebooted, closed by hand). */
  close(o: Opening): Step[];
  /** Removes only what spa created. Safe to run twice. */
  teardown(doors: readonly DoorRules[]): Step[];
}

/** Door names reach argv, comments and %DOOR%: a safe token that cannot pass for an option. */
export const DOOR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Longest timeout a backend accepts: the config's own limit (a year; nft, tested, takes it). */
export const MAX_TIMEOUT_SEC = LIMITS.timeoutSec.max;

export function checkDoorName(door: string): string | undefined {
  if (DOOR_NAME_PATTERN.test(door)) return undefined;
  return `door name must be 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit, got ${JSON.stringify(door)}`;
}

function checkAccess(a: Access): string | undefined {
  if (a.proto !== 'tcp' && a.proto !== 'udp') return `access protocol must be tcp or udp, got ${JSON.stringify(a.proto)}`;
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) return `access port must be 1-65535, got ${JSON.stringify(a.port)}`;
  return undefined;
}

function checkAddress(addr: Address): string | undefined {
  const again = typeof addr.text === 'string' ? parseAddress(addr.text) : undefined;
  if (!again || again.text !== addr.text || again.family !== addr.family) {
    return `address must be a canonical IPv4 or IPv6 address, got ${JSON.stringify(addr.text)}`;
  }
  return undefined;
}

/**
 * Returns why an opening cannot reach a firewall, or undefined when it can. `doorName:
 * 'any'` is for the command backend, which never places a door name anywhere unless it
 * is shell-safe (knockd.conf section names are free text).
 */
export function checkOpening(o: Opening, doorName: 'token' | 'any' = 'token'): string | undefined {
  return (
    (doorName === 'token' ? checkDoorName(o.door) : typeof o.door === 'string' && o.door !== '' ? undefined : 'door name is empty') ??
    checkKeyId(o.id) ??
    checkAddress(o.addr) ??
    checkAccess(o.access) ??
    (Number.isInteger(o.timeoutSec) && o.timeoutSec >= 1 && o.timeoutSec <= MAX_TIMEOUT_SEC
      ? undefined
      : `timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SEC}, got ${JSON.stringify(o.timeoutSec)}`)
  );
}

export function checkDoorRules(d: DoorRules): string | undefined {
  return checkDoorName(d.door) ?? d.access.map(checkAccess).find((m) => m !== undefined);
}

/** Backends call this first: a bad value is a caller's bug, never a string to trust. */
export function assertOpening(o: Opening, doorName: 'token' | 'any' = 'token'): Opening {
  const why = checkOpening(o, doorName);
  if (why !== undefined) throw new RangeError(`firewall: ${why}`);
  return o;
}

export function assertDoorRules(doors: readonly DoorRules[]): readonly DoorRules[] {
  for (const d of doors) {
    const why = checkDoorRules(d);
    if (why !== undefined) throw new RangeError(`firewall: ${why}`);
  }
  return doors;
}

/** The tag spa puts on rules that carry one (iptables and ufw comments). */
export function openingComment(o: Opening): string {
  return `spa:${o.door}:${o.id}`;
}

/** A plain step, run unconditionally. */
export function step(...argv: string[]): Step {
  return { argv };
}

/** The distinct protected accesses of the doors with protect = yes, in first-seen order. */
export function protectedAccess(doors: readonly DoorRules[]): Access[] {
  const seen = new Set<string>();
  const out: Access[] = [];
  for (const d of doors) {
    if (!d.protect) continue;
    for (const a of d.access) {
      const k = `${a.proto}/${a.port}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(a);
    }
  }
  return out;
}
