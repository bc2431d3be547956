// The decision for one SPA datagram: verify (PROTOCOL.md §5), choose the door, and say what
// to record and open, or why not. The shell carries it out (replay durable -> journal -> open
// -> schedule close, server/receive.ts and server/effects.ts). Pure.
import type { Address } from '../../src/net/address.js';
import type { Access } from '../../src/net/access.js';
import { verifyDatagram, type VerifyContext } from '../../src/protocol/datagram.js';
import type { Reason } from '../../src/protocol/reasons.js';
import { chooseDoor, type SpaDoorPolicy } from './policy.js';

const SECOND_MS = 1000;

export interface SpaContext extends Omit<VerifyContext, 'server'> {
  /** Undefined when no door holds a key (a fwknop-only or sequence-only config): nothing verifies. */
  readonly server: VerifyContext['server'] | undefined;
  readonly doors: readonly SpaDoorPolicy[];
}

/** What the replay guard must hold, durably, before anything opens (PROTOCOL.md §5.3). */
export interface ReplayRecord {
  readonly client: string;
  readonly nonceKey: string;
  readonly timeSec: number;
}

export type SpaDecision =
  | { readonly ok: false; readonly reason: Reason; /** Set once the tag named a client. */ readonly id: string | undefined }
  | {
      readonly ok: true;
      readonly door: SpaDoorPolicy;
      /** The key id that knocked. */
      readonly id: string;
      /** The address to open for. */
      readonly addr: Address;
      readonly access: readonly Access[];
      /** When the opening closes: the door's cmd_timeout after nowMs. */
      readonly untilMs: number;
      readonly replay: ReplayRecord;
    };

/** Decides one datagram's fate at nowMs. Never throws on attacker input. */
export function decideSpa(ctx: SpaContext, payload: Uint8Array, src: Address, nowMs: number): SpaDecision {
  if (!ctx.server) return { ok: false, reason: 'tag.unknown', id: undefined };
  const nowSec = Math.floor(nowMs / SECOND_MS);
  const v = verifyDatagram({ server: ctx.server, tags: ctx.tags, replay: ctx.replay, windowSec: ctx.windowSec }, payload, nowSec);
  if (!v.ok) return { ok: false, reason: v.reason, id: v.id };
  const p = chooseDoor(ctx.doors, v.client.id, v.access, v.allow, src);
  if (!p.ok) return { ok: false, reason: p.reason, id: v.client.id };
  return {
    ok: true,
    door: p.door,
    id: v.client.id,
    addr: p.addr,
    access: v.access,
    untilMs: nowMs + p.door.cmdTimeoutSec * SECOND_MS,
    replay: { client: v.client.guardKey, nonceKey: v.nonceKey, timeSec: v.timeSec },
  };
}
