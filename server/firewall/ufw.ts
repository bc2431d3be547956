// ufw backend: one `ufw prepend allow` rule per opening (ahead of every other rule of its
// family), `ufw delete allow` to close; protect = yes appends `deny` rules. Pure.
//
// ufw itself makes these idempotent (tested with ufw 0.36): adding an existing rule
// prints "Skipping inserting existing rule" and deleting a missing one prints "Could not
// delete non-existent rule", both with exit 0. `prepend` is used rather than `insert 1`,
// which fails on an empty rule list and across the IPv4/IPv6 boundary.
import type { Access } from '../../src/net/access.js';
import {
  assertDoorRules,
  assertOpening,
  openingComment,
  protectedAccess,
  type Backend,
  type DoorRules,
  type Opening,
  type Step,
} from './types.js';

export interface UfwOptions {
  /** The ufw binary (default `ufw`). */
  readonly bin?: string;
}

/** The comment on protect rules; ufw cannot delete by comment, it is for people reading `ufw status`. */
export const UFW_PROTECT_COMMENT = 'spa:protect';

export function ufwBackend(options: UfwOptions = {}): Backend {
  const bin = options.bin ?? 'ufw';
  const allowSpec = (o: Opening): string[] => ['proto', o.access.proto, 'from', o.addr.text, 'to', 'any', 'port', String(o.access.port)];
  const denySpec = (a: Access): string[] => ['proto', a.proto, 'to', 'any', 'port', String(a.port)];
  const ensure = (o: Opening): Step[] => [
    { argv: [bin, 'prepend', 'allow', ...allowSpec(assertOpening(o)), 'comment', openingComment(o)] },
  ];

  return {
    name: 'ufw',
    // Without an address a ufw rule covers IPv4 and IPv6 (when /etc/default/ufw has IPV6=yes).
    setup: (doors) => protectedAccess(assertDoorRules(doors)).map((a) => ({ argv: [bin, 'deny', ...denySpec(a), 'comment', UFW_PROTECT_COMMENT] })),
    open: ensure,
    // ufw rules have no timeout: the daemon's timer (and its journal after a crash) closes them.
    extend: ensure,
    close: (o) => [{ argv: [bin, 'delete', 'allow', ...allowSpec(assertOpening(o))] }],
    teardown: (doors: readonly DoorRules[]) => protectedAccess(assertDoorRules(doors)).map((a) => ({ argv: [bin, 'delete', 'deny', ...denySpec(a)] })),
  };
}
