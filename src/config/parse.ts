// Parser of spa.conf / knockd.conf: text + file name -> Config, or every problem as FILE:LINE. Pure.
// Line syntax follows knockd 0.8's parseconfig (knockd.c): trimmed lines, `#` comments at the
// start of a line only, `[name]` sections, `KEY = VALUE` split at the first `=`, keys in any case.
import { UserError } from '../errors.js';
import { checkCommandVars, isSafeCommandValue } from './commands.js';
import { findDirective, suggestDirective, type Directive, type Value } from './directives.js';
import {
  DEFAULTS,
  SEQUENCE_COMMAND_VARS,
  SPA_COMMAND_VARS,
  type Config,
  type ConfigError,
  type Door,
  type FirewallName,
  type Options,
  type ParseResult,
  type SequenceDoor,
  type SpaDoor,
} from './types.js';

interface Setting {
  readonly directive: Directive;
  readonly value: Value;
  readonly line: number;
}

interface Section {
  readonly name: string;
  readonly line: number;
  /** false for a section that is reported as broken (empty or duplicate name): checked, not kept. */
  readonly keep: boolean;
  readonly settings: Map<string, Setting>;
  /** Directives given with a bad value (already reported): present, so no "needs X" follows. */
  readonly failed: Map<string, number>;
}

const COMMANDS = ['start_command', 'start_command_6', 'stop_command', 'stop_command_6'] as const;

/**
 * Parses a whole config file. Never throws on bad input: every problem found is returned, in
 * line order, each with file and line. `file` is used only in messages.
 */
export function parseConfig(text: string, file: string): ParseResult {
  const errors: ConfigError[] = [];
  const err = (line: number, message: string): void => {
    errors.push({ file, line, message });
  };
  const options: Section = { name: 'options', line: 0, keep: true, settings: new Map(), failed: new Map() };
  const doors: Section[] = [];
  let useSyslog = false;
  let current: Section | undefined;

  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = (i === 0 ? raw.replace(/^\uFEFF/, '') : raw).trim();
    if (line === '' || line.startsWith('#')) return;

    if (line.startsWith('[') && line.endsWith(']')) {
      const name = line.slice(1, -1);
      if (name === '') {
        err(n, 'bad section name: expected [options] or [DOOR NAME]');
        current = { name, line: n, keep: false, settings: new Map(), failed: new Map() };
      } else if (name === 'options') {
        current = options;
      } else {
        const first = doors.find((s) => s.keep && s.name === name);
        if (first) err(n, `duplicate door [${name}] (first on line ${first.line})`);
        current = { name, line: n, keep: !first, settings: new Map(), failed: new Map() };
        doors.push(current);
      }
      return;
    }

    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    const value = eq < 0 ? undefined : line.slice(eq + 1).trim();
    const place: 'options' | 'door' = current === options ? 'options' : 'door';
    if (current === undefined) {
      err(n, `${key}: directive outside any section (put it under [options] or a [DOOR] section)`);
      return;
    }
    if (value === undefined) {
      // knockd accepts one bare word, UseSyslog, in any section; it sets a global option.
      if (key.toLowerCase() === 'usesyslog') {
        useSyslog = true;
        return;
      }
      const word = key.split(/\s/)[0] ?? '';
      const known = findDirective(word, place) ?? findDirective(word, place === 'options' ? 'door' : 'options');
      if (!known) {
        err(n, `expected KEY = VALUE, [SECTION] or UseSyslog, got ${JSON.stringify(line)}`);
        return;
      }
      err(n, `${known.name}: expected ${known.name} = VALUE, got ${JSON.stringify(line)}`);
      current.failed.set(known.name, n);
      return;
    }
    if (key === '') {
      err(n, `expected KEY = VALUE, got ${JSON.stringify(line)}`);
      return;
    }
    if (key.toLowerCase() === 'usesyslog') {
      err(n, 'UseSyslog: takes no value (write UseSyslog alone on its line)');
      return;
    }
    const directive = findDirective(key, place);
    if (!directive) {
      const other = findDirective(key, place === 'options' ? 'door' : 'options');
      if (other && place === 'options') err(n, `${other.name}: belongs in a door section, not in [options]`);
      else if (other) err(n, `${other.name}: belongs in [options], not in a door section`);
      else {
        const hint = suggestDirective(key);
        err(n, `${key}: unknown directive${hint ? ` (did you mean ${hint}?)` : ''}`);
      }
      return;
    }
    const seen = current.settings.get(directive.name);
    if (seen) {
      err(n, `${directive.name}: already set on line ${seen.line}`);
      return;
    }
    const read = directive.read(value);
    if (typeof read === 'string') {
      err(n, `${directive.name}: ${read}`);
      current.failed.set(directive.name, n);
      return;
    }
    current.settings.set(directive.name, { directive, value: read, line: n });
  });

  const opts = buildOptions(options, useSyslog);
  const built: Door[] = [];
  for (const s of doors) {
    if (s.name === '') continue;
    const door = buildDoor(s, opts, err);
    if (door && s.keep) built.push(door);
  }
  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line);
    return { ok: false, errors };
  }
  const config: Config = { file, options: opts, doors: built };
  return { ok: true, config };
}

