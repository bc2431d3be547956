// Command lines of doors: which %VAR%s they use, and their substitution. Pure.
// Commands run through a shell as in knockd, so only canonical, validated values are ever
// substituted: substitute() refuses (throws, a bug) any value outside a shell-inert alphabet.
import type { CommandVar, Door } from './types.js';

const KNOWN: ReadonlySet<string> = new Set<CommandVar>(['IP', 'PROTO', 'PORT', 'ID', 'DOOR']);

/**
 * A variable token is `%NAME%` with NAME of two or more upper-case letters, digits or `_`,
 * starting with a letter. Other percent signs pass through untouched, so `date +%Y%m%d` and
 * `printf '%s'` in a knockd.conf command keep working as they do in knockd.
 */
const TOKEN = /%([A-Z][A-Z0-9_]+)%/g;

/**
 * Values that may reach a shell: letters, digits and `. _ : @ + -` (addresses, ports,
 * protocols, key ids, door names). No space, quote, `$`, backquote, `;`, `|`, `&`, `<`, `>`,
 * `*`, `?`, `(`, `[`, `~`, `#`, `%`, `=`, newline.
 */
const SAFE_VALUE = /^[A-Za-z0-9._:@+-]+$/;

/** True if `s` may be placed into a command line as is (see SAFE_VALUE). */
export function isSafeCommandValue(s: string): boolean {
  return SAFE_VALUE.test(s);
}

/** The variable names a command uses, in order of first use, known or not. */
export function commandVars(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(TOKEN)) {
    const name = m[1] ?? '';
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** Returns a message naming the first variable not in `allowed`, or undefined when all are. */
export function checkCommandVars(command: string, allowed: readonly CommandVar[], doorKind: 'spa' | 'sequence'): string | undefined {
  for (const name of commandVars(command)) {
    if ((allowed as readonly string[]).includes(name)) continue;
    if (!KNOWN.has(name)) return `unknown variable %${name}% (known: ${allowed.map((v) => `%${v}%`).join(', ')})`;
    return doorKind === 'sequence'
      ? `%${name}% is not available in a sequence door (knockd substitutes only %IP%)`
      : `%${name}% is not available here (known: ${allowed.map((v) => `%${v}%`).join(', ')})`;
  }
  return undefined;
}

/**
 * Replaces every %VAR% of `command` with its value. The caller validated the config (so every
 * variable used is known and allowed) and passes canonical values (Address.text, `tcp`, a
 * port number, a key id, a door name). Anything else is a bug and throws: a variable used but
 * not given, a name that is no variable, or a value outside the shell-inert alphabet.
 */
export function substitute(command: string, vars: Readonly<Partial<Record<CommandVar, string>>>): string {
  for (const [name, value] of Object.entries(vars)) {
    if (!KNOWN.has(name)) throw new Error(`substitute: %${name}% is not a command variable`);
    if (value !== undefined && !SAFE_VALUE.test(value)) throw new Error(`substitute: unsafe value for %${name}%: ${JSON.stringify(value)}`);
  }
  return command.replace(TOKEN, (_token, name: string) => {
    const value = (vars as Record<string, string | undefined>)[name];
    if (value === undefined) throw new Error(`substitute: no value for %${name}%`);
    return value;
  });
}

/**
 * The commands to run for a knocker of this address family, with knockd's fallback: for IPv6,
 * start_command_6 / stop_command_6 when set, else the IPv4 ones; an empty *_6 value means run
 * nothing (knockd.c process_attempt). `start` undefined: nothing runs at all (and then no stop).
 */
export function commandsFor(door: Door, family: 4 | 6): { start: string | undefined; stop: string | undefined } {
  const pick = (v4: string | undefined, v6: string | undefined): string | undefined => {
    const c = family === 6 && v6 !== undefined ? v6 : v4;
    return c === '' ? undefined : c;
  };
  const start = pick(door.startCommand, door.startCommand6);
  return { start, stop: start === undefined ? undefined : pick(door.stopCommand, door.stopCommand6) };
}
