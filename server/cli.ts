// spa-server's command line: main(argv, io) -> exit code. Shell.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { VERSION_TEXT } from '../src/version.js';
import { SystemError, UserError } from '../src/errors.js';
import { parseAddressOrThrow } from '../src/net/address.js';
import { parseConfig } from '../src/config/parse.js';
import { DEFAULTS } from '../src/config/types.js';
import { writeServerKey } from '../keys/keygen-command.js';
import { runProgram } from '../src/cli.js';
import { formatProblem, loadRuntime } from './runtime.js';
import { askDaemon, askReload, CONTROL_SOCKET, type GrantView } from './control.js';
import { closeFromJournal, statusFromJournal } from './offline.js';
import { readJournalReport } from './state.js';
import { runDaemon } from './run.js';
import { captureUnavailable } from './capture.js';

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
  program
    .command('run')
    .description('run the server in the foreground (as systemd and containers expect)')
    .requiredOption('-c, --config <file>', 'the configuration file (knockd.conf format, see spa.conf(5))')
    .option('-i, --interface <name>', 'capture on this interface instead of [options] Interface')
    .option('--udp', 'bind a UDP socket on SPAPort instead of capturing with libpcap (no root needed; no sequence doors)')
    .option('--pretty', 'human-readable log lines instead of JSON (the default when stdout is a terminal)')
    .option('--debug', 'also log every knock stage and sequence attempt')
    .addHelpText('after', RUN_HELP)
    .action(async (o: { config: string; interface?: string; udp?: boolean; pretty?: boolean; debug?: boolean }) => {
      await runDaemon({ configFile: o.config, iface: o.interface, udp: Boolean(o.udp), pretty: Boolean(o.pretty) || process.stdout.isTTY === true, debug: Boolean(o.debug) });
    });

  program
    .command('check')
    .description('validate the configuration, keys and files; print each problem as FILE:LINE: message')
    .requiredOption('-c, --config <file>', 'the configuration file')
    .action((o: { config: string }) => {
      const { runtime, problems } = loadRuntime(o.config, { checkTools: true, env: io.env });
      for (const p of problems) io.stderr(`spa-server: ${formatProblem(p)}\n`);
      if (!runtime) {
        throw new UserError('config', `${problems.length} problem${problems.length === 1 ? '' : 's'} found`);
      }
      for (const w of runtime.warnings) io.stderr(`spa-server: warning: ${formatProblem(w)}\n`);
      const c = runtime.config;
      for (const w of stateWarnings(c.options.stateDir)) io.stderr(`spa-server: warning: ${w}\n`);
      // Whatever run refuses, check refuses: libpcap mode without cap installed.
      const noCapture = c.options.udpSocket ? undefined : captureUnavailable();
      if (noCapture !== undefined) throw new SystemError('capture', noCapture);
      // fwknop stanzas (issue 14; their warnings are among the runtime's): their count.
      const n = runtime.fwknop?.stanzas.length ?? 0;
      const fw = runtime.fwknop ? `${n} fwknop stanza${n === 1 ? '' : 's'} from ${runtime.fwknop.accessFiles.join(', ')}` : '';
      if (runtime.fwknop && c.doors.length === 0) return void io.stdout(`${o.config}: OK: ${fw}, udp/${c.options.spaPort}\n`);
      io.stdout(`${o.config}: OK: ${c.doors.length} door${c.doors.length === 1 ? '' : 's'} (${c.doors.map((d) => `${d.name}: ${d.kind}`).join(', ')}), ${runtime.clients.length} authorized key${runtime.clients.length === 1 ? '' : 's'}${fw ? `, ${fw}` : ''}\n`);
    });

  program
    .command('status')
    .description('list open rules: door, key id, address, access, expiry (from the daemon, or the journal if none runs)')
    .requiredOption('-c, --config <file>', 'the configuration file (for StateDir)')
    .option('--json', 'one JSON object per line')
    .action(async (o: { config: string; json?: boolean }) => {
      const stateDir = stateDirOf(o.config);
      const reply = await askDaemon(stateDir, { cmd: 'status' });
      if (reply && !reply.ok) throw new SystemError('net', `daemon: ${reply.error}`);
      const grants = reply?.ok ? reply.grants : statusFromJournal(stateDir);
      if (!reply) io.stderr('spa-server: no daemon running; showing the journal\n');
      printGrants(io, grants, Boolean(o.json));
    });

  program
    .command('close')
    .description('close open rules now: all of ADDRESS, or --all')
    .argument('[address]', 'the allowed address whose rules to close')
    .requiredOption('-c, --config <file>', 'the configuration file')
    .option('--all', 'close every open rule')
    .action(async (address: string | undefined, o: { config: string; all?: boolean }) => {
      if (!address && !o.all) throw new UserError('usage', 'close: give an ADDRESS or --all');
      if (address && o.all) throw new UserError('usage', 'close: give an ADDRESS or --all, not both');
      const addr = address ? parseAddressOrThrow(address, 'close').text : undefined;
      const { runtime, problems } = loadRuntime(o.config);
      if (!runtime) throw new UserError('config', problems.map(formatProblem).join('\n'));
      const reply = await askDaemon(runtime.config.options.stateDir, addr ? { cmd: 'close', addr } : { cmd: 'close', all: true });
      if (reply && !reply.ok) throw new SystemError('net', `daemon: ${reply.error}`);
      if (reply?.ok) {
        io.stdout(`closed ${reply.grants.length} rule${reply.grants.length === 1 ? '' : 's'}\n`);
        return;
      }
      const r = await closeFromJournal(runtime, addr);
      io.stdout(`closed ${r.closed.length} rule${r.closed.length === 1 ? '' : 's'} (no daemon running; from the journal)\n`);
      for (const f of r.failed) io.stderr(`spa-server: close ${f.grant.door} ${f.grant.addr} ${f.grant.access ?? ''}: ${f.error}\n`);
      if (r.failed.length > 0) throw new SystemError('command', `${r.failed.length} rule${r.failed.length === 1 ? '' : 's'} could not be closed`);
    });
  program
    .command('reload')
    .description('make the running daemon reload its configuration and keys (as SIGHUP does) and report the result')
    .requiredOption('-c, --config <file>', 'the configuration file (for StateDir; the daemon reloads the file it was started with)')
    .addHelpText('after', RELOAD_HELP)
    .action(async (o: { config: string }) => {
      const stateDir = controlDirOf(o.config);
      const reply = await askReload(stateDir);
      if (!reply) throw new SystemError('net', `no daemon running (nothing listens on ${join(stateDir, CONTROL_SOCKET)})`);
      if ('error' in reply) throw new SystemError('net', `daemon: ${reply.error}`);
      if (!reply.ok) {
        for (const p of reply.problems) io.stderr(`spa-server: ${p}\n`);
        const n = reply.problems.length;
        throw new UserError('config', `${reply.config}: reload refused (${n} problem${n === 1 ? '' : 's'}); the daemon runs on with its previous configuration`);
      }
      for (const e of reply.errors) io.stderr(`spa-server: ${e}\n`);
      const n = reply.errors.length;
      if (n > 0) throw new SystemError('command', `${reply.config}: reloaded, but ${n} step${n === 1 ? '' : 's'} failed (see above and the daemon's log)`);
      io.stdout(`${reply.config}: reloaded: ${reply.doors.length} door${reply.doors.length === 1 ? '' : 's'}${reply.doors.length > 0 ? ` (${reply.doors.join(', ')})` : ''}, ${reply.keys} authorized key${reply.keys === 1 ? '' : 's'}\n`);
    });
  return program;
}

