// The effects runner (server/effects.ts) with a fake clock and timers and a recording step
// executor: open, extend, close, retry, rollback, recovery, long deadlines, shutdown, and
// offline close on the same path. No real waits: time moves only when a test advances it.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAddress, type Address } from '../../src/net/address.js';
import type { Access } from '../../src/net/access.js';
import { CLOSE_RETRY_MS, GrantRunner, MAX_SEQUENCE_GRANTS, MAX_TIMER_MS, type Scheduler, type StepsResult } from '../../server/effects.js';
import { grantKey, type Grant } from '../../server/core/grants.js';
import { commandBackend, type Backend, type Step } from '../../server/firewall/index.js';
import { createLogger } from '../../server/log.js';
import { JOURNAL_FILE, Journal, readJournal, readJournalReport } from '../../server/state.js';
import { closeFromJournal } from '../../server/offline.js';
import type { Runtime } from '../../server/runtime.js';

const SEC = 1000;
const T0 = 1_800_000_000_000;
const addr = (s: string): Address => parseAddress(s) as Address;
const ssh: Access = { proto: 'tcp', port: 22 };
const web: Access = { proto: 'tcp', port: 443 };

/** Timers that fire only when the test advances the clock; every delay asked for is kept. */
class FakeScheduler implements Scheduler {
  now = T0;
  readonly delays: number[] = [];
  private nextId = 1;
  private readonly timers = new Map<number, { atMs: number; fn: () => void }>();

  nowMs(): number {
    return this.now;
  }
  setTimer(delayMs: number, fn: () => void): number {
    this.delays.push(delayMs);
    const id = this.nextId++;
    this.timers.set(id, { atMs: this.now + delayMs, fn });
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Moves the clock forward, firing each timer due on the way at its own time, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    for (;;) {
      await settle();
      const due = [...this.timers.entries()].filter(([, t]) => t.atMs <= target).sort((a, b) => a[1].atMs - b[1].atMs)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].atMs;
      due[1].fn();
    }
    this.now = target;
    await settle();
  }
}

/** Lets queued promise jobs run (the executor below answers at once unless held). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Records each shell line it is given; fails those that `fail` picks; can hold a call until released. */
class RecordingExecutor {
  readonly ran: string[] = [];
  fail: (line: string) => boolean = () => false;
  hold: ((line: string) => boolean) | undefined;
  private held: (() => void)[] = [];

  execute = async (steps: readonly Step[]): Promise<StepsResult> => {
    for (const s of steps) {
      const line = s.argv[s.argv.length - 1] ?? '';
      if (this.hold?.(line)) await new Promise<void>((r) => this.held.push(r));
      this.ran.push(line);
      if (this.fail(line)) return { ok: false, message: `sh -c '${line}': exit status 1` };
    }
    return { ok: true };
  };

  release(): void {
    for (const r of this.held.splice(0)) r();
  }
}

const doorCommands = commandBackend({ commands: { startCommand: 'open %IP% %PORT%', stopCommand: 'close %IP% %PORT%', startCommand6: undefined, stopCommand6: undefined } });
/** Commands, but an extend that runs something too, as nftables' and iptables' extend do (they re-add the rule). */
const refreshing: Backend = { ...doorCommands, name: 'nftables', extend: (o) => [{ argv: ['sh', '-c', `extend ${o.addr.text} ${o.access.port}`] }] };

function setup(opts: { retryFailedCloses?: boolean; backends?: Map<string, Backend>; stateDir?: string } = {}) {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'spa-effects-'));
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ pretty: false, level: 'debug', destination: { write: (s: string) => logs.push(JSON.parse(s) as Record<string, unknown>) } as unknown as NodeJS.WritableStream });
  const clock = new FakeScheduler();
  const exec = new RecordingExecutor();
  const journal = new Journal(stateDir);
  const backends = opts.backends ?? new Map([['ssh', doorCommands]]);
  const runner = new GrantRunner({ journal, log, scheduler: clock, execute: exec.execute, backends: () => backends, retryFailedCloses: opts.retryFailedCloses ?? true });
  const msgs = (): string[] => logs.map((l) => String(l['msg']));
  const journaled = (): Grant[] => readJournal(stateDir);
  return { stateDir, logs, msgs, clock, exec, journal, runner, journaled };
}

