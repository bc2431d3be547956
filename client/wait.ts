// Connecting once a door has opened: staggered TCP attempts until one is answered or the time
// is up (attemptStartsMs is the pure schedule; connectWhenOpen the shell that runs it).
import { Socket } from 'node:net';
import { SystemError } from '../src/errors.js';
import type { Address } from '../src/net/address.js';

/** Attempts left in flight at once; the oldest is dropped beyond this. */
export const MAX_ATTEMPTS_IN_FLIGHT = 8;

/**
 * When to start each attempt (ms after the knock): quickly at first, since a door opens within
 * milliseconds of the knock, then every 500 ms. An attempt is not cancelled when the next one
 * starts: behind a DROP rule its SYN is lost and the kernel only retransmits after a second,
 * so a fresh SYN finds the door sooner, while the older attempt still serves a slow link.
 * Pure.
 */
export function attemptStartsMs(timeoutMs: number): number[] {
  const out: number[] = [];
  for (const t of [0, 50, 100, 200, 350, 500, 750, 1000]) if (t < timeoutMs) out.push(t);
  for (let t = 1500; t < timeoutMs; t += 500) out.push(t);
  return out;
}

export interface Connected {
  readonly socket: Socket;
  readonly elapsedMs: number;
}

/**
 * Resolves with the first attempt that connects (every other one is destroyed), or rejects
 * with a SystemError naming the last error seen ("no answer" when every SYN went unanswered).
 */
export function connectWhenOpen(label: string, target: Address, port: number, timeoutMs: number, nowMs: () => number = Date.now): Promise<Connected> {
  const start = nowMs();
  return new Promise((resolve, reject) => {
    const live: Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    let done = false;
    let last = 'no answer';
    const finish = (): void => {
      done = true;
      for (const t of timers) clearTimeout(t);
      for (const s of live) s.destroy();
      live.length = 0;
    };
    const attempt = (): void => {
      if (done) return;
      if (live.length >= MAX_ATTEMPTS_IN_FLIGHT) live.shift()?.destroy();
      const s = new Socket();
      live.push(s);
      s.once('connect', () => {
        if (done) return;
        live.splice(live.indexOf(s), 1);
        finish();
        s.removeAllListeners('error');
        resolve({ socket: s, elapsedMs: nowMs() - start });
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        last = e.code ?? e.message;
        const i = live.indexOf(s);
        if (i >= 0) live.splice(i, 1);
        s.destroy();
      });
      s.connect({ host: target.text, port, family: target.family });
    };
    for (const at of attemptStartsMs(timeoutMs)) timers.push(setTimeout(attempt, at));
    timers.push(
      setTimeout(() => {
        if (done) return;
        finish();
        const where = target.family === 6 ? `[${target.text}]` : target.text;
        reject(new SystemError('net', `${label}: ${where} port ${port}: no connection within ${timeoutMs / 1000} s (${last})`));
      }, timeoutMs),
    );
  });
}
