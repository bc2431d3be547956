// npm run bench: every section of issue 7 in one run, a table on stdout and bench/RESULTS.md.
// As root, the run re-executes itself inside a network namespace of its own, so its floods
// touch only that namespace's lo (and fwknopd's start-up, only its iptables). Every process it
// starts is stopped by PID, also on failure or Ctrl-C. Shell.
//
// Options: --only=verify,clients,flood,latency,memory,fwknop   (default: all; `--only fwknop` too)
//          --subjects=spa-server,fwknopd,knockd          (default: all; name prefixes; not fwknop's)
//          --runs=N                                    (the fwknop section, back to back; default 1)
//          --out=FILE                                  (default: bench/RESULTS.md)
//          --quick    few knocks and rates, to check the harness runs (default out: a temp file)
// A run of the fwknop section alone replaces only that section of the file; any other run
// rewrites the file, carrying the fwknop and footprint sections over when it did not make them.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBenchKeys, writeKeyFiles, KNOCKER_ID } from './bench-keys.js';
import { buildFlooder, commandOwnTime, floodRun, latencyRun, processTimes, type FloodResult, type LatencyResult, type ProcessTime } from './live.js';
import { runFwknopBench, type FwknopBenchResult } from './fwknop-bench.js';
import { fwknopSectionOf, renderFwknop, spliceFwknop } from './fwknop-report.js';
import { describeMachine } from './machine.js';
import { runMemoryBench, type MemoryResult } from './memory-bench.js';
import { installCleanup, killAllTracked, liveCount, onExit } from './procs.js';
import { renderReport, renderSummary, type Results } from './report.js';
import { FwknopdSubject } from './subject-fwknopd.js';
import { KnockdSubject } from './subject-knockd.js';
import { ROOT, SPA_KNOCK_BIN, SpaSubject } from './subject-spa.js';
import { buildStamp, type Subject } from './subject.js';
import { det, type Summary } from './util.js';
import { runVerifyBench, type VerifyResults } from './verify-bench.js';

const SECTIONS = ['verify', 'clients', 'flood', 'latency', 'memory', 'fwknop'] as const;
type Section = (typeof SECTIONS)[number];
const NETNS_ENV = 'SPA_BENCH_NETNS';
const LATENCY_KNOCKS = 200;
/** The fwknop section: idle knocks per daemon, knocks per flood. */
const FWKNOP_IDLE_KNOCKS = 100;
const FWKNOP_TRIALS = 20;

/** `--name=value` or `--name value`. */
function arg(name: string): string | undefined {
  const argv = process.argv;
  const hit = argv.find((a) => a.startsWith(`--${name}=`));
  if (hit !== undefined) return hit.slice(name.length + 3);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[i + 1] : undefined;
}

const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function hasTool(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Outer process: make a namespace, run the benchmark inside it, remove everything after. */
async function runInNetns(): Promise<number> {
  const ns = `spa-bench-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  } catch (e) {
    log(`bench: cannot make a network namespace (${(e as Error).message.split('\n')[0]}); running on this namespace's lo`);
    return -1;
  }
  const cleanup = (): void => {
    // Anything still inside was started by the benchmark: kill it by PID, then drop the namespace.
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter((l) => /^\d+$/.test(l.trim()));
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // best effort
    }
  };
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [NETNS_ENV]: ns },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, sig);
        } catch {
          // gone
        }
      }
    });
  }
  const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 130 : 1))));
  cleanup();
  return code;
}

