// The server's fwknop pieces that decide without I/O: the CMD_CYCLE argv, the kernel-filter
// clause (compiled by libpcap in test/integration/fwknop-server.test.ts).
import { describe, expect, it } from 'vitest';
import { parseAddressOrThrow } from '../../src/net/address.js';
import { cmdCycleBackend, fwknopGrantId, substituteArgv } from '../../server/fwknop-cmd-cycle.js';
import { fwknopFilterClause } from '../../server/fwknop-filter.js';
import { buildFilter } from '../../server/bpf.js';

describe('CMD_CYCLE backend', () => {
  const cycle = { open: ['/usr/sbin/ipset', 'add', 'fw', '$IP,$PROTO:$PORT', 'timeout', '$CLIENT_TIMEOUT', '$PKT_SRC', '$DST', '$SRC', 'until=$TIMEOUT'], close: ['/bin/rm', '/run/x-$IP'], timerSec: 30 };
  const opening = { door: 'fwknop-1', id: fwknopGrantId('10.0.0.5', '192.0.2.1'), addr: parseAddressOrThrow('198.51.100.7'), access: { proto: 'udp' as const, port: 53 }, timeoutSec: 45 };

  it('substitutes every fwknop variable inside words, runs argv without a shell', () => {
    const b = cmdCycleBackend(cycle, () => 1_800_000_000);
    expect(b.open(opening)).toEqual([{ argv: ['/usr/sbin/ipset', 'add', 'fw', '198.51.100.7,17:53', 'timeout', '45', '10.0.0.5', '192.0.2.1', '198.51.100.7', 'until=1800000045'] }]);
    expect(b.close(opening)).toEqual([{ argv: ['/bin/rm', '/run/x-198.51.100.7'] }]);
    expect(b.extend(opening)).toEqual([]);
    expect(cmdCycleBackend({ ...cycle, close: undefined }, () => 0).close(opening)).toEqual([]);
  });

  it('refuses a grant whose id does not carry the packet addresses, and an IPv6 address', () => {
    const b = cmdCycleBackend(cycle, () => 0);
    expect(() => b.open({ ...opening, id: 'alice' })).toThrow(RangeError);
    expect(() => b.open({ ...opening, addr: parseAddressOrThrow('2001:db8::1') })).toThrow(RangeError);
    expect(fwknopGrantId('10.0.0.5', undefined)).toBe('10.0.0.5@0.0.0.0');
  });

  it('leaves unknown $WORDS alone and knows $CLIENT_TIMEOUT from $TIMEOUT', () => {
    expect(substituteArgv(['$CLIENT_TIMEOUT/$TIMEOUT', '$HOME'], { CLIENT_TIMEOUT: '1', TIMEOUT: '2' })).toEqual(['1/2', '$HOME']);
  });
});

describe('fwknop filter clause', () => {
  it('passes UDP to the port with a 140..1500-byte payload starting with 8, 9, + or /', () => {
    expect(fwknopFilterClause(62201)).toBe('(udp dst port 62201 and udp[4:2] >= 148 and udp[4:2] <= 1508 and (udp[8] = 0x38 or udp[8] = 0x39 or udp[8] = 0x2b or udp[8] = 0x2f))');
    expect(() => fwknopFilterClause(0)).toThrow(RangeError);
  });

  it('is OR-ed after the v1 clauses', () => {
    const f = buildFilter({ spaPort: 62201, datagramBytes: 185, version: 1, tcpPorts: [], udpPorts: [], extraClauses: [fwknopFilterClause(62201)] });
    expect(f.endsWith(` or ${fwknopFilterClause(62201)}`)).toBe(true);
  });
});
