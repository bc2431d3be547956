// Describes the machine a run was made on: CPUs, memory, kernel, Node, tool versions, load,
// and the cost of an fsync where the daemon keeps its state. Shell (reads /proc, runs tools).
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { median } from './util.js';

export interface Machine {
  readonly cpus: number;
  readonly model: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly loadAtStart: string;
  readonly fsyncMs: { readonly dir: string; readonly ms: number }[];
  readonly tools: Record<string, string>;
}

function firstLine(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    const out = execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000, env });
    return out.split('\n').find((l) => l.trim() !== '')?.trim() ?? '?';
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    const text = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'not installed';
  }
}

/** Median time of a 100-byte append plus fsync in `dir`, over `n` runs. */
export function fsyncCostMs(dir: string, n = 50): number {
  const d = mkdtempSync(join(dir, 'spa-bench-fsync-'));
  try {
    const fd = openSync(join(d, 'f'), 'a');
    const times: number[] = [];
    const line = Buffer.alloc(100, 0x61);
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      writeSync(fd, line);
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
    closeSync(fd);
    return median(times);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

export function describeMachine(stateDirs: readonly string[], workDir: string): Machine {
  let model = '?';
  try {
    model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?';
  } catch {
    // not Linux
  }
  const tools: Record<string, string> = {
    fwknopd: firstLine('fwknopd', ['--version']),
    // Even --version writes ~/.fwknop.run (and ~/.fwknoprc without --no-rc-file): a throwaway HOME.
    fwknop: firstLine('fwknop', ['--no-rc-file', '--no-save-args', '--version'], { ...process.env, HOME: mkdtempSync(join(workDir, 'fwknop-home-')) }),
    knockd: firstLine('knockd', ['--version']),
    cc: firstLine('cc', ['--version']),
  };
  return {
    cpus: availableParallelism(),
    model,
    memoryGiB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    loadAtStart: loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    fsyncMs: stateDirs.map((dir) => ({ dir, ms: fsyncCostMs(dir) })),
    tools,
  };
}
