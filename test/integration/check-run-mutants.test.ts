// check = run, as a property (issue 12, item 7): mutants of the shipped example and the
// knockd seeds (lines deleted, duplicated, moved to another section; values replaced by
// garbage, huge, empty, NUL; CRLF line ends). For each, `spa-server check` exits 0 exactly
// when `spa-server run` starts, and run never exits 70 (a bug) or floods stderr. run is
// real: in a network namespace this test makes, capturing on its lo, with real nftables.
import { readFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { NetnsLab, nsExec, type Netns } from '../helpers/netns.js';
import { ServerProcess, makeKeys, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['ip', 'nft', 'iptables'] });
/**
 * Configs per run: the 11 seeds as they are, then mutants, each kind in turn on the seeds in
 * turn (8 kinds, 11 seeds: every pairing within 88 mutants). The default keeps the file near
 * a minute; SPA_MUTANTS=99 runs every pairing (about two minutes on a quiet machine).
 */
const MUTANTS = Number(process.env['SPA_MUTANTS'] ?? 35);

/** A small deterministic PRNG (mulberry32): the same mutants every run for a given seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = ['delete', 'duplicate', 'move', 'garbage', 'huge', 'empty', 'nul', 'crlf'] as const;

function mutate(text: string, kind: (typeof KINDS)[number], rnd: () => number): string {
  const lines = text.split('\n');
  const pick = (): number => Math.floor(rnd() * lines.length);
  const settings = lines.map((l, i) => (/=/.test(l) ? i : -1)).filter((i) => i >= 0);
  const setting = (): number => settings[Math.floor(rnd() * settings.length)] ?? pick();
  const withValue = (v: string): string => {
    const i = setting();
    lines[i] = (lines[i] ?? '').replace(/=.*/, `= ${v}`);
    return lines.join('\n');
  };
  switch (kind) {
    case 'delete':
      lines.splice(pick(), 1);
      return lines.join('\n');
    case 'duplicate': {
      const i = pick();
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    }
    case 'move': {
      const [l] = lines.splice(setting(), 1);
      lines.splice(pick(), 0, l ?? '');
      return lines.join('\n');
    }
    case 'garbage':
      return withValue(['x', '-1', '22/tpc', 'yes please', '%IP%;%ID%', '[x]', '999999999999', '::'][Math.floor(rnd() * 8)]!);
    case 'huge':
      return withValue('9'.repeat(64 * 1024));
    case 'empty':
      return withValue('');
    case 'nul':
      return withValue('a\0b');
    case 'crlf':
      return text.replace(/\n/g, '\r\n');
  }
}

describe.runIf(enabled)('check = run over mutants of the shipped configs', () => {
  let keys: Keys;
  let work: string;
  let ns: Netns;
  const lab = new NetnsLab();

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    work = mkdtempSync(join(tmpdir(), 'spa-mutants-'));
    ns = await lab.makeNetns();
  });
  afterAll(async () => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  /** A seed made runnable here: our keys, a fresh StateDir, lo, nftables/iptables only. */
  function prepare(text: string, n: number): string {
    const keysFile = keys.authorized('ssh', ['alice']);
    const oneTime = join(work, `otp${n}`);
    writeFileSync(oneTime, ' 7000,8000,9000\n 7001,8001,9001\n');
    const state = join(work, `state${n}`);
    let t = text
      .replace(/^(\s*ServerKey\s*=).*$/gim, `$1 ${keys.serverKey}`)
      .replace(/^(\s*StateDir\s*=).*$/gim, `$1 ${state}`)
      .replace(/^(\s*spa_keys\s*=).*$/gim, `$1 ${keysFile}`)
      .replace(/^(\s*one_time_sequences\s*=).*$/gim, `$1 ${oneTime}`)
      .replace(/^(\s*Interface\s*=).*$/gim, '$1 lo')
      // ufw and firewalld change the machine's own configuration: not in this test.
      .replace(/^(\s*firewall\s*=\s*)(ufw|firewalld)\s*$/gim, '$1nftables');
    if (!/^\s*Interface\s*=/im.test(t)) t = t.replace(/^\[options\][^\n]*\n/im, (m) => `${m}Interface = lo\n`);
    if (!/^\s*\[options\]/im.test(t)) t = `[options]\nInterface = lo\n${t}`;
    if (!/^\s*StateDir\s*=/im.test(t)) t = t.replace(/^\[options\][^\n]*\n/im, (m) => `${m}StateDir = ${state}\n`);
    if (!/^\s*SPAPort\s*=/im.test(t)) t = t.replace(/^\[options\][^\n]*\n/im, (m) => `${m}SPAPort = 62391\n`);
    return t;
  }

  /** run in the namespace: 'started', or how it ended (code, stderr). */
  async function runIn(conf: string): Promise<{ started: boolean; code: number | null; stderr: string }> {
    const child = lab.spawn(ns, [process.execPath, BIN['spa-server'], 'run', '--config', conf]) as ChildProcessWithoutNullStreams;
    const p = new ServerProcess(child);
    try {
      await p.waitFor(p.msg('started'), 30_000);
      const end = await p.stop('SIGTERM');
      return { started: true, code: end.code, stderr: p.stderr };
    } catch {
      const end = await p.stop('SIGKILL');
      return { started: false, code: end.code, stderr: p.stderr };
    }
  }

  it(`${MUTANTS} mutants: check exits 0 exactly when run starts; run never exits 70`, async () => {
    const seeds = [
      readFileSync(join(ROOT, 'examples/spa.conf'), 'utf8'),
      ...readdirSync(join(ROOT, 'test/fixtures/knockd'))
        .filter((f) => f.endsWith('.conf') && !f.startsWith('bad-'))
        .sort()
        .map((f) => readFileSync(join(ROOT, 'test/fixtures/knockd', f), 'utf8')),
    ];
    const rnd = prng(12);
    const mismatches: string[] = [];
    mkdirSync(join(work, 'm'), { recursive: true });
    for (let n = 0; n < MUTANTS; n++) {
      const seed = seeds[n % seeds.length]!;
      const kind = KINDS[Math.max(0, n - seeds.length) % KINDS.length]!;
      const conf = join(work, 'm', `m${n}.conf`);
      writeFileSync(conf, n < seeds.length ? prepare(seed, n) : mutate(prepare(seed, n), kind, rnd));
      // check in the same namespace as run: it looks for the same interfaces.
      const check = await nsExec(ns, [process.execPath, BIN['spa-server'], 'check', '-c', conf], 30_000);
      const run = await runIn(conf);
      expect(check.code === 0 || check.code === 2, `${conf}: check exit ${check.code}: ${check.stderr}`).toBe(true);
      expect(run.code, `${conf}: run exited 70: ${run.stderr}`).not.toBe(70);
      expect(run.stderr).not.toContain('internal error');
      expect(check.stderr.length + run.stderr.length, `${conf}: stderr too long`).toBeLessThan(64 * 1024);
      if ((check.code === 0) !== run.started) mismatches.push(`${conf} (${n < seeds.length ? 'seed' : kind}): check ${check.code}, run ${run.started ? 'started' : `exit ${run.code}: ${run.stderr.trim()}`}; check said: ${check.stderr.trim()}`);
    }
    expect(mismatches).toEqual([]);
  }, 900_000);
});
