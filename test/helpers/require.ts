// "This test needs X": a reason to skip locally, a failure under CI=true (STYLE.md §7).
import { execFileSync } from 'node:child_process';

export function missing(what: { root?: boolean; tools?: string[] }): string | undefined {
  if (what.root && process.getuid?.() !== 0) return 'needs root (libpcap capture, namespaces, firewalls)';
  for (const t of what.tools ?? []) {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` } });
    } catch {
      return `needs ${t} (apt-get install it; .ci/run does)`;
    }
  }
  return undefined;
}

/**
 * Returns true when the suite may run. Locally a missing requirement skips with its reason
 * printed; under CI=true it throws, so CI can never pass by skipping.
 */
export function canRun(what: { root?: boolean; tools?: string[] }): boolean {
  const why = missing(what);
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`CI must run this suite, but it ${why}`);
  console.warn(`skipping: ${why}`);
  return false;
}
