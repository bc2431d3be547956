// firewalld backend: runtime rich rules with firewalld's own timeout (`--timeout=Ns`),
// so firewalld removes an opening by itself even if spa dies. Pure. Returns argv only.
//
// Rich rules are ordered by priority: an opening accepts at `priority`, protect = yes
// drops at `priority + 1`, both ahead of the zone's services and ports (which come after
// every negative-priority rule). firewalld accepts established,related traffic before
// any zone, so connections made while open survive. firewall-cmd exits 0 with a warning
// (ALREADY_ENABLED, NOT_ENABLED) for an add that exists and a remove that does not.
import type { Access } from '../../src/net/access.js';
import type { Family } from '../../src/net/address.js';
import { assertDoorRules, assertOpening, protectedAccess, type Backend, type Opening, type Step } from './types.js';

export interface FirewalldOptions {
  /** The firewall-cmd binary (default `firewall-cmd`). */
  readonly bin?: string;
  /** The zone (default: firewalld's default zone). */
  readonly zone?: string;
  /** Rich-rule priority of openings, -32767..-2 (default -10); protect drops use priority + 1. */
  readonly priority?: number;
}

const ZONE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,16}$/;

export function firewalldBackend(options: FirewalldOptions = {}): Backend {
  const bin = options.bin ?? 'firewall-cmd';
  const priority = options.priority ?? -10;
  if (options.zone !== undefined && !ZONE_PATTERN.test(options.zone)) {
    throw new RangeError(`firewalld: zone name must match ${ZONE_PATTERN.source}, got ${JSON.stringify(options.zone)}`);
  }
  if (!Number.isInteger(priority) || priority < -32767 || priority > -2) throw new RangeError(`firewalld: priority must be -32767..-2, got ${priority}`);
  const zone = options.zone === undefined ? [] : [`--zone=${options.zone}`];
  const cmd = (...args: string[]): Step => ({ argv: [bin, ...zone, ...args] });
  const family = (f: Family): string => (f === 4 ? 'ipv4' : 'ipv6');

  const acceptRule = (o: Opening): string =>
    `rule priority="${priority}" family="${family(o.addr.family)}" source address="${o.addr.text}" port port="${o.access.port}" protocol="${o.access.proto}" accept`;
  const dropRule = (f: Family, a: Access): string =>
    `rule priority="${priority + 1}" family="${family(f)}" port port="${a.port}" protocol="${a.proto}" drop`;
  const dropRules = (doors: Parameters<Backend['setup']>[0]): string[] =>
    protectedAccess(assertDoorRules(doors)).flatMap((a) => [dropRule(4, a), dropRule(6, a)]);

  const add = (o: Opening): Step => cmd(`--add-rich-rule=${acceptRule(assertOpening(o))}`, `--timeout=${o.timeoutSec}s`);
  const remove = (o: Opening): Step => cmd(`--remove-rich-rule=${acceptRule(assertOpening(o))}`);

  return {
    name: 'firewalld',
    // Runtime rules only: spa adds them at every start; `firewall-cmd --reload` drops them.
    setup: (doors) => dropRules(doors).map((r) => cmd(`--add-rich-rule=${r}`)),
    open: (o) => [add(o)],
    // An add of an enabled rule keeps its old timeout: remove it, then add it afresh.
    extend: (o) => [remove(o), add(o)],
    close: (o) => [remove(o)],
    teardown: (doors) => dropRules(doors).map((r) => cmd(`--remove-rich-rule=${r}`)),
  };
}
