// spa-knock proxy as a process, without root: it knocks first (the test's "door" starts the TCP
// service only when the knock datagram has arrived, so a connection before the knock is
// refused), then relays stdin and stdout; nothing else reaches stdout; failures are one line.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyDatagram } from '../../src/protocol/datagram.js';
import { authorizeClient, clientPublicKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { parseKey } from '../../keys/format.js';
import { BIN, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'spa-proxy-'));
const srvDir = join(dir, 'srv');
const home = join(dir, 'home');
const env = { SPA_KNOCK_HOME: home };

beforeAll(async () => {
  expect((await runCli('spa-server', ['keygen', '--dir', srvDir])).code).toBe(0);
  expect((await runCli('spa-knock', ['keygen', '--id', 'alice'], { env })).code).toBe(0);
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A door: a UDP socket standing in for the SPA server and a TCP echo service on `port` that
 * is started only when a datagram that verifies with the server key arrives, after `delayMs`.
 */
async function door(port: number, delayMs: number): Promise<{ udpPort: number; log: string[] }> {
  const log: string[] = [];
  const udp: Socket = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  let echo: Server | undefined;
  cleanups.push(() => {
    udp.close();
    echo?.close();
  });
  udp.on('message', (m) => {
    const now = Math.floor(Date.now() / 1000);
    const server = serverSecretKey(parseKey(readFileSync(join(srvDir, 'server.key'), 'utf8').split('\n')[1] ?? '', 'server-secret'));
    const [pubText = ''] = readFileSync(join(home, 'alice.pub'), 'utf8').trim().split(' ');
    const tags = new TagTable(120);
    tags.setClients([authorizeClient(server, 'alice', clientPublicKey(parseKey(pubText, 'client-public')))!], now);
    const v = verifyDatagram({ server, tags, replay: new ReplayGuard(120, 100), windowSec: 120 }, new Uint8Array(m), now);
    if (!v.ok) {
      log.push('refused');
      return;
    }
    log.push(`knock ${v.access.map((a) => `${a.proto}/${a.port}`).join(',')}`);
    setTimeout(() => {
      echo = createServer((s) => {
        log.push('connection');
        s.on('error', () => undefined);
        s.pipe(s);
      });
      echo.listen(port, '127.0.0.1', () => log.push('open'));
    }, delayMs);
  });
  return { udpPort: udp.address().port, log };
}

describe('spa-knock proxy', () => {
  it('knocks for tcp/PORT, connects once the door opens, relays both ways, prints only relayed bytes', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 300);
    const input = 'hello through the door\n'.repeat(2000); // 46 KB: more than one read
    const r = await runCli('spa-knock', ['proxy', '127.0.0.1', String(port), '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--port', String(d.udpPort), '-v'], { env, input });
    expect(r.stderr.split('\n')[1]).toMatch(new RegExp(`^spa-knock: 127\\.0\\.0\\.1 \\(127\\.0\\.0\\.1\\) tcp/${port} answered after \\d+ ms; relaying$`));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(input);
    expect(d.log).toEqual([`knock tcp/${port}`, 'open', 'connection']);
  });

  it('relays 4 MB from a pipe intact: more than the socket takes at once, so reading waits for it', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 0);
    const input = Array.from({ length: 100_000 }, (_, i) => `line ${i} of the pipe\n`).join('').slice(0, 4 << 20);
    const r = await runCli('spa-knock', ['proxy', '127.0.0.1', String(port), '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--port', String(d.udpPort)], { env, input, timeoutMs: 60_000 });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout.length).toBe(input.length);
    expect(r.stdout === input).toBe(true);
  });

  // The last bytes from the server may wait in the proxy for stdout's reader (ssh, busy): the
  // proxy exits only once they are written. Here the reader starts 2 s late, so the pipe (64 KiB)
  // is full when the rest of the echo and the server's end arrive. Seen once in a full run with
  // both cores busy: 62 KB short, exit 0.
  it('a stdout reader that starts late still gets every byte', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 0);
    const input = 'x'.repeat(65536 + 5000);
    const file = join(dir, 'late-input.txt');
    const out = join(dir, 'late-output.txt');
    writeFileSync(file, input);
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN['spa-knock'])} proxy 127.0.0.1 ${port} --key alice --server-key ${JSON.stringify(join(srvDir, 'server.pub'))} --port ${d.udpPort} < ${JSON.stringify(file)} | (sleep 2; cat > ${JSON.stringify(out)})`;
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
      p.on('error', reject);
      p.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    expect(readFileSync(out, 'utf8').length).toBe(input.length);
  });

  it('relays a stdin that is a file, not a pipe (read as a stream)', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 0);
    const input = 'from a file\n'.repeat(10_000); // 120 KB
    const file = join(dir, 'input.txt');
    writeFileSync(file, input);
    const r = await runCli('spa-knock', ['proxy', '127.0.0.1', String(port), '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--port', String(d.udpPort)], { env, stdinFile: file });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(input);
  });

  it('takes HOST, key and SPA port from the profile', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 0);
    const conf = join(dir, 'p.conf');
    writeFileSync(conf, `Host lab\n  HostName 127.0.0.1\n  Key alice\n  ServerKey ${join(srvDir, 'server.pub')}\n  Port ${d.udpPort}\n`);
    const r = await runCli('spa-knock', ['proxy', 'lab', String(port), '-F', conf], { env, input: 'x\n' });
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'x\n', '']);
  });

  it('fails in one line on stderr, nothing on stdout, exit 1, when the door does not open', async () => {
    const port = await freeTcpPort();
    const d = await door(port, 60_000);
    const r = await runCli('spa-knock', ['proxy', '127.0.0.1', String(port), '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--port', String(d.udpPort), '--timeout', '0.8'], { env, input: 'x\n' });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`spa-knock: 127.0.0.1: 127.0.0.1 port ${port}: no connection within 0.8 s (ECONNREFUSED)\n`);
    expect(r.code).toBe(1);
    expect(d.log).toEqual([`knock tcp/${port}`]);
  });

  it('usage mistakes: exit 2, one line, nothing on stdout', async () => {
    const r = await runCli('spa-knock', ['proxy', '127.0.0.1', '0'], { env });
    expect(r.stderr).toBe(`spa-knock: command-argument value '0' is invalid for argument 'port'. expected a port 1-65535, got "0"\n`);
    expect(r.code).toBe(2);
    const n = await runCli('spa-knock', ['proxy', '127.0.0.1', '22', '-F', 'none'], { env });
    expect(n.stderr).toBe('spa-knock: no key for 127.0.0.1: use --key ID, or Key (or Sequence) in its profile (see spa-knock keygen --help)\n');
    expect([n.code, n.stdout]).toEqual([2, '']);
  });
});
