// The common command line, `spa-knock HOST [knock flags]`, read without commander: building
// commander's program costs more start-up than the knock itself (bench: "spa-knock start-up").
// It reads only what it is sure of, with the same parsers: a subcommand, --help, --version, an
// unknown or combined flag, a bad value, a conflict, a missing or extra argument all return
// undefined, and commander's program (client/cli.ts) then reads the line and says what is wrong
// exactly as before. Pure.
import type { KnockOptionValues } from './knock-command.js';
import { collectAccess, collectStun, parseAllowIp, parseDelay, parsePort, parseSequenceFlag, parseTimeout } from './flags.js';

type Parse = (value: string, previous: never) => unknown;

interface Spec {
  /** commander's attribute name. */
  readonly name: string;
  /** A value option's parser (identity: the string); undefined for a boolean flag. */
  readonly parse?: Parse;
}

const text: Parse = (s) => s;

// The program's own options (client/cli.ts, addKnockOptions and the two after it), by every
// spelling; -h/--help and -V/--version are deliberately absent.
const SPECS: ReadonlyMap<string, Spec> = (() => {
  const m = new Map<string, Spec>();
  const add = (spellings: string[], spec: Spec): void => spellings.forEach((s) => m.set(s, spec));
  add(['-F', '--config'], { name: 'config', parse: text });
  add(['-k', '--key'], { name: 'key', parse: text });
  add(['--key-dir'], { name: 'keyDir', parse: text });
  add(['-s', '--server-key'], { name: 'serverKey', parse: text });
  add(['-p', '--port'], { name: 'port', parse: parsePort });
  add(['-A', '--access'], { name: 'access', parse: collectAccess as Parse });
  add(['-a', '--allow-ip'], { name: 'allowIp', parse: parseAllowIp });
  add(['--stun'], { name: 'stun', parse: collectStun as Parse });
  add(['-4'], { name: '4' });
  add(['-6'], { name: '6' });
  add(['--sequence'], { name: 'sequence', parse: parseSequenceFlag });
  add(['-d', '--delay'], { name: 'delay', parse: parseDelay });
  add(['-t', '--timeout'], { name: 'timeout', parse: parseTimeout });
  add(['-v', '--verbose'], { name: 'verbose' });
  add(['-w', '--wait'], { name: 'wait' });
  add(['-n', '--dry-run'], { name: 'dryRun' });
  return m;
})();

/** commander's subcommands and its implicit help command: a first operand that is one is not a host. */
const COMMANDS = new Set(['proxy', 'keygen', 'help']);

/** fwknop's ~/.fwknoprc stanzas (client/fwknop-knock.ts, its NAMED_CONFIG_FLAG) have a command line of their own. */
export function wantsNamedConfig(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--named-config' || a.startsWith('--named-config='));
}

/** HOST and the option values commander would give the program's action, or undefined: let commander read it. */
export function fastKnockArgs(argv: readonly string[]): { host: string; options: KnockOptionValues } | undefined {
  const o: Record<string, unknown> = { access: [] };
  const operands: string[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (arg.length > 1 && arg.startsWith('-')) {
        const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
        const spec = SPECS.get(eq > 2 ? arg.slice(0, eq) : arg);
        if (!spec) return undefined;
        if (!spec.parse) {
          if (eq > 2) return undefined;
          o[spec.name] = true;
          continue;
        }
        // As commander: a value option takes the next argument, whatever it looks like.
        const value = eq > 2 ? arg.slice(eq + 1) : argv[++i];
        if (value === undefined) return undefined;
        o[spec.name] = spec.parse(value, o[spec.name] as never);
        continue;
      }
      operands.push(arg);
    }
  } catch {
    return undefined;
  }
  const host = operands[0];
  if (operands.length !== 1 || host === undefined || COMMANDS.has(host)) return undefined;
  if ((o['4'] && o['6']) || (o['dryRun'] && o['wait'])) return undefined;
  return { host, options: o };
}