describe('effects runner', () => {
  it('opens at once and closes at untilMs, not before; the journal follows', async () => {
    const { runner, clock, exec, journaled, msgs } = setup();
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(0);
    expect(exec.ran).toEqual(['open 192.0.2.7 22']);
    expect(journaled()).toMatchObject([{ door: 'ssh', id: 'alice', untilMs: T0 + 10 * SEC, backend: 'command' }]);
    await clock.advance(10 * SEC - 1);
    expect(exec.ran).toEqual(['open 192.0.2.7 22']);
    await clock.advance(1);
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'close 192.0.2.7 22']);
    expect(runner.list()).toEqual([]);
    expect(journaled()).toEqual([]);
    expect(msgs()).toContain('closed');
  });

  it('a second knock extends: one open, the close moves to the later deadline', async () => {
    const { runner, clock, exec } = setup({ backends: new Map([['ssh', refreshing]]) });
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(5 * SEC);
    runner.grantAccess('ssh', 'bob', addr('192.0.2.7'), [ssh, web], T0 + 15 * SEC);
    await clock.advance(5 * SEC);
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'extend 192.0.2.7 22', 'open 192.0.2.7 443']);
    // The opening keeps its first knocker's id (its stop gets what its start got).
    expect(runner.list().map((g) => [g.id, g.access?.port, g.untilMs])).toEqual([
      ['alice', 22, T0 + 15 * SEC],
      ['bob', 443, T0 + 15 * SEC],
    ]);
    await clock.advance(5 * SEC);
    expect(exec.ran.slice(3)).toEqual(['close 192.0.2.7 22', 'close 192.0.2.7 443']);
  });

  it('an extend queued behind its open runs nothing once a close took the grant meanwhile', async () => {
    const { runner, clock, exec, journaled } = setup({ backends: new Map([['ssh', refreshing]]) });
    exec.hold = (line) => line.startsWith('open');
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(SEC);
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 20 * SEC);
    const closing = runner.closeMatching('192.0.2.7');
    exec.hold = undefined;
    exec.release();
    await closing;
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'close 192.0.2.7 22']);
    expect(journaled()).toEqual([]);
  });

  it('without retries (spa-server close with no daemon), a failed close is reported and nothing is armed', async () => {
    const { runner, clock, exec, journaled } = setup({ retryFailedCloses: false });
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 60 * SEC);
    await clock.advance(0);
    exec.fail = (line) => line.startsWith('close');
    const [g] = runner.list();
    expect(await runner.close(grantKey(g!))).toEqual({ grant: g, ok: false, error: "sh -c 'close 192.0.2.7 22': exit status 1" });
    expect(runner.list()).toEqual([]);
    expect(clock.pending).toBe(0);
    expect(journaled()).toEqual([g]); // still owed: shown by status, closed by the next try
  });

  it('a close that fails stays in status and the journal, and is tried again 30 s later', async () => {
    const { runner, clock, exec, journaled, logs } = setup();
    exec.fail = (line) => line.startsWith('close');
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(10 * SEC);
    expect(logs.find((l) => l['msg'] === 'close failed')).toMatchObject({ door: 'ssh', addr: '192.0.2.7', access: 'tcp/22', retryInSec: CLOSE_RETRY_MS / SEC });
    expect(runner.list()).toMatchObject([{ id: 'alice', untilMs: T0 + 10 * SEC + CLOSE_RETRY_MS }]);
    expect(journaled()).toHaveLength(1);
    exec.fail = () => false;
    await clock.advance(CLOSE_RETRY_MS - 1);
    expect(exec.ran.filter((l) => l.startsWith('close'))).toHaveLength(1);
    await clock.advance(1);
    expect(exec.ran.filter((l) => l.startsWith('close'))).toHaveLength(2);
    expect(runner.list()).toEqual([]);
    expect(journaled()).toEqual([]);
  });

  it('an open that fails is rolled back: not in status, not in the journal, no close later', async () => {
    const { runner, clock, exec, journaled, msgs } = setup();
    exec.fail = (line) => line.startsWith('open');
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(0);
    expect(msgs()).toContain('open failed');
    expect(runner.list()).toEqual([]);
    expect(journaled()).toEqual([]);
    expect(clock.pending).toBe(0);
    await clock.advance(60 * SEC);
    expect(exec.ran).toEqual(['open 192.0.2.7 22']);
  });

  it('an extend queued behind an open that fails keeps the grant (it owns it now) and closes at its deadline', async () => {
    const { runner, clock, exec, journaled } = setup();
    exec.hold = (line) => line.startsWith('open');
    exec.fail = (line) => line.startsWith('open');
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    await clock.advance(SEC);
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 20 * SEC);
    exec.hold = undefined;
    exec.release();
    await clock.advance(0);
    expect(runner.list()).toMatchObject([{ untilMs: T0 + 20 * SEC }]);
    expect(journaled()).toMatchObject([{ untilMs: T0 + 20 * SEC }]);
    await clock.advance(19 * SEC);
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'close 192.0.2.7 22']);
    expect(journaled()).toEqual([]);
  });

  it('a knock between a close and its completion is journaled again after the close record', async () => {
    const { runner, clock, exec, journaled, stateDir } = setup();
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    exec.hold = (line) => line.startsWith('close');
    await clock.advance(10 * SEC);
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 30 * SEC); // a new open, queued behind the close
    exec.hold = undefined;
    exec.release();
    await clock.advance(0);
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'close 192.0.2.7 22', 'open 192.0.2.7 22']);
    const ops = readFileSync(join(stateDir, JOURNAL_FILE), 'utf8').trim().split('\n').map((l) => (JSON.parse(l.slice(0, l.lastIndexOf(' '))) as { op: string }).op);
    expect(ops.slice(-3)).toEqual(['close', 'open', 'started']);
    expect(journaled()).toMatchObject([{ untilMs: T0 + 30 * SEC }]);
  });

  it('recovery at start: expired and unsure openings are closed, the others re-armed', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'spa-effects-'));
    const before = new Journal(stateDir);
    const g = (ip: string, untilMs: number): Grant => ({ door: 'ssh', id: 'alice', addr: addr(ip), access: ssh, untilMs, backend: 'command' });
    const expired = g('192.0.2.1', T0 - SEC);
    const unsure = g('192.0.2.2', T0 + 60 * SEC);
    const armed = g('192.0.2.3', T0 + 60 * SEC);
    for (const x of [expired, unsure, armed]) before.opened(x);
    before.started(expired);
    before.started(armed); // unsure: its start never finished
    before.close();
    const { runner, clock, exec, journaled, msgs } = setup({ stateDir });
    await runner.recover(readJournalReport(stateDir));
    expect(exec.ran).toEqual(['close 192.0.2.1 22', 'close 192.0.2.2 22']);
    expect(msgs()).toEqual(expect.arrayContaining(['closing rule that expired while down', 'closing rule whose start did not finish before the daemon stopped']));
    expect(runner.list()).toEqual([armed]);
    expect(journaled()).toEqual([armed]);
    await clock.advance(60 * SEC);
    expect(exec.ran.at(-1)).toBe('close 192.0.2.3 22');
    expect(journaled()).toEqual([]);
  });

  it("reaches a deadline beyond setTimeout's 24.8 days in steps", async () => {
    const { runner, clock, exec } = setup();
    const days = 30;
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + days * 86_400 * SEC);
    await clock.advance(MAX_TIMER_MS);
    expect(exec.ran).toEqual(['open 192.0.2.7 22']);
    await clock.advance(days * 86_400 * SEC - MAX_TIMER_MS);
    expect(exec.ran).toEqual(['open 192.0.2.7 22', 'close 192.0.2.7 22']);
    expect(Math.max(...clock.delays)).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(clock.delays.length).toBeGreaterThanOrEqual(2);
  });

  it('shutdown with CloseOnExit = yes closes every opening, and retries nothing', async () => {
    const { runner, clock, exec, journaled } = setup();
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 60 * SEC);
    runner.grantAccess('ssh', 'bob', addr('192.0.2.8'), [ssh], T0 + 60 * SEC);
    await clock.advance(0);
    exec.fail = (line) => line === 'close 192.0.2.8 22';
    await runner.shutdown(true);
    expect(exec.ran.slice(2).sort()).toEqual(['close 192.0.2.7 22', 'close 192.0.2.8 22']);
    expect(clock.pending).toBe(0);
    expect(journaled()).toMatchObject([{ id: 'bob' }]); // still owed: the next start closes it
  });

  it('shutdown with CloseOnExit = no leaves openings to the journal and arms nothing', async () => {
    const { runner, clock, exec, journaled } = setup();
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 60 * SEC);
    await clock.advance(0);
    await runner.shutdown(false);
    expect(clock.pending).toBe(0);
    expect(exec.ran).toEqual(['open 192.0.2.7 22']);
    expect(journaled()).toMatchObject([{ id: 'alice', untilMs: T0 + 60 * SEC }]);
  });

  it('sequence openings: one grant per completion, closed cmd_timeout later; at most 1024 held', async () => {
    const { runner, clock, exec, msgs } = setup();
    const s = { door: 'ssh', addr: addr('192.0.2.7'), cmdTimeoutSec: 5, closes: true };
    expect(await runner.openSequence(s)).toBe(true);
    expect(await runner.openSequence(s)).toBe(true);
    expect(runner.list().map((g) => g.id)).toEqual([expect.stringMatching(/^sequence@\d+\.1$/), expect.stringMatching(/^sequence@\d+\.2$/)]);
    await clock.advance(5 * SEC);
    expect(exec.ran).toEqual(['open 192.0.2.7 1', 'open 192.0.2.7 1', 'close 192.0.2.7 1', 'close 192.0.2.7 1']);
    for (let i = 0; i < MAX_SEQUENCE_GRANTS; i++) void runner.openSequence(s);
    expect(await runner.openSequence(s)).toBe(false);
    expect(msgs()).toContain('too many sequence openings; not opening');
    // Without a stop command nothing is journaled or held.
    const { runner: r2, journaled } = setup();
    expect(await r2.openSequence({ ...s, closes: false })).toBe(true);
    expect(r2.list()).toEqual([]);
    expect(journaled()).toEqual([]);
  });

  it('fails closed: when the journal cannot be written, nothing opens and nothing is armed', async () => {
    const { runner, clock, exec, journal, msgs } = setup();
    journal.close(); // every write now fails (the descriptor is gone)
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 10 * SEC);
    expect(await runner.openSequence({ door: 'ssh', addr: addr('192.0.2.8'), cmdTimeoutSec: 5, closes: true })).toBe(false);
    await clock.advance(60 * SEC);
    expect(msgs().filter((m) => m === 'journal not written; not opening')).toHaveLength(2);
    expect(exec.ran).toEqual([]);
    expect(runner.list()).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('close by address: only that address, reported', async () => {
    const { runner, clock, exec } = setup();
    runner.grantAccess('ssh', 'alice', addr('192.0.2.7'), [ssh], T0 + 60 * SEC);
    runner.grantAccess('ssh', 'bob', addr('192.0.2.8'), [ssh], T0 + 60 * SEC);
    await clock.advance(0);
    expect((await runner.closeMatching('192.0.2.8')).map((g) => g.id)).toEqual(['bob']);
    expect(exec.ran.at(-1)).toBe('close 192.0.2.8 22');
    expect(runner.list().map((g) => grantKey(g))).toEqual(['ssh 192.0.2.7 tcp/22']);
  });
});

