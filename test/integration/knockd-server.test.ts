// spa-server as a knockd replacement, end to end: the real `knock` client (Debian's knockd
// package) against spa-server run as a process on lo (real libpcap), configured from a
// seeds-style knockd.conf; one_time_sequences across kill -9; floods from another address; SPA
// and sequence doors in one file; every fixture config through `spa-server check`.
// Needs root (capture) and knock.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { createKnockState, knockDoorOf, setLocalAddresses, step } from '../../server/core/knock.js';
import { interfaceAddresses } from '../../server/sequences.js';
import { runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { fileLines, makeKeys, startServer, stopAllServers, until, type ServerProcess } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['knock'] });
const FIXTURES = join(import.meta.dirname, '../fixtures/knockd');

// Ports below the ephemeral range (32768-60999 here), so no reply to some client's connection
// (a SYN-ACK to its source port) can ever look like a knock; and away from the other suites'.
const SPA_PORT = 28620;
const SSH = [28101, 28102, 28103];
const UDP = [28111, 28112];
const MIXED = [28121, 28122, 28123];
const SLOW = [28131, 28132, 28133];
const OTP = [
  [28201, 28202, 28203],
  [28211, 28212, 28213],
  [28221, 28222, 28223],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real knock client; resolves with its exit code. */
function knock(...args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn('knock', args, { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/**
 * `count` TCP connection attempts (one SYN each; closed ports answer RST) from `from` to
 * 127.0.0.1 at ports chosen by `port(i)`, `parallel` at a time; bounded by `deadlineMs`.
 * Returns how many were made.
 */
async function synStream(from: string, count: number, port: (i: number) => number, deadlineMs = 15_000, parallel = 32): Promise<number> {
  const end = Date.now() + deadlineMs;
  let next = 0;
  let done = 0;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: port(i), localAddress: from });
      const fin = () => {
        s.destroy();
        resolve();
      };
      s.setTimeout(2000, fin);
      s.on('error', fin);
      s.on('connect', fin);
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count && Date.now() < end) {
        await one(next++);
        done++;
      }
    }),
  );
  return done;
}

