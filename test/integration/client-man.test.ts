// The man pages in man/ against the built CLIs and the parsers' tables: every option of every
// command is in the page and every option in the page exists (both ways), every spa.conf
// directive and profile keyword likewise, and `man -l` renders each page without a warning.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DIRECTIVES } from '../../src/config/directives.js';
import { PROFILE_KEYWORDS } from '../../client/profile.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';

const execFileP = promisify(execFile);
const PAGES = { 'spa-knock': 'man/spa-knock.1', 'spa-server': 'man/spa-server.8', 'spa.conf': 'man/spa.conf.5' } as const;
const page = (name: keyof typeof PAGES): string => readFileSync(join(ROOT, PAGES[name]), 'utf8');

/** Roff to plain words: no font escapes, \- as -, no quotes. */
function plain(roff: string): string {
  return roff
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\\(\w\w/g, ' ')
    .replace(/"/g, '')
    .replace(/^\.\w+\s*/, '');
}

const OPTION = /(?:^|[\s,[])(--?[A-Za-z0-9][A-Za-z0-9-]*)/g;
const optionsIn = (s: string): string[] => [...s.matchAll(OPTION)].map((m) => m[1]!);

/**
 * The .TP tags of a page, grouped: '' for the OPTIONS section, a command name for each
 * `.SS "PROG command ..."` of COMMANDS, a section name for any other .SH. A tag is the line
 * after .TP (skipping .PD).
 */
function tagsBySection(roff: string, prog: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let where: string | undefined;
  let section = '';
  const lines = roff.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('.SH ')) {
      section = plain(l).trim();
      where = section === 'OPTIONS' ? '' : section;
    } else if (l.startsWith('.SS ') && section === 'COMMANDS') {
      const words = plain(l).trim().split(/\s+/);
      where = words[0] === prog ? words[1] : undefined;
    } else if (l === '.TP' && where !== undefined) {
      let j = i + 1;
      while (lines[j]?.startsWith('.PD')) j++;
      const list = out.get(where) ?? [];
      list.push(lines[j] ?? '');
      out.set(where, list);
    }
  }
  return out;
}

function manOptions(roff: string, prog: string): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const [where, tags] of tagsBySection(roff, prog)) m.set(where, new Set(tags.flatMap((t) => optionsIn(plain(t)))));
  return m;
}

/** Option flags listed in a commander help text, and the commands it lists. */
function helpOf(text: string): { options: Set<string>; commands: Set<string> } {
  const options = new Set<string>();
  const commands = new Set<string>();
  let block = '';
  for (const line of text.split('\n')) {
    if (/^\S.*:$/.test(line)) block = line;
    else if (block === 'Options:' && /^ {2}-/.test(line)) for (const o of optionsIn(line.trim().split(/\s{2,}/)[0]!)) options.add(o);
    else if (block === 'Commands:' && /^ {2}\w/.test(line)) commands.add(line.trim().split(/\s/)[0]!);
  }
  commands.delete('help');
  return { options, commands };
}

async function help(bin: 'spa-knock' | 'spa-server', ...args: string[]): Promise<ReturnType<typeof helpOf>> {
  const r = await runCli(bin, [...args, '--help']);
  expect(r.code).toBe(0);
  return helpOf(r.stdout);
}

const sorted = (s: Iterable<string>): string[] => [...s].sort();
const withoutHelp = (s: Set<string>): string[] => sorted([...s].filter((o) => o !== '-h' && o !== '--help'));

describe.each([['spa-knock'], ['spa-server']] as const)('%s: man page and --help list the same options', (bin) => {
  const roff = page(bin);
  const man = manOptions(roff, bin);

  it('the same commands', async () => {
    const top = await help(bin);
    const manCommands = sorted([...man.keys()].filter((k) => k !== '' && !/^[A-Z]/.test(k)));
    expect(manCommands).toEqual(sorted(top.commands));
  });

  it('the top-level options', async () => {
    const top = await help(bin);
    expect(sorted(man.get('') ?? [])).toEqual(sorted(top.options));
  });

  it("each command's options", async () => {
    const top = await help(bin);
    for (const cmd of top.commands) {
      const h = await help(bin, cmd);
      expect(withoutHelp(man.get(cmd) ?? new Set()), `${bin} ${cmd}`).toEqual(withoutHelp(h.options));
    }
  });
});

describe('man pages and the parsers list the same keywords', () => {
  it('spa.conf(5): every directive and alias of the parser, and nothing else', () => {
    const tags = tagsBySection(page('spa.conf'), 'spa.conf');
    const listed = ['THE [options] SECTION', 'DOORS'].flatMap((s) => tags.get(s) ?? []).flatMap((t) =>
      plain(t)
        .replace(/[()]/g, ' ')
        .split(/\s+/)
        .filter((w) => w !== '' && w !== 'alias'),
    );
    expect(sorted(listed)).toEqual(sorted(DIRECTIVES.flatMap((d) => [d.name, ...d.aliases])));
    // Each once: a directive documented twice would be documented inconsistently.
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('spa-knock(1) PROFILES: every profile keyword, and nothing else', () => {
    const tags = tagsBySection(page('spa-knock'), 'spa-knock').get('PROFILES') ?? [];
    expect(sorted(tags.map((t) => plain(t).trim().split(/\s+/)[0]!))).toEqual(sorted(PROFILE_KEYWORDS));
  });
});

describe.runIf(canRun({ tools: ['man'] }))('man -l renders each page', () => {
  it.each(Object.entries(PAGES))('%s', async (name, file) => {
    const r = await execFileP('man', ['--warnings', '-l', join(ROOT, file)], { env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
    expect(r.stderr).toBe('');
    const upper = name.toUpperCase();
    expect(r.stdout).toContain(`${upper}(`);
    expect(r.stdout).toMatch(/^NAME\n {7}\S/m);
    expect(r.stdout).toMatch(/^SEE ALSO$/m);
    // Hyphens in options come out as plain ASCII '-', so what is read can be typed.
    if (name !== 'spa.conf') expect(r.stdout).toContain('--help');
  });
});
