// Test helpers for STUN: Debian's coturn (`turnserver --stun-only`) started for one test, on
// addresses the test chose (loopback, or inside a namespace it made), with no configuration
// file read (-n) and its database and pid file in the test's directory; and `askStun`, one
// Binding request from inside a namespace, made with the built client/stun.js.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { decodeBindingResponse, encodeBindingRequest, type StunAnswer } from '../../client/stun.js';
import { ROOT } from './cli.js';
import { nsExec, type Netns, type NetnsLab } from './netns.js';

export interface Coturn {
  readonly port: number;
  readonly child: ChildProcess;
  /** What turnserver printed (its log goes to stdout), for failure messages. */
  output(): string;
  /** Kills it by PID (SIGKILL) and waits for the exit. */
  stop(): Promise<void>;
}

/**
 * turnserver's argv: STUN only, listening on `listen` at `port` (UDP and TCP), no TLS/DTLS,
 * no CLI (it would listen on 127.0.0.1:5766), and -n: no turnserver.conf from /etc.
 */
export function coturnArgv(listen: readonly string[], port: number, dir: string): string[] {
  return [
    'turnserver',
    '-n',
    '--stun-only',
    '--no-cli',
    '--no-tls',
    '--no-dtls',
    ...listen.flatMap((a) => ['-L', a]),
    '-p',
    String(port),
    '--db',
    join(dir, 'turndb'),
    '--pidfile',
    join(dir, 'turnserver.pid'),
    '--log-file',
    'stdout',
    '--simple-log',
  ];
}

/** A port for turnserver: random, away from the well-known ones, below the ephemeral range. */
export function randomStunPort(): number {
  return randomInt(20_000, 32_000);
}

function track(child: ChildProcess, port: number): Coturn {
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    port,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One Binding request from this process; resolves with the decoded answer, or undefined after timeoutMs. */
export function askStunHere(host: string, port: number, timeoutMs: number): Promise<{ answer: StunAnswer; localPort: number } | undefined> {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const txid = new Uint8Array(randomBytes(12));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, timeoutMs);
    sock.on('error', () => undefined);
    sock.on('message', (m) => {
      clearTimeout(timer);
      const localPort = sock.address().port;
      sock.close();
      resolve({ answer: decodeBindingResponse(new Uint8Array(m), txid), localPort });
    });
    sock.connect(port, host, () => sock.send(encodeBindingRequest(txid)));
  });
}

/** turnserver on loopback addresses, started by this process; the caller stops it. */
export async function startCoturnHere(listen: readonly string[], dir: string): Promise<Coturn> {
  for (let attempt = 0; ; attempt++) {
    const port = randomStunPort();
    const c = track(spawn(coturnArgv(listen, port, dir)[0]!, coturnArgv(listen, port, dir).slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }), port);
    if (await until(async () => (await askStunHere(listen[0]!, port, 200))?.answer.ok === true, 10_000, c)) return c;
    await c.stop();
    if (attempt === 2) throw new Error(`turnserver did not answer on ${listen.join(', ')} port ${port}:\n${c.output()}`);
  }
}

const ASK = `
const { createSocket } = require('node:dgram');
const { randomBytes } = require('node:crypto');
(async () => {
  const { encodeBindingRequest, decodeBindingResponse } = await import(process.argv[1]);
  const [host, port, ms] = process.argv.slice(2);
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const txid = new Uint8Array(randomBytes(12));
  setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, Number(ms));
  sock.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
  sock.on('message', (m) => {
    const a = decodeBindingResponse(new Uint8Array(m), txid);
    console.log(JSON.stringify(a.ok ? { ok: true, address: a.address.text, port: a.port, from: a.from, software: a.software, localPort: sock.address().port } : a));
    process.exit(0);
  });
  sock.connect(Number(port), host, () => sock.send(encodeBindingRequest(txid)));
})();
`;

export interface AskedInNs {
  readonly ok?: boolean;
  readonly address?: string;
  readonly port?: number;
  readonly localPort?: number;
  readonly from?: string;
  readonly software?: string;
  readonly timeout?: boolean;
  readonly error?: string;
  readonly reason?: string;
}

/** One Binding request sent from inside ns (node with the built dist/client/stun.js). */
export async function askStunIn(ns: Netns, host: string, port: number, timeoutMs: number): Promise<AskedInNs> {
  const r = await nsExec(ns, [process.execPath, '-e', ASK, join(ROOT, 'dist/client/stun.js'), host, String(port), String(timeoutMs)], timeoutMs + 10_000);
  return JSON.parse(r.stdout.trim() || '{}') as AskedInNs;
}

/** turnserver inside ns (started with the lab, so the lab's cleanup kills it by PID too). */
export async function startCoturnIn(lab: NetnsLab, ns: Netns, listen: readonly string[], dir: string): Promise<Coturn> {
  const port = randomStunPort();
  const c = track(lab.spawn(ns, coturnArgv(listen, port, dir)), port);
  if (!(await until(async () => (await askStunIn(ns, listen[0]!, port, 300)).ok === true, 15_000, c))) {
    await c.stop();
    throw new Error(`turnserver did not answer on ${listen.join(', ')} port ${port} in ${ns.name}:\n${c.output()}`);
  }
  return c;
}

async function until(f: () => Promise<boolean>, ms: number, c: Coturn): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (c.child.exitCode !== null || c.child.signalCode !== null) return false;
    if (await f()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
