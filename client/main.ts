// spa-knock's entry: main(argv, io) -> exit code. The common `spa-knock HOST [flags]` runs
// from here (client/fast-args.ts reads it); everything else, and every mistake on the command
// line, goes to commander's program in client/cli.ts, loaded only then. Shell.
import { describeError, exitCodeOf, EXIT_OK } from '../src/errors.js';
import { clientHome } from './home.js';
import { fastKnockArgs, wantsNamedConfig } from './fast-args.js';
import { knockCommand } from './knock-command.js';
import type { ClientIo } from './io.js';

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
