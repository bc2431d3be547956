// canRun(needs): for suites written as `describe.runIf(canRun(...))`. Same rules as
// describeNeeding in requirements.ts: skip locally with the reason, fail under CI=true.
import { missingFor, type Needs } from './requirements.js';

export function canRun(needs: Needs): boolean {
  const why = missingFor(needs);
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`CI must run this suite, but: ${why}`);
  process.stderr.write(`skipping: ${why}\n`);
  return false;
}

/** What is missing, in words, or undefined (an alias kept for suites that import it from here). */
export { missingFor as missing } from './requirements.js';
