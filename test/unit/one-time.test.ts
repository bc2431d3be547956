import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSequence } from '../../src/config/sequence.js';
import type { KnockPort } from '../../src/config/types.js';
import { SystemError, UserError } from '../../src/errors.js';
import { parseOneTimeFile, planOneTimeUse } from '../../server/core/one-time.js';
import { readOneTimeFile, useOneTimeSequence } from '../../server/one-time-store.js';
import { writeFileAtomic } from '../../server/store.js';

function seq(s: string): KnockPort[] {
  const r = parseSequence(s);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

const FILE = [
  '# one-time sequences for [opencloseSMTP]', // 1
  '', // 2
  ' 7000,8000,9000', // 3
  ' 1111:udp, 2222:udp', // 4
  '   # 1,2,3 (a comment, indented)', // 5
  ' 4000,x', // 6: knockd skips it (a bad line)
  '5000,6000', // 7: no leading space
  '', // 8
].join('\n');

describe('parseOneTimeFile (knockd get_next_one_time_sequence)', () => {
  it('one sequence per line; blank and #-lines skipped; bad lines skipped and reported', () => {
    expect(parseOneTimeFile(FILE)).toEqual({
      entries: [
        { line: 3, sequence: seq('7000,8000,9000') },
        { line: 4, sequence: seq('1111:udp,2222:udp') },
        { line: 7, sequence: seq('5000,6000') },
      ],
      problems: [{ line: 6, message: 'sequence: expected PORT[:tcp|udp],... such as 7000,8000:udp,9000, got "x"' }],
    });
  });

  it('CRLF files read the same', () => {
    expect(parseOneTimeFile(FILE.replaceAll('\n', '\r\n')).entries.map((e) => e.line)).toEqual([3, 4, 7]);
  });

  it('an empty or all-used file has no entries', () => {
    expect(parseOneTimeFile('')).toEqual({ entries: [], problems: [] });
    expect(parseOneTimeFile('#7000,8000\n#000,9000\n').entries).toEqual([]);
  });
});

describe('planOneTimeUse (knockd disable_used_one_time_sequence)', () => {
  it("writes '#' over the first character of the used line and nothing else", () => {
    const plan = planOneTimeUse(FILE, seq('7000,8000,9000'));
    expect(plan).toEqual({
      ok: true,
      line: 3,
      text: FILE.replace(' 7000,8000,9000', '#7000,8000,9000'),
      next: seq('1111:udp,2222:udp'),
      remaining: 2,
    });
  });

  it('without a leading space the first digit is lost, as the man page warns', () => {
    const plan = planOneTimeUse('5000,6000\n7000\n', seq('5000,6000'));
    expect(plan).toMatchObject({ ok: true, text: '#000,6000\n7000\n', next: seq('7000'), remaining: 1 });
  });

  it('successive uses walk down the file; the last leaves nothing', () => {
    let text = FILE;
    const used: number[] = [];
    for (const s of ['7000,8000,9000', '1111:udp,2222:udp', '5000,6000']) {
      const plan = planOneTimeUse(text, seq(s));
      if (!plan.ok) throw new Error('not found');
      used.push(plan.line);
      text = plan.text;
    }
    expect(used).toEqual([3, 4, 7]);
    expect(parseOneTimeFile(text).entries).toEqual([]);
    expect(text.split('\n').length).toBe(FILE.split('\n').length);
  });

  it('a sequence listed twice: each use disables the first unused copy', () => {
    const first = planOneTimeUse(' 1,2\n 3\n 1,2\n', seq('1,2'));
    expect(first).toMatchObject({ ok: true, line: 1, next: seq('3') });
    if (!first.ok) return;
    expect(planOneTimeUse(first.text, seq('1,2'))).toMatchObject({ ok: true, line: 3, text: '#1,2\n 3\n#1,2\n' });
  });

  it('a sequence not in the file (edited meanwhile) is not-found and changes nothing', () => {
    expect(planOneTimeUse(FILE, seq('1,2,3'))).toEqual({ ok: false, reason: 'not-found' });
    expect(planOneTimeUse(FILE, seq('7000,8000'))).toEqual({ ok: false, reason: 'not-found' });
  });

  it('keeps CRLF line ends', () => {
    const plan = planOneTimeUse(' 1,2\r\n 3\r\n', seq('1,2'));
    expect(plan).toMatchObject({ ok: true, text: '#1,2\r\n 3\r\n' });
  });
});

describe('one-time-store: crash-safe rewrite of real files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spa-onetime-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('useOneTimeSequence marks the line on disk, keeps the mode and leaves no temporary file', async () => {
    const path = join(dir, 'smtp_sequences');
    writeFileSync(path, FILE);
    chmodSync(path, 0o640);
    const plan = await useOneTimeSequence(path, seq('7000,8000,9000'));
    expect(plan).toMatchObject({ ok: true, line: 3 });
    expect(readFileSync(path, 'utf8')).toBe(FILE.replace(' 7000,8000,9000', '#7000,8000,9000'));
    expect(statSync(path).mode & 0o7777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['smtp_sequences']);
    const after = await readOneTimeFile(path);
    expect(after.entries.map((e) => e.line)).toEqual([4, 7]);
  });

  it('concurrent uses of one file are applied one after the other', async () => {
    const path = join(dir, 'race');
    writeFileSync(path, ' 1\n 2\n 3\n 4\n');
    const plans = await Promise.all(['1', '2', '3'].map((s) => useOneTimeSequence(path, seq(s))));
    expect(plans.map((p) => p.ok && p.line)).toEqual([1, 2, 3]);
    expect(readFileSync(path, 'utf8')).toBe('#1\n#2\n#3\n 4\n');
  });

  it('a symlinked file stays a symlink; its target is rewritten', async () => {
    const real = join(dir, 'real-seq');
    const link = join(dir, 'link-seq');
    writeFileSync(real, ' 9\n 8\n');
    symlinkSync(real, link);
    await useOneTimeSequence(link, seq('9'));
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('#9\n 8\n');
  });

  it('a failed write leaves the old file intact and throws a SystemError', async () => {
    const path = join(dir, 'blocked');
    writeFileSync(path, ' 1\n 2\n');
    mkdirSync(join(dir, `.blocked.${process.pid}.tmp`)); // the temporary file cannot be created
    await expect(useOneTimeSequence(path, seq('1'))).rejects.toBeInstanceOf(SystemError);
    expect(readFileSync(path, 'utf8')).toBe(' 1\n 2\n');
  });

  it('a missing file is a UserError naming it', async () => {
    await expect(readOneTimeFile(join(dir, 'nope'))).rejects.toThrow(UserError);
    await expect(readOneTimeFile(join(dir, 'nope'))).rejects.toThrow(`one_time_sequences: no such file: ${join(dir, 'nope')}`);
  });

  it('writeFileAtomic creates a missing file with mode 0600', async () => {
    const path = join(dir, 'new-file');
    await writeFileAtomic(path, 'x\n');
    expect(readFileSync(path, 'utf8')).toBe('x\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

describe('one-time-store: kill -9 in the middle of rewrites never tears the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spa-onetime-kill-'));
  const out = join(dir, 'js');
  let built = false;
  beforeAll(() => {
    // The child runs our module as plain JS: compile it (and what it imports) with tsc.
    const r = spawnSync(
      join(import.meta.dirname, '../../node_modules/.bin/tsc'),
      ['--outDir', out, '--rootDir', join(import.meta.dirname, '../..'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', join(import.meta.dirname, '../../server/one-time-store.ts')],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`tsc failed: ${r.stdout}${r.stderr}`);
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    built = existsSync(join(out, 'server/one-time-store.js'));
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the file always holds one whole version, old or new', async () => {
    expect(built).toBe(true);
    const path = join(dir, 'seqs');
    // Two versions large enough that a torn write would show: A and B alternate forever.
    const A = ` ${'1111,2222:udp,3333\n '.repeat(20_000)}end\n`;
    const B = A.replaceAll('1111', '4444');
    writeFileSync(path, A);
    writeFileSync(join(dir, 'A'), A);
    writeFileSync(join(dir, 'B'), B);
    const child = `
      import { readFileSync } from 'node:fs';
      import { writeFileAtomic } from ${JSON.stringify(join(out, 'server/store.js'))};
      const [a, b] = ['A', 'B'].map((n) => readFileSync(${JSON.stringify(dir)} + '/' + n, 'utf8'));
      process.stdout.write('ready\\n');
      for (let i = 0; ; i++) await writeFileAtomic(${JSON.stringify(path)}, i % 2 ? a : b);
    `;
    for (let round = 0; round < 12; round++) {
      const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          p.stdout.once('data', () => resolve());
          p.once('exit', (code) => reject(new Error(`child exited early: ${code}`)));
        });
        await new Promise((r) => setTimeout(r, 20 + ((round * 37) % 90)));
      } finally {
        p.kill('SIGKILL');
        await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(undefined) : p.once('exit', r)));
      }
      const now = readFileSync(path, 'utf8');
      expect(now === A || now === B).toBe(true);
    }
  }, 60_000);
});
