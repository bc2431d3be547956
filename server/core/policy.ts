// SPA policy: which door a verified knock may open, and for which address (PROTOCOL.md §5,
// after check 11). Pure.
import { sameAddress, type Address } from '../../src/net/address.js';
import { sameAccess, type Access } from '../../src/net/access.js';
import type { Allow } from '../../src/protocol/body.js';
import type { Reason } from '../../src/protocol/reasons.js';

export interface SpaDoorPolicy {
  readonly name: string;
  /** Ids of the keys in this door's spa_keys file. */
  readonly keyIds: ReadonlySet<string>;
  readonly access: readonly Access[];
  readonly allowNat: boolean;
  /** Accepts `allow = source` (the body's family 0): opens for the packet's source address. */
  readonly allowSource: boolean;
  /** cmd_timeout: how long an opening through this door lasts. */
  readonly cmdTimeoutSec: number;
}

export type PolicyResult =
  | { readonly ok: true; readonly door: SpaDoorPolicy; /** The address to open for. */ readonly addr: Address }
  | { readonly ok: false; readonly reason: Reason };

/** The address a door opens for, or the reason it refuses the allow address. */
function addressFor(door: SpaDoorPolicy, allow: Allow, src: Address): Address | 'policy.address' | 'policy.source' {
  if (allow === 'source') return door.allowSource ? src : 'policy.source';
  return door.allowNat || sameAddress(allow, src) ? allow : 'policy.address';
}

/**
 * The first door (config order) that holds the key, covers every requested access and
 * accepts the allow address. When none does, the reason is the furthest any door got:
 * a key in no door, then access outside every door holding the key, then the address.
 * (spa-server makes tags only for keys that some door holds, so it never reaches
 * 'policy.door'; PROTOCOL.md §5.4.)
 */
export function chooseDoor(doors: readonly SpaDoorPolicy[], id: string, access: readonly Access[], allow: Allow, src: Address): PolicyResult {
  let reason: Reason = 'policy.door';
  for (const door of doors) {
    if (!door.keyIds.has(id)) continue;
    if (!access.every((a) => door.access.some((d) => sameAccess(a, d)))) {
      if (reason === 'policy.door') reason = 'policy.access';
      continue;
    }
    const addr = addressFor(door, allow, src);
    if (typeof addr === 'string') {
      reason = addr;
      continue;
    }
    return { ok: true, door, addr };
  }
  return { ok: false, reason };
}
