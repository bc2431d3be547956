// iptables/ip6tables backend: spa's own chain SPA, jumped to from the top of INPUT,
// holding one ACCEPT rule per opening; protect = yes fills chain SPA-PROTECT (called
// at the end of SPA) with a conntrack accept and the drops. Pure. Returns Steps only.
//
//   INPUT:        -j SPA (inserted at position 1)
//   SPA:          -s ADDR -p PROTO --dport PORT -m comment --comment spa:DOOR:ID -j ACCEPT ...
//                 -j SPA-PROTECT (last)
//   SPA-PROTECT:  -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT; -p PROTO --dport PORT -j DROP ...
//
// SPA-PROTECT is rebuilt at every start in one atomic iptables-restore --noflush (which
// creates or flushes a declared chain), so changed protect lists never leave stale drops
// and there is no instant without them; openings in SPA are kept. Every add and delete is
// guarded by `-C`, so setup, open and close can run again without duplicating anything.
import type { Family } from '../../src/net/address.js';
import {
  assertDoorRules,
  assertOpening,
  openingComment,
  protectedAccess,
  type Backend,
  type DoorRules,
  type Opening,
  type Probe,
  type Step,
} from './types.js';

export interface IptablesOptions {
  /** IPv4 binary (default `iptables`); its restore tool is `${bin4}-restore`. */
  readonly bin4?: string;
  /** IPv6 binary (default `ip6tables`). */
  readonly bin6?: string;
  /** spa's chain (default `SPA`); the protect chain is `${chain}-PROTECT`. */
  readonly chain?: string;
  /** Seconds to wait for the xtables lock (`-w`, default 5). */
  readonly waitSec?: number;
}

const CHAIN_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,19}$/;

export function iptablesBackend(options: IptablesOptions = {}): Backend {
  const chain = options.chain ?? 'SPA';
  const protect = `${chain}-PROTECT`;
  const wait = String(options.waitSec ?? 5);
  if (!CHAIN_PATTERN.test(chain)) throw new RangeError(`iptables: chain name must match ${CHAIN_PATTERN.source}, got ${JSON.stringify(chain)}`);
  if (!/^[1-9][0-9]{0,2}$/.test(wait)) throw new RangeError(`iptables: waitSec must be 1-999, got ${wait}`);
  const bins: Record<Family, string> = { 4: options.bin4 ?? 'iptables', 6: options.bin6 ?? 'ip6tables' };

  const ipt = (f: Family, ...args: string[]): string[] => [bins[f], '-w', wait, ...args];
  // -C exits 1 when the rule (or its chain) is missing; 2 when a jump's target chain is missing.
  const probe = (f: Family, args: string[], absentCodes: number[] = [1]): Probe => ({ argv: ipt(f, ...args), absentCodes });
  const chainExists = (f: Family, name: string): Probe => probe(f, ['-n', '-L', name]);
  const ruleSpec = (o: Opening): string[] => [
    '-s', o.addr.text,
    '-p', o.access.proto,
    '--dport', String(o.access.port),
    '-m', 'comment', '--comment', openingComment(o),
    '-j', 'ACCEPT',
  ];
  const ensure = (o: Opening): Step[] => {
    const f = assertOpening(o).addr.family;
    return [{ argv: ipt(f, '-I', chain, '1', ...ruleSpec(o)), when: { probe: probe(f, ['-C', chain, ...ruleSpec(o)]), is: 'absent' } }];
  };

  return {
    name: 'iptables',
    setup(doors: readonly DoorRules[]): Step[] {
      const guarded = protectedAccess(assertDoorRules(doors));
      const steps: Step[] = [];
      for (const f of [4, 6] as const) {
        const lines = ['*filter', `:${protect} - [0:0]`];
        if (guarded.length > 0) lines.push(`-A ${protect} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`);
        for (const a of guarded) lines.push(`-A ${protect} -p ${a.proto} -m ${a.proto} --dport ${a.port} -j DROP`);
        lines.push('COMMIT', '');
        steps.push(
          { argv: ipt(f, '-N', chain), when: { probe: chainExists(f, chain), is: 'absent' } },
          { argv: [`${bins[f]}-restore`, '-w', wait, '--noflush'], stdin: lines.join('\n') },
          { argv: ipt(f, '-A', chain, '-j', protect), when: { probe: probe(f, ['-C', chain, '-j', protect]), is: 'absent' } },
          { argv: ipt(f, '-I', 'INPUT', '1', '-j', chain), when: { probe: probe(f, ['-C', 'INPUT', '-j', chain]), is: 'absent' } },
        );
      }
      return steps;
    },
    open: ensure,
    // iptables rules have no timeout: extending only makes sure the rule is (still) there;
    // the daemon's timer, and its journal after a crash, close it.
    extend: ensure,
    close(o: Opening): Step[] {
      const f = assertOpening(o).addr.family;
      return [{ argv: ipt(f, '-D', chain, ...ruleSpec(o)), when: { probe: probe(f, ['-C', chain, ...ruleSpec(o)]), is: 'present' } }];
    },
    teardown(doors: readonly DoorRules[]): Step[] {
      assertDoorRules(doors);
      const steps: Step[] = [];
      for (const f of [4, 6] as const) {
        steps.push(
          { argv: ipt(f, '-D', 'INPUT', '-j', chain), when: { probe: probe(f, ['-C', 'INPUT', '-j', chain], [1, 2]), is: 'present' } },
          { argv: ipt(f, '-F', chain), when: { probe: chainExists(f, chain), is: 'present' } },
          { argv: ipt(f, '-X', chain), when: { probe: chainExists(f, chain), is: 'present' } },
          { argv: ipt(f, '-F', protect), when: { probe: chainExists(f, protect), is: 'present' } },
          { argv: ipt(f, '-X', protect), when: { probe: chainExists(f, protect), is: 'present' } },
        );
      }
      return steps;
    },
  };
}
