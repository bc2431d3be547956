// Our client against the real knockd 0.8 (Debian's package) on lo: `spa-knock --sequence` opens
// its door, a wrong order does not, --delay keeps it working, and a profile with a Sequence
// and no key falls back to it. The door has no tcpflags, so knockd counts *every* TCP packet
// to a sequence port: a second packet per TCP knock (a retransmitted SYN, an RST or FIN of ours)
// would break the sequence. Needs root (knockd captures with libpcap) and knockd.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';

const enabled = canRun({ root: true, tools: ['knockd'] });

// Ports no test of this project listens on; knockd only sniffs them.
const [A, B, C] = [47011, 47012, 47013];
const SEQ = `${A},${B}:udp,${C}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(enabled)("spa-knock --sequence opens the real knockd's door (lo)", () => {
  const work = mkdtempSync(join(tmpdir(), 'spa-knockseq-'));
  const opened = join(work, 'opened');
  let knockd: ChildProcess | undefined;
  let output = '';

  beforeEach(async () => {
    // A fresh knockd for each test: an attempt left from the previous test would change the outcome.
    rmSync(opened, { force: true });
    const conf = join(work, 'knockd.conf');
    writeFileSync(
      conf,
      `[options]
    LogFile = ${join(work, 'knockd.log')}

[door]
    sequence    = ${SEQ}
    seq_timeout = 5
    command     = echo %IP% >> ${opened}
`,
    );
    output = '';
    const p = spawn('knockd', ['-c', conf, '-i', 'lo', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    knockd = p;
    p.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!output.includes('listening on lo')) {
      if (p.exitCode !== null) throw new Error(`knockd exited ${p.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`knockd did not start:\n${output}`);
      await sleep(20);
    }
  });

  const stop = async (): Promise<void> => {
    const p = knockd;
    knockd = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM'); // by PID: ChildProcess.kill signals this process only
    const t = setTimeout(() => p.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  };
  afterEach(stop);
  afterAll(stop);

  async function openedBy(ms: number): Promise<string[]> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (existsSync(opened) && readFileSync(opened, 'utf8') !== '') break;
      await sleep(25);
    }
    return existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').filter(Boolean) : [];
  }

  it('--sequence PORT,PORT:udp,PORT opens it', async () => {
    const r = await runCli('spa-knock', ['127.0.0.1', '--sequence', SEQ, '-v']);
    expect(r.stderr).toBe(`spa-knock: sent knock 127.0.0.1 (127.0.0.1) sequence ${A}:tcp,${B}:udp,${C}:tcp\n`);
    expect(r.code).toBe(0);
    expect(await openedBy(3000), `knockd output:\n${output}`).toEqual(['127.0.0.1']);
  });

  it('the same ports in a wrong order do not', async () => {
    const r = await runCli('spa-knock', ['127.0.0.1', '--sequence', `${A},${C},${B}:udp`]);
    expect(r.code).toBe(0);
    expect(await openedBy(1000), `knockd output:\n${output}`).toEqual([]);
  });

  it('--delay 300 between knocks still opens it (within seq_timeout)', async () => {
    const t0 = Date.now();
    const r = await runCli('spa-knock', ['localhost', '-4', '--sequence', SEQ, '--delay', '300']);
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect(await openedBy(3000), `knockd output:\n${output}`).toEqual(['127.0.0.1']);
  });

  it('a profile with a Sequence and no Key falls back to it, saying so with -v', async () => {
    const home = join(work, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'config'), `Host legacy\n    HostName 127.0.0.1\n    Sequence ${A} ${B}:udp ${C}\n`);
    const r = await runCli('spa-knock', ['legacy', '-v'], { env: { SPA_KNOCK_HOME: home } });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('spa-knock: legacy: no SPA key for this host; knocking its Sequence instead\n');
    expect(await openedBy(3000), `knockd output:\n${output}`).toEqual(['127.0.0.1']);
  });
});
