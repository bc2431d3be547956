// nftables backend: spa's own table (`inet spa`) with timeout sets that the kernel
// expires by itself, so access ends even if the daemon dies. Pure. Returns argv only.
//
// Each method is one `nft` call whose commands (separated by ';') form one transaction:
// all apply or none. Elements are `addr . proto . port`; the kernel timeout is exactly
// the granted time (no grace: the kernel, not the daemon, decides when access ends, and
// close tolerates an element that has already expired).
import {
  assertDoorRules,
  assertOpening,
  protectedAccess,
  type Backend,
  type DoorRules,
  type Opening,
  type Step,
} from './types.js';

export interface NftablesOptions {
  /** The nft binary (default `nft`, looked up in PATH). */
  readonly bin?: string;
  /** spa's table in family inet (default `spa`). */
  readonly table?: string;
  /** Hook priority of spa's input chain; below 0 runs before the usual `filter` chains (default -10). */
  readonly priority?: number;
}

const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

export function nftablesBackend(options: NftablesOptions = {}): Backend {
  const bin = options.bin ?? 'nft';
  const table = options.table ?? 'spa';
  const priority = options.priority ?? -10;
  if (!NAME_PATTERN.test(table)) throw new RangeError(`nftables: table name must match ${NAME_PATTERN.source}, got ${JSON.stringify(table)}`);
  if (!Number.isInteger(priority) || priority < -400 || priority > 400) throw new RangeError(`nftables: priority must be an integer from -400 to 400, got ${priority}`);
  const t = `inet ${table}`;
  const nft = (commands: string[]): Step => ({ argv: [bin, commands.join('; ')] });

  const setName = (o: Opening): string => (o.addr.family === 4 ? 'allow4' : 'allow6');
  // `add` of an existing table or identical set is a no-op: setup and close both declare them.
  const addSet = (family: 4 | 6): string => `add set ${t} allow${family} { type ipv${family}_addr . inet_proto . inet_service ; flags timeout ; }`;
  const element = (o: Opening): string => `${o.addr.text} . ${o.access.proto} . ${o.access.port}`;
  // Add (a no-op if present), delete, add with the new timeout: one transaction that sets
  // the timeout whether or not the element exists. A plain `add element` on an existing
  // element keeps its old timeout on kernels before 6.10; this form works on all of them.
  const put = (o: Opening): Step => {
    const s = `${t} ${setName(o)}`;
    const e = element(assertOpening(o));
    return nft([`add element ${s} { ${e} timeout 1s }`, `delete element ${s} { ${e} }`, `add element ${s} { ${e} timeout ${o.timeoutSec}s }`]);
  };

  return {
    name: 'nftables',
    setup(doors: readonly DoorRules[]): Step[] {
      const guarded = protectedAccess(assertDoorRules(doors));
      const commands = [
        `add table ${t}`,
        addSet(4),
        addSet(6),
        `add chain ${t} input { type filter hook input priority ${priority} ; policy accept ; }`,
        // The chain is rebuilt at every start; the sets (the current openings) are kept.
        `flush chain ${t} input`,
      ];
      if (guarded.length > 0) commands.push(`add rule ${t} input ct state established,related accept`);
      commands.push(
        `add rule ${t} input ip saddr . meta l4proto . th dport @allow4 accept`,
        `add rule ${t} input ip6 saddr . meta l4proto . th dport @allow6 accept`,
      );
      for (const proto of ['tcp', 'udp'] as const) {
        const ports = guarded.filter((a) => a.proto === proto).map((a) => a.port);
        if (ports.length > 0) commands.push(`add rule ${t} input ${proto} dport { ${ports.join(', ')} } drop`);
      }
      return [nft(commands)];
    },
    // The chain setup builds, with its hook: gone after `nft flush ruleset` (exit 1).
    installed: (doors) => {
      assertDoorRules(doors);
      return { argv: [bin, 'list', 'chain', 'inet', table, 'input'], absentCodes: [1] };
    },
    open: (o) => [put(o)],
    extend: (o) => [put(o)],
    close(o: Opening): Step[] {
      const s = `${t} ${setName(o)}`;
      const e = element(assertOpening(o));
      // The add element makes the delete succeed when the kernel has already expired the
      // element; the add table and add set, when the table is gone altogether (a reboot, `nft
      // flush ruleset`): closing what no longer exists must succeed, or the journal would keep
      // a stale opening forever. What they may create is an empty table with no chain: inert.
      return [nft([`add table ${t}`, addSet(o.addr.family), `add element ${s} { ${e} timeout 1s }`, `delete element ${s} { ${e} }`])];
    },
    teardown(doors: readonly DoorRules[]): Step[] {
      assertDoorRules(doors);
      return [nft([`add table ${t}`, `delete table ${t}`])];
    },
  };
}

