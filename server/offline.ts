// `status` and `close` when no daemon runs: straight from the journal, closing through the
// daemon's own close path (effects.ts) with the doors' backends of the current config. Shell.
import type { Runtime } from './runtime.js';
import { grantKey } from './core/grants.js';
import { Journal, readJournal } from './state.js';
import { applyAll } from './firewall/run.js';
import { viewOf, type GrantView } from './control.js';
import { GrantRunner, realScheduler } from './effects.js';
import { createLogger } from './log.js';

export function statusFromJournal(stateDir: string): GrantView[] {
  return readJournal(stateDir).map(viewOf);
}

export interface OfflineClose {
  readonly closed: GrantView[];
  readonly failed: { grant: GrantView; error: string }[];
}

/** Closes the journaled openings for addr (or all), one after the other; a failure is reported, not retried. */
export async function closeFromJournal(runtime: Runtime, addr: string | undefined): Promise<OfflineClose> {
  const stateDir = runtime.config.options.stateDir;
  const hit = readJournal(stateDir).filter((g) => addr === undefined || g.addr.text === addr);
  if (hit.length === 0) return { closed: [], failed: [] };
  const journal = new Journal(stateDir);
  const runner = new GrantRunner({
    journal,
    // The command prints what happened itself (stdout, stderr); the runner's log lines are the daemon's.
    log: createLogger({ pretty: false, level: 'silent' }),
    scheduler: realScheduler(Date.now),
    execute: (steps) => applyAll(steps),
    backends: () => runtime.backends,
    retryFailedCloses: false,
  });
  runner.adopt(hit);
  const out: OfflineClose = { closed: [], failed: [] };
  try {
    for (const g of hit) {
      const r = await runner.close(grantKey(g));
      if (r?.ok) out.closed.push(viewOf(r.grant));
      else if (r) out.failed.push({ grant: viewOf(r.grant), error: r.error });
    }
  } finally {
    journal.close();
  }
  return out;
}
