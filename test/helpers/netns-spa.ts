// Test helpers for spa inside network namespaces: the built spa-server run inside a
// namespace (a ServerProcess, killed by PID with its lab), and a long-lived TCP prober in
// a namespace that tries connections without paying a node start-up for each one.
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN } from './cli.js';
import type { Netns, NetnsLab, Target } from './netns.js';
import { ServerProcess } from './server.js';

/**
 * `spa-server run --config CONF` inside ns (`ip netns exec` execs, so the child's PID is
 * the daemon's: kill('SIGKILL') is a real kill -9). Resolves once it logs `started`.
 * `env` entries (NAME=VALUE) are set for the daemon only.
 */
export async function startDaemonIn(lab: NetnsLab, ns: Netns, conf: string, env: readonly string[] = []): Promise<ServerProcess> {
  const argv = [process.execPath, BIN['spa-server'], 'run', '--config', conf];
  const child = lab.spawn(ns, env.length > 0 ? ['env', ...env, ...argv] : argv);
  const p = new ServerProcess(child as ChildProcessWithoutNullStreams);
  await p.waitFor(p.msg('started'), 15_000);
  return p;
}

export interface ConnectResult {
  /** 'connected', 'timeout' (no answer within the attempt's time: a drop) or 'error CODE'. */
  readonly result: string;
  /** Milliseconds from the request reaching the prober to that result. */
  readonly ms: number;
  readonly attempts: number;
}

export interface TcpProber {
  /** One connection attempt, unanswered for timeoutMs counts as 'timeout'. */
  probe(t: Target, timeoutMs: number): Promise<string>;
  /**
   * Fresh connection attempts, each given attemptMs, one after another until one connects or
   * deadlineMs has passed since the request: the time to the first success, to ~attemptMs.
   */
  connectWithin(t: Target, deadlineMs: number, attemptMs?: number): Promise<ConnectResult>;
}

const PROBER = `
const net = require('node:net');
const readline = require('node:readline');
function attempt(host, port, localAddress, ms) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress });
    const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, ms);
    s.on('connect', () => { clearTimeout(t); s.destroy(); resolve('connected'); });
    s.on('error', (e) => { clearTimeout(t); s.destroy(); resolve('error ' + e.code); });
  });
}
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const [id, host, port, from, attemptMs, deadlineMs] = line.split(' ');
  const start = Date.now();
  let attempts = 0;
  let result;
  do {
    attempts++;
    result = await attempt(host, Number(port), from, Number(attemptMs));
  } while (result !== 'connected' && Date.now() - start + Number(attemptMs) <= Number(deadlineMs));
  console.log(JSON.stringify({ id: Number(id), result, ms: Date.now() - start, attempts }));
});
console.log('ready');
`;

/** Starts the prober in ns; the lab kills it at cleanup. */
export async function startTcpProber(lab: NetnsLab, ns: Netns): Promise<TcpProber> {
  const child: ChildProcess = lab.spawn(ns, [process.execPath, '-e', PROBER]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const pending = new Map<number, (r: ConnectResult) => void>();
  let nextId = 0;
  const rl = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`prober did not start: ${stderr}`)), 10_000);
    rl.on('line', (line) => {
      if (line === 'ready') {
        clearTimeout(timer);
        resolve();
        return;
      }
      const r = JSON.parse(line) as ConnectResult & { id: number };
      pending.get(r.id)?.({ result: r.result, ms: r.ms, attempts: r.attempts });
      pending.delete(r.id);
    });
  });
  await ready;
  const ask = (t: Target, attemptMs: number, deadlineMs: number): Promise<ConnectResult> =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => reject(new Error(`prober: no answer for ${t.from} -> ${t.host}:${t.port}: ${stderr}`)), deadlineMs + attemptMs + 5000);
      pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      child.stdin!.write(`${id} ${t.host} ${t.port} ${t.from} ${attemptMs} ${deadlineMs}\n`);
    });
  return {
    probe: async (t, timeoutMs) => (await ask(t, timeoutMs, 0)).result,
    connectWithin: (t, deadlineMs, attemptMs = 50) => ask(t, attemptMs, deadlineMs),
  };
}