describe.runIf(enabled)('spa-server with knockd.conf and the real knock client (libpcap on lo)', () => {
  let work: string;
  let effects: string;
  let otpFile: string;
  let server: ServerProcess | undefined;

  const OTP_TEXT = `# one-time sequences for [otp], as knockd's man page writes them (a leading space)\n${OTP.map((s) => ` ${s.join(',')}`).join('\n')}\n`;

  /** A knockd.conf in the seeds' style (seed 000 and 001, man page examples), on lo. */
  const knockdConf = (extra = '') => `[options]
        UseSyslog
        Interface = lo
        SPAPort   = ${SPA_PORT}
        StateDir  = ${join(work, 'state')}

[openSSH]
        sequence    = ${SSH.join(',')}
        seq_timeout = 5
        command     = echo open openSSH %IP% >> ${effects}
        tcpflags    = syn
        cmd_timeout = 2
        stop_command = echo close openSSH %IP% >> ${effects}
        start_command_6 = echo open6 openSSH %IP% >> ${effects}
        stop_command_6  = echo close6 openSSH %IP% >> ${effects}

[SSH]
sequence = ${UDP.map((p) => `${p}:udp`).join(',')}
seq_timeout = 5
start_command = echo open SSH %IP% >> ${effects}
cmd_timeout = 2
stop_command = echo close SSH %IP% >> ${effects}

[mixed]
        sequence      = ${MIXED[0]}:udp,${MIXED[1]}:tcp,${MIXED[2]}:udp
        seq_timeout   = 15
        tcpflags      = syn
        start_command = echo open mixed %IP% >> ${effects}

[slow]
        sequence    = ${SLOW.join(',')}
        seq_timeout = 30
        tcpflags    = syn
        command     = echo open slow %IP% >> ${effects}

[otp]
        one_time_sequences = ${otpFile}
        seq_timeout        = 15
        tcpflags           = syn
        start_command      = echo open otp %IP% >> ${effects}
        cmd_timeout        = 1
        stop_command       = echo close otp %IP% >> ${effects}
${extra}`;

  let conf: string;

  const start = async (text = knockdConf()): Promise<ServerProcess> => {
    writeFileSync(conf, text);
    server = await startServer(['run', '--config', conf, '--debug']);
    return server;
  };

  /** The effects file's lines that start with `word` (each door's close may come before another's open). */
  const linesStarting = (word: string): string[] => fileLines(effects).filter((l) => l.startsWith(`${word} `) || l.startsWith(`${word}6 `));

  /** For a failure message: what the effects file holds and the daemon's lines about knocks and the capture. */
  const seen = (s: ServerProcess): string => {
    const lines = s.lines.filter((l) => /^(knock|sequence|capture|accepted|kernel)/.test(String(l['msg'])));
    // Every spa-server process on the machine: a second daemon on lo would see the same knocks.
    const daemons = spawnSync('pgrep', ['-af', 'server/bin.js'], { encoding: 'utf8' }).stdout.trim().split('\n');
    return JSON.stringify({ effects: fileLines(effects), daemon: lines, pid: s.child.pid, daemons });
  };

  // Bounds on waits for commands are generous: a journal fsync right after a big install took
  // seconds in CI, and the test asserts that the command runs and what it gets, not how soon.
  const accepted = (s: ServerProcess, door: string, src = '127.0.0.1', from = 0) => s.waitFor((l) => l['msg'] === 'sequence accepted' && l['door'] === door && l['src'] === src, 10_000, from);

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'spa-knockd-'));
    otpFile = join(work, 'otp.sequences');
    conf = join(work, 'knockd.conf');
  });
  // A file of its own per test: no command of an earlier test's daemon can write into this one's.
  let tests = 0;
  beforeEach(() => {
    effects = join(work, `effects-${++tests}`);
  });
  afterEach(async () => {
    await stopAllServers();
    server = undefined;
    rmSync(join(work, 'state'), { recursive: true, force: true });
  });
  afterAll(async () => {
    await stopAllServers();
    rmSync(work, { recursive: true, force: true });
  });

  // When the close runs (cmd_timeout after the start) is the effects runner's timer, the same for
  // every door: unit-tested with a fake clock (test/unit/effects.test.ts), and end to end with a
  // real one in server.test.ts. Here: the real knock client opens the door, status shows the
  // opening until cmd_timeout, and closing it runs the door's stop_command.
  it('the real knock client opens a door of a seeds-style knockd.conf; status shows it until cmd_timeout; close runs stop_command', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start(knockdConf().replace(/(\[openSSH\][^[]*?cmd_timeout = )2/, '$1600'));
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    const open = await accepted(s, 'openSSH');
    await until(() => fileLines(effects).includes('open openSSH 127.0.0.1'), 10_000, 'start_command');
    const st = await runCli('spa-server', ['status', '--config', conf, '--json']);
    const [grant] = st.stdout.trim().split('\n').map((l) => JSON.parse(l) as { door: string; id: string; addr: string; expires: string });
    expect(grant).toMatchObject({ door: 'openSSH', addr: '127.0.0.1', id: expect.stringMatching(/^sequence/) });
    // cmd_timeout's 600 s, not the default's 10 (5 s of slack: the command starts late on a busy machine).
    expect(Math.abs(Date.parse(grant!.expires) - (Date.parse(String(open['time'])) + 600_000))).toBeLessThan(5000);
    expect(await runCli('spa-server', ['close', '127.0.0.1', '--config', conf])).toMatchObject({ code: 0, stdout: 'closed 1 rule\n' });
    expect(await s.waitFor((l) => l['msg'] === 'closed' && l['door'] === 'openSSH')).toMatchObject({ addr: '127.0.0.1', id: grant!.id });
    await until(() => fileLines(effects).length === 2, 10_000, 'stop_command');
    expect(fileLines(effects)).toEqual(['open openSSH 127.0.0.1', 'close openSSH 127.0.0.1']);
  });

  it('a wrong order opens nothing, and the right order just after still opens', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start();
    // 28101 starts an attempt, 28103 breaks it (a port of the sequence out of turn), 28102 then
    // starts nothing (not a first knock): knockd's rules, docs/KNOCKD-SEMANTICS.md #2 and #3.
    expect(await knock('127.0.0.1', String(SSH[0]), String(SSH[2]), String(SSH[1]))).toBe(0);
    await s.waitFor((l) => l['msg'] === 'knock attempt ended' && l['door'] === 'openSSH' && l['reason'] === 'broken');
    // Reverse order: the last port first is no start; then the first port starts an attempt
    // that the test never completes.
    expect(await knock('127.0.0.1', ...[...SSH].reverse().map(String))).toBe(0);
    const mark = s.lines.length;
    // The first port again is a duplicate of stage 1: it breaks that attempt (#5)...
    expect(await knock('127.0.0.1', String(SSH[0]))).toBe(0);
    await s.waitFor((l) => l['msg'] === 'knock attempt ended' && l['reason'] === 'broken', 5000, mark);
    await sleep(300);
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted')).toEqual([]);
    expect(fileLines(effects)).toEqual([]);
    // ...and the right order now opens.
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    await accepted(s, 'openSSH');
    await until(() => fileLines(effects).length >= 1, 10_000, 'start_command', () => seen(s));
    expect(fileLines(effects)[0]).toBe('open openSSH 127.0.0.1');
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted')).toHaveLength(1);
  });

  it('UDP sequences (`knock -u`), mixed UDP/TCP sequences, and start_command_6 for an IPv6 knocker', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start();
    // The same ports over TCP are no knock for a UDP door.
    expect(await knock('127.0.0.1', ...UDP.map(String))).toBe(0);
    expect(await knock('-u', '127.0.0.1', ...UDP.map(String))).toBe(0);
    await accepted(s, 'SSH');
    expect(await knock('127.0.0.1', `${MIXED[0]}:udp`, `${MIXED[1]}:tcp`, `${MIXED[2]}:udp`)).toBe(0);
    await accepted(s, 'mixed');
    expect(await knock('-6', '::1', ...SSH.map(String))).toBe(0);
    await accepted(s, 'openSSH', '::1');
    await until(() => linesStarting('open').length >= 3, 10_000, 'start commands', () => seen(s));
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted')).toHaveLength(3);
    await until(() => linesStarting('close').length >= 2, 15_000, 'stop commands', () => seen(s));
    expect(linesStarting('open').sort()).toEqual(['open SSH 127.0.0.1', 'open mixed 127.0.0.1', 'open6 openSSH ::1']);
    expect(linesStarting('close').sort()).toEqual(['close SSH 127.0.0.1', 'close6 openSSH ::1']);
    expect(fileLines(effects)).toHaveLength(5);
  });

  it('one_time_sequences advance on use and survive kill -9: the used line stays commented, the next is current', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    let s = await start();
    const [first, second, third] = OTP.map((seq) => seq.map(String)) as [string[], string[], string[]];
    expect(await knock('127.0.0.1', ...first)).toBe(0);
    await accepted(s, 'otp');
    await s.waitFor((l) => l['msg'] === 'one-time sequence used' && l['line'] === 2 && l['remaining'] === 2);
    await until(() => fileLines(effects).includes('open otp 127.0.0.1'), 10_000, 'start_command');
    // knockd's update: '#' over the first byte of the used line, nothing else changed.
    const afterFirst = OTP_TEXT.replace(` ${OTP[0]!.join(',')}`, `#${OTP[0]!.join(',')}`);
    expect(readFileSync(otpFile, 'utf8')).toBe(afterFirst);

    await s.stop('SIGKILL');
    s = await start();
    // The used sequence no longer opens (its ports are not even captured now) ...
    expect(await knock('127.0.0.1', ...first)).toBe(0);
    // ... and the next one does.
    const mark = s.lines.length;
    expect(await knock('127.0.0.1', ...second)).toBe(0);
    await accepted(s, 'otp', '127.0.0.1', mark);
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted')).toHaveLength(1);
    await s.waitFor((l) => l['msg'] === 'one-time sequence used' && l['line'] === 3 && l['remaining'] === 1);
    const afterSecond = afterFirst.replace(` ${OTP[1]!.join(',')}`, `#${OTP[1]!.join(',')}`);
    expect(readFileSync(otpFile, 'utf8')).toBe(afterSecond);
    await until(() => fileLines(effects).filter((l) => l === 'open otp 127.0.0.1').length === 2, 10_000, 'second start_command');

    // Right after the use, before cmd_timeout: killed again. The next start runs the pending
    // stop_command (the journal), and the third sequence is current.
    await s.stop('SIGKILL');
    await sleep(1200);
    s = await start();
    await until(() => fileLines(effects).filter((l) => l === 'close otp 127.0.0.1').length >= 1, 10_000, 'stop_command at start');
    expect(await knock('127.0.0.1', ...second)).toBe(0);
    const mark2 = s.lines.length;
    expect(await knock('127.0.0.1', ...third)).toBe(0);
    await accepted(s, 'otp', '127.0.0.1', mark2);
    await s.waitFor((l) => l['msg'] === 'one-time sequence used' && l['line'] === 4 && l['remaining'] === 0);
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted')).toHaveLength(1);
    expect(readFileSync(otpFile, 'utf8')).toBe(afterSecond.replace(` ${OTP[2]!.join(',')}`, `#${OTP[2]!.join(',')}`));
    const opens = () => fileLines(effects).filter((l) => l.startsWith('open'));
    await until(() => opens().length >= 3, 10_000, 'third start_command');
    expect(opens()).toEqual(['open otp 127.0.0.1', 'open otp 127.0.0.1', 'open otp 127.0.0.1']);
  });

  it('SYN streams from another address, to other ports and to the sequence ports, do not break a knock in progress', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start();
    expect(await knock('127.0.0.1', String(SLOW[0]))).toBe(0);
    await s.waitFor((l) => l['msg'] === 'knock stage' && l['door'] === 'slow' && l['src'] === '127.0.0.1' && l['stage'] === 1);
    // 2000 SYNs from 127.0.0.2 to ports of no sequence (the capture filter keeps them in the kernel) ...
    expect(await synStream('127.0.0.2', 2000, (i) => 29000 + (i % 500))).toBe(2000);
    // ... and 600 to the door's first two ports, the second being the one 127.0.0.1 needs next:
    // 127.0.0.2's own attempts start, advance and break (it never sends the last port), while
    // 127.0.0.1's is untouched.
    const mark = s.lines.length;
    expect(await synStream('127.0.0.2', 600, (i) => SLOW[i % 2]!)).toBe(600);
    await s.waitFor((l) => l['msg'] === 'knock attempt ended' && l['src'] === '127.0.0.2' && l['reason'] === 'broken', 5000, mark);
    expect(await knock('127.0.0.1', String(SLOW[1]), String(SLOW[2]))).toBe(0);
    await accepted(s, 'slow');
    await until(() => fileLines(effects).length === 1, 10_000, 'start_command');
    expect(fileLines(effects)).toEqual(['open slow 127.0.0.1']);
    // The stream to the sequence ports did reach the state machine (so this test can fail).
    expect(s.lines.slice(mark).filter((l) => l['msg'] === 'knock stage' && l['src'] === '127.0.0.2').length).toBeGreaterThan(10);
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted' && l['src'] === '127.0.0.2')).toEqual([]);
  });

  it('knocks to an address of another interface do not count (knockd matches the capture interface\u2019s addresses)', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start();
    // 127.0.0.2 is routed through lo but is not one of lo's addresses (127.0.0.1, ::1).
    expect(await knock('127.0.0.2', ...SSH.map(String))).toBe(0);
    expect(await knock('127.0.0.1', ...UDP.map(String).map((p) => `${p}:udp`))).toBe(0);
    await accepted(s, 'SSH');
    expect(s.lines.filter((l) => l['msg'] === 'knock stage' && l['door'] === 'openSSH')).toEqual([]);
    expect(s.lines.find((l) => l['msg'] === 'sequence doors count knocks to these addresses')).toMatchObject({ iface: 'lo', addresses: expect.arrayContaining(['127.0.0.1', '::1']) });
  });

  it('Interface = any (Linux cooked frames): a knock is seen once, to any of the host\u2019s addresses', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const s = await start(knockdConf().replace('Interface = lo', 'Interface = any'));
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    await accepted(s, 'openSSH');
    await until(() => fileLines(effects).length >= 1, 10_000, 'start_command', () => seen(s));
    expect(fileLines(effects)[0]).toBe('open openSSH 127.0.0.1');
    expect(s.lines.filter((l) => l['msg'] === 'knock stage' && l['door'] === 'openSSH').map((l) => l['stage']), seen(s)).toEqual([1, 2, 3]);
    expect(s.lines.filter((l) => l['msg'] === 'sequence accepted'), seen(s)).toHaveLength(1);
  });

  // `spa-server run --interface lo` with another Interface in the file: the knocks that count are
  // those to lo's addresses, where the capture is. Needs the daemon to pass its --interface to
  // SequenceEngine.create (see the report to the lead); flip to it() then.
  it('--interface overrides Interface for the addresses knocks must go to', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    writeFileSync(conf, knockdConf().replace('Interface = lo', 'Interface = spa-none0'));
    const s = await startServer(['run', '--config', conf, '--debug', '--interface', 'lo']);
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    await s.waitFor((l) => l['msg'] === 'sequence accepted' && l['door'] === 'openSSH', 3000);
  });

  it('SPA doors and sequence doors in one file both work, interleaved', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    const keys = await makeKeys(['alice']);
    const spaDoor = `
[ssh]
        spa_keys      = ${keys.authorized('ssh', ['alice'])}
        access        = tcp/22
        start_command = echo open ssh %ID% %IP% %PROTO%/%PORT% >> ${effects}
        cmd_timeout   = 2
        stop_command  = echo close ssh %ID% %IP% %PROTO%/%PORT% >> ${effects}
`;
    const text = knockdConf(spaDoor).replace('[openSSH]', `        ServerKey = ${keys.serverKey}\n\n[openSSH]`);
    const s = await start(text);
    expect(await knock('127.0.0.1', String(SSH[0]))).toBe(0);
    await s.waitFor((l) => l['msg'] === 'knock stage' && l['door'] === 'openSSH' && l['stage'] === 1);
    const r = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(SPA_PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(r.code, r.stderr).toBe(0);
    expect(await s.waitFor((l) => l['msg'] === 'accepted')).toMatchObject({ door: 'ssh', id: 'alice', src: '127.0.0.1' });
    expect(await knock('127.0.0.1', String(SSH[1]), String(SSH[2]))).toBe(0);
    await accepted(s, 'openSSH');
    await until(() => linesStarting('open').length >= 2, 10_000, 'both start commands', () => seen(s));
    await until(() => linesStarting('close').length >= 2, 15_000, 'both stop commands', () => seen(s));
    expect(linesStarting('open').sort(), seen(s)).toEqual(['open openSSH 127.0.0.1', 'open ssh alice 127.0.0.1 tcp/22']);
    expect(linesStarting('close').sort(), seen(s)).toEqual(['close openSSH 127.0.0.1', 'close ssh alice 127.0.0.1 tcp/22']);
    expect(fileLines(effects), seen(s)).toHaveLength(4);
    rmSync(keys.dir, { recursive: true, force: true });
  });

  // knockd runs start_command on every completed sequence and, in the same forked child,
  // stop_command cmd_timeout later: two completions, two starts, two stops, each stop
  // cmd_timeout after its own start. With `iptables -A`/`-D` that adds two rules and removes
  // both. The daemon journals one grant per completion, each with its own deadline: status
  // shows both, and each has its own stop. (That each closes at its own deadline is the effects
  // runner's timer, unit-tested with a fake clock in test/unit/effects.test.ts.)
  it('two completions while open: start twice, two grants each cmd_timeout after its own start, stop twice (knockd)', async () => {
    writeFileSync(effects, '');
    writeFileSync(otpFile, OTP_TEXT);
    // openSSH's cmd_timeout raised from 2 s, so that neither grant closes by itself while status runs on a busy machine.
    const s = await start(knockdConf().replace(/(\[openSSH\][^[]*?cmd_timeout = )2/, '$1600'));
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    const first = await accepted(s, 'openSSH');
    const mark = s.lines.length;
    expect(await knock('127.0.0.1', ...SSH.map(String))).toBe(0);
    const second = await accepted(s, 'openSSH', '127.0.0.1', mark);
    await until(() => fileLines(effects).length === 2, 10_000, 'two start commands');
    const st = await runCli('spa-server', ['status', '--config', conf, '--json']);
    const grants = st.stdout.trim().split('\n').map((l) => JSON.parse(l) as { door: string; id: string; expires: string });
    expect(grants.map((g) => g.door)).toEqual(['openSSH', 'openSSH']);
    expect(new Set(grants.map((g) => g.id)).size).toBe(2);
    // Each deadline is cmd_timeout (600 s) after its own completion, give or take the command's start.
    const expires = grants.map((g) => Date.parse(g.expires)).sort((a, b) => a - b);
    const accepts = [first, second].map((l) => Date.parse(String(l['time'])));
    for (const [i, e] of expires.entries()) expect(Math.abs(e - (accepts[i]! + 600_000))).toBeLessThan(5000);
    expect((await s.stop()).code).toBe(0); // CloseOnExit: both stop commands
    expect(fileLines(effects)).toEqual(['open openSSH 127.0.0.1', 'open openSSH 127.0.0.1', 'close openSSH 127.0.0.1', 'close openSSH 127.0.0.1']);
  });
});