async function section<T>(name: string, errors: Record<string, string>, fn: () => Promise<T>): Promise<T | undefined> {
  const t = performance.now();
  log(`\n== ${name}`);
  try {
    const r = await fn();
    log(`   (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    return r;
  } catch (e) {
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    errors[name] = msg.split('\n').slice(0, 6).join('\n');
    log(`   FAILED: ${msg}`);
    killAllTracked();
    return undefined;
  }
}

async function inner(): Promise<number> {
  installCleanup();
  const started = performance.now();
  const startedAt = new Date();
  const only = (arg('only')?.split(',') ?? [...SECTIONS]) as Section[];
  const unknown = only.filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) {
    process.stderr.write(`bench: --only: unknown section ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})\n`);
    return 2;
  }
  const runs = Number(arg('runs') ?? '1');
  if (!Number.isInteger(runs) || runs < 1 || runs > 10) {
    process.stderr.write(`bench: --runs: expected an integer 1-10, got ${arg('runs') ?? ''}\n`);
    return 2;
  }
  const quick = process.argv.includes('--quick');
  const outFile = arg('out') ?? (quick ? join(tmpdir(), 'spa-bench-quick.md') : join(ROOT, 'bench', 'RESULTS.md'));
  const latencyKnocks = quick ? 20 : LATENCY_KNOCKS;
  const root = process.getuid?.() === 0;
  const netns = process.env[NETNS_ENV];
  const work = mkdtempSync(join(tmpdir(), 'spa-bench-'));
  // StateDir for the 100,000-knock run: tmpfs, so it measures memory rather than the disk's fsync.
  const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/spa-bench-') : work;
  const removeTemp = (): void => {
    rmSync(work, { recursive: true, force: true });
    if (shm !== work) rmSync(shm, { recursive: true, force: true });
  };
  onExit(removeTemp);
  const errors: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  try {
    const machine = describeMachine([work, shm], work);
    log(`bench: ${machine.cpus} CPUs (${machine.model}), load ${machine.loadAtStart}, ${netns ? `network namespace ${netns}` : 'host network namespace'}`);
    const stamp = buildStamp(join(ROOT, 'bench', 'stamp.c'), work);
    let t = performance.now();
    // 10,000 keys take seconds to make: only the verify and memory sections use more than one.
    const keys = makeBenchKeys(only.includes('verify') || only.includes('memory') ? 10_000 : 4);
    const files = writeKeyFiles(join(work, 'keys'), keys);
    log(`bench: keys ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    let verify: VerifyResults | undefined;
    let clients: ProcessTime[] | undefined;
    let commandOwn: Summary | undefined;
    const floods: FloodResult[] = [];
    const latencies: LatencyResult[] = [];
    let memory: MemoryResult | undefined;
    const fwknopRuns: FwknopBenchResult[] = [];
    const fwknopErrors: string[] = [];
    const fwknopStarted = performance.now();

    if (only.includes('verify')) verify = await section('1. verify pipeline, in-process', errors, async () => runVerifyBench(keys, log));

    const haveFwknop = hasTool('fwknopd') && hasTool('fwknop');
    const haveKnockd = hasTool('knockd') && hasTool('knock');
    if (only.includes('clients')) {
      clients = await section('3b. client whole-process time', errors, async () => {
        const home = mkdtempSync(join(work, 'client-home-'));
        const cmds: { name: string; file: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [
          { name: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
          { name: 'spa-knock', file: process.execPath, args: [SPA_KNOCK_BIN, '127.0.0.1', '--key', KNOCKER_ID, '--server-key', files.serverPub, '--port', '62201'], env: { ...process.env, SPA_KNOCK_HOME: files.clientHome } },
        ];
        if (haveFwknop) {
          const key = Buffer.from(det('fwknop client time key', 32)).toString('base64');
          const hmac = Buffer.from(det('fwknop client time hmac', 64)).toString('base64');
          cmds.push({ name: 'fwknop', file: 'fwknop', args: ['-A', 'tcp/22', '-a', '127.0.0.1', '-D', '127.0.0.1', '--key-base64-rijndael', key, '--key-base64-hmac', hmac, '--no-rc-file', '--no-save-args'], env: { ...process.env, HOME: home } });
        }
        if (haveKnockd) cmds.push({ name: 'knock', file: 'knock', args: ['-u', '127.0.0.1', '7000', '8000', '9000'] });
        const r = await processTimes(cmds, 20);
        for (const c of r) log(`  ${c.name}: median ${c.ms.median.toFixed(1)} ms${c.failures ? ` (${c.failures} failed)` : ''}`);
        return r;
      });
    }

    const subjectFilter = arg('subjects')?.split(',');
    const subjects: Subject[] = [];
    if (root && (only.includes('flood') || only.includes('latency'))) {
      subjects.push(new SpaSubject(work, work, keys, files, stamp));
      // PcapBufferMB 64, the default when fwknop stanzas are served (and before issue 13): what
      // forking a daemon that maps a large ring costs its commands.
      if (only.includes('latency')) subjects.push(new SpaSubject(work, work, keys, files, stamp, 64));
      // spa-server beside fwknopd on fwknopd's own packets is the fwknop section's (issue 14).
      if (haveFwknop) subjects.push(new FwknopdSubject(work, 1, stamp), new FwknopdSubject(work, 100, stamp));
      else skipped['fwknopd'] = 'fwknopd/fwknop not installed';
      if (haveKnockd) subjects.push(new KnockdSubject(work, stamp));
      else skipped['knockd'] = 'knockd/knock not installed';
    }

    if (subjectFilter) subjects.splice(0, subjects.length, ...subjects.filter((x) => subjectFilter.some((f) => x.name.startsWith(f))));

    if (only.includes('latency')) {
      if (!root) skipped['latency'] = 'needs root (libpcap on lo)';
      else {
        commandOwn = await section('3a. the door command on its own', errors, async () => {
          const r = await commandOwnTime(work, stamp);
          log(`  sh -c 'stamp FILE': median ${r.median.toFixed(2)} ms`);
          return r;
        });
        for (const s of subjects) {
          const r = await section(`3/5. latency, ${latencyKnocks} knocks: ${s.name}`, errors, () => latencyRun(s, latencyKnocks));
          if (r) {
            latencies.push(r);
            log(`  median ${r.latency.median.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms, lost ${r.lost}`);
          }
        }
      }
    }

    if (only.includes('flood')) {
      if (!root) skipped['flood'] = 'needs root (libpcap on lo)';
      else {
        const flooder = buildFlooder(join(ROOT, 'bench', 'flood.c'), work);
        for (const s of subjects.filter((x) => !x.name.includes('PcapBufferMB'))) {
          const rates = quick ? [0] : s instanceof SpaSubject ? [10_000, 25_000, 50_000, 100_000, 0] : [10_000, 50_000, 0];
          for (const rate of rates) {
            const r = await section(`2/5. flood: ${s.name}, ${rate === 0 ? 'unpaced' : `${rate}/s`}`, errors, () => floodRun(s, flooder, rate));
            if (r) {
              floods.push(r);
              log(`  sent ${Math.round(r.sentPerSec)}/s, seen ${r.seen ?? 'n/a'}, lost ${r.tagFilter ? '— (the rest: kernel filter)' : `${r.lostPct?.toFixed(1) ?? 'n/a'}%`}, cpu ${r.cpuPct?.toFixed(0) ?? 'n/a'}%, knock ${r.accepted ? `accepted in ${r.latencyMs?.toFixed(1)} ms` : 'NOT accepted'}, timer late ${r.timerLateMs?.toFixed(0) ?? 'n/a'} ms, alive ${r.aliveAfter}${r.shed ? `, ${r.shed} shed` : ''}${r.reopens ? `, ${r.reopens} reopen(s)` : ''}`);
            }
          }
          if (s instanceof SpaSubject) {
            // Wrong-size garbage: the kernel filter drops it, the daemon never wakes.
            const spec = { ...s.flood, size: 100, what: '100-byte datagrams (wrong size): dropped by the kernel filter, the daemon never sees them' };
            const r = await section(`2. flood: spa-server, unpaced wrong-size garbage`, errors, () => floodRun(s, flooder, 0, { spec, label: 'unpaced, wrong size' }));
            if (r) {
              floods.push(r);
              log(`  sent ${Math.round(r.sentPerSec)}/s, cpu ${r.cpuPct?.toFixed(0) ?? 'n/a'}%, knock ${r.accepted ? `accepted in ${r.latencyMs?.toFixed(1)} ms` : 'NOT accepted'}`);
            }
          }
        }
      }
    }

    if (only.includes('memory')) {
      if (!root) skipped['memory'] = 'needs root (libpcap on lo)';
      else
        memory = await section('4. memory: 10,000 keys, 100,000 accepted knocks', errors, () =>
          runMemoryBench({ workRoot: work, stateRoot: shm, stateDirNote: shm === work ? 'StateDir on the work directory' : 'StateDir on tmpfs (/dev/shm)', keys, files }, log),
        );
    }

    if (only.includes('fwknop')) {
      if (!root) skipped['fwknop'] = 'needs root (libpcap on lo)';
      else if (!haveFwknop) skipped['fwknop'] = 'fwknopd/fwknop not installed';
      else {
        const flooder = buildFlooder(join(ROOT, 'bench', 'flood.c'), work);
        for (let i = 0; i < runs; i++) {
          const rowErrors: Record<string, string> = {};
          const r = await section(`6. fwknop, run ${i + 1} of ${runs}`, errors, () =>
            runFwknopBench({
              work,
              stamp,
              flooder,
              keys,
              files,
              idleKnocks: quick ? 10 : FWKNOP_IDLE_KNOCKS,
              trials: quick ? 4 : FWKNOP_TRIALS,
              log,
              row: (name, fn) => section(`6. ${name}`, rowErrors, fn),
            }),
          );
          if (r) fwknopRuns.push(r);
          for (const [k, v] of Object.entries(rowErrors)) {
            errors[k] = v;
            fwknopErrors.push(`run ${i + 1}, ${k}: ${v}`);
          }
        }
      }
    }

    const results: Results = {
      startedAt: startedAt.toISOString(),
      durationSec: (performance.now() - started) / 1000,
      loadAtEnd: loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
      netns,
      root,
      machine,
      verify,
      clients,
      commandOwn,
      floods,
      latencies,
      memory,
      errors,
      skipped,
      sections: only,
    };
    t = performance.now();
    mkdirSync(join(outFile, '..'), { recursive: true });
    const before = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
    const fwknopMd =
      fwknopRuns.length > 0 || fwknopErrors.length > 0
        ? renderFwknop({
            runs: fwknopRuns,
            startedAt: startedAt.toISOString(),
            durationSec: (performance.now() - fwknopStarted) / 1000,
            loadAtStart: machine.loadAtStart,
            loadAtEnd: loadavg()
              .map((x) => x.toFixed(2))
              .join(' '),
            cpus: machine.cpus,
            fwknopd: machine.tools['fwknopd'],
            netns,
            errors: fwknopErrors,
          })
        : undefined;
    if (only.length === 1 && only[0] === 'fwknop') {
      // The fwknop section alone: the rest of the file stays as the last full run wrote it.
      if (fwknopMd) writeFileSync(outFile, spliceFwknop(before, fwknopMd));
    } else {
      const md = renderReport(results);
      // npm run bench:footprint keeps its own section (bench/footprint.ts), and a run without the
      // fwknop section keeps the last one's: carry them over.
      const footprint = /<!-- footprint:begin -->[\s\S]*?<!-- footprint:end -->\n?/.exec(before)?.[0];
      const fwknop = fwknopMd ?? fwknopSectionOf(before);
      writeFileSync(outFile, [md.trimEnd(), fwknop?.trimEnd(), footprint].filter((x) => x !== undefined && x !== '').join('\n\n'));
    }
    if (only.some((x) => x !== 'fwknop')) log(`\n${renderSummary(results)}`);
    log(`bench: wrote ${outFile} (${((performance.now() - started) / 1000).toFixed(0)} s in all)`);
    return Object.keys(errors).length > 0 ? 1 : 0;
  } finally {
    const n = killAllTracked();
    if (n > 0) log(`bench: killed ${n} leftover process(es)`);
    if (liveCount() !== 0) log('bench: some processes could not be killed');
    removeTemp();
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() === 0 && process.env[NETNS_ENV] === undefined && process.argv.includes('--no-netns') === false) {
    const code = await runInNetns();
    if (code !== -1) return code;
  }
  return inner();
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    killAllTracked();
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
