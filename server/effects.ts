// The one effects runner: the table of open grants, the journal, a chain of commands per
// grant, and close timers. Opens, extends, closes (retrying a close that failed), recovers a
// previous run's openings at start, and closes on demand; used by the daemon (SPA, fwknop and
// sequence doors) and by `status`/`close` without a daemon. The clock, the timers and the step
// executor are injected, so tests run it without real waits. Shell (journal, commands).
import { accessText, type Access } from '../src/net/access.js';
import type { Address } from '../src/net/address.js';
import { GrantTable, SEQUENCE_ID, grantKey, openingOf, type Grant } from './core/grants.js';
import type { Backend, Step } from './firewall/index.js';
import type { Logger } from './log.js';
import { closingBackend } from './runtime.js';
import type { Journal, JournalRead } from './state.js';

const SECOND = 1000;
/** setTimeout's longest delay (2^31 - 1 ms); longer deadlines are reached in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** A close whose command failed is tried again after this long. */
export const CLOSE_RETRY_MS = 30 * SECOND;
/** Sequence-door openings held at once (each completed knock holds one until its stop runs). */
export const MAX_SEQUENCE_GRANTS = 1024;

/** A timer as the scheduler made it; only handed back to clearTimer. */
export type TimerHandle = unknown;

/** The clock and the timers: the real ones in the daemon, a fake one in tests. */
export interface Scheduler {
  nowMs(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** The real clock and setTimeout. */
export function realScheduler(nowMs: () => number): Scheduler {
  return {
    nowMs,
    setTimer: (delayMs, fn) => setTimeout(fn, delayMs),
    clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
}

/** What carrying out a list of steps gave (firewall/run.ts applyAll's result is one). */
export type StepsResult = { readonly ok: true } | { readonly ok: false; readonly message: string };
/** Runs steps in order, stopping at the first failure; never throws (applyAll in the daemon). */
export type Execute = (steps: readonly Step[]) => Promise<StepsResult>;

export interface EffectsOptions {
  readonly journal: Journal;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly execute: Execute;
  /** The running configuration's backend per door (a reload changes it). */
  readonly backends: () => ReadonlyMap<string, Backend>;
  /** The daemon retries a failed close after CLOSE_RETRY_MS; `spa-server close` without a daemon reports it. */
  readonly retryFailedCloses: boolean;
}

/** A sequence door's completed knock, as the sequence engine asks for it. */
export interface SequenceOpening {
  readonly door: string;
  readonly addr: Address;
  readonly cmdTimeoutSec: number;
  /** Whether the door has a stop command for addr's family (else nothing is journaled or closed). */
  readonly closes: boolean;
}

export type CloseOutcome = { readonly grant: Grant; readonly ok: true } | { readonly grant: Grant; readonly ok: false; readonly error: string };

export class GrantRunner {
  private readonly grants = new GrantTable();
  private readonly timers = new Map<string, TimerHandle>();
  /** Per-grant chains, so an open, an extend and a close of one rule never overlap. */
  private readonly chains = new Map<string, Promise<void>>();
  private stopping = false;
  private sequenceOpens = 0;

  constructor(private readonly o: EffectsOptions) {}

  get size(): number {
    return this.grants.size;
  }

  list(): Grant[] {
    return this.grants.list();
  }

  /**
   * Journal entries left by a previous run: close those past their time and those whose start
   * may have been cut off, re-arm the rest. The journal is compacted to them first.
   */
  async recover(read: JournalRead): Promise<void> {
    const log = this.o.log;
    // Not a torn last record (expected after a crash): something changed the file. A stop
    // command it held is lost; say so loudly, the records that check out are still used.
    if (read.damaged.length > 0) log.error({ file: read.file, lines: read.damaged.slice(0, 20), count: read.damaged.length }, 'journal damaged: records failed their check; rules they held may still be open');
    this.o.journal.compact(read.grants, read.unsure);
    for (const g of read.grants) {
      this.grants.set(g);
      const fields = fieldsOf(g);
      if (g.untilMs <= this.o.scheduler.nowMs()) {
        log.info(fields, 'closing rule that expired while down');
        await this.close(grantKey(g));
      } else if (read.unsure.has(grantKey(g))) {
        // Its start was cut off (the daemon died while it ran): it may have done part of its
        // work. Close it now, so the firewall and status agree; the client knocks again.
        log.info(fields, 'closing rule whose start did not finish before the daemon stopped');
        await this.close(grantKey(g));
      } else {
        this.armClose(g);
      }
    }
  }

  /** Takes journaled grants as they are, armed with no timer: `spa-server close` without a daemon. */
  adopt(grants: readonly Grant[]): void {
    for (const g of grants) this.grants.set(g);
  }

  /** An accepted SPA or fwknop knock: opens each access not open yet, extends the others. */
  grantAccess(door: string, id: string, addr: Address, access: readonly Access[], untilMs: number): void {
    for (const eff of this.grants.plan(door, id, addr, access, untilMs)) this.grant(eff.grant, eff.kind);
  }

  /** Journals, records and queues one open or extend; the close timer is armed at once. */
  private grant(planned: Grant, kind: 'open' | 'extend'): void {
    const backend = this.o.backends().get(planned.door);
    const g: Grant = backend ? { ...planned, backend: backend.name } : planned;
    const key = grantKey(g);
    try {
      this.o.journal.opened(g);
    } catch (e) {
      this.o.log.error({ error: (e as Error).message, door: g.door, addr: g.addr.text }, 'journal not written; not opening');
      return;
    }
    this.grants.set(g);
    this.armClose(g);
    if (!backend || !g.access) return this.journalStarted(g); // nothing to run: started
    const opening = openingOf(g, this.o.scheduler.nowMs());
    const steps: Step[] = kind === 'open' ? backend.open(opening) : backend.extend(opening);
    void this.chain(key, async () => {
      // An extend queued behind an open that failed (and was rolled back), or behind a
      // close, has nothing left to extend.
      if (kind === 'extend' && this.grants.get(key) !== g) return;
      const r = await this.o.execute(steps);
      if (r.ok) {
        this.journalStarted(g);
        return;
      }
      this.o.log.error({ door: g.door, id: g.id, addr: g.addr.text, access: accessText(g.access!), error: r.message }, kind === 'open' ? 'open failed' : 'extend failed');
      // Nothing was opened: the journal must not claim it. Unless a later knock's extend is
      // queued behind this (it owns the grant now, and will ensure the rule itself).
      if (kind === 'open' && this.grants.get(key) === g) {
        this.disarm(key);
        this.grants.delete(key);
        this.o.journal.closed(g);
      }
    });
  }

  /** A sequence door's start command for addr (knockd: every completed knock). Resolves whether it ran. */
  openSequence(s: SequenceOpening): Promise<boolean> {
    const b = this.o.backends().get(s.door);
    if (!b) return Promise.resolve(false);
    // Sequences are unauthenticated and replayable: bound what completions can hold open.
    if (this.grants.list().filter((x) => x.access === undefined).length >= MAX_SEQUENCE_GRANTS) {
      this.o.log.warn({ door: s.door, src: s.addr.text, limit: MAX_SEQUENCE_GRANTS }, 'too many sequence openings; not opening');
      return Promise.resolve(false);
    }
    // One grant per completed knock, as knockd: a start now, its own stop cmd_timeout later.
    // The id tells them apart, also from a previous run's (journal) ones.
    const nowMs = this.o.scheduler.nowMs();
    const g: Grant = { door: s.door, id: `${SEQUENCE_ID}@${nowMs}.${++this.sequenceOpens}`, addr: s.addr, access: undefined, untilMs: nowMs + s.cmdTimeoutSec * SECOND, backend: b.name };
    const key = grantKey(g);
    if (s.closes) {
      try {
        this.o.journal.opened(g);
      } catch (e) {
        this.o.log.error({ error: (e as Error).message, door: s.door }, 'journal not written; not opening');
        return Promise.resolve(false);
      }
      this.grants.set(g);
      this.armClose(g);
    }
    return new Promise((resolve) => {
      void this.chain(key, async () => {
        let ok = false;
        try {
          const r = await this.o.execute(b.open(openingOf(g, this.o.scheduler.nowMs())));
          if (!r.ok) this.o.log.error({ door: s.door, addr: s.addr.text, error: r.message }, 'open failed');
          else if (this.grants.get(key) === g) this.journalStarted(g);
          ok = r.ok;
        } finally {
          resolve(ok);
        }
      });
    });
  }

  /** Journals that g's start finished (best effort: without it a restart closes g early, never late). */
  private journalStarted(g: Grant): void {
    try {
      this.o.journal.started(g);
    } catch (e) {
      this.o.log.warn({ error: (e as Error).message, door: g.door, addr: g.addr.text }, 'journal not written (start finished)');
    }
  }

  /** Arms the close of g at g.untilMs; a deadline beyond setTimeout's 24.8 days is reached in steps. */
  private armClose(g: Grant): void {
    const key = grantKey(g);
    this.disarm(key);
    const delayMs = Math.min(Math.max(0, g.untilMs - this.o.scheduler.nowMs()), MAX_TIMER_MS);
    const t = this.o.scheduler.setTimer(delayMs, () => {
      const current = this.grants.get(key);
      if (current && current.untilMs > this.o.scheduler.nowMs()) this.armClose(current);
      else void this.close(key);
    });
    this.timers.set(key, t);
  }

  private disarm(key: string): void {
    if (this.timers.has(key)) this.o.scheduler.clearTimer(this.timers.get(key));
    this.timers.delete(key);
  }

  /**
   * Closes one grant now: stop command / rule removal, then the journal. Resolves with what
   * happened, or undefined when nothing by that key was open.
   */
  close(key: string): Promise<CloseOutcome | undefined> {
    this.disarm(key);
    const g = this.grants.delete(key);
    if (!g) return Promise.resolve(undefined);
    const b = closingBackend({ backends: this.o.backends() }, g);
    let outcome: CloseOutcome | undefined;
    const done = this.chain(key, async () => {
      const steps = b ? b.close(openingOf(g, this.o.scheduler.nowMs())) : [];
      const r = await this.o.execute(steps);
      const fields = fieldsOf(g);
      if (!r.ok) {
        outcome = { grant: g, ok: false, error: r.message };
        // The rule may still be there: keep it (journal, status) and try again later, unless
        // a new knock reopened it meanwhile (its own timer closes it then).
        this.o.log.error({ ...fields, error: r.message, retryInSec: CLOSE_RETRY_MS / SECOND }, 'close failed');
        if (this.o.retryFailedCloses && !this.stopping && !this.grants.get(key)) {
          const retry: Grant = { ...g, untilMs: this.o.scheduler.nowMs() + CLOSE_RETRY_MS };
          this.grants.set(retry);
          this.armClose(retry);
        }
        return;
      }
      try {
        this.o.journal.closed(g);
      } catch (e) {
        // Closed, but the journal still says open (a restart closes it again, which is safe).
        outcome = { grant: g, ok: false, error: `journal not written: ${(e as Error).message}` };
        throw e;
      }
      outcome = { grant: g, ok: true };
      // A knock for the same rule between the delete above and now journaled its open before
      // this close: journal it again, or a restart would forget an open rule.
      const reopened = this.grants.get(key);
      if (reopened) this.o.journal.opened(reopened);
      this.o.log.info(fields, 'closed');
    });
    return done.then(() => outcome);
  }

  /** `spa-server close`: every grant for addr (canonical text), or all. Resolves with those it tried. */
  async closeMatching(addr: string | undefined): Promise<Grant[]> {
    const hit = this.grants.list().filter((g) => addr === undefined || g.addr.text === addr);
    await Promise.all(hit.map((g) => this.close(grantKey(g))));
    return hit;
  }

  /**
   * The daemon stops: no more retries; every grant is closed (CloseOnExit = yes) or left to
   * the journal and the next start (no). Waits for every command queued, then closes the journal.
   */
  async shutdown(closeAll: boolean): Promise<void> {
    this.stopping = true;
    if (closeAll) await Promise.all(this.grants.list().map((g) => this.close(grantKey(g))));
    else for (const key of [...this.timers.keys()]) this.disarm(key);
    await Promise.all([...this.chains.values()]);
    this.o.journal.close();
  }

  private chain(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(job).catch((e: unknown) => this.o.log.error({ err: e }, 'effect failed'));
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }
}

function fieldsOf(g: Grant): { door: string; id: string; addr: string; access: string | undefined } {
  return { door: g.door, id: g.id, addr: g.addr.text, access: g.access ? accessText(g.access) : undefined };
}
