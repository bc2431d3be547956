// spa-knock's entry: main(argv, io) -> exit code. The common `spa-knock HOST [flags]` runs
// from here (client/fast-args.ts reads it); everything else, and every mistake on the command
// line, goes to commander's program in client/cli.ts, loaded only then. Shell.
import { describeError, exitCodeOf, EXIT_OK } from '../src/errors.js';
import { clientHome } from './home.js';
import { fastKnockArgs, wantsNamedConfig } from './fast-args.js';
import { knockCommand } from './knock-command.js';
import { processIo, type ClientIo } from './io.js';

export { processIo, type ClientIo } from './io.js';

export async function main(argv: readonly string[], io: ClientIo): Promise<number> {
  const fast = wantsNamedConfig(argv) ? undefined : fastKnockArgs(argv);
  if (!fast) return (await import('./cli.js')).runCli(argv, io);
  try {
    await knockCommand(fast.host, fast.options, io, clientHome(io.env, io.homedir));
    return EXIT_OK;
  } catch (e) {
    // As runProgram (src/cli.ts) reports an action's error.
    io.stderr(`${describeError('spa-knock', e)}\n`);
    return exitCodeOf(e);
  }
}

/**
 * The executable (client/bin.ts, and the bundle scripts/bundle.mjs makes): main() on the
 * process's arguments and streams, then an exit at once, so that a name lookup still pending (a
 * STUN server's, given up on when discovery's time ran out) does not hold the process for the
 * resolver's own timeouts. What stdout and stderr still owe a pipe's reader is written first
 * (proxy's last bytes to a busy ssh): an exit drops it.
 */
export async function runAndExit(): Promise<never> {
  const io = processIo();
  const code = await main(process.argv.slice(2), io);
  await io.flush();
  process.exit(code);
}
