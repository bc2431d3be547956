// The functional core stays pure (STYLE.md §1): no I/O modules, no await, no clock or
// randomness of its own. Scans the source of every core module.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const CORE_DIRS = ['src/protocol', 'src/config', 'src/net', 'src/fwknop', 'server/core'];
const CORE_FILES = ['src/bytes.ts', 'src/errors.ts', 'src/suggest.ts', 'keys/format.ts', 'keys/authorized.ts', 'keys/keygen.ts', 'server/bpf.ts', 'client/home.ts', 'client/stun.ts', 'client/scope.ts', 'client/stun-servers.ts', 'client/nat-advice.ts'];
const FORBIDDEN = [/from 'node:(fs|fs\/promises|dgram|child_process|dns|os|http|https)'/, /from '(cap|pino)'/, /\bawait\b/, /\bDate\.now\(/, /\bMath\.random\(/, /\brandomBytes\(/, /process\.(env|argv|exit)/];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f);
    return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('functional core', () => {
  const all = [...CORE_DIRS.flatMap(files), ...CORE_FILES];
  it('has the modules this test expects', () => {
    expect(all.length).toBeGreaterThan(15);
  });
  it.each(all)('%s does no I/O and never awaits', (f) => {
    const text = readFileSync(join(ROOT, f), 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const re of FORBIDDEN) expect(text, `${f} matches ${re}`).not.toMatch(re);
    // node:net only for its pure address predicates (isIP, isIPv4, isIPv6).
    for (const m of text.matchAll(/import\s*(\{[^}]*\}|\*[^;]*?)\s*from 'node:net'/g)) {
      const names = (m[1] ?? '').replace(/[{}]/g, '').split(',').map((n) => n.trim()).filter(Boolean);
      expect(names.every((n) => /^isIP(v4|v6)?$/.test(n)), `${f} imports ${names.join(', ')} from node:net`).toBe(true);
    }
  });
});
