// Test helpers: a Debian 12 container with systemd as PID 1, for testing the systemd unit
// under a real systemd. The rootfs is made by debootstrap from the Debian mirror this
// machine's apt uses and cached under /var/cache/spa-test; the container boots it with
// systemd-nspawn on a throwaway overlay (the cached tree is never written), commands run in
// it through nsenter by the leader's PID, and it is powered off by the PID that started it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const SUITE = 'bookworm';
/**
 * What the container needs besides minbase: systemd as init (systemd-sysv gives /sbin/init,
 * dbus the system bus a stock system has), nft for the daemon's nftables door, libpcap for
 * the cap addon. Node and the project are bound in from the host at boot.
 */
export const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'nftables', 'libpcap0.8'] as const;
const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
const CACHE_DIR = '/var/cache/spa-test';
/** A cached rootfs older than this is built again (it misses Debian's point releases). */
const CACHE_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
const DEBOOTSTRAP_TIMEOUT_MS = 600_000;

export interface Rootfs {
  readonly dir: string;
  /** How it was had: 'cached (PATH)', or 'built in N s ...'. */
  readonly how: string;
}

/**
 * The Debian mirror apt is set up with here (sources.list or deb822 .sources), so that a
 * machine that reaches Debian's packages through it reaches it for debootstrap too.
 */
export function debianMirror(): string {
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const d = '/etc/apt/sources.list.d';
  if (existsSync(d)) for (const f of readdirSync(d).sort()) if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join(d, f));
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string): string[] => (new RegExp(`^${k}:[ \\t]*(.*)$`, 'mi').exec(stanza)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
        if (field('Enabled')[0] === 'no' || !field('Types').includes('deb')) continue;
        if (!field('Suites').includes(SUITE) || !field('Components').includes('main')) continue;
        const uri = field('URIs')[0];
        if (uri?.startsWith('http')) return uri.replace(/\/$/, '');
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+(\S+)\s+(.*)$/.exec(line.trim());
        if (m && m[2] === SUITE && m[3]!.split(/\s+/).includes('main')) return m[1]!.replace(/\/$/, '');
      }
    }
  }
  return FALLBACK_MIRROR;
}

/**
 * A minbase Debian 12 rootfs with PACKAGES, cached in /var/cache/spa-test/bookworm-KEY, KEY a
 * hash of suite, mirror and packages. It is built beside the cache entry and renamed into
 * place only once debootstrap succeeded, so an entry is always complete; other entries are
 * removed then. The container runs as the real root (no user namespace), so whoever can
 * write the cache can run code as root here: it is used only when root owns it and its
 * parents and no one else may write them.
 */
export async function debianRootfs(log: (line: string) => void): Promise<Rootfs> {
  const mirror = debianMirror();
  const key = createHash('sha256').update(JSON.stringify({ SUITE, variant: 'minbase', PACKAGES, mirror })).digest('hex').slice(0, 12);
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 });
  for (let d = CACHE_DIR; d !== '/'; d = dirname(d)) {
    const st = statSync(d);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) throw new Error(`${d}: owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}: the rootfs cache must be root's and writable by no one else`);
  }
  const dir = join(CACHE_DIR, `${SUITE}-${key}`);
  const stamp = `${dir}.built`;
  if (existsSync(dir) && existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < CACHE_MAX_AGE_MS) return { dir, how: `cached (${dir})` };

  // Builds left by a test process that died (debootstrap is bounded well below an hour).
  for (const f of readdirSync(CACHE_DIR)) {
    if (f.startsWith('.build-') && Date.now() - statSync(join(CACHE_DIR, f)).mtimeMs > 3600_000) await removeTree(join(CACHE_DIR, f));
  }
  const building = mkdtempSync(join(CACHE_DIR, '.build-'));
  try {
    const ms = await runDebootstrap(join(building, 'rootfs'), mirror, log);
    for (const f of readdirSync(CACHE_DIR)) if (f.startsWith(`${SUITE}-`)) await removeTree(join(CACHE_DIR, f));
    renameSync(join(building, 'rootfs'), dir);
    writeFileSync(stamp, `${new Date().toISOString()} ${mirror} ${PACKAGES.join(',')}\n`);
    return { dir, how: `built in ${(ms / 1000).toFixed(0)} s from ${mirror}, cached as ${dir}` };
  } finally {
    await removeTree(building);
  }
}

