// The functional core stays pure (STYLE.md §1): no I/O modules, no await, no clock or
// randomness of its own. Scans every module whose header comment says "Pure." (src/, server/,
// client/, keys/), and checks that the core modules are among them, so that dropping the word
// cannot drop a module from the scan.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const ROOTS = ['src', 'server', 'client', 'keys'];
/** Directories whose every module is core, and core modules elsewhere: each must say "Pure.". */
const CORE_DIRS = ['src/protocol', 'src/config', 'src/net', 'src/fwknop', 'server/core'];
const CORE_FILES = ['src/bytes.ts', 'src/errors.ts', 'src/suggest.ts', 'keys/format.ts', 'keys/authorized.ts', 'keys/keygen.ts', 'server/bpf.ts', 'client/home.ts', 'client/stun.ts', 'client/scope.ts', 'client/stun-servers.ts', 'client/nat-advice.ts'];
const FORBIDDEN = [/from 'node:(fs|fs\/promises|dgram|child_process|dns|os|http|https)'/, /from '(cap|pino)'/, /\bawait\b/, /\bDate\.now\(/, /\bMath\.random\(/, /\brandomBytes\(/, /process\.(env|argv|exit)/];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f);
    return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The comment lines a module opens with (after a #! line), where it says what it is. */
function header(text: string): string {
  const lines = text.split('\n');
  const start = lines[0]?.startsWith('#!') ? 1 : 0;
  const out: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('//')) break;
    out.push(line);
  }
  return out.join('\n');
}

const saysPure = (f: string): boolean => /\bPure\./.test(header(readFileSync(join(ROOT, f), 'utf8')));

describe('functional core', () => {
  const pure = ROOTS.flatMap(files).filter(saysPure);
  it('scans every core module: each says "Pure." in its header', () => {
    const core = [...CORE_DIRS.flatMap(files), ...CORE_FILES];
    expect(core.filter((f) => !pure.includes(f))).toEqual([]);
    expect(pure.length).toBeGreaterThanOrEqual(core.length);
  });
  it.each(pure)('%s does no I/O and never awaits', (f) => {
    const text = readFileSync(join(ROOT, f), 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const re of FORBIDDEN) expect(text, `${f} matches ${re}`).not.toMatch(re);
    // node:net only for its pure address predicates (isIP, isIPv4, isIPv6).
    for (const m of text.matchAll(/import\s*(\{[^}]*\}|\*[^;]*?)\s*from 'node:net'/g)) {
      const names = (m[1] ?? '').replace(/[{}]/g, '').split(',').map((n) => n.trim()).filter(Boolean);
      expect(names.every((n) => /^isIP(v4|v6)?$/.test(n)), `${f} imports ${names.join(', ')} from node:net`).toBe(true);
    }
  });
});
