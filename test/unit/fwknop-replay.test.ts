// The fwknop replay cache: bounded by the age window, fwknopd's digest.cache imported as is.
import { describe, expect, it } from 'vitest';
import { FwknopReplayTable, parseDigestCache, parseReplayLog, replayLogLine, replayUntil } from '../../src/fwknop/replay.js';

const D1 = 'z0b12IypFRSA4HikG/yfNby36DKS9Pf683BskjXG2sk';
const D2 = '8VsGIVRHb6jO9itm2/yz1UKUymdxLmgAtUSx06Vq508';

describe('fwknop replay table', () => {
  it('keeps a digest while its packet can pass the age check, then forgets it', () => {
    const t = new FwknopReplayTable();
    t.add(D1, replayUntil(1000, 1000 + 100, 120));
    expect(t.has(D1)).toBe(true);
    t.sweep(1220);
    expect(t.has(D1)).toBe(true);
    t.sweep(1221);
    expect(t.has(D1)).toBe(false);
    expect(t.size).toBe(0);
  });

  it('never forgets with aging off', () => {
    const t = new FwknopReplayTable();
    t.add(D1, replayUntil(1000, 1000, undefined));
    t.sweep(10 ** 12);
    expect(t.has(D1)).toBe(true);
    expect(parseReplayLog([replayLogLine(D1, Number.POSITIVE_INFINITY)])).toEqual([{ digest: D1, untilSec: Number.POSITIVE_INFINITY }]);
  });

  it("imports fwknopd's digest.cache lines (digest, proto, src, sport, dst, dport, time) and skips junk", () => {
    const text = `${D1} 17 127.0.0.1 40000 127.0.0.1 62201 1796045022\n# comment\n${D2} 17 127.0.0.1 40001 127.0.0.1 62201 notatime\nshort 1\n`;
    expect(parseDigestCache(text, 120)).toEqual([{ digest: D1, untilSec: 1796045022 + 240 }]);
  });

  it('reads back its own log and ignores torn or foreign lines', () => {
    expect(parseReplayLog([replayLogLine(D1, 5), `${D2}`, 'x 5', `${D2} 7`])).toEqual([{ digest: D1, untilSec: 5 }, { digest: D2, untilSec: 7 }]);
  });
});