describe('offline close (no daemon)', () => {
  it('closes from the journal through the same close path: real commands, a failure reported and kept', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'spa-effects-'));
    const out = join(stateDir, 'ran');
    const good = commandBackend({ commands: { startCommand: 'true', stopCommand: `echo close %IP% >> ${out}`, startCommand6: undefined, stopCommand6: undefined } });
    const bad = commandBackend({ commands: { startCommand: 'true', stopCommand: 'false', startCommand6: undefined, stopCommand6: undefined } });
    const j = new Journal(stateDir);
    const ok: Grant = { door: 'ssh', id: 'alice', addr: addr('192.0.2.7'), access: ssh, untilMs: T0, backend: 'command' };
    const stuck: Grant = { door: 'web', id: 'bob', addr: addr('192.0.2.7'), access: web, untilMs: T0, backend: 'command' };
    j.opened(ok);
    j.opened(stuck);
    j.close();
    const runtime = { config: { options: { stateDir } }, backends: new Map([['ssh', good], ['web', bad]]) } as unknown as Runtime;
    const r = await closeFromJournal(runtime, '192.0.2.7');
    expect(r.closed.map((g) => g.door)).toEqual(['ssh']);
    expect(r.failed).toMatchObject([{ grant: { door: 'web' }, error: expect.stringContaining('false') }]);
    expect(readFileSync(out, 'utf8')).toBe('close 192.0.2.7\n');
    expect(readJournal(stateDir)).toEqual([stuck]);
  });
});