async function runDebootstrap(dir: string, mirror: string, log: (line: string) => void): Promise<number> {
  log(`debootstrap --variant=minbase --include=${PACKAGES.join(',')} ${SUITE} ${dir} ${mirror}`);
  const t0 = Date.now();
  const r = await runBounded('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, dir, mirror], DEBOOTSTRAP_TIMEOUT_MS);
  if (r.code !== 0) {
    const tail = r.output.split('\n').slice(-15).join('\n');
    const logFile = join(dir, 'debootstrap', 'debootstrap.log');
    const detail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
    throw new Error(`debootstrap failed (${r.code ?? r.signal}) after ${((Date.now() - t0) / 1000).toFixed(0)} s:\n${tail}\n${detail}`);
  }
  return Date.now() - t0;
}

/** Runs a command in its own process group; after timeoutMs the group is killed. */
function runBounded(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-64 * 1024);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs / 1000} s)`;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/**
 * rm -rf that never leaves the tree's file system (a debootstrap killed half-way can leave
 * /proc or /sys mounted inside it: those are unmounted first, and never descended into).
 */
async function removeTree(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await execFileP('umount', ['-l', m]).catch(() => undefined);
  await execFileP('rm', ['-rf', '--one-file-system', '--', dir], { timeout: 120_000 });
}

export interface Bind {
  readonly from: string;
  readonly to: string;
  readonly readOnly: boolean;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A booted container. `boot` returns once systemd in it reports running (or degraded); the
 * whole container is bounded by `timeout` in case the test process dies without powering it off.
 */
export class Container {
  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    /** PID (in our namespace) of the container's PID 1. */
    readonly leader: number,
    private readonly exit: Promise<void>,
    private readonly output: () => string,
  ) {}

  static async boot(o: { rootfs: string; name: string; binds: readonly Bind[]; maxLifeSec: number; bootTimeoutMs: number }): Promise<Container> {
    if (!/^[a-z0-9-]{1,12}$/.test(o.name)) throw new Error(`container name ${o.name}: 1-12 of [a-z0-9-] (ve-NAME must fit IFNAMSIZ)`);
    const args = [
      '--kill-after=10s',
      `${o.maxLifeSec}s`,
      'systemd-nspawn',
      '--boot',
      '--quiet',
      '--register=no',
      '--keep-unit',
      '--network-veth',
      '--console=read-only',
      '--volatile=overlay',
      `--machine=${o.name}`,
      `--directory=${o.rootfs}`,
      ...o.binds.map((b) => `--bind${b.readOnly ? '-ro' : ''}=${b.from}:${b.to}`),
    ];
    const child = spawn('timeout', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-64 * 1024);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exit = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // timeout -> systemd-nspawn -> the container's PID 1 (systemd, in a new PID namespace).
    let leader: number | undefined;
    // A failed boot kills the container's PID 1 (its PID namespace goes with it: it is not in
    // our process group) and then our process group (timeout, systemd-nspawn).
    const failed = async (why: string): Promise<Error> => {
      for (const target of [leader, child.exitCode === null ? -child.pid! : undefined]) {
        try {
          if (target !== undefined) process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await Promise.race([exit, sleep(10_000)]);
      removePropagationDir(o.name);
      return new Error(`systemd-nspawn: ${why}; its output:\n${output.slice(-4000)}`);
    };

    const deadline = Date.now() + o.bootTimeoutMs;
    while (leader === undefined) {
      if (child.exitCode !== null || child.signalCode !== null) throw await failed(`exited (${child.exitCode ?? child.signalCode}) before booting`);
      if (Date.now() > deadline) throw await failed(`no container PID 1 within ${o.bootTimeoutMs} ms`);
      for (const nspawn of childrenOf(child.pid!)) {
        for (const pid of childrenOf(nspawn)) {
          if (readProc(pid, 'comm') === 'systemd' && nsOf(pid, 'pid') !== nsOf(process.pid, 'pid')) leader = pid;
        }
      }
      if (leader === undefined) await sleep(100);
    }
    const c = new Container(o.name, child, leader, exit, () => output);

    // systemctl answers once PID 1 has its private socket (until then it says "offline");
    // --wait until start-up is done.
    let state = '';
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw await failed(`systemd did not finish starting up within ${o.bootTimeoutMs} ms (last state: ${state || 'none'})`);
      state = (await c.exec(['systemctl', 'is-system-running', '--wait'], Math.min(left, 30_000))).stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      if (state === 'maintenance' || state === 'stopping') throw await failed(`systemd is ${state}`);
      await sleep(200);
    }
    return c;
  }

  /** Runs argv inside the container: all its namespaces, its root. Never throws. */
  exec(argv: readonly string[], timeoutMs = 30_000): Promise<ExecResult> {
    return run('nsenter', ['--target', String(this.leader), '--all', '--', ...argv], timeoutMs, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' });
  }

  /** Like exec, but a failure throws with the command, its exit code and its output. */
  async run(argv: readonly string[], timeoutMs = 30_000): Promise<string> {
    const r = await this.exec(argv, timeoutMs);
    if (r.code !== 0) throw new Error(`in the container: ${argv.join(' ')}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Runs one of this machine's programs (ip, nft) in the container's network namespace. */
  async runNet(argv: readonly string[], timeoutMs = 10_000): Promise<string> {
    const r = await run('nsenter', ['--target', String(this.leader), '--net', '--', ...argv], timeoutMs);
    if (r.code !== 0) throw new Error(`in the container's network namespace: ${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** The host end of --network-veth (ve-NAME, in the namespace that started the container). */
  get hostVeth(): string {
    return `ve-${this.name}`;
  }

  /** What the container printed on its console (the last 64 KiB). */
  get consoleOutput(): string {
    return this.output();
  }

  /**
   * Powers off: SIGTERM to the `timeout` we started, which passes it to systemd-nspawn, which
   * asks the container's systemd to halt. Past graceMs: SIGKILL to the container's PID 1 (its
   * whole PID namespace dies with it) and to our process group. Resolves with how it went.
   */
  async poweroff(graceMs = 30_000): Promise<'halted' | 'killed' | 'not running'> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return 'not running';
    process.kill(pid, 'SIGTERM');
    const halted = await Promise.race([this.exit.then(() => true), sleep(graceMs).then(() => false)]);
    if (!halted) {
      for (const target of [this.leader, -pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await Promise.race([this.exit, sleep(10_000)]);
    }
    removePropagationDir(this.name);
    return halted ? 'halted' : 'killed';
  }
}

/**
 * systemd-nspawn leaves its empty mount-propagation directory where /run is not a tmpfs
 * ("Attempted to remove disk file system ... and we can't allow that"): removed if empty.
 */
function removePropagationDir(name: string): void {
  try {
    rmdirSync(`/run/systemd/nspawn/propagate/${name}`);
  } catch {
    // not there, or not empty: left alone
  }
}

function childrenOf(pid: number): number[] {
  return (readProc(pid, `task/${pid}/children`) ?? '').split(/\s+/).filter(Boolean).map(Number);
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `pid:[4026531836]`: which namespace of that type the process is in. */
function nsOf(pid: number, ns: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

async function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  try {
    const r = await execFileP(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, env: env ?? process.env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number | string; killed?: boolean; stdout?: string; stderr?: string; message: string };
    const code = typeof x.code === 'number' ? x.code : -1;
    return { code, stdout: x.stdout ?? '', stderr: x.killed ? `killed after ${timeoutMs} ms; ${x.stderr ?? ''}` : x.stderr || x.message };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
