// OverlapDedup (server/core/overlap.ts): while a capture filter is replaced, a frame both handles
// deliver is passed on once, in whichever order they are read, including the late copy the newer
// handle delivers just after the older one closed.
import { describe, expect, it } from 'vitest';
import { OverlapDedup, type OverlapSide } from '../../server/core/overlap.js';

/** Feeds (side, frame) pairs; returns the frames passed on. */
function run(d: OverlapDedup, feed: [OverlapSide, string][]): string[] {
  return feed.filter(([side, key]) => !d.isCopy(side, key)).map(([, key]) => key);
}

describe('OverlapDedup', () => {
  it('idle: every frame is new, however often it comes', () => {
    const d = new OverlapDedup(16);
    expect(d.watching).toBe(false);
    expect(run(d, [['newer', 'a'], ['newer', 'a'], ['older', 'a']])).toEqual(['a', 'a', 'a']);
  });

  it('both open: each frame once, whichever handle is read first', () => {
    const d = new OverlapDedup(16);
    d.begin();
    expect(run(d, [['older', 'a'], ['newer', 'b'], ['newer', 'a'], ['older', 'b'], ['older', 'c']])).toEqual(['a', 'b', 'c']);
  });

  it('two equal frames (a resent datagram) are two frames: each side counts them', () => {
    const d = new OverlapDedup(16);
    d.begin();
    expect(run(d, [['older', 'a'], ['older', 'a'], ['newer', 'a'], ['newer', 'a'], ['newer', 'a']])).toEqual(['a', 'a', 'a']);
  });

  it('after the older handle closed: its unmatched frames, delivered late by the newer, are copies; new frames are not', () => {
    const d = new OverlapDedup(16);
    d.begin();
    expect(run(d, [['older', 'a'], ['newer', 'b']])).toEqual(['a', 'b']);
    d.olderClosed();
    expect(d.watching).toBe(true);
    expect(run(d, [['newer', 'a'], ['newer', 'c'], ['newer', 'c'], ['newer', 'a']])).toEqual(['c', 'c', 'a']);
    d.end();
    expect(d.watching).toBe(false);
    expect(run(d, [['newer', 'a']])).toEqual(['a']);
  });

  it('a swap after the linger starts afresh', () => {
    const d = new OverlapDedup(16);
    d.begin();
    run(d, [['older', 'a'], ['newer', 'b']]);
    d.olderClosed();
    d.end();
    d.begin();
    expect(run(d, [['older', 'a'], ['newer', 'b'], ['newer', 'a'], ['older', 'b']])).toEqual(['a', 'b']);
  });

  it('a swap within the linger: the closed handle\'s frames still await the handle in use, now the older', () => {
    const d = new OverlapDedup(16);
    d.begin();
    run(d, [['older', 'a'], ['newer', 'b']]);
    d.olderClosed();
    d.begin();
    // 'a' comes late from the handle that was newer and is now older: a copy. The newest handle
    // opened after 'a' was sent; a frame of the same bytes from it is a new one.
    expect(run(d, [['older', 'a'], ['newer', 'a']])).toEqual(['a']);
  });

  it('a swap within the overlap (a third handle): the oldest\'s unmatched frames await the middle one', () => {
    const d = new OverlapDedup(16);
    d.begin();
    run(d, [['older', 'a'], ['newer', 'c']]);
    d.begin();
    // The middle handle (now older) delivers 'a' late: a copy. Its own 'c' awaited the oldest,
    // now closed: forgotten, so a new frame of those bytes, delivered by both open handles, passes once.
    expect(run(d, [['older', 'a'], ['newer', 'c'], ['older', 'c']])).toEqual(['c']);
  });

  it('watches during the linger only while the closed handle left something to match', () => {
    const d = new OverlapDedup(16);
    d.begin();
    run(d, [['older', 'a'], ['newer', 'a']]);
    d.olderClosed();
    expect(d.watching).toBe(false);
  });

  it('past maxFrames per side a copy gets through (delivered twice, never lost)', () => {
    const d = new OverlapDedup(2);
    d.begin();
    expect(run(d, [['older', 'a'], ['older', 'b'], ['older', 'c'], ['newer', 'a'], ['newer', 'b'], ['newer', 'c']])).toEqual(['a', 'b', 'c', 'c']);
  });
});
