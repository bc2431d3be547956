// spa-knock's command line: main(argv, io) -> exit code. Shell.
import { homedir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UserError, describeError, exitCodeOf, EXIT_OK, EXIT_USAGE } from '../src/errors.js';
import { parseAccess, dedupeAccess, type Access } from '../src/net/access.js';
import { DEFAULT_PORT } from '../src/protocol/constants.js';
import { VERSION_TEXT } from '../src/version.js';
import { writeClientKey } from '../keys/keygen-command.js';
import { clientHome } from './home.js';
import { runKnock } from './knock.js';

export interface ClientIo {
  stdout(s: string): void;
  stderr(s: string): void;
  readonly env: NodeJS.ProcessEnv;
  readonly homedir: string;
  nowMs(): number;
  random(n: number): Uint8Array;
}

export function processIo(): ClientIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    homedir: homedir(),
    nowMs: () => Date.now(),
    random: (n) => new Uint8Array(randomBytes(n)),
  };
}

export function parsePort(s: string): number {
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new InvalidArgumentError(`expected a port 1-65535, got ${JSON.stringify(s)}`);
  return Number(s);
}

function collectAccess(s: string, prev: Access[]): Access[] {
  try {
    return [...prev, parseAccess(s, '-A')];
  } catch (e) {
    throw new InvalidArgumentError(e instanceof UserError ? e.message.replace(/^-A: /, '') : String(e));
  }
}

const KNOCK_HELP = `
Sends one single-packet-authorization datagram to HOST: signed with your key,
encrypted to the server's key, stamped with the time and a random nonce. The
server opens the requested ports for your address; nothing ever answers.

Examples:
  spa-knock keygen --id alice                 make ~/.config/spa-knock/alice.key
  spa-knock web1.example.org --key alice --server-key /etc/spa/server.pub
  spa-knock 2001:db8::10 --key alice --server-key spa1-server-pub:... -A tcp/22 -A udp/60001
  spa-knock web1 --key alice --server-key server.pub --dry-run

Files:
  $SPA_KNOCK_HOME, else $XDG_CONFIG_HOME/spa-knock, else ~/.config/spa-knock
      key directory: ID.key (secret, mode 0600) and ID.pub (the line to
      append to the server's authorized-keys file)

Exit status:
  0 sent (or shown, with --dry-run); 1 the system failed (network, I/O);
  2 a usage, key or name-resolution mistake
`;

export async function main(argv: readonly string[], io: ClientIo): Promise<number> {
  const home = clientHome(io.env, io.homedir);
  const program = new Command('spa-knock');
  program
    .description('send a single-packet authorization knock (or make a client key)')
    .version(VERSION_TEXT, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .argument('<host>', 'server name or address (IPv4, IPv6, [IPv6])')
    .option('-k, --key <id>', 'key id: uses KEY_DIR/ID.key')
    .option('--key-dir <dir>', `directory of client keys (default: ${home})`)
    .option('-s, --server-key <key-or-file>', "the server's public key: spa1-server-pub:... text, or a file such as server.pub")
    .option('-p, --port <n>', `server UDP port (default: ${DEFAULT_PORT})`, parsePort)
    .option('-A, --access <proto/port>', 'access to ask for, repeatable (default: tcp/22)', collectAccess, [] as Access[])
    .option('-a, --allow-ip <ip>', 'address to open for (default: the source address the kernel uses to reach HOST)')
    .addOption(new Option('-4', 'use IPv4 only').conflicts('6'))
    .addOption(new Option('-6', 'use IPv6 only'))
    .option('-n, --dry-run', 'print what would be sent (summary and hex) and send nothing')
    .option('-v, --verbose', 'say what was sent, on stderr')
    .addHelpText('after', KNOCK_HELP)
    .action(async (host: string, o: Record<string, unknown>) => {
      if (o['key'] === undefined) throw new UserError('usage', 'no key given: use --key ID (see spa-knock keygen --help)');
      if (o['serverKey'] === undefined) throw new UserError('usage', `no server key for ${host}: use --server-key KEY_OR_FILE`);
      const access = o['access'] as Access[];
      await runKnock(
        {
          host,
          keyId: o['key'] as string,
          keyDir: (o['keyDir'] as string | undefined) ?? home,
          serverKey: o['serverKey'] as string,
          port: (o['port'] as number | undefined) ?? DEFAULT_PORT,
          access: access.length > 0 ? dedupeAccess(access) : [{ proto: 'tcp', port: 22 }],
          allowIp: o['allowIp'] as string | undefined,
          family: o['4'] ? 4 : o['6'] ? 6 : undefined,
          dryRun: Boolean(o['dryRun']),
          verbose: Boolean(o['verbose']),
        },
        io,
      );
    });

  program
    .command('keygen')
    .description('make a client key pair: DIR/ID.key (secret, 0600) and DIR/ID.pub')
    .requiredOption('--id <id>', 'key id, the name the server knows you by (letters, digits, _ . @ -)')
    .option('--dir <dir>', `where to write (default: ${home})`)
    .option('-f, --force', 'overwrite an existing key of that id')
    .addHelpText(
      'after',
      `
Prints the authorized-keys line (also in DIR/ID.pub); the server's administrator
appends it to the door's spa_keys file. Never overwrites a key without --force.`,
    )
    .action((o: { id: string; dir?: string; force?: boolean }) => {
      const w = writeClientKey(o.dir ?? home, o.id, Boolean(o.force));
      io.stdout(`${w.publicLine}\n`);
      io.stderr(`spa-knock: wrote ${w.secretFile} (secret, mode 0600) and ${w.publicFile}\n`);
    });

  return runProgram(program, argv, io, 'spa-knock');
}

/** Runs a commander program with our exit-code and one-line-error conventions. */
export async function runProgram(program: Command, argv: readonly string[], io: { stdout(s: string): void; stderr(s: string): void }, prog: string): Promise<number> {
  const configure = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => write(s.replace(/^error: /, `${prog}: `)),
    });
    c.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    io.stderr(`${describeError(prog, e)}\n`);
    return exitCodeOf(e);
  }
}
