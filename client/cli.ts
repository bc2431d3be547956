// spa-knock's command line as commander reads it: runCli(argv, io) -> exit code. client/main.ts
// runs the common knock without it and comes here for everything else (subcommands, --help,
// --version, fwknop stanzas, and every mistake, so each is reported as commander says it). Shell.
import { Command, InvalidArgumentError, Option } from 'commander';
import { runProgram } from '../src/cli.js';
import type { Access } from '../src/net/access.js';
import { DEFAULT_PORT } from '../src/protocol/constants.js';
import { VERSION_TEXT } from '../src/version.js';
import { writeClientKey } from '../keys/keygen-command.js';
import { clientHome } from './home.js';
import { defaultConfigFile } from './config-file.js';
import { relay, type RelayInput } from './proxy.js';
import { runFwknopKnock } from './fwknop-knock.js';
import { wantsNamedConfig } from './fast-args.js';
import { collectAccess, collectStun, FlagValueError, parseAllowIp, parseDelay, parsePort, parseSequenceFlag, parseTimeout } from './flags.js';
import { connectAfterKnock, DEFAULT_WAIT_MS, knockCommand, knockPlan, planFor, timeoutMsOf } from './knock-command.js';
import type { ClientIo } from './io.js';

export type { ClientIo } from './io.js';

