// spa-knock --sequence and --wait as processes, without root: UDP knocks are 1-byte datagrams
// in order, a TCP knock is one SYN and nothing more (as knock(1) sends it), --wait returns
// once the port answers, or fails with one line when it never does.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { missing } from '../helpers/require.js';

const dir = mkdtempSync(join(tmpdir(), 'spa-seq-'));
const home = join(dir, 'home');
const env = { SPA_KNOCK_HOME: home };
const knock = (...args: string[]) => runCli('spa-knock', args, { env });

const arrivals: string[] = [];
const udps: Socket[] = [];
let tcp: Server;
let tcpPort = 0;
let connections = 0;
let received = 0;

async function udpPort(name: string): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.on('message', (m) => arrivals.push(`${name}:${m.toString('hex')}`));
  udps.push(s);
  return s.address().port;
}

async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

beforeAll(async () => {
  expect((await runCli('spa-server', ['keygen', '--dir', join(dir, 'srv')])).code).toBe(0);
  expect((await knock('keygen', '--id', 'alice')).code).toBe(0);
  tcp = createServer((s) => {
    connections++;
    s.on('data', (d) => (received += d.length));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  tcpPort = (tcp.address() as { port: number }).port;
});
afterAll(() => {
  for (const s of udps) s.close();
  tcp?.close();
});

describe('spa-knock --sequence', () => {
  it('sends one 1-byte datagram per UDP port, in order, --delay apart', async () => {
    arrivals.length = 0;
    const a = await udpPort('a');
    const b = await udpPort('b');
    const r = await knock('127.0.0.1', '--sequence', `${a}:udp,${b}:UDP,${a}:udp`, '--delay', '40', '-v');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`spa-knock: sent knock 127.0.0.1 (127.0.0.1) sequence ${a}:udp,${b}:udp,${a}:udp, 40 ms apart\n`);
    expect(r.stdout).toBe('');
    await until(() => arrivals.length === 3, 2000);
    expect(arrivals).toEqual(['a:00', 'b:00', 'a:00']);
  });

  // A TCP knock is connect() on a non-blocking socket, closed at once: one SYN. Across a real link
  // the close comes long before the SYN-ACK, which the kernel then answers with RST. On loopback
  // the kernel completes the handshake inside connect() itself, so a *listening* port sees one
  // connection that closes at once with no data: knock(1) does exactly the same (checked here).
  it('a TCP knock sends no second SYN and no data: a listening port sees what knock(1) gives it', async () => {
    arrivals.length = 0;
    const u = await udpPort('u');
    connections = 0;
    const r = await knock('127.0.0.1', '--sequence', `${tcpPort},${u}:udp`);
    expect(r.code).toBe(0);
    await until(() => arrivals.length === 1, 2000);
    expect(arrivals).toEqual(['u:00']); // the knock after the TCP one went out
    await new Promise((res) => setTimeout(res, 300));
    const ours = connections;
    expect(ours).toBeLessThanOrEqual(1);
    expect(received).toBe(0);
    if (missing({ tools: ['knock'] }) === undefined) {
      connections = 0;
      await new Promise<void>((res, rej) => execFile('knock', ['127.0.0.1', String(tcpPort)], (e) => (e ? rej(e) : res())));
      await new Promise((res) => setTimeout(res, 300));
      expect(ours).toBe(connections);
    }
  });

  it('--dry-run says what it would knock and sends nothing', async () => {
    arrivals.length = 0;
    const u = await udpPort('d');
    const r = await knock('127.0.0.1', '--sequence', `7000, 8000:udp,${u}:udp`, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`knock 127.0.0.1 (127.0.0.1) sequence 7000:tcp,8000:udp,${u}:udp (dry run, not sent)\n`);
    await new Promise((res) => setTimeout(res, 200));
    expect(arrivals).toEqual([]);
  });

  it.each([
    [['--sequence', '7000,,8000'], `option '--sequence <ports>' argument '7000,,8000' is invalid. expected PORT[:tcp|udp],... such as 7000,8000:udp,9000, got "7000,,8000"`],
    [['--sequence', '7000:icmp'], `option '--sequence <ports>' argument '7000:icmp' is invalid. protocol must be tcp or udp, got "icmp"`],
    [['--sequence', '7000', '--delay', '-5'], `option '-d, --delay <ms>' argument '-5' is invalid. expected milliseconds 0-60000, got "-5"`],
    [['--sequence', '7000', '--timeout', '0'], `option '-t, --timeout <seconds>' argument '0' is invalid. expected seconds, more than 0 and at most 600, got "0"`],
    [['--sequence', '7000', '--wait', '--dry-run'], `option '-n, --dry-run' cannot be used with option '-w, --wait'`],
  ])('%j: exit 2, one line', async (args, msg) => {
    const r = await knock('127.0.0.1', ...args);
    expect(r.stderr).toBe(`spa-knock: ${msg}\n`);
    expect(r.code).toBe(2);
  });
});

describe('spa-knock --wait', () => {
  it('returns once the first tcp access answers, with the time under -v', async () => {
    const spa = await udpPort('spa');
    const r = await knock('127.0.0.1', '--key', 'alice', '--server-key', join(dir, 'srv', 'server.pub'), '--port', String(spa), '-A', 'udp/53', '-A', `tcp/${tcpPort}`, '--wait', '-v');
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n')[1]).toMatch(new RegExp(`^spa-knock: 127\\.0\\.0\\.1 \\(127\\.0\\.0\\.1\\) tcp/${tcpPort} answered after \\d+ ms$`));
  });

  it('fails with one line, exit 1, when the port never answers within --timeout', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t0 = Date.now();
    const r = await knock('127.0.0.1', '--sequence', '7000', '-A', `tcp/${port}`, '--wait', '--timeout', '0.6');
    expect(r.stderr).toBe(`spa-knock: 127.0.0.1: 127.0.0.1 port ${port}: no connection within 0.6 s (ECONNREFUSED)\n`);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });

  it('--wait without a tcp access is a usage error', async () => {
    const r = await knock('127.0.0.1', '--sequence', '7000', '-A', 'udp/53', '--wait');
    expect(r.stderr).toBe('spa-knock: --wait: no tcp access to wait for (give -A tcp/PORT)\n');
    expect(r.code).toBe(2);
  });
});