/**
 * StateDir (where the control socket is) for `reload`. The file may be the broken one the
 * daemon is about to refuse, so a configuration with problems still names its StateDir
 * when it can be read; failing that, the default.
 */
function controlDirOf(configFile: string): string {
  const { runtime, problems } = loadRuntime(configFile);
  if (runtime) return runtime.config.options.stateDir;
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch {
    throw new UserError('config', problems.map(formatProblem).join('\n'));
  }
  const parsed = parseConfig(text, configFile);
  if (parsed.ok) return parsed.config.options.stateDir;
  const m = /^[ \t]*(?:StateDir[ \t]*=|SPA_STATE_DIR[ \t])[ \t]*(\/[^\s;#]*)/m.exec(text);
  return m?.[1] ?? DEFAULTS.stateDir;
}

/** Damaged state records (the daemon logs the same at start); check reports them, run goes on. */
function stateWarnings(stateDir: string): string[] {
  try {
    const r = readJournalReport(stateDir);
    return r.damaged.map((line) => `${r.file}:${line}: damaged record (failed its checksum); an opening it held may still be open`);
  } catch (e) {
    return [(e as Error).message];
  }
}

function stateDirOf(configFile: string): string {
  const { runtime, problems } = loadRuntime(configFile);
  if (!runtime) throw new UserError('config', problems.map(formatProblem).join('\n'));
  return runtime.config.options.stateDir;
}

function printGrants(io: ServerIo, grants: readonly GrantView[], json: boolean): void {
  if (json) {
    for (const g of grants) io.stdout(`${JSON.stringify(g)}\n`);
    return;
  }
  if (grants.length === 0) {
    io.stdout('no open rules\n');
    return;
  }
  const rows = [['DOOR', 'ID', 'ADDRESS', 'ACCESS', 'EXPIRES'], ...grants.map((g) => [g.door, g.id, g.addr, g.access ?? '-', g.expires])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.stdout(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

const RUN_HELP = `
Captures the SPA port (and sequence doors' ports) with libpcap on the configured
interface: nothing binds or answers there. Each datagram is verified (cheapest
checks first), matched to a door, and the door's firewall rule or start_command
runs for the knocker's address; the rule closes after cmd_timeout.

Signals:
  SIGTERM, SIGINT  close open rules (unless CloseOnExit = no) and exit 0
  SIGHUP           reload the configuration and keys; keeps the replay guard and open rules
                   (spa-server reload does the same and reports the result)

Files:
  StateDir/replay.log        accepted nonces (single use, survives kill -9)
  StateDir/openings.journal  open rules, closed at start if they expired while down
  StateDir/control.sock      for spa-server status, close and reload
  StateDir/lock              held by the running daemon (one daemon per StateDir)

Trust: the config, ServerKey, spa_keys and one_time_sequences files and StateDir
(and every directory above them) must be owned by root or the daemon's user and
not group/world-writable; StateDir is created mode 0700.

Exit status:
  0 stopped by a signal; 1 the system failed (capture, state directory);
  2 a configuration or key problem (each printed as FILE:LINE: message)
`;

const RELOAD_HELP = `
Asks the daemon over StateDir/control.sock to reload, as SIGHUP does: the
configuration file it was started with, the server key and the spa_keys files
are read again; the replay guard and open rules stay. Waits until the new
configuration is in force (sequence ports, capture, firewall base rules).
A configuration with problems is refused and the daemon runs on with the
previous one. For systemd: ExecReload=/usr/bin/spa-server reload --config FILE

Exit status:
  0 reloaded (one line: the file, its doors and keys)
  1 no daemon running, or a step after the reload failed (firewall setup)
  2 the configuration was refused (each problem printed as FILE:LINE: message)
`;

export async function main(argv: readonly string[], io: ServerIo): Promise<number> {
  return runProgram(buildProgram(io), argv, io, 'spa-server');
}
