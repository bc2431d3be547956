// The table of open doors: what to open, extend or close, as data. Pure.
// One entry per (door, address, proto/port); a new knock for an open entry extends
// its deadline instead of adding a second rule (issue 4, item 3).
import type { Address } from '../../src/net/address.js';
import { accessText, type Access } from '../../src/net/access.js';

export interface Grant {
  readonly door: string;
  /** Key id for SPA doors; the door name for sequence doors. */
  readonly id: string;
  readonly addr: Address;
  /** The port opened (SPA doors); undefined for a sequence door, whose commands take only %IP%. */
  readonly access: Access | undefined;
  /** Unix ms at which it closes. */
  readonly untilMs: number;
  /** The backend that opened it (journaled, so a later config change still closes it right). */
  readonly backend?: string;
}

export type GrantEffect = { readonly kind: 'open'; readonly grant: Grant } | { readonly kind: 'extend'; readonly grant: Grant; readonly previousUntilMs: number };

export function grantKey(o: Pick<Grant, 'door' | 'id' | 'addr' | 'access'>): string {
  // A sequence door's grant has no access: each completed knock is its own grant (knockd pairs
  // every start_command with its own stop_command), told apart by its id.
  return `${o.door} ${o.addr.text} ${o.access ? accessText(o.access) : `#${o.id}`}`;
}

export class GrantTable {
  private readonly byKey = new Map<string, Grant>();

  get size(): number {
    return this.byKey.size;
  }

  list(): Grant[] {
    return [...this.byKey.values()];
  }

  get(key: string): Grant | undefined {
    return this.byKey.get(key);
  }

  /** Plans the effects of granting `access` to `addr` through `door` until `untilMs`. */
  plan(door: string, id: string, addr: Address, access: readonly Access[], untilMs: number): GrantEffect[] {
    return access.map((a) => {
      const grant: Grant = { door, id, addr, access: a, untilMs };
      const prev = this.byKey.get(grantKey(grant));
      if (!prev) return { kind: 'open', grant };
      // The opening keeps the values its start command got (the first knocker's id, the
      // backend that opened it): its stop command must get exactly those, or a rule tagged
      // by %ID% would leak. Only the deadline moves.
      return { kind: 'extend', grant: { ...prev, untilMs: Math.max(untilMs, prev.untilMs) }, previousUntilMs: prev.untilMs };
    });
  }

  /** Records an opening that is now in force (after its open effect succeeded). */
  set(o: Grant): void {
    this.byKey.set(grantKey(o), o);
  }

  delete(key: string): Grant | undefined {
    const o = this.byKey.get(key);
    this.byKey.delete(key);
    return o;
  }

  /** Openings whose deadline has passed at nowMs. */
  due(nowMs: number): Grant[] {
    return this.list().filter((o) => o.untilMs <= nowMs);
  }
}

/** Key id shown for sequence doors' grants (they have no key). */
export const SEQUENCE_ID = 'sequence';

/**
 * The firewall backend's view of a grant, lasting until untilMs. A sequence door's
 * commands take only %IP% (config check), so tcp/1 stands in for its missing access.
 */
export function openingOf(g: Grant, nowMs: number): { door: string; id: string; addr: Address; access: Access; timeoutSec: number } {
  return { door: g.door, id: g.id, addr: g.addr, access: g.access ?? { proto: 'tcp', port: 1 }, timeoutSec: Math.max(1, Math.ceil((g.untilMs - nowMs) / 1000)) };
}
