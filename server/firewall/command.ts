// command backend: a door's own start_command / stop_command lines (knockd's), with
// %IP% %PROTO% %PORT% %ID% %DOOR% replaced by validated, canonical values and run by
// /bin/sh -c as knockd does. Pure: returns argv only.
//
// Why this is no injection path: every substituted value is re-checked here (an address
// in canonical form: hex digits, '.', ':'; tcp or udp; digits; names of [A-Za-z0-9_.@-]
// starting with a letter or digit), so no shell metacharacter or option-looking word can
// reach the shell from a packet. The rest of the line is the administrator's own text.
import { assertDoorRules, assertOpening, type Backend, type Opening, type Step } from './types.js';

export interface CommandOptions {
  /** start_command: run when access opens. */
  readonly start: string;
  /** stop_command: run when access closes (none: nothing to close, like knockd's `command`). */
  readonly stop?: string;
  /** The shell (default /bin/sh). */
  readonly shell?: string;
}

/** The placeholders a command line may use. Unknown %WORDS% are left as they are, as knockd does. */
export const COMMAND_PLACEHOLDERS = ['%IP%', '%PROTO%', '%PORT%', '%ID%', '%DOOR%'] as const;

/** Replaces the placeholders with the opening's validated values. Throws RangeError on a bad opening. */
export function substituteCommand(template: string, o: Opening): string {
  assertOpening(o);
  const values: Record<(typeof COMMAND_PLACEHOLDERS)[number], string> = {
    '%IP%': o.addr.text,
    '%PROTO%': o.access.proto,
    '%PORT%': String(o.access.port),
    '%ID%': o.id,
    '%DOOR%': o.door,
  };
  // One pass, so a value can never be substituted again (values hold no '%' anyway).
  return template.replace(/%(IP|PROTO|PORT|ID|DOOR)%/g, (m) => values[m as keyof typeof values]);
}

export function commandBackend(options: CommandOptions): Backend {
  const shell = options.shell ?? '/bin/sh';
  if (options.start.trim() === '') throw new RangeError('command: start command is empty');
  const run = (template: string, o: Opening): Step => ({ argv: [shell, '-c', substituteCommand(template, o)] });
  return {
    name: 'command',
    // knockd's doors have no base rules: the commands are the whole of it.
    setup(doors) {
      assertDoorRules(doors);
      return [];
    },
    open: (o) => [run(options.start, o)],
    // A command has no timeout to refresh: the daemon moves its close timer.
    extend: (o) => {
      assertOpening(o);
      return [];
    },
    close: (o) => {
      assertOpening(o);
      return options.stop === undefined || options.stop.trim() === '' ? [] : [run(options.stop, o)];
    },
    teardown(doors) {
      assertDoorRules(doors);
      return [];
    },
  };
}
