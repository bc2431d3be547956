import { describe, expect, it } from 'vitest';
import { ReplayGuard } from '../../src/protocol/replay.js';

describe('ReplayGuard', () => {
  it('remembers nonces until sweep passes their window', () => {
    const g = new ReplayGuard(120, 100);
    g.add('alice', 'a', 1000);
    g.add('alice', 'b', 1100);
    expect(g.hasNonce('alice', 'a')).toBe(true);
    expect(g.hasNonce('bob', 'a')).toBe(false);
    expect(g.sweep(1120)).toBe(0);
    expect(g.sweep(1121)).toBe(1);
    expect(g.hasNonce('alice', 'a')).toBe(false);
    expect(g.hasNonce('alice', 'b')).toBe(true);
    // The forgotten knock is below the watermark: still refused.
    expect(g.isBelowWatermark('alice', 1000)).toBe(true);
    expect(g.isBelowWatermark('alice', 1001)).toBe(false);
    expect(g.isBelowWatermark('bob', 1000)).toBe(false);
  });

  it("at a client's capacity forgets its entry with the smallest timestamp and raises its watermark (fail closed)", () => {
    const g = new ReplayGuard(120, 3);
    g.add('alice', 'a', 10);
    g.add('alice', 'b', 30);
    g.add('alice', 'c', 20);
    g.add('bob', 'x', 5);
    expect(g.add('alice', 'd', 40)).toBe(1);
    expect(g.size).toBe(4);
    expect(g.hasNonce('alice', 'a')).toBe(false);
    expect(g.watermark('alice')).toBe(10);
    g.add('alice', 'e', 50);
    expect(g.hasNonce('alice', 'c')).toBe(false); // 20 < 30: smallest timestamp, not first in
    expect(g.hasNonce('alice', 'b')).toBe(true);
    expect(g.watermark('alice')).toBe(20);
    expect(g.isBelowWatermark('alice', 20)).toBe(true);
    expect(g.watermark('bob')).toBe(-Infinity);
    expect(g.hasNonce('bob', 'x')).toBe(true);
  });

  it('restores a persisted watermark and never lowers it; the floor applies to every client', () => {
    const g = new ReplayGuard(120, 3);
    g.raiseWatermark('alice', 500);
    g.raiseWatermark('alice', 400);
    expect(g.watermark('alice')).toBe(500);
    g.raiseFloor(450);
    expect(g.watermark('bob')).toBe(450);
    expect(g.watermark('alice')).toBe(500);
    expect(g.watermarks()).toEqual([{ client: 'alice', timeSec: 500 }]);
  });

  it('recording a nonce twice keeps one entry', () => {
    const g = new ReplayGuard(120, 3);
    g.add('alice', 'a', 10);
    expect(g.add('alice', 'a', 10)).toBe(0);
    expect(g.size).toBe(1);
  });
});
