// The command-line plumbing spa-knock and spa-server share: a commander program run with
// our exit codes and one-line errors. Shell (it writes through the io it is given).
import { CommanderError, type Command } from 'commander';
import { describeError, exitCodeOf, EXIT_OK, EXIT_USAGE } from './errors.js';

/** Where a command writes: process.stdout/stderr in the binaries, buffers in tests. */
export interface CliOutput {
  stdout(s: string): void;
  stderr(s: string): void;
}

/** Runs a commander program with our exit-code and one-line-error conventions. */
export async function runProgram(program: Command, argv: readonly string[], io: CliOutput, prog: string): Promise<number> {
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
