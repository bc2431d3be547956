// Runs the built CLIs (dist/, made by `npm run build`, which `npm test` runs first) as processes.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = {
  'spa-knock': `${ROOT}dist/client/spa-knock.cjs`,
  'spa-server': `${ROOT}dist/server/bin.js`,
} as const;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCli(bin: keyof typeof BIN, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; stdinFile?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // stdinFile: stdin is that file itself (`< FILE`), not a pipe.
    const stdinFd = opts.stdinFile === undefined ? undefined : openSync(opts.stdinFile, 'r');
    const child = spawn(process.execPath, [BIN[bin], ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? ROOT,
      stdio: [stdinFd ?? 'pipe', 'pipe', 'pipe'],
    });
    if (stdinFd !== undefined) closeSync(stdinFd);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin?.end(opts.input ?? '');
  });
}
