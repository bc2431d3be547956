// What spa-knock tells a person about the allow address: how it was chosen (-v), a warning
// when a given address cannot survive a NAT, and the hint when the door did not open. Pure.
import type { Address } from '../src/net/address.js';
import { autoDecision, type AutoDecision } from './scope.js';

/** How the knock's allow address was chosen. */
export type AllowChoice =
  | { readonly how: 'given'; readonly address: Address; readonly from: '--allow-ip' | 'AllowIP' }
  | { readonly how: 'source' }
  /** auto without STUN: the kernel's source address, signed as it is. */
  | { readonly how: 'kernel'; readonly address: Address; readonly decision: AutoDecision; readonly stunOff: boolean }
  /** auto behind a NAT: the address a STUN server saw. */
  | { readonly how: 'stun'; readonly address: Address; readonly source: Address; readonly server: string };

/** The address to sign, or 'source'. */
export function allowOfChoice(c: AllowChoice): Address | 'source' {
  return c.how === 'source' ? 'source' : c.address;
}

/**
 * One warning line (without the program name) when a given address would have made auto ask
 * STUN: not globally routable, and the server is not on the same private network.
 */
export function allowWarning(c: AllowChoice, target: Address): string | undefined {
  if (c.how !== 'given') return undefined;
  const d = autoDecision(c.address, target);
  if (!d.stun) return undefined;
  return `warning: ${c.from} ${c.address.text} is ${d.range.name} and ${target.text} is not on that network: through a NAT the server sees another address and refuses; use auto (the default) or source`;
}

/** The -v line saying why auto signs the source address as it is, or asks STUN. */
export function autoNote(d: AutoDecision, source: Address, target: Address, stunOff: boolean, servers: readonly string[]): string {
  if (!d.stun) {
    if (d.why === 'global') return `allow ${source.text}: the source address toward ${target.text}, globally routable (no NAT expected, no STUN asked)`;
    if (d.why === 'loopback') return `allow ${source.text}: the source address toward ${target.text}, on this machine (no STUN asked)`;
    return `allow ${source.text}: the source address toward ${target.text}, both ${d.range?.name ?? 'special-purpose'} (${d.range?.cidr ?? ''}), one network (no STUN asked)`;
  }
  if (stunOff) return `allow ${source.text}: the source address toward ${target.text}, ${d.range.name}; STUN is off (none), so it is signed as it is`;
  return `${source.text}, the source address toward ${target.text}, is ${d.range.name}: asking STUN for the address a NAT gives it (${servers.join(', ')})`;
}

/**
 * The hint after "no connection" (--wait, proxy): the door most often stays shut because a
 * NAT changed the address the knock signed. Says what was signed and what to try; nothing
 * for a knock on this machine's loopback, where no NAT can be.
 */
export function natHint(c: AllowChoice): string | undefined {
  switch (c.how) {
    case 'given':
      return `hint: the knock asked to open for ${c.address.text} (${c.from}); if a NAT changes your address on the way (the usual cause), use --allow-ip auto or --allow-ip source; else see the server's log`;
    case 'source':
      return `hint: --allow-ip source needs spa_allow_source = yes in the server's door; else see the server's log (key, clock, access)`;
    case 'stun':
      return `hint: the knock asked to open for ${c.address.text}, the address ${c.server} saw; if the server sees another one (a second NAT, a VPN), use --allow-ip source; else see the server's log`;
    case 'kernel':
      if (!c.decision.stun && c.decision.why === 'loopback') return undefined;
      return `hint: the knock asked to open for ${c.address.text}, the source address${c.stunOff ? ' (STUN off)' : ''}; if a NAT changes it on the way (the usual cause), use --allow-ip source or --allow-ip ADDRESS (the public one); else see the server's log`;
  }
}