/** A flag parser for commander: its FlagValueError becomes commander's "argument ... is invalid". */
function commanderParser<T, P>(parse: (s: string, prev: P) => T): (s: string, prev: P) => T {
  return (s, prev) => {
    try {
      return parse(s, prev);
    } catch (e) {
      if (e instanceof FlagValueError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  };
}

const KNOCK_HELP = `
Sends one single-packet-authorization datagram to HOST: signed with your key,
encrypted to the server's key, stamped with the time and a random nonce. The
server opens the requested ports for your address; nothing ever answers.
With --sequence (or a profile with a Sequence and no Key) it knocks a classic
knockd port sequence instead: one SYN per TCP port, one datagram per UDP port.

Behind a NAT: the knock signs the address to open for. By default (auto) that is
the source address toward HOST; when it is private (RFC 1918, CGNAT, ULA...) and
HOST is not on that same private network, spa-knock first asks STUN servers
(--stun, the profile's StunServer, else stun.l.google.com, stun.cloudflare.com)
for the public address, within 1 s, and signs that; none answering: exit 2,
nothing sent. --allow-ip source signs "the address this knock arrives from"
instead (the door must say spa_allow_source = yes).

Examples:
  spa-knock keygen --id alice                 make ~/.config/spa-knock/alice.key
  spa-knock web1.example.org --key alice --server-key /etc/spa/server.pub
  spa-knock 2001:db8::10 --key alice --server-key spa1-server-pub:... -A tcp/22 -A udp/60001
  spa-knock web1 --key alice --server-key server.pub --dry-run
  spa-knock web1                              everything from web1's profile
  spa-knock web1 --wait -v && ssh web1        knock, then wait for tcp/22 to answer
  spa-knock web1 --stun stun.example.org      behind a NAT, ask your own STUN server
  spa-knock old1 --sequence 7000,8000:udp,9000 --delay 100
  ssh -o ProxyCommand='spa-knock proxy %h %p' web1
  spa-knock --named-config box                a fwknop packet from [box] of ~/.fwknoprc
                                              (for fwknopd; --named-config x --help)

Files:
  $SPA_KNOCK_HOME, else $XDG_CONFIG_HOME/spa-knock, else ~/.config/spa-knock
      key directory: ID.key (secret, mode 0600) and ID.pub (the line to
      append to the server's authorized-keys file)
  that directory's config
      per-host profiles in ssh_config's syntax: Host patterns, then HostName,
      Key, ServerKey, Port, Access, AllowIP, StunServer, Sequence, Delay,
      AddressFamily;
      the first value found for a keyword wins, flags win over the file
      (see spa-knock(1))

Exit status:
  0 sent (or shown, with --dry-run; with --wait: and the port answered);
  1 the system failed (network, I/O, --wait timed out);
  2 a usage, profile, key or name-resolution mistake, or behind a NAT no STUN
    server answered (nothing was sent)
`;

const PROXY_HELP = `
For ssh's ProxyCommand: knocks HOST (with its profile, as spa-knock HOST does,
asking for tcp/PORT unless an Access says otherwise), connects to HOST port PORT
as soon as the door opens (retrying for --timeout seconds), then relays stdin
and stdout until either side closes. Only relayed bytes are written to stdout;
errors are one line on stderr.

In ~/.ssh/config:
  Host web1 web2
      ProxyCommand spa-knock proxy %h %p

Exit status:
  0 the connection ended; 1 knock or connection failed; 2 a usage mistake
`;

/** The options spa-knock HOST and spa-knock proxy share. */
function addKnockOptions(c: Command, home: string): Command {
  return c
    .option('-F, --config <file>', `profile file (default: ${defaultConfigFile(home)}); none: no file`)
    .option('-k, --key <id>', 'key id: uses KEY_DIR/ID.key (default: the profile\'s Key)')
    .option('--key-dir <dir>', `directory of client keys (default: ${home})`)
    .option('-s, --server-key <key-or-file>', "the server's public key: spa1-server-pub:... text, or a file such as server.pub")
    .option('-p, --port <n>', `server UDP port (default: ${DEFAULT_PORT})`, commanderParser(parsePort))
    .addOption(new Option('-A, --access <proto/port>', 'access to ask for, repeatable').argParser(commanderParser(collectAccess)).default([] as Access[], "the profile's Access, else tcp/22"))
    .option('-a, --allow-ip <ip>', 'address to open for: auto (default: the source address toward HOST, or behind a NAT the public one STUN reports), source (the address the knock arrives from), or an address', parseAllowIp)
    .option('--stun <host[:port]>', 'STUN server auto asks behind a NAT, repeatable; none: ask no one (default: the profile\'s StunServer, else a built-in public list)', commanderParser(collectStun))
    .addOption(new Option('-4', 'use IPv4 only').conflicts('6'))
    .addOption(new Option('-6', 'use IPv6 only'))
    .option('--sequence <ports>', 'knock a classic knockd sequence instead: PORT[:tcp|udp],... such as 7000,8000:udp,9000', commanderParser(parseSequenceFlag))
    .option('-d, --delay <ms>', 'pause between the knocks of a sequence (default: 0)', commanderParser(parseDelay))
    .option('-t, --timeout <seconds>', `how long to keep trying to connect after the knock (default: ${DEFAULT_WAIT_MS / 1000})`, commanderParser(parseTimeout))
    .option('-v, --verbose', 'say what was sent and how long the door took, on stderr');
}

/** `knock` is what `spa-knock HOST` does with its parsed line (a test passes its own, to compare with client/fast-args.ts). */
export async function runCli(argv: readonly string[], io: ClientIo, knock: typeof knockCommand = knockCommand): Promise<number> {
  // fwknop's ~/.fwknoprc stanzas (issue 14): their own options, client/fwknop-knock.ts.
  if (wantsNamedConfig(argv)) return runFwknopKnock(argv, io);
  const home = clientHome(io.env, io.homedir);
  const program = new Command('spa-knock');
  program
    .description('send a single-packet authorization knock (or a classic sequence), or make a client key')
    .version(VERSION_TEXT, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    // proxy has the same options as the knock itself: they belong to the (sub)command they follow.
    .enablePositionalOptions()
    .argument('<host>', 'server name or address (IPv4, IPv6, [IPv6]), or a Host of the profile file');
  addKnockOptions(program, home)
    .option('-w, --wait', 'after the knock, wait until the first tcp access answers (see --timeout)')
    .addOption(new Option('-n, --dry-run', 'print what would be sent (summary and hex) and send nothing to HOST (behind a NAT, auto still asks STUN)').conflicts('wait'))
    .addHelpText('after', KNOCK_HELP)
    .action((host: string, o: Record<string, unknown>) => knock(host, o, io, home));

  addKnockOptions(
    program
      .command('proxy')
      .description('knock, then relay stdin/stdout to HOST PORT: an ssh ProxyCommand')
      .argument('<host>', 'server name or address, or a Host of the profile file (ssh: %h)')
      .argument('<port>', 'TCP port to connect to (ssh: %p)', commanderParser(parsePort)),
    home,
  )
    .addHelpText('after', PROXY_HELP)
    .action(async (host: string, port: number, o: Record<string, unknown>) => {
      const output = io.stdoutStream;
      // stdin read directly where it can be (a pipe from ssh); process.stdin is made only otherwise.
      const input: RelayInput | undefined = io.stdinFd !== undefined ? { fd: io.stdinFd, fallback: () => io.stdin! } : io.stdin;
      if (!input || !output) throw new Error('proxy needs byte streams for stdin and stdout');
      const plan = planFor(host, o, io, home, [{ proto: 'tcp', port }]);
      const verbose = Boolean(o['verbose']);
      const k = await knockPlan(plan, false, verbose, io);
      const c = await connectAfterKnock(host, k, port, timeoutMsOf(o), io);
      if (verbose) io.stderr(`spa-knock: ${host} (${k.target.text}) tcp/${port} answered after ${c.elapsedMs} ms; relaying\n`);
      await relay(host, c.socket, input, output);
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
