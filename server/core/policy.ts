// SPA policy: which door a verified knock may open (PROTOCOL.md §5, after check 11). Pure.
import { sameAddress, type Address } from '../../src/net/address.js';
import { sameAccess, type Access } from '../../src/net/access.js';
import type { Reason } from '../../src/protocol/reasons.js';

export interface SpaDoorPolicy {
  readonly name: string;
  /** Ids of the keys in this door's spa_keys file. */
  readonly keyIds: ReadonlySet<string>;
  readonly access: readonly Access[];
  readonly allowNat: boolean;
}

export type PolicyResult = { readonly ok: true; readonly door: SpaDoorPolicy } | { readonly ok: false; readonly reason: Reason };

/**
 * The first door (config order) that holds the key, covers every requested access and
 * accepts the allow address. When none does, the reason is the furthest any door got:
 * a key in no door, then access outside every door holding the key, then the address.
 */
export function chooseDoor(doors: readonly SpaDoorPolicy[], id: string, access: readonly Access[], allow: Address, src: Address): PolicyResult {
  let reason: Reason = 'policy.door';
  for (const door of doors) {
    if (!door.keyIds.has(id)) continue;
    if (!access.every((a) => door.access.some((d) => sameAccess(a, d)))) {
      if (reason === 'policy.door') reason = 'policy.access';
      continue;
    }
    if (!door.allowNat && !sameAddress(allow, src)) {
      reason = 'policy.address';
      continue;
    }
    return { ok: true, door };
  }
  return { ok: false, reason };
}
