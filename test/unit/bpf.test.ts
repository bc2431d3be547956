// server/bpf.ts: the tag clause's text and the plan of which epochs a filter carries.
import { describe, expect, it } from 'vitest';
import { buildFilter, covers, estimateInstructions, maxFilterKeys, MAX_LOOKAHEAD_EPOCHS, neededEpochs, planEpochs } from '../../server/bpf.js';

const base = { spaPort: 62201, datagramBytes: 217, version: 1, tcpPorts: [], udpPorts: [] };

describe('the tag clause', () => {
  it('compares the tag (datagram offset 1) and excludes nonces (offset 17), for IPv4 and IPv6', () => {
    const f = buildFilter({ ...base, tags: { tagPrefixes: [0xdeadbeef, 1, 1], noncePrefixes: [0xa] } });
    expect(f).toBe(
      '(udp dst port 62201 and udp[4:2] = 225 and udp[8] = 1' +
        ' and (udp[9:4] = 0x00000001 or udp[9:4] = 0xdeadbeef) and not (udp[25:4] = 0x0000000a))' +
        ' or (ip6 and ip6[6] = 17 and ip6[42:2] = 62201 and ip6[44:2] = 225 and ip6[48] = 1' +
        ' and (ip6[49:4] = 0x00000001 or ip6[49:4] = 0xdeadbeef) and not (ip6[65:4] = 0x0000000a))',
    );
  });

  it('with no key at all, no SPA datagram passes', () => {
    expect(buildFilter({ ...base, tags: { tagPrefixes: [], noncePrefixes: [] } })).toContain('udp[8] = 1 and 0 = 1)');
  });

  it('refuses a prefix that is not a 32-bit word', () => {
    expect(() => buildFilter({ ...base, tags: { tagPrefixes: [2 ** 32], noncePrefixes: [] } })).toThrow('tagPrefixes: expected an integer in [0, 4294967295], got 4294967296');
  });

  it('the estimate grows with the comparisons, counting duplicates once', () => {
    const a = estimateInstructions({ ...base, tags: { tagPrefixes: [1, 2], noncePrefixes: [] } });
    expect(estimateInstructions({ ...base, tags: { tagPrefixes: [1, 2, 2], noncePrefixes: [] } })).toBe(a);
    expect(estimateInstructions({ ...base, tags: { tagPrefixes: [1, 2, 3], noncePrefixes: [] } })).toBeGreaterThan(a);
  });
});

describe('planEpochs', () => {
  it('covers every epoch a fresh knock can use, and the next one', () => {
    // now = 1000: the window reaches 880..1120, epochs 14..18; one ahead: 19.
    expect(neededEpochs(1000, 120)).toEqual({ first: 14, last: 19 });
    const r = planEpochs(1000, 120, 161, 0)!;
    expect(r.first).toBe(14);
    expect(r.last).toBeGreaterThanOrEqual(19);
  });

  it('few keys look far ahead (rare swaps); as many as fit, not at all; one more, no plan', () => {
    expect(planEpochs(1000, 120, 1, 0)).toEqual({ first: 14, last: 19 + MAX_LOOKAHEAD_EPOCHS });
    expect(planEpochs(1000, 120, 161, 0)).toEqual({ first: 14, last: 19 });
    expect(maxFilterKeys(120, 0)).toBe(161);
    expect(planEpochs(1000, 120, 162, 0)).toBeUndefined();
    // Sequence ports take room too.
    expect(maxFilterKeys(120, 40)).toBeLessThan(161);
  });

  it('a filter is replaced when time leaves its epochs, not before', () => {
    const r = planEpochs(1000, 120, 100, 0)!;
    let t = 1000;
    while (covers(r, t, 120)) t++;
    // The last epoch it holds is the one ahead of need from then on: a whole epoch of margin.
    expect(Math.floor((t + 120) / 60) + 1).toBe(r.last + 1);
    expect(covers(r, t - 1, 120)).toBe(true);
    // A clock set back past its first epoch needs a new filter too.
    expect(covers(r, 1000 - 120, 120)).toBe(false);
  });

  it('the budget keeps every plan under the kernel limit', () => {
    for (const windowSec of [1, 60, 120, 300, 3600]) {
      const keys = maxFilterKeys(windowSec, 0);
      const r = planEpochs(0, windowSec, keys, 0);
      if (keys === 0) continue;
      const epochs = r!.last - r!.first + 1;
      const spec = { ...base, tags: { tagPrefixes: Array.from({ length: keys * epochs }, (_, i) => i), noncePrefixes: Array.from({ length: 16 }, (_, i) => i + 1e9) } };
      expect(estimateInstructions(spec)).toBeLessThanOrEqual(4000);
    }
  });
});
