// MetricsFile end to end (issue 13, item 7): a real daemon, a real knock (spa-knock) and one
// bad datagram; the file node_exporter would read says so. UDP socket mode runs as any
// user; libpcap on lo (which also reports the kernel-filter mode) needs root.
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { craftKnock, makeKeys, startServer, stopAllServers, until, type Keys } from '../helpers/server.js';

const PORT = 62371;

/** The daemon's log lines from the first test (UDP socket mode), for the fail2ban filter. */
let daemonLog: Record<string, unknown>[] = [];

async function send(d: Uint8Array): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((r, j) => s.send(d, PORT, '127.0.0.1', (e) => (e ? j(e) : r())));
  s.close();
}

/** Every `name{labels} value` line of the file, by series. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const modes: { name: string; options: string; pcap: boolean }[] = [
  { name: 'UDP socket', options: 'UDPSocket = yes\nUDPListen = 127.0.0.1\n', pcap: false },
  ...(canRun({ root: true }) ? [{ name: 'libpcap on lo', options: 'Interface = lo\nPcapBufferMB = 8\n', pcap: true }] : []),
];

describe.each(modes)('MetricsFile with a real daemon ($name)', ({ options, pcap }) => {
  let keys: Keys;
  let work: string;
  let conf: string;
  let prom: string;

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    work = mkdtempSync(join(tmpdir(), 'spa-metrics-'));
    // As node_exporter's textfile directory: outside StateDir, made by the operator.
    mkdirSync(join(work, 'textfile'), { mode: 0o755 });
    prom = join(work, 'textfile', 'spa.prom');
    conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]
${options}SPAPort = ${PORT}
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}
MetricsFile = ${prom}

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/22
start_command = true
stop_command = true
cmd_timeout = 600
`,
    );
  });
  afterEach(async () => {
    await stopAllServers();
  });
  afterAll(async () => {
    await stopAllServers();
  });

  it('one knock accepted for its door, one bad datagram rejected with its reason', async () => {
    const server = await startServer(['run', '--config', conf]);
    // Written at the start, then every 10 s: there before any packet.
    await until(() => existsSync(prom), 10_000, 'the metrics file after the start');
    expect(series(readFileSync(prom, 'utf8')).get('spa_knocks_accepted_total{door="ssh"}')).toBe(0);

    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(k.code, k.stderr).toBe(0);
    await server.waitFor(server.msg('accepted'), 15_000);
    // alice's knock with its last byte flipped: its tag is good (the kernel filter lets it
    // through), its box does not authenticate.
    const bad = craftKnock(keys, 'alice');
    bad[bad.length - 1]! ^= 0xff;
    await send(bad);
    const rejected = await server.waitFor(server.msg('rejected'), 15_000);
    expect(rejected).toMatchObject({ reason: 'box.bad', src: '127.0.0.1' });

    const stop = await server.stop('SIGTERM');
    expect(stop.code).toBe(0);
    // Written again at stop, with the last counts.
    const s = series(readFileSync(prom, 'utf8'));
    expect(s.get('spa_knocks_accepted_total{door="ssh"}')).toBe(1);
    expect(s.get('spa_knocks_rejected_total{reason="box.bad"}')).toBe(1);
    const allRejected = [...s].filter(([k]) => k.startsWith('spa_knocks_rejected_total{')).reduce((n, [, v]) => n + v, 0);
    expect(allRejected).toBe(1);
    expect(s.get('spa_replay_guard_entries')).toBe(1);
    expect(s.get('spa_open_rules{door="ssh"}')).toBe(0); // CloseOnExit closed it before the last write
    expect(s.get('spa_capture_frames_received_total')).toBeGreaterThanOrEqual(2);
    if (pcap) {
      expect(s.get('spa_kernel_filter_mode{mode="tags"}')! + s.get('spa_kernel_filter_mode{mode="fallback"}')!).toBe(1);
      expect(s.has('spa_capture_kernel_drops_total')).toBe(false); // cap does not report them
    } else {
      expect(s.get('spa_capture_kernel_drops_total')).toBe(0);
      expect([...s.keys()].some((k) => k.startsWith('spa_kernel_filter_mode'))).toBe(false);
    }
    expect(lstatSync(prom).mode & 0o777).toBe(0o644);
    if (!pcap) daemonLog = server.lines;
  });

  it('while running, the file shows the open rule', async () => {
    const server = await startServer(['run', '--config', conf]);
    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(k.code, k.stderr).toBe(0);
    await server.waitFor(server.msg('accepted'), 15_000);
    // The next periodic write (every 10 s) has it; generous for a busy machine.
    await until(() => series(readFileSync(prom, 'utf8')).get('spa_open_rules{door="ssh"}') === 1, 30_000, 'the open rule in the metrics file');
  });
});

// docs/METRICS.md's fail2ban filter, as printed there, against the daemon's real log lines.
describe.runIf(canRun({ tools: ['fail2ban-regex'] }))('the documented fail2ban filter', () => {
  it('matches the rejected line with its source, and no other line', () => {
    expect(daemonLog.length).toBeGreaterThan(0);
    const doc = readFileSync(join(import.meta.dirname, '../../docs/METRICS.md'), 'utf8');
    const filter = /`\/etc\/fail2ban\/filter\.d\/spa-server\.conf`:\n\n```ini\n([^`]*)```/.exec(doc)?.[1];
    expect(filter).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'spa-f2b-'));
    writeFileSync(join(dir, 'spa-server.conf'), filter!);
    // pino writes the fields in the order the daemon gives them; JSON.stringify keeps it.
    writeFileSync(join(dir, 'log'), daemonLog.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const out = execFileSync('fail2ban-regex', ['--print-all-matched', join(dir, 'log'), join(dir, 'spa-server.conf')], { encoding: 'utf8' });
    const rejected = daemonLog.filter((l) => l['msg'] === 'rejected').length;
    expect(rejected).toBe(1);
    expect(out).toMatch(new RegExp(`Lines: ${daemonLog.length} lines, 0 ignored, 1 matched, ${daemonLog.length - 1} missed`));
    expect(out).toMatch(/"reason":"box\.bad","src":"127\.0\.0\.1"/);
  });
});

// As root the daemon trusts only what root owns and others cannot write (server/trust.ts):
// MetricsFile is written as root, outside StateDir. What `run` refuses, `check` refuses.
describe.runIf(canRun({ root: true }))('MetricsFile that is not trusted', () => {
  let keys: Keys;
  let work: string;

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    work = mkdtempSync(join(tmpdir(), 'spa-metrics-trust-'));
  });

  async function bothRefuse(prom: string, message: RegExp): Promise<void> {
    const conf = join(mkdtempSync(join(work, 'c')), 'spa.conf');
    writeFileSync(conf, `[options]\nSPAPort = ${PORT}\nUDPSocket = yes\nServerKey = ${keys.serverKey}\nStateDir = ${join(work, 'state')}\nMetricsFile = ${prom}\n\n[ssh]\nspa_keys = ${keys.authorized('t', ['alice'])}\naccess = tcp/22\nstart_command = true\n`);
    for (const cmd of ['check', 'run']) {
      const r = await runCli('spa-server', [cmd, '-c', conf], { timeoutMs: 20_000 });
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`${conf}:6: MetricsFile: not trusted: `);
      expect(r.stderr).toMatch(message);
    }
  }

  it('in a directory others can write: refused by check and run, naming it', async () => {
    const open = join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await bothRefuse(join(open, 'spa.prom'), new RegExp(`${open}: writable by group and others \\(mode 0777\\)`));
  });

  it('a symbolic link, even to a good file: refused, and the target is never written', async () => {
    const target = join(work, 'target');
    writeFileSync(target, 'keep\n', { mode: 0o644 });
    const link = join(work, 'link.prom');
    symlinkSync(target, link);
    await bothRefuse(link, /link\.prom: is a symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('keep\n');
  });
});
