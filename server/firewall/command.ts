// command backend: a door's own start_command / stop_command lines (knockd's, with the
// *_command_6 variants for IPv6), %IP% %PROTO% %PORT% %ID% %DOOR% replaced by validated,
// canonical values, run by /bin/sh -c as knockd does. Pure. Returns argv only.
//
// Why this is no injection path: every value is re-checked here (a canonical address,
// tcp or udp, a port number, a key id) and src/config/commands.ts substitute() refuses
// any value outside a shell-inert alphabet; a door name is passed only when it is in that
// alphabet (the config check refuses %DOOR% in a door whose name is not). The rest of the
// line is the administrator's own text, as in knockd.
import { commandsFor, isSafeCommandValue, substitute } from '../../src/config/commands.js';
import type { CommandVar, Door, SpaDoor } from '../../src/config/types.js';
import { assertOpening, type Backend, type Opening, type Step } from './types.js';

/** A door's command lines, as the config parser gives them. */
export type DoorCommands = Pick<SpaDoor, 'startCommand' | 'startCommand6' | 'stopCommand' | 'stopCommand6'>;

export interface CommandOptions {
  readonly commands: DoorCommands;
  /** The shell (default /bin/sh). */
  readonly shell?: string;
}

/** The values an opening gives a command line (DOOR only when the name is shell-safe). */
export function commandValues(o: Opening): Partial<Record<CommandVar, string>> {
  assertOpening(o, 'any');
  const values: Partial<Record<CommandVar, string>> = {
    IP: o.addr.text,
    PROTO: o.access.proto,
    PORT: String(o.access.port),
    ID: o.id,
  };
  if (isSafeCommandValue(o.door)) values.DOOR = o.door;
  return values;
}

/** Replaces the %VAR%s of a command line with the opening's validated values. Throws on a bad opening or line. */
export function substituteCommand(template: string, o: Opening): string {
  return substitute(template, commandValues(o));
}

export function commandBackend(options: CommandOptions): Backend {
  const shell = options.shell ?? '/bin/sh';
  // commandsFor reads only the four command fields: DoorCommands is all it needs.
  const lines = (o: Opening) => commandsFor(options.commands as Door, o.addr.family);
  const run = (template: string | undefined, o: Opening): Step[] =>
    template === undefined || template.trim() === '' ? [] : [{ argv: [shell, '-c', substituteCommand(template, o)] }];
  return {
    name: 'command',
    // knockd's doors have no base rules: the commands are the whole of it.
    setup: () => [],
    open: (o) => run(lines(assertOpening(o, 'any')).start, o),
    // A command has no timeout to refresh: the daemon moves its close timer.
    extend: (o) => {
      assertOpening(o, 'any');
      return [];
    },
    // No stop command (knockd's one-shot `command`, or an empty *_6): nothing to close.
    close: (o) => run(lines(assertOpening(o, 'any')).stop, o),
    teardown: () => [],
  };
}
