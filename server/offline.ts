// `status` and `close` when no daemon runs: straight from the journal, closing with
// the doors' backends of the current config. Shell.
import { closingBackend, type Runtime } from './runtime.js';
import { openingOf, type Grant } from './core/grants.js';
import { Journal, readJournal } from './state.js';
import { applyAll } from './firewall/run.js';
import { viewOf, type GrantView } from './control.js';

export function statusFromJournal(stateDir: string): GrantView[] {
  return readJournal(stateDir).map(viewOf);
}

export interface OfflineClose {
  readonly closed: GrantView[];
  readonly failed: { grant: GrantView; error: string }[];
}

export async function closeFromJournal(runtime: Runtime, addr: string | undefined): Promise<OfflineClose> {
  const stateDir = runtime.config.options.stateDir;
  const hit = readJournal(stateDir).filter((g) => addr === undefined || g.addr.text === addr);
  if (hit.length === 0) return { closed: [], failed: [] };
  const journal = new Journal(stateDir);
  const out: OfflineClose = { closed: [], failed: [] };
  try {
    for (const g of hit) {
      const r = await applyAll(closeSteps(runtime, g));
      if (r.ok) {
        journal.closed(g);
        out.closed.push(viewOf(g));
      } else {
        out.failed.push({ grant: viewOf(g), error: r.message });
      }
    }
  } finally {
    journal.close();
  }
  return out;
}

function closeSteps(runtime: Runtime, g: Grant) {
  return closingBackend(runtime, g)?.close(openingOf(g, Date.now())) ?? [];
}

