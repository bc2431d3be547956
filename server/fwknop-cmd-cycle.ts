// A backend for access.conf's CMD_CYCLE_OPEN / CMD_CYCLE_CLOSE: the command split on
// whitespace and run from argv without a shell, as fwknopd 2.6.10 does (fork + execvpe),
// with $IP $SRC $PKT_SRC $DST $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT replaced inside words by
// validated values. The grant's id carries the packet's addresses (`PKT_SRC@DST`).
// Shell only because $TIMEOUT is an absolute time: the clock is injected.
import { parseIPv4 } from '../src/fwknop/ipv4.js';
import type { CmdCycle } from '../src/fwknop/stanza.js';
import { PROTO_NUMBER } from '../src/net/access.js';
import { assertOpening, type Backend, type Opening, type Step } from './firewall/types.js';

/** The id of a fwknop grant: the packet's source and destination (0.0.0.0 when unknown). */
export function fwknopGrantId(pktSrc: string, dst: string | undefined): string {
  return `${pktSrc}@${dst ?? '0.0.0.0'}`;
}

function values(o: Opening, nowSec: number): Record<string, string> {
  assertOpening(o);
  const [pktSrc, dst] = o.id.split('@');
  if (pktSrc === undefined || dst === undefined || parseIPv4(pktSrc) === undefined || parseIPv4(dst) === undefined || o.addr.family !== 4) {
    throw new RangeError(`fwknop: grant id must be PKT_SRC@DST of IPv4 addresses, got ${JSON.stringify(o.id)}`);
  }
  return {
    IP: o.addr.text,
    SRC: o.addr.text,
    PKT_SRC: pktSrc,
    DST: dst,
    PORT: String(o.access.port),
    PROTO: String(PROTO_NUMBER[o.access.proto]),
    CLIENT_TIMEOUT: String(o.timeoutSec),
    // fwknopd computes it from the client's timestamp; we use our own clock (NOTES.md B.13).
    TIMEOUT: String(nowSec + o.timeoutSec),
  };
}

export function substituteArgv(argv: readonly string[], v: Readonly<Record<string, string>>): string[] {
  return argv.map((w) => w.replace(/\$(PKT_SRC|CLIENT_TIMEOUT|TIMEOUT|PROTO|PORT|SRC|DST|IP)/g, (_, n: string) => v[n] as string));
}

export function cmdCycleBackend(c: CmdCycle, nowSec: () => number): Backend {
  const run = (argv: readonly string[] | undefined, o: Opening): Step[] => (argv === undefined ? [] : [{ argv: substituteArgv(argv, values(o, nowSec())) }]);
  return {
    name: 'command',
    setup: () => [],
    open: (o) => run(c.open, o),
    // The daemon moves the close timer; the open command is not run again.
    extend: (o) => {
      assertOpening(o);
      return [];
    },
    close: (o) => run(c.close, o),
    teardown: () => [],
  };
}
