// Runs firewall Steps: argv without a shell, a deadline, bounded stderr, never a throw.
// Shell (child_process).
//
// spawn rather than execFile: execFile kills the child when output passes maxBuffer,
// and a firewall command must never be killed half-way for talking too much; here
// stdout is discarded and stderr is kept up to a bound while the command runs on.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Step } from './types.js';

export interface RunOptions {
  /** Deadline; the command is killed (SIGKILL) after it. Default 10 s. */
  readonly timeoutMs?: number;
  /** Written to the command's standard input, which is then closed. */
  readonly stdin?: string;
  /** Bytes of stderr kept (default 4096); the rest is counted, not stored. */
  readonly stderrLimitBytes?: number;
}

export type RunFailure = 'not-found' | 'spawn' | 'timeout' | 'signal' | 'exit';

export interface RunResult {
  readonly ok: boolean;
  /** The exit code, or null when the command did not exit by itself (not found, timeout, signal). */
  readonly code: number | null;
  /** The command's stderr (bounded), or one line saying why it did not run or finish. */
  readonly stderr: string;
  /** Why ok is false; absent when ok. */
  readonly failure?: RunFailure;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * util-linux's setpriv (Debian: essential), which sets PR_SET_PDEATHSIG before it execs the
 * command: a command still running when the daemon dies, however it dies (kill -9 included),
 * is killed with it, so a slow start_command cannot finish after the next daemon has closed
 * its opening (issue 12, item 2). Looked up once; without it commands run as before.
 */
const SETPRIV = ((): string | undefined => {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next place
    }
  }
  return undefined;
})();

/** setpriv's exit status when it cannot exec the command (util-linux EX_EXEC_ENOENT / EX_EXEC_FAILED). */
const SETPRIV_ENOENT = 127;
const SETPRIV_FAILED = 126;
const DEFAULT_STDERR_LIMIT = 4096;

export function runArgv(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const limit = options.stderrLimitBytes ?? DEFAULT_STDERR_LIMIT;
  const [file, ...args] = argv;
  if (file === undefined || file === '') return Promise.resolve({ ok: false, code: null, stderr: 'empty command', failure: 'spawn' });

  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let droppedBytes = 0;
    let timedOut = false;
    let settled = false;
    const stderrText = (): string => {
      const text = Buffer.concat(kept).toString('utf8').trimEnd();
      return droppedBytes > 0 ? `${text}\n[${droppedBytes} more bytes of stderr not kept]` : text;
    };
    const finish = (r: RunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };

    const wrapped = SETPRIV !== undefined;
    const child = spawn(wrapped ? SETPRIV : file, wrapped ? ['--pdeathsig', 'KILL', '--', file, ...args] : args, {
      shell: false,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
      // Stable, English messages from the tools, whatever the daemon's locale.
      env: { ...process.env, LC_ALL: 'C' },
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stderr?.on('data', (chunk: Buffer) => {
      const room = limit - keptBytes;
      if (room > 0) {
        const part = chunk.subarray(0, room);
        kept.push(part);
        keptBytes += part.length;
      }
      droppedBytes += Math.max(0, chunk.length - Math.max(0, room));
    });
    if (options.stdin !== undefined && child.stdin) {
      // A command that exits without reading its input gives EPIPE here: its exit status tells.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin);
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') finish({ ok: false, code: null, stderr: `${file}: command not found`, failure: 'not-found' });
      else if (err.code === 'EACCES') finish({ ok: false, code: null, stderr: `${file}: permission denied`, failure: 'spawn' });
      else finish({ ok: false, code: null, stderr: `${file}: cannot run: ${err.message}`, failure: 'spawn' });
    });
    child.on('close', (code, signal) => {
      const err = stderrText();
      const withErr = (line: string): string => (err === '' ? line : `${line}: ${err}`);
      if (timedOut) finish({ ok: false, code: null, stderr: withErr(`${file}: timed out after ${timeoutMs} ms`), failure: 'timeout' });
      else if (signal !== null) finish({ ok: false, code: null, stderr: withErr(`${file}: killed by ${signal}`), failure: 'signal' });
      else if (wrapped && (code === SETPRIV_ENOENT || code === SETPRIV_FAILED) && err.startsWith('setpriv: failed to execute')) {
        if (code === SETPRIV_ENOENT) finish({ ok: false, code: null, stderr: `${file}: command not found`, failure: 'not-found' });
        else finish({ ok: false, code: null, stderr: `${file}: cannot run: ${err.replace(/^setpriv: /, '')}`, failure: 'spawn' });
      } else if (code === 0) finish({ ok: true, code: 0, stderr: err });
      else finish({ ok: false, code, stderr: err === '' ? `${file}: exit status ${code}` : err, failure: 'exit' });
    });
  });
}

export interface ApplyOptions {
  readonly timeoutMs?: number;
  /** Put before every argv (probes too), e.g. ['ip', 'netns', 'exec', NAME] in tests. */
  readonly prefix?: readonly string[];
}

export interface StepOutcome {
  readonly step: Step;
  /** false when the step's probe said there was nothing to do. */
  readonly ran: boolean;
  readonly probe?: RunResult;
  readonly result?: RunResult;
}

export type ApplyResult =
  | { readonly ok: true; readonly outcomes: readonly StepOutcome[] }
  | {
      readonly ok: false;
      readonly outcomes: readonly StepOutcome[];
      /** Index in `steps` of the step that failed; later steps did not run. */
      readonly failedIndex: number;
      readonly failedStep: Step;
      /** Whether the step's probe failed (then the step itself did not run) or the step. */
      readonly failedPart: 'probe' | 'step';
      readonly result: RunResult;
      /** One line for a log: the command and its stderr. */
      readonly message: string;
    };

/** Runs steps in order, stopping at the first failure. Never throws. */
export async function applyAll(steps: readonly Step[], options: ApplyOptions = {}): Promise<ApplyResult> {
  const prefix = options.prefix ?? [];
  const run = { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  const outcomes: StepOutcome[] = [];
  const fail = (i: number, s: Step, part: 'probe' | 'step', argv: readonly string[], result: RunResult): ApplyResult => ({
    ok: false,
    outcomes,
    failedIndex: i,
    failedStep: s,
    failedPart: part,
    result,
    message: `${argvText(argv)}: ${result.stderr.replace(/\s*\n\s*/g, '; ')}`,
  });
  for (const [i, s] of steps.entries()) {
    let probe: RunResult | undefined;
    if (s.when) {
      probe = await runArgv([...prefix, ...s.when.probe.argv], run);
      const present = probe.ok;
      const absent = probe.failure === 'exit' && probe.code !== null && s.when.probe.absentCodes.includes(probe.code);
      if (!present && !absent) return fail(i, s, 'probe', s.when.probe.argv, probe);
      if ((s.when.is === 'present') !== present) {
        outcomes.push({ step: s, ran: false, probe });
        continue;
      }
    }
    const result = await runArgv([...prefix, ...s.argv], s.stdin === undefined ? run : { ...run, stdin: s.stdin });
    outcomes.push(probe === undefined ? { step: s, ran: true, result } : { step: s, ran: true, probe, result });
    if (!result.ok) return fail(i, s, 'step', s.argv, result);
  }
  return { ok: true, outcomes };
}

/** An argv as a person reads it in a log (quoted where needed); never run by a shell. */
export function argvText(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