describe.runIf(enabled)('spa-server check on every knockd.conf fixture', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'spa-check-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const all = readdirSync(FIXTURES).filter((f) => f.endsWith('.conf'));

  it('has the fixtures it expects', () => {
    expect(all.filter((f) => f.startsWith('seed-')).length).toBeGreaterThanOrEqual(4);
  });

  it.each(all.filter((f) => !f.startsWith('bad-') && f !== 'mixed-spa.conf'))('%s: check exits 0 and names every door', async (f) => {
    let text = readFileSync(join(FIXTURES, f), 'utf8');
    // The man page's one_time_sequences path points into /etc; the file it names must exist for
    // the server to start, so the copy points at one made here. Nothing else is changed.
    const otp = join(dir, 'smtp_sequences');
    writeFileSync(otp, ' 1001,1002,1003\n 2001,2002,2003\n');
    text = text.replaceAll('/etc/knockd/smtp_sequences', otp);
    const file = join(dir, f);
    writeFileSync(file, text);
    const r = await runCli('spa-server', ['check', '--config', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = [...text.matchAll(/^\s*\[([^\]]+)\]/gm)].map((m) => m[1]).filter((n) => n !== 'options');
    expect(r.stdout).toBe(`${file}: OK: ${names.length} door${names.length === 1 ? '' : 's'} (${names.map((n) => `${n}: sequence`).join(', ')}), 0 authorized keys\n`);
  });

  it('mixed-spa.conf: check exits 0 once its key files exist', async () => {
    const keys = await makeKeys(['alice', 'bob']);
    const text = readFileSync(join(FIXTURES, 'mixed-spa.conf'), 'utf8')
      .replace('/etc/spa/server.key', keys.serverKey)
      .replace('/etc/spa/ssh.keys', keys.authorized('ssh', ['alice']))
      .replace('/etc/spa/dns.keys', keys.authorized('dns', ['bob']))
      .replace('/var/lib/spa', join(dir, 'state'));
    const file = join(dir, 'mixed-spa.conf');
    writeFileSync(file, text);
    // firewall nftables: check looks for nft on PATH (Debian's nftables package is installed here).
    const r = await runCli('spa-server', ['check', '--config', file]);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: `${file}: OK: 3 doors (ssh: spa, dns: spa, openSSH: sequence), 2 authorized keys\n` });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  it('bad-seed-003-placeholder.conf (a blog\u2019s x,y,z placeholder): every problem as FILE:LINE, exit 2', async () => {
    const file = join(dir, 'bad-seed-003-placeholder.conf');
    copyFileSync(join(FIXTURES, 'bad-seed-003-placeholder.conf'), file);
    const r = await runCli('spa-server', ['check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `spa-server: ${file}:1: door [openSSH] needs start_command (or command): what to run when the sequence is knocked\n` +
        `spa-server: ${file}:2: sequence: expected PORT[:tcp|udp],... such as 7000,8000:udp,9000, got "x"\n` +
        'spa-server: 2 problems found\n',
    );
  });
});

// Without root: how the engine learns the addresses knocks must go to.
describe('the capture interface\u2019s addresses', () => {
  const info = (address: string, family: 'IPv4' | 'IPv6') => ({ address, family, netmask: '', mac: '00:00:00:00:00:00', internal: false, cidr: null }) as const;
  const table = {
    lo: [info('127.0.0.1', 'IPv4'), info('::1', 'IPv6')],
    eth0: [info('192.0.2.2', 'IPv4'), info('FD00:0:0::2', 'IPv6'), info('fe80::fc:ff:fe00:1%eth0', 'IPv6')],
    eth1: [],
  };

  it('are those of the interface named, canonical, zone dropped; `any` takes every interface\u2019s', () => {
    expect(interfaceAddresses('lo', table)).toEqual(['127.0.0.1', '::1']);
    expect(interfaceAddresses('eth0', table)).toEqual(['192.0.2.2', 'fd00::2', 'fe80::fc:ff:fe00:1']);
    expect(interfaceAddresses('eth1', table)).toEqual([]);
    expect(interfaceAddresses('nope0', table)).toEqual([]);
    expect(interfaceAddresses('any', table)).toEqual(['127.0.0.1', '192.0.2.2', '::1', 'fd00::2', 'fe80::fc:ff:fe00:1']);
  });

  it('decide which hits count, and may change while an attempt is in progress', () => {
    const parsed = parseConfig('[A]\nsequence = 7000,8000\ncommand = true\n', 'k.conf');
    if (!parsed.ok) throw new Error('config');
    const door = parsed.config.doors[0];
    if (door?.kind !== 'sequence') throw new Error('door');
    const a = (t: string) => parseAddress(t) as Address;
    const hit = (port: number, dst: string) => ({ src: a('198.51.100.7'), dst: a(dst), proto: 'tcp' as const, dstPort: port, tcpFlags: 0x02 });
    let st = createKnockState([knockDoorOf(door)], { localAddresses: ['192.0.2.2'] });
    // To another host (say, sent out by this one): no knock.
    expect(step(st, hit(7000, '203.0.113.9'), 0).effects).toEqual([]);
    expect(step(st, hit(7000, '192.0.2.2'), 0).effects.map((e) => e.kind)).toEqual(['knock-stage']);
    // DHCP gives a new address: the attempt goes on, counted at the new address only.
    st = setLocalAddresses(st, ['192.0.2.3']);
    expect(step(st, hit(8000, '192.0.2.2'), 500).effects).toEqual([]);
    expect(step(st, hit(8000, '192.0.2.3'), 600).effects.map((e) => e.kind)).toEqual(['knock-stage', 'sequence-open']);
  });
});
