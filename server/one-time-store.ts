// Reads one_time_sequences files and rewrites them crash-safely after a use. Shell (fs).
// The rewrite is store.ts's writeFileAtomic (tmp, fsync, rename, fsync of the directory):
// after a crash at any point the file holds the old list or the new one, never a torn one.
import { FILE_LIMITS, FileReadError, readRegularFile } from '../keys/read-file.js';
import { SystemError, UserError } from '../src/errors.js';
import type { KnockPort } from '../src/config/types.js';
import { writeFileAtomic } from './store.js';
import { parseOneTimeFile, planOneTimeUse, type OneTimeFile, type OneTimePlan } from './core/one-time.js';

/** Reads and parses a one_time_sequences file; a missing file is a UserError, an unreadable one a SystemError. */
export async function readOneTimeFile(path: string): Promise<OneTimeFile & { readonly text: string }> {
  return Promise.resolve().then(() => readOneTimeFileSync(path));
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Disables the used sequence in the file (see planOneTimeUse) and returns the plan carried out.
 * Calls for one path run one after another, so two doors opened at once cannot lose an update.
 * Throws SystemError when the file cannot be read or written: the caller must then not open
 * (fail closed: a sequence that cannot be marked used could be replayed).
 */
export function useOneTimeSequence(path: string, used: readonly KnockPort[]): Promise<OneTimePlan> {
  const run = async (): Promise<OneTimePlan> => {
    const { text } = await readOneTimeFile(path);
    const plan = planOneTimeUse(text, used);
    if (plan.ok) await writeFileAtomic(path, plan.text);
    return plan;
  };
  const prev = queues.get(path) ?? Promise.resolve();
  const next = prev.then(run, run);
  const tail = next.catch(() => undefined);
  queues.set(path, tail);
  void tail.then(() => {
    if (queues.get(path) === tail) queues.delete(path);
  });
  return next;
}

/**
 * readOneTimeFile, synchronously: for `spa-server check` (whose loader is synchronous) and for
 * the daemon's reload, which must read the file with no packet handled in between.
 */
export function readOneTimeFileSync(path: string): OneTimeFile & { readonly text: string } {
  let text: string;
  try {
    text = readRegularFile(path, FILE_LIMITS.list);
  } catch (e) {
    if (e instanceof FileReadError && e.failure === 'missing') throw new UserError('file.missing', `one_time_sequences: no such file: ${path}`);
    throw new SystemError('io', `${path}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  return { text, ...parseOneTimeFile(text) };
}

/**
 * A problem of a one_time_sequences file. With a line: a line of that file. Without: the file
 * itself (missing, unreadable); report it at the config's `one_time_sequences` line.
 */
export interface OneTimeCheckProblem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

/**
 * Checks a door's one_time_sequences file: it must exist and be readable, and every line that is
 * not blank or a comment must be a sequence (knockd skips such a line silently; the daemon skips
 * it with a warning). A file with no unused sequence left is not a problem here: knockd refuses
 * to start then, the daemon starts with the door disabled and says so.
 */
export function checkOneTimeFile(path: string): { readonly problems: OneTimeCheckProblem[]; readonly remaining: number } {
  try {
    const f = readOneTimeFileSync(path);
    return { problems: f.problems.map((p) => ({ file: path, line: p.line, message: p.message })), remaining: f.entries.length };
  } catch (e) {
    if (e instanceof UserError) return { problems: [{ file: path, message: 'no such file' }], remaining: 0 };
    if (e instanceof SystemError) return { problems: [{ file: path, message: e.cause instanceof FileReadError ? e.cause.message : e.message }], remaining: 0 };
    throw e;
  }
}
