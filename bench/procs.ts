// Every process the benchmark starts goes through here, so that all of them are stopped by
// PID when a section ends, fails, or the run is interrupted. Also /proc readers for a PID's
// CPU time and memory. Shell (child_process, /proc).
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Tracked {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Map<number, Tracked>();

export function spawnTracked(name: string, file: string, args: readonly string[], opts: SpawnOptions = {}): Tracked {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${file}`);
  const pid = child.pid;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(pid);
      resolve({ code, signal });
    });
    child.on('error', () => {
      live.delete(pid);
      resolve({ code: null, signal: null });
    });
  });
  const t: Tracked = { name, child, pid, exited };
  live.set(pid, t);
  return t;
}

export function isRunning(t: Tracked): boolean {
  return t.child.exitCode === null && t.child.signalCode === null;
}

/** Sends `signal`, waits up to graceMs, then SIGKILLs. Resolves with how it ended. */
export async function stopTracked(t: Tracked, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (isRunning(t)) t.child.kill(signal);
  const timer = setTimeout(() => {
    if (isRunning(t)) t.child.kill('SIGKILL');
  }, graceMs);
  const r = await t.exited;
  clearTimeout(timer);
  return r;
}

/** Runs a command to completion (tracked while it runs); rejects on a non-zero exit. */
export async function runTracked(name: string, file: string, args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  const t = spawnTracked(name, file, args, opts);
  let stdout = '';
  let stderr = '';
  t.child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  t.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => t.child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const r = await t.exited;
  clearTimeout(timer);
  if (r.code !== 0) throw new Error(`${name}: ${file} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${stderr.trim()}`);
  return { stdout, stderr };
}

/** SIGKILLs every process still running (synchronous: safe in an 'exit' handler). */
export function killAllTracked(): number {
  let n = 0;
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL');
      n++;
    } catch {
      // already gone
    }
  }
  live.clear();
  return n;
}

export function liveCount(): number {
  return live.size;
}

let installed = false;
const atExit: (() => void)[] = [];

/** Runs `fn` (synchronous: removing temporary directories, say) when the process exits, however. */
export function onExit(fn: () => void): void {
  atExit.push(fn);
}

function runAtExit(): void {
  killAllTracked();
  for (const fn of atExit.splice(0)) {
    try {
      fn();
    } catch {
      // best effort on the way out
    }
  }
}

/** Kills every tracked process (and runs onExit callbacks) when this process exits, is interrupted or crashes. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAtExit);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      const n = killAllTracked();
      process.stderr.write(`bench: ${sig}: killed ${n} process(es) started by the benchmark\n`);
      runAtExit();
      process.exit(130);
    });
  }
}

let clkTck: number | undefined;

function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** User + system CPU seconds a process has used (its own threads, not its children). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resident bytes of the process's socket mappings: libpcap's PACKET_MMAP ring shows up in
 * /proc/PID/smaps as a mapping named `socket:[inode]`. Undefined if smaps cannot be read.
 */
export function socketMappedBytes(pid: number): { resident: number; size: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  let inSocket = false;
  let resident = 0;
  let size = 0;
  for (const line of text.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inSocket = /\ssocket:\[\d+\]$/.test(line);
    } else if (inSocket) {
      const m = /^(Rss|Size):\s+(\d+) kB$/.exec(line);
      if (m?.[1] === 'Rss') resident += Number(m[2]) * 1024;
      else if (m?.[1] === 'Size') size += Number(m[2]) * 1024;
    }
  }
  return { resident, size };
}

/**
 * Reads a child's stream line by line without keeping it: the callback sees each line.
 * Bounded memory whatever the child writes.
 */
export function onLines(stream: NodeJS.ReadableStream | null | undefined, cb: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let start = 0;
    let nl: number;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      cb(buf.slice(start, nl));
      start = nl + 1;
    }
    buf = buf.slice(start);
    // A line longer than 1 MiB is not a log line we care about.
    if (buf.length > 1 << 20) buf = '';
  });
}

/**
 * The packet socket ring of `pid` as `ss -0 -e -m -p` shows it: TPACKET version, frame size and
 * count (how many frames the ring holds is what decides drops, not its size in bytes), and the
 * socket's drop counter. Undefined when ss is missing or shows nothing for the PID.
 */
export function packetRing(pid: number): string | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-0', '-e', '-m', '-n', '-p'], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return undefined;
  }
  const blocks = out.split(/\n(?=\S)/);
  const mine = blocks.find((b) => b.includes(`pid=${pid},`));
  if (!mine) return undefined;
  const ver = /\bver:(\d+)/.exec(mine)?.[1];
  const ring = /ring_rx\(([^)]*)\)/.exec(mine)?.[1];
  const fields = new Map((ring ?? '').split(',').map((kv) => kv.split(':') as [string, string]));
  const frmSize = Number(fields.get('frm_size'));
  const frmNr = Number(fields.get('frm_nr'));
  const blk = Number(fields.get('blk_size')) * Number(fields.get('blk_nr'));
  if (!ring) return undefined;
  // ss prints the kernel's tpacket_versions value: 0 = TPACKET_V1, 1 = V2, 2 = V3.
  const version = ver === undefined ? '?' : `TPACKET_V${Number(ver) + 1}`;
  return `${version}, ${frmNr.toLocaleString('en-US')} frames of ${frmSize.toLocaleString('en-US')} bytes (${(blk / 2 ** 20).toFixed(0)} MiB of blocks)`;
}
