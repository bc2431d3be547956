// Test fixtures for spa-server: a temporary directory with server and client keys, a
// config writer, and the daemon as a child process (killed by PID in cleanup).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { BIN, runCli } from './cli.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import type { Access } from '../../src/net/access.js';
import { encodeKnock } from '../../src/protocol/datagram.js';
import { readClientSecretKey, resolveServerPublicKey } from '../../keys/files.js';

export interface Keys {
  readonly dir: string;
  readonly serverKey: string;
  readonly serverPub: string;
  readonly clientHome: string;
  /** Authorized-keys files by name. */
  authorized(name: string, ids: string[]): string;
}

/** A v1 knock made in-process with a key of `keys` (now, a fresh nonce, 127.0.0.1, tcp/22 unless told). */
export function craftKnock(keys: Keys, id: string, o: { timeSec?: number; allow?: string; access?: Access[] } = {}): Uint8Array {
  return encodeKnock({
    client: readClientSecretKey(join(keys.clientHome, `${id}.key`)),
    server: resolveServerPublicKey(keys.serverPub),
    allow: o.allow === 'source' ? 'source' : (parseAddress(o.allow ?? '127.0.0.1') as Address),
    access: o.access ?? [{ proto: 'tcp', port: 22 }],
    timeSec: o.timeSec ?? Math.floor(Date.now() / 1000),
    nonce: new Uint8Array(randomBytes(24)),
  });
}

export async function makeKeys(ids: string[] = ['alice']): Promise<Keys> {
  const dir = mkdtempSync(join(tmpdir(), 'spa-srv-'));
  const clientHome = join(dir, 'client');
  const r = await runCli('spa-server', ['keygen', '--dir', join(dir, 'srv')]);
  if (r.code !== 0) throw new Error(r.stderr);
  for (const id of ids) {
    const k = await runCli('spa-knock', ['keygen', '--id', id, '--dir', clientHome]);
    if (k.code !== 0) throw new Error(k.stderr);
  }
  return {
    dir,
    serverKey: join(dir, 'srv', 'server.key'),
    serverPub: join(dir, 'srv', 'server.pub'),
    clientHome,
    authorized(name, list) {
      const file = join(dir, `${name}.keys`);
      writeFileSync(file, list.map((id) => readFileSync(join(clientHome, `${id}.pub`), 'utf8')).join(''));
      return file;
    },
  };
}

export class ServerProcess {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ raw: line });
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.stderr += d));
    this.exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves with the first log line matching, or rejects after timeoutMs. */
  async waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`server exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a log line; have:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  msg(m: string): (l: Record<string, unknown>) => boolean {
    return (l) => l['msg'] === m;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exit;
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exit;
  }
}

const running = new Set<ServerProcess>();

/** `forceGc`: run the server under test/helpers/gc-server.mjs, which calls gc() every 10 ms. */
export async function startServer(args: string[], opts: { ready?: boolean; forceGc?: boolean } = {}): Promise<ServerProcess> {
  const entry = opts.forceGc ? ['--expose-gc', fileURLToPath(new URL('./gc-server.mjs', import.meta.url))] : [BIN['spa-server']];
  const child = spawn(process.execPath, [...entry, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const p = new ServerProcess(child);
  running.add(p);
  void p.exited().then(() => running.delete(p));
  if (opts.ready !== false) await p.waitFor(p.msg('started'));
  return p;
}

/** For afterEach: kills every server a test started (by PID) and waits for it. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}

export function fileLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/** Polls pred every 20 ms; on time-out, throws naming `what`, with `detail()` if given (say what was seen). */
export async function until(pred: () => boolean, timeoutMs: number, what: string, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}${detail === undefined ? '' : `: ${detail()}`}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
