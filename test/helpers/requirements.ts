// Test requirements (root, tools on PATH): a suite that cannot run says why and is skipped,
// or, under CI=true, fails instead (STYLE.md §7). Test helper; reads the environment only.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';

export interface Needs {
  /** Needs uid 0 (libpcap, namespaces, firewall rules). */
  readonly root?: boolean;
  /** Executables that must be on PATH (`nft`, `knockd`, ...). */
  readonly tools?: readonly string[];
}

/** What is missing, in words ("not root (uid 1000); no knockd on PATH"), or undefined if nothing. */
export function missingFor(needs: Needs): string | undefined {
  const missing: string[] = [];
  if (needs.root === true) {
    const uid = process.getuid?.();
    if (uid !== 0) missing.push(`not root (uid ${uid ?? 'unknown'})`);
  }
  for (const tool of needs.tools ?? []) {
    if (!onPath(tool)) missing.push(`no ${tool} on PATH`);
  }
  return missing.length === 0 ? undefined : missing.join('; ');
}

/**
 * describe(name, fn) when `needs` are met. Otherwise: under CI=true one failing test that says
 * what is missing; elsewhere the suite is skipped with the reason in its name and on stderr.
 * `why` says what the suite needs it for, e.g. 'libpcap capture on lo'.
 */
export function describeNeeding(name: string, needs: Needs, why: string, fn: () => void): void {
  const missing = missingFor(needs);
  if (missing === undefined) {
    describe(name, fn);
    return;
  }
  const message = `${name}: needs ${why}: ${missing}`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('has what it needs (CI=true: a missing requirement fails)', () => {
        throw new Error(message);
      });
    });
    return;
  }
  process.stderr.write(`skipping ${message}\n`);
  describe.skip(`${name} (skipped: ${missing})`, fn);
}

function onPath(tool: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