/** `FILE:LINE: message`, GNU style. */
export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.message}`;
}

/** The errors as UserErrors (code 'config'), for callers that throw or print them. */
export function configUserErrors(errors: readonly ConfigError[]): UserError[] {
  return errors.map((e) => new UserError('config', e.message, { file: e.file, line: e.line }));
}

function linesOf(s: Section): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, st] of s.settings) out[name] = st.line;
  return out;
}

function get<T extends Value['t']>(s: Section, name: string, t: T): Extract<Value, { t: T }> | undefined {
  const v = s.settings.get(name)?.value;
  return v && v.t === t ? (v as Extract<Value, { t: T }>) : undefined;
}

function textOrUndefined(s: Section, name: string): string | undefined {
  const v = get(s, name, 'text')?.v;
  return v === '' ? undefined : v;
}

function buildOptions(s: Section, useSyslog: boolean): Options {
  return {
    useSyslog,
    logFile: textOrUndefined(s, 'LogFile'),
    pidFile: textOrUndefined(s, 'PidFile'),
    interface: textOrUndefined(s, 'Interface'),
    spaPort: get(s, 'SPAPort', 'int')?.v ?? DEFAULTS.spaPort,
    serverKey: get(s, 'ServerKey', 'text')?.v,
    stateDir: get(s, 'StateDir', 'text')?.v ?? DEFAULTS.stateDir,
    udpSocket: get(s, 'UDPSocket', 'bool')?.v ?? DEFAULTS.udpSocket,
    udpListen: get(s, 'UDPListen', 'address')?.v,
    windowSec: get(s, 'Window', 'int')?.v ?? DEFAULTS.windowSec,
    replayPerClient: get(s, 'ReplayPerClient', 'int')?.v ?? DEFAULTS.replayPerClient,
    replayTotal: get(s, 'ReplayTotal', 'int')?.v ?? DEFAULTS.replayTotal,
    firewall: get(s, 'Firewall', 'firewall')?.v,
    closeOnExit: get(s, 'CloseOnExit', 'bool')?.v ?? DEFAULTS.closeOnExit,
    pcapBufferMb: get(s, 'PcapBufferMB', 'int')?.v ?? DEFAULTS.pcapBufferMb,
    udpBufferMb: get(s, 'UDPBufferMB', 'int')?.v ?? DEFAULTS.udpBufferMb,
    metricsFile: get(s, 'MetricsFile', 'text')?.v,
    lines: linesOf(s),
  };
}

function buildDoor(s: Section, options: Options, err: (line: number, message: string) => void): Door | undefined {
  const at = (name: string): number => s.settings.get(name)?.line ?? s.failed.get(name) ?? s.line;
  const present = (name: string): boolean => s.settings.has(name) || s.failed.has(name);
  const spaKeys = get(s, 'spa_keys', 'text')?.v;
  const fwknopAccess = get(s, 'fwknop_access', 'text')?.v;
  // A door with fwknop_access (fwknop clients' stanzas, issue 14) is an SPA door too.
  const hasSpa = present('spa_keys') || present('fwknop_access');
  const hasSeq = present('sequence');
  const hasOneTime = present('one_time_sequences');
  let kind: 'spa' | 'sequence' | undefined;

  if (hasSpa && (hasSeq || hasOneTime)) {
    const other = hasSeq ? 'sequence' : 'one_time_sequences';
    err(at('spa_keys'), `spa_keys: a door is an SPA door (spa_keys) or a sequence door (${other} on line ${at(other)}), not both`);
  } else if (hasSpa) {
    kind = 'spa';
  } else if (hasSeq && hasOneTime) {
    // knockd keeps whichever comes last, with odd results (a fixed sequence that is replaced
    // from the file after its first use); a door here has one or the other.
    const later = at('sequence') > at('one_time_sequences') ? 'sequence' : 'one_time_sequences';
    const earlier = later === 'sequence' ? 'one_time_sequences' : 'sequence';
    err(at(later), `${later}: a door has sequence or one_time_sequences, not both (${earlier} is on line ${at(earlier)})`);
  } else if (hasSeq || hasOneTime) {
    kind = 'sequence';
  } else {
    const hint = s.name.toLowerCase() === 'options' ? ` (did you mean [options]? section names are case-sensitive)` : '';
    err(s.line, `door [${s.name}] needs spa_keys (an SPA door) or sequence / one_time_sequences (a knock sequence door)${hint}`);
  }

  if (kind !== undefined) {
    for (const st of s.settings.values()) {
      if (kind === 'sequence' && st.directive.where === 'spa-door') {
        err(st.line, `${st.directive.name}: only for SPA doors (doors with spa_keys)`);
      }
      if (kind === 'spa' && st.directive.where === 'sequence-door') {
        err(st.line, `${st.directive.name}: only for sequence doors (doors with sequence or one_time_sequences)`);
      }
    }
  }

  const cmd = (name: string): string | undefined => get(s, name, 'text')?.v;
  const allowed = kind === 'sequence' ? SEQUENCE_COMMAND_VARS : SPA_COMMAND_VARS;
  for (const name of COMMANDS) {
    const c = cmd(name);
    if (c === undefined || kind === undefined) continue;
    const problem = checkCommandVars(c, allowed, kind);
    if (problem) err(at(name), `${name}: ${problem}`);
    else if (c.includes('%DOOR%') && !isSafeCommandValue(s.name)) {
      err(at(name), `${name}: %DOOR% cannot be used: the door name ${JSON.stringify(s.name)} has characters unsafe in a command line (use letters, digits and . _ : @ + -)`);
    }
  }

  const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);
  const base = {
    name: s.name,
    line: s.line,
    startCommand: nonEmpty(cmd('start_command')),
    startCommand6: cmd('start_command_6'),
    // knockd runs an empty stop command as `system("")` after cmd_timeout: the same as none.
    stopCommand: nonEmpty(cmd('stop_command')),
    stopCommand6: cmd('stop_command_6'),
    cmdTimeoutSec: get(s, 'cmd_timeout', 'int')?.v ?? DEFAULTS.cmdTimeoutSec,
    lines: linesOf(s),
  };

  if (kind === 'spa') {
    const access = get(s, 'access', 'access')?.v;
    if (!access && !present('access')) err(s.line, `door [${s.name}] is an SPA door and needs access = PROTO/PORT,... (what a knock may open, such as tcp/22)`);
    const own = get(s, 'firewall', 'firewall')?.v;
    const firewall: FirewallName = own ?? (base.startCommand !== undefined ? 'command' : options.firewall ?? 'command');
    if (firewall === 'command') {
      if (base.startCommand === undefined) {
        err(s.line, `door [${s.name}] needs start_command (or a firewall: nftables, iptables, ufw or firewalld)`);
      }
      const protect = s.settings.get('protect');
      if (protect && get(s, 'protect', 'bool')?.v) {
        err(protect.line, 'protect: needs a firewall backend (nftables, iptables, ufw or firewalld), not command');
      }
    } else {
      for (const name of COMMANDS) {
        if (s.settings.has(name)) err(at(name), `${name}: a door with firewall = ${firewall} runs no commands (remove ${name} or set firewall = command)`);
      }
    }
    if (!access || (spaKeys === undefined && fwknopAccess === undefined)) return undefined;
    const door: SpaDoor = {
      ...base,
      kind: 'spa',
      spaKeys,
      fwknopAccess,
      access,
      allowNat: get(s, 'spa_allow_nat', 'bool')?.v ?? false,
      allowSource: get(s, 'spa_allow_source', 'bool')?.v ?? false,
      firewall,
      protect: get(s, 'protect', 'bool')?.v ?? false,
    };
    return door;
  }

  if (kind === 'sequence') {
    if (base.startCommand === undefined) {
      err(s.line, `door [${s.name}] needs start_command (or command): what to run when the sequence is knocked`);
    }
    const door: SequenceDoor = {
      ...base,
      kind: 'sequence',
      sequence: get(s, 'sequence', 'sequence')?.v,
      oneTimeSequences: get(s, 'one_time_sequences', 'text')?.v,
      seqTimeoutSec: get(s, 'seq_timeout', 'int')?.v ?? DEFAULTS.seqTimeoutSec,
      tcpFlags: get(s, 'tcpflags', 'tcpflags')?.v ?? { set: 0, clear: 0 },
      target: get(s, 'target', 'address')?.v,
      ignoreDuplicates: get(s, 'ignore_duplicates', 'bool')?.v ?? false,
    };
    return door;
  }
  return undefined;
}
