// spa-server's command line: main(argv, io) -> exit code. Shell.
import { Command } from 'commander';
import { VERSION_TEXT } from '../src/version.js';
import { writeServerKey } from '../keys/keygen-command.js';
import { runProgram } from '../client/cli.js';

export interface ServerIo {
  stdout(s: string): void;
  stderr(s: string): void;
  readonly env: NodeJS.ProcessEnv;
}

export const DEFAULT_SERVER_DIR = '/etc/spa';

export function processServerIo(): ServerIo {
  return { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s), env: process.env };
}

export function buildProgram(io: ServerIo): Command {
  const program = new Command('spa-server');
  program
    .description('single-packet authorization server: sniffs knocks, opens doors for their senders')
    .version(VERSION_TEXT, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit');

  program
    .command('keygen')
    .description('make the server key pair: DIR/server.key (secret, 0600) and DIR/server.pub')
    .option('--dir <dir>', `where to write (default: ${DEFAULT_SERVER_DIR})`)
    .option('-f, --force', 'overwrite an existing server key (every client then needs the new server.pub)')
    .addHelpText('after', `
Prints the server public key (also in DIR/server.pub); give it to clients
(spa-knock --server-key). Never overwrites a key without --force.`)
    .action((o: { dir?: string; force?: boolean }) => {
      const w = writeServerKey(o.dir ?? DEFAULT_SERVER_DIR, Boolean(o.force));
      io.stdout(`${w.publicLine}\n`);
      io.stderr(`spa-server: wrote ${w.secretFile} (secret, mode 0600) and ${w.publicFile}\n`);
    });
  return program;
}

export async function main(argv: readonly string[], io: ServerIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io, 'spa-server');
}
