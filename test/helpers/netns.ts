// Test helpers: network namespaces joined by veth, processes inside them, a TCP echo
// service and TCP probes. A NetnsLab registers everything it makes and its cleanup()
// removes it (by PID, and by the names it made), also when a test fails: call it from
// onTestFinished or afterEach. Labs are independent, so concurrent tests each use one.
//
// Addresses (10.201.N.0/24, fd00:201:N::/64) exist only inside the namespaces made here:
// nothing is added to, or routed from, the namespace the tests run in.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const PREFIX = 'spat-';
let counter = 0;

const labs = new Set<NetnsLab>();

export interface Netns {
  readonly name: string;
}

/** Why namespace tests cannot run here, or undefined when they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
  try {
    await execFileP('ip', ['-V']);
  } catch {
    return 'needs iproute2 (`ip`)';
  }
  return undefined;
}

/** Runs argv in the namespace; never throws. */
export async function nsExec(ns: Netns, argv: readonly string[], timeoutMs = 10_000): Promise<{ ok: boolean; code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP('ip', ['netns', 'exec', ns.name, ...argv], { timeout: timeoutMs, maxBuffer: 4 << 20 });
    return { ok: true, code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { ok: false, code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr || err.message };
  }
}

/** Like nsExec, but a failure throws with the command and its stderr. */
export async function nsRun(ns: Netns, argv: readonly string[], timeoutMs = 10_000): Promise<string> {
  const r = await nsExec(ns, argv, timeoutMs);
  if (!r.ok) throw new Error(`in ${ns.name}: ${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function host(argv: string[]): Promise<void> {
  await execFileP(argv[0] ?? '', argv.slice(1), { timeout: 10_000 });
}

/** A veth pair between two namespaces, both ends up. */
export async function link(a: Netns, aIf: string, b: Netns, bIf: string): Promise<void> {
  await nsRun(a, ['ip', 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  await nsRun(a, ['ip', 'link', 'set', aIf, 'up']);
  await nsRun(b, ['ip', 'link', 'set', bIf, 'up']);
}

/** Adds CIDR to an interface; IPv6 without duplicate address detection, so it is usable at once. */
export async function addAddress(ns: Netns, ifname: string, cidr: string): Promise<void> {
  const v6 = cidr.includes(':');
  await nsRun(ns, ['ip', ...(v6 ? ['-6'] : []), 'addr', 'add', cidr, 'dev', ifname, ...(v6 ? ['nodad'] : [])]);
}

export interface TwoHosts {
  readonly server: Netns;
  readonly client: Netns;
  /** The server's address, by family. */
  readonly serverAddr: { readonly 4: string; readonly 6: string };
  /** Two client addresses per family: [0] is the one that knocks, [1] is the "third address". */
  readonly clientAddrs: { readonly 4: readonly [string, string]; readonly 6: readonly [string, string] };
}

export interface Target {
  readonly host: string;
  readonly port: number;
  /** Source address to connect from. */
  readonly from: string;
}

export interface HeldConnection {
  /** Sends one line and resolves with the line that comes back (or rejects after timeoutMs). */
  exchange(text: string, timeoutMs?: number): Promise<string>;
  close(): void;
}

const ECHO_SERVER = `
const net = require('node:net');
const port = Number(process.argv[1]);
const srv = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
srv.listen({ host: '::', port, ipv6Only: false }, () => console.log('listening'));
`;

const PROBE = `
const net = require('node:net');
const [host, port, localAddress, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), localAddress });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
s.on('connect', () => { clearTimeout(t); console.log('connected'); s.destroy(); process.exit(0); });
s.on('error', (e) => { clearTimeout(t); console.log('error ' + e.code); process.exit(0); });
`;

const HOLD = `
const net = require('node:net');
const [host, port, localAddress, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), localAddress });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
s.on('connect', () => { clearTimeout(t); console.log('connected'); process.stdin.pipe(s); s.pipe(process.stdout); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });
s.on('close', () => process.exit(0));
`;

/** How long a node child in a namespace may take to start: generous, for a machine with both cores busy. */
const STARTUP_SLACK_MS = 30_000;

/** Resolves with the first stdout line, or rejects when the process ends or the deadline passes. */
function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms`)), timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(timer);
      rl.close();
      resolve(line);
    });
    // 'close', not 'exit': a child that prints its line and exits at once can emit 'exit'
    // before readline has delivered the line (seen under load as "exited (0) before any output").
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before any output: ${err.trim()}`));
    });
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Owns the namespaces, processes and /etc/netns directories one test makes. */
export class NetnsLab {
  private readonly namespaces = new Set<string>();
  private readonly children = new Set<ChildProcess>();
  private readonly etcDirs = new Set<string>();

  constructor() {
    labs.add(this);
  }

  /** A new, empty namespace with lo up, named spat-PID-N. */
  async makeNetns(): Promise<Netns> {
    const name = `${PREFIX}${process.pid}-${++counter}`;
    await host(['ip', 'netns', 'add', name]);
    this.namespaces.add(name);
    const ns = { name };
    await nsRun(ns, ['ip', 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A server and a client namespace on one veth link, with IPv4 and IPv6 addresses. */
  async makeTwoHosts(): Promise<TwoHosts> {
    const server = await this.makeNetns();
    const client = await this.makeNetns();
    // Any N would do (each namespace has its own stack); distinct ones keep logs readable.
    const n = (counter % 250) + 1;
    await link(server, 'veth-s', client, 'veth-c');
    const v4 = (h: number): string => `10.201.${n}.${h}`;
    const v6 = (h: number): string => `fd00:201:${n}::${h}`;
    await addAddress(server, 'veth-s', `${v4(1)}/24`);
    await addAddress(server, 'veth-s', `${v6(1)}/64`);
    for (const h of [2, 3]) {
      await addAddress(client, 'veth-c', `${v4(h)}/24`);
      await addAddress(client, 'veth-c', `${v6(h)}/64`);
    }
    return { server, client, serverAddr: { 4: v4(1), 6: v6(1) }, clientAddrs: { 4: [v4(2), v4(3)], 6: [v6(2), v6(3)] } };
  }

  /**
   * A directory bound over /etc/NAME for commands run with `ip netns exec` in this
   * namespace (iproute2 does that bind), holding a copy of /etc/NAME: lets a tool such as
   * ufw write its configuration without touching the machine's own.
   */
  async privateEtc(ns: Netns, name: string): Promise<string> {
    if (!/^[a-z0-9_-]+$/.test(name)) throw new Error(`privateEtc: bad name ${name}`);
    if (!this.namespaces.has(ns.name)) throw new Error(`privateEtc: ${ns.name} was not made by this lab`);
    const dir = `/etc/netns/${ns.name}`;
    mkdirSync(dir, { recursive: true });
    this.etcDirs.add(dir);
    await host(['cp', '-a', `/etc/${name}`, `${dir}/${name}`]);
    return `${dir}/${name}`;
  }

  /** Spawns argv inside the namespace (`ip netns exec` execs, so the PID is the program's). */
  spawn(ns: Netns, argv: readonly string[]): ChildProcess {
    if (!this.namespaces.has(ns.name)) throw new Error(`spawn: ${ns.name} was not made by this lab`);
    const child = spawn('ip', ['netns', 'exec', ns.name, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  private node(ns: Netns, code: string, args: readonly string[]): ChildProcess {
    return this.spawn(ns, [process.execPath, '-e', code, '--', ...args]);
  }

  /** A TCP echo service listening on every address of the namespace (IPv4 and IPv6). */
  async startEchoServer(ns: Netns, port: number): Promise<ChildProcess> {
    const child = this.node(ns, ECHO_SERVER, [String(port)]);
    const line = await firstLine(child, STARTUP_SLACK_MS);
    if (line !== 'listening') throw new Error(`echo server: unexpected ${line}`);
    return child;
  }

  /**
   * Tries one TCP connection: 'connected', 'timeout' (nothing came back within timeoutMs:
   * what a DROP rule gives) or 'error CODE' (refused, unreachable...). The deadline starts
   * when the connection is attempted, not when node starts.
   */
  async probeTcp(ns: Netns, t: Target, timeoutMs: number): Promise<string> {
    return firstLine(this.node(ns, PROBE, [t.host, String(t.port), t.from, String(timeoutMs)]), timeoutMs + STARTUP_SLACK_MS);
  }

  /** Opens a TCP connection that stays up; its bytes go both ways through exchange(). */
  async holdTcp(ns: Netns, t: Target, timeoutMs = 2000): Promise<HeldConnection> {
    const child = this.node(ns, HOLD, [t.host, String(t.port), t.from, String(timeoutMs)]);
    const first = await firstLine(child, timeoutMs + STARTUP_SLACK_MS);
    if (first !== 'connected') {
      child.kill('SIGKILL');
      throw new Error(`held connection: ${first}`);
    }
    const rl = createInterface({ input: child.stdout! });
    const waiting: Array<(line: string) => void> = [];
    rl.on('line', (line) => waiting.shift()?.(line));
    return {
      exchange(text: string, ms = 2000): Promise<string> {
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no echo of ${JSON.stringify(text)} within ${ms} ms`)), ms);
          waiting.push((line) => {
            clearTimeout(timer);
            resolve(line);
          });
          child.stdin!.write(`${text}\n`);
        });
      },
      close(): void {
        child.kill('SIGKILL');
      },
    };
  }

  /** Kills every process this lab started (by PID), deletes its namespaces and /etc/netns dirs. */
  async cleanup(): Promise<void> {
    const children = [...this.children];
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => waitExit(c, 2000)));
    this.children.clear();
    for (const name of [...this.namespaces]) {
      await execFileP('ip', ['netns', 'del', name]).catch(() => undefined);
      this.namespaces.delete(name);
    }
    for (const dir of [...this.etcDirs]) {
      rmSync(dir, { recursive: true, force: true });
      this.etcDirs.delete(dir);
    }
    labs.delete(this);
  }
}

/** Cleans up every lab not cleaned up yet (for afterAll). */
export async function cleanupAllLabs(): Promise<void> {
  for (const lab of [...labs]) await lab.cleanup();
}

/**
 * Deletes namespaces this helper made in an earlier test process that died before its
 * cleanup ran: spat-PID-N whose PID is no longer running.
 */
export async function sweepStaleNetns(): Promise<void> {
  if (!existsSync('/run/netns')) return;
  for (const name of readdirSync('/run/netns')) {
    const m = /^spat-(\d+)-\d+$/.exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    await execFileP('ip', ['netns', 'del', name]).catch(() => undefined);
    rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  }
}
