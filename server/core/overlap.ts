// Frames that two capture handles both deliver while the filter is replaced
// (server/capture.ts, setFilter) are passed on once. Pure.
//
// From the swap on, the kernel copies each frame that passes both filters into both rings, and
// the event loop reads the two handles in either order. Each frame one handle delivers is
// remembered until the other delivers it too; that copy is dropped and the entry forgotten. When
// the older handle closes, what it delivered alone may still wait, unread, in the newer one's
// ring (both became readable in the same turn of the loop, and the timer that closed the older
// one ran first), so its entries stay for one more interval: a frame from the newer handle that
// matches one of them is still a copy. Without that, a knock's frame that arrived just before
// the older handle closed was seen twice, and a knock sequence counts a repeated port as a wrong
// one (knockd's rule): the attempt broke.
//
// The filter replaced again before that is over (reloads): the closed handle's unmatched frames
// now await the handle that becomes the older one, as they did before.
//
// A frame whose bytes equal one the other handle delivered alone (a datagram resent from the
// same port with the same IP ID) is taken as a copy while the entry lasts, at most twice
// FILTER_OVERLAP_MS: for a knock, a replay the guard would refuse anyway.

/** Which of the two open handles delivered a frame. */
export type OverlapSide = 'older' | 'newer';

export class OverlapDedup {
  /** Delivered by the older handle and not (yet) by the newer, with how many times. */
  private older = new Map<string, number>();
  private newer = new Map<string, number>();
  private phase: 'idle' | 'both' | 'linger' = 'idle';

  /** maxFrames: entries kept per side (a flood past it is delivered twice, never lost). */
  constructor(private readonly maxFrames: number) {}

  /** Whether frames must be checked at all; when false, every frame is new. */
  get watching(): boolean {
    return this.phase === 'both' || (this.phase === 'linger' && this.older.size > 0);
  }

  /**
   * A new handle opened beside the one in use, which becomes the older. Within an overlap or its
   * linger, what the closed (or now closing) oldest handle delivered alone still awaits the handle
   * in use, now the older: those entries carry over; the rest are moot.
   */
  begin(): void {
    this.newer = this.phase === 'idle' ? new Map() : this.older;
    this.older = new Map();
    this.phase = 'both';
  }

  /** The older handle closed: from now on only the newer delivers, until end(). */
  olderClosed(): void {
    if (this.phase !== 'both') return;
    this.newer = new Map();
    this.phase = 'linger';
  }

  /** Forgets everything: the linger interval is over, or the capture closed or reopened. */
  end(): void {
    this.older = new Map();
    this.newer = new Map();
    this.phase = 'idle';
  }

  /** Whether this frame (its bytes, as `key`) is a copy of one the other handle delivered: drop it. */
  isCopy(side: OverlapSide, key: string): boolean {
    if (this.phase === 'idle') return false;
    const other = side === 'older' ? this.newer : this.older;
    const n = other.get(key);
    if (n !== undefined) {
      if (n > 1) other.set(key, n - 1);
      else other.delete(key);
      return true;
    }
    if (this.phase === 'both') {
      const own = side === 'older' ? this.older : this.newer;
      if (own.size < this.maxFrames) own.set(key, (own.get(key) ?? 0) + 1);
    }
    return false;
  }
}
