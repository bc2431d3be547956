// npm run bench: every section of issue 7 in one run, a table on stdout and bench/RESULTS.md.
// As root, the run re-executes itself inside a network namespace of its own, so its floods
// touch only that namespace's lo (and fwknopd's start-up, only its iptables). Every process it
// starts is stopped by PID, also on failure or Ctrl-C. Shell.
//
// Options: --only=verify,clients,flood,latency,memory   (default: all)
//          --subjects=spa-server,fwknopd,knockd          (default: all; name prefixes)
//          --out=FILE                                  (default: bench/RESULTS.md)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBenchKeys, writeKeyFiles, KNOCKER_ID } from './bench-keys.js';
import { buildFlooder, commandOwnTime, floodRun, latencyRun, processTimes, type FloodResult, type LatencyResult, type ProcessTime } from './live.js';
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

const SECTIONS = ['verify', 'clients', 'flood', 'latency', 'memory'] as const;
type Section = (typeof SECTIONS)[number];
const NETNS_ENV = 'SPA_BENCH_NETNS';
const LATENCY_KNOCKS = 200;

function arg(name: string): string | undefined {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit?.slice(name.length + 3);
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
  const outFile = arg('out') ?? join(ROOT, 'bench', 'RESULTS.md');
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
    const keys = makeBenchKeys(10_000);
    const files = writeKeyFiles(join(work, 'keys'), keys);
    log(`bench: keys ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    let verify: VerifyResults | undefined;
    let clients: ProcessTime[] | undefined;
    let commandOwn: Summary | undefined;
    const floods: FloodResult[] = [];
    const latencies: LatencyResult[] = [];
    let memory: MemoryResult | undefined;

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
      if (only.includes('latency')) subjects.push(new SpaSubject(work, work, keys, files, stamp, 1));
      if (haveFwknop) subjects.push(new FwknopdSubject(work, 1, stamp), new FwknopdSubject(work, 100, stamp));
      // The same real-client packets through spa-server reading the same fwknopd.conf (issue 14).
      if (haveFwknop) subjects.push(new FwknopdSubject(work, 1, stamp, 'spa-server'), new FwknopdSubject(work, 100, stamp, 'spa-server'));
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
          const r = await section(`3/5. latency, ${LATENCY_KNOCKS} knocks: ${s.name}`, errors, () => latencyRun(s, LATENCY_KNOCKS));
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
          const rates = s instanceof SpaSubject ? [10_000, 25_000, 50_000, 100_000, 0] : [10_000, 50_000, 0];
          for (const rate of rates) {
            const r = await section(`2/5. flood: ${s.name}, ${rate === 0 ? 'unpaced' : `${rate}/s`}`, errors, () => floodRun(s, flooder, rate));
            if (r) {
              floods.push(r);
              log(`  sent ${Math.round(r.sentPerSec)}/s, seen ${r.seen ?? 'n/a'}, lost ${r.lostPct?.toFixed(1) ?? 'n/a'}%, cpu ${r.cpuPct?.toFixed(0) ?? 'n/a'}%, knock ${r.accepted ? `accepted in ${r.latencyMs?.toFixed(1)} ms` : 'NOT accepted'}, timer late ${r.timerLateMs?.toFixed(0) ?? 'n/a'} ms, alive ${r.aliveAfter}${r.shed ? `, ${r.shed} shed` : ''}${r.reopens ? `, ${r.reopens} reopen(s)` : ''}`);
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
    const md = renderReport(results);
    mkdirSync(join(outFile, '..'), { recursive: true });
    // npm run bench:footprint keeps its own section (bench/footprint.ts): carry it over.
    const footprint = existsSync(outFile) ? /<!-- footprint:begin -->[\s\S]*?<!-- footprint:end -->\n?/.exec(readFileSync(outFile, 'utf8'))?.[0] : undefined;
    writeFileSync(outFile, footprint ? `${md.trimEnd()}\n\n${footprint}` : md);
    log(`\n${renderSummary(results)}`);
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
