import { describe, expect, it } from 'vitest';
import { ReplayGuard } from '../../src/protocol/replay.js';

describe('ReplayGuard', () => {
  it('remembers nonces until sweep passes their window', () => {
    const g = new ReplayGuard(120, 100);
    g.add('a', 1000);
    g.add('b', 1100);
    expect(g.hasNonce('a')).toBe(true);
    expect(g.sweep(1120)).toBe(0);
    expect(g.sweep(1121)).toBe(1);
    expect(g.hasNonce('a')).toBe(false);
    expect(g.hasNonce('b')).toBe(true);
    // The forgotten knock is below the watermark: still refused.
    expect(g.isBelowWatermark(1000)).toBe(true);
    expect(g.isBelowWatermark(1001)).toBe(false);
  });

  it('at capacity forgets the oldest entry and raises the watermark (fail closed)', () => {
    const g = new ReplayGuard(120, 3);
    g.add('a', 10);
    g.add('b', 30);
    g.add('c', 20);
    expect(g.add('d', 40)).toBe(1);
    expect(g.size).toBe(3);
    expect(g.hasNonce('a')).toBe(false);
    expect(g.watermark).toBe(10);
    g.add('e', 50);
    expect(g.hasNonce('b')).toBe(false);
    expect(g.watermark).toBe(30);
    expect(g.isBelowWatermark(20)).toBe(true);
  });

  it('restores a persisted watermark and never lowers it', () => {
    const g = new ReplayGuard(120, 3);
    g.raiseWatermark(500);
    g.raiseWatermark(400);
    expect(g.watermark).toBe(500);
  });
});
