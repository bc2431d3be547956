// Loads what the daemon runs from: the config file, the server key, every door's
// authorized keys, and a backend per door and family. Every problem is a FILE:LINE
// line, so `spa-server check` and `run` report the same things. Shell (reads files).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, lstatSync, type Stats } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { UserError } from '../src/errors.js';
import { parseConfig } from '../src/config/parse.js';
import type { Config, Door, SpaDoor } from '../src/config/types.js';
import { authorizeClient, type AuthorizedClient, type ServerSecretKey } from '../src/protocol/keys.js';
import { FILE_LIMITS, FileReadError, readAuthorizedKeysFile, readRegularFile, readServerSecretKey } from '../keys/files.js';
import { sharedHalves, type LocatedEntry } from '../keys/authorized.js';
import { checkTrustedPath } from './trust.js';
import { toHex } from '../src/bytes.js';
import { commandBackend, makeBackend, type Backend } from './firewall/index.js';
import { checkDoorName } from './firewall/types.js';
import type { SpaDoorPolicy } from './core/policy.js';
import { checkOneTimeFile } from './one-time-store.js';
import { looksLikeFwknopdConf } from '../src/fwknop/fwknopd-conf.js';
import { loadFwknopDoors, loadFwknopdRuntime, type FwknopRuntime } from './fwknop-runtime.js';
import { DEFAULT_INTERFACE } from './sequences.js';

export interface Problem {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
}

/** Longest message printed: a 64 KiB value echoed back must not become 64 KiB of stderr. */
const MESSAGE_MAX = 400;

export function formatProblem(p: Problem): string {
  const m = p.message.length <= MESSAGE_MAX ? p.message : `${p.message.slice(0, MESSAGE_MAX)}... (${p.message.length - MESSAGE_MAX} more characters)`;
  const file = p.file.length <= MESSAGE_MAX ? p.file : `${p.file.slice(0, MESSAGE_MAX)}...`;
  return p.line === undefined ? `${file}: ${m}` : `${file}:${p.line}: ${m}`;
}

export interface Runtime {
  readonly config: Config;
  readonly server: ServerSecretKey | undefined;
  /** Every authorized client once, by id. */
  readonly clients: readonly AuthorizedClient[];
  readonly spaDoors: readonly SpaDoorPolicy[];
  /** Backends by door name: one instance per built-in firewall, one command backend per door. */
  readonly backends: ReadonlyMap<string, Backend>;
  /** fwknop stanzas (a fwknopd.conf given as the config); undefined otherwise. */
  readonly fwknop?: FwknopRuntime;
  /** Settings that work but weaken a door: `check` prints them, `run` logs them at every start. */
  readonly warnings: readonly Problem[];
}

/** The warnings of a loaded configuration (FILE:LINE each). */
function warningsOf(config: Config, configFile: string): Problem[] {
  const out: Problem[] = [];
  for (const door of config.doors) {
    if (door.kind === 'spa' && door.allowSource) {
      out.push({
        file: configFile,
        line: door.lines['spa_allow_source'] ?? door.line,
        message: `[${door.name}]: spa_allow_source = yes: a knock may ask to open for whatever address it arrives from, so an on-path attacker who copies such a knock to this server first gets the door opened for his own address`,
      });
    }
  }
  return out;
}

/** The tool each built-in backend runs, for `check`. */
const BACKEND_TOOL: Record<string, string> = { nftables: 'nft', iptables: 'iptables', ufw: 'ufw', firewalld: 'firewall-cmd' };

function onPath(tool: string, env: NodeJS.ProcessEnv): boolean {
  const dirs = (env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter);
  for (const d of [...dirs, '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(d, tool), constants.X_OK);
      return true;
    } catch {
      // next directory
    }
  }
  return false;
}

function backendFor(door: Door, shared: Map<string, Backend>): Backend | undefined {
  if (door.kind === 'spa' && door.firewall !== 'command') {
    let b = shared.get(door.firewall);
    if (!b) {
      b = makeBackend({ name: door.firewall } as Parameters<typeof makeBackend>[0]);
      shared.set(door.firewall, b);
    }
    return b;
  }
  return door.startCommand === undefined && door.startCommand6 === undefined ? undefined : commandBackend({ commands: door });
}

/**
 * Loads everything. Returns the runtime when nothing is wrong; problems otherwise (all of
 * them). `checkTools` also looks for the firewall tools on PATH (check does; run lets the
 * first command say it).
 */
export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Also look for the firewall tools on PATH (check does; run lets the first command say it). */
  readonly checkTools?: boolean;
  /** run's --udp and --interface, which override [options] UDPSocket and Interface. */
  readonly udp?: boolean;
  readonly iface?: string;
}

export function loadRuntime(configFile: string, opts: LoadOptions = {}): { runtime?: Runtime; problems: Problem[] } {
  const problems: Problem[] = [];
  let text: string;
  try {
    text = readRegularFile(configFile, FILE_LIMITS.config);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    return { problems: [{ file: configFile, message: e.message }] };
  }
  const configTrust = checkTrustedPath(configFile, 'file');
  if (configTrust) problems.push({ file: configFile, message: `not trusted: ${configTrust}` });
  // fwknopd.conf, recognised by its format as knockd.conf is (server/fwknop-runtime.ts).
  if (looksLikeFwknopdConf(text)) {
    const r = loadFwknopdRuntime(configFile, text);
    const fw = r.runtime?.config.options.firewall;
    const tool = fw === undefined ? undefined : BACKEND_TOOL[fw];
    if (opts.checkTools && tool && !onPath(tool, opts.env ?? process.env)) return { problems: [{ file: configFile, message: `SPA_FIREWALL ${fw}: ${tool} not found on PATH` }] };
    if (problems.length > 0) return { problems: [...problems, ...r.problems] };
    return r;
  }
  const parsed = parseConfig(text, configFile);
  if (!parsed.ok) return { problems: [...problems, ...parsed.errors.map((e) => ({ file: e.file, line: e.line, message: e.message }))] };
  const config = parsed.config;
  const spaDoors = config.doors.filter((d): d is SpaDoor => d.kind === 'spa');
  const keyDoors = spaDoors.filter((d) => d.spaKeys !== undefined);
  // StrictModes (server/trust.ts): a path root reads must be one only root (or we) can change.
  const trust = (path: string, kind: 'file' | 'dir', directive: string, line: number | undefined, noLink = false): void => {
    const wrong = checkTrustedPath(path, kind, { noLink });
    if (wrong) problems.push({ file: configFile, line, message: `${directive}: not trusted: ${wrong}` });
  };
  problems.push(...checkRunnable(config, configFile, opts));
  const stateDir = config.options.stateDir;
  if (!isAbsolute(stateDir)) problems.push({ file: configFile, line: config.options.lines['StateDir'], message: `StateDir: expected an absolute path, got ${JSON.stringify(stateDir)}` });
  else trust(stateDir, 'dir', 'StateDir', config.options.lines['StateDir'], true);
  if (config.options.metricsFile !== undefined) trust(config.options.metricsFile, 'file', 'MetricsFile', config.options.lines['MetricsFile'], true);
  if (config.options.serverKey !== undefined && spaDoors.length > 0) trust(config.options.serverKey, 'file', 'ServerKey', config.options.lines['ServerKey']);
  for (const door of keyDoors) trust(door.spaKeys!, 'file', `[${door.name}]: spa_keys`, door.lines['spa_keys']);
  for (const door of config.doors) {
    if (door.kind === 'sequence' && door.oneTimeSequences !== undefined) trust(door.oneTimeSequences, 'file', `[${door.name}]: one_time_sequences`, door.lines['one_time_sequences']);
  }

  let server: ServerSecretKey | undefined;
  if (keyDoors.length > 0) {
    const line = config.options.lines['ServerKey'];
    if (config.options.serverKey === undefined) {
      problems.push({ file: configFile, line: keyDoors[0]?.line, message: `[${keyDoors[0]?.name}]: an SPA door needs ServerKey = FILE in [options]` });
    } else {
      try {
        server = readServerSecretKey(config.options.serverKey);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        problems.push({ file: configFile, line, message: `ServerKey: ${e.format()}` });
      }
    }
  }

  const byId = new Map<string, { key: string; file: string; client: AuthorizedClient | undefined }>();
  const policies: SpaDoorPolicy[] = [];
  const located: LocatedEntry[] = [];
  for (const door of spaDoors) {
    const line = door.lines['spa_keys'];
    const ids = new Set<string>();
    let read: ReturnType<typeof readAuthorizedKeysFile> | undefined;
    try {
      if (door.spaKeys !== undefined) read = readAuthorizedKeysFile(door.spaKeys);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      problems.push({ file: configFile, line, message: `spa_keys: ${e.format()}` });
    }
    for (const p of read?.problems ?? []) problems.push(p);
    for (const entry of read?.entries ?? []) {
      located.push({ file: door.spaKeys ?? configFile, entry });
      const keyHex = toHex(entry.key.signPublic) + toHex(entry.key.boxPublic);
      const prev = byId.get(entry.id);
      if (prev && prev.key !== keyHex) {
        problems.push({ file: door.spaKeys ?? configFile, line: entry.line, message: `key id ${JSON.stringify(entry.id)} has a different key in ${prev.file}; one id, one key` });
        continue;
      }
      if (!prev) {
        const client = server ? authorizeClient(server, entry.id, entry.key) : undefined;
        if (server && !client) {
          problems.push({ file: door.spaKeys ?? configFile, line: entry.line, message: `key ${JSON.stringify(entry.id)} is not a usable public key (low-order point)` });
          continue;
        }
        byId.set(entry.id, { key: keyHex, file: door.spaKeys ?? configFile, client });
      }
      ids.add(entry.id);
    }
    policies.push({ name: door.name, keyIds: ids, access: door.access, allowNat: door.allowNat, allowSource: door.allowSource, cmdTimeoutSec: door.cmdTimeoutSec });
  }
  // PROTOCOL.md §1.1: across all doors' files too, no two clients share a half.
  problems.push(...sharedHalves(located));

  const backends = new Map<string, Backend>();
  const shared = new Map<string, Backend>();
  const probed = new Map<string, string | undefined>();
  for (const door of config.doors) {
    try {
      const b = backendFor(door, shared);
      if (b) backends.set(door.name, b);
    } catch (e) {
      problems.push({ file: configFile, line: door.line, message: `[${door.name}]: ${(e as Error).message}` });
    }
    if (opts.checkTools && door.kind === 'spa') {
      const tool = BACKEND_TOOL[door.firewall];
      if (tool && !onPath(tool, opts.env ?? process.env)) {
        problems.push({ file: configFile, line: door.lines['firewall'] ?? door.line, message: `[${door.name}]: firewall ${door.firewall}: ${tool} not found on PATH` });
      } else if (door.firewall === 'firewalld') {
        const down = firewalldDown(opts.env ?? process.env, probed);
        if (down) problems.push({ file: configFile, line: door.lines['firewall'] ?? door.line, message: `[${door.name}]: firewall firewalld: not reachable: ${down}` });
      }
    }
  }

  for (const door of config.doors) {
    if (door.kind !== 'sequence' || door.oneTimeSequences === undefined) continue;
    for (const p of checkOneTimeFile(door.oneTimeSequences).problems) {
      problems.push(p.line !== undefined ? p : { file: configFile, line: door.lines['one_time_sequences'] ?? door.line, message: `one_time_sequences: ${p.file}: ${p.message}` });
    }
  }

  // Doors with fwknop_access (server/fwknop-runtime.ts).
  const fwknop = loadFwknopDoors(config, problems);
  if (problems.length > 0) return { problems };
  const clients = [...byId.values()].flatMap((v) => (v.client ? [v.client] : []));
  return { runtime: { config, server, clients, spaDoors: policies, backends, warnings: [...warningsOf(config, configFile), ...(fwknop?.warnings ?? [])], ...(fwknop ? { fwknop } : {}) }, problems };
}

/**
 * Why firewalld cannot be used now (`firewall-cmd --state`: not running, no D-Bus), or
 * undefined when it runs. Asked once per check; run would fail to set the door up.
 */
function firewalldDown(env: NodeJS.ProcessEnv, cache: Map<string, string | undefined>): string | undefined {
  if (cache.has('firewalld')) return cache.get('firewalld');
  const r = spawnSync('firewall-cmd', ['--state'], { env: { ...env, LC_ALL: 'C' }, encoding: 'utf8', timeout: 10_000 });
  const why = r.status === 0 ? undefined : (`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] || (r.error?.message ?? `firewall-cmd --state: exit status ${r.status}`));
  cache.set('firewalld', why);
  return why;
}

/** Linux's interface names, in this network namespace. */
function interfaceExists(name: string): boolean {
  try {
    accessSync(join('/sys/class/net', name));
    return true;
  } catch {
    return false;
  }
}

/**
 * What `run` would otherwise fail on (or run in a way that cannot work), found from the
 * config alone so that `check` says it first: no doors, a door name a firewall backend cannot
 * carry, a capture interface that does not exist, sequence doors in UDP socket mode, a
 * StateDir that cannot be written.
 */
function checkRunnable(config: Config, file: string, opts: LoadOptions): Problem[] {
  const problems: Problem[] = [];
  const o = config.options;
  if (config.doors.length === 0) problems.push({ file, message: 'no doors: add a [DOOR] section with spa_keys or sequence (see spa.conf(5))' });
  for (const door of config.doors) {
    if (door.kind === 'spa' && door.firewall !== 'command') {
      const wrong = checkDoorName(door.name);
      if (wrong) problems.push({ file, line: door.line, message: `[${door.name}]: firewall ${door.firewall}: ${wrong}` });
    }
  }
  const udp = opts.udp === true || o.udpSocket;
  if (udp) {
    for (const door of config.doors) {
      if (door.kind === 'sequence') problems.push({ file, line: o.lines['UDPSocket'] ?? door.line, message: `[${door.name}]: a sequence door needs libpcap capture; with ${opts.udp ? '--udp' : 'UDPSocket = yes'} it would never open` });
    }
  } else if (config.doors.length > 0) {
    const iface = opts.iface ?? o.interface ?? DEFAULT_INTERFACE;
    if (iface !== 'any' && !interfaceExists(iface)) {
      problems.push({ file, line: opts.iface === undefined ? o.lines['Interface'] : undefined, message: `Interface: no such network interface: ${iface}${o.interface === undefined && opts.iface === undefined ? ' (the default; set Interface)' : ''}` });
    }
  }
  if (isAbsolute(o.stateDir)) {
    // The nearest directory that exists must let us write (a read-only file system, a mode).
    for (let d = o.stateDir; ; d = dirname(d)) {
      let st: Stats | undefined;
      try {
        st = lstatSync(d);
      } catch {
        if (d !== dirname(d)) continue;
      }
      if (st !== undefined && !st.isDirectory()) break; // the trust check says what it is
      try {
        accessSync(d, constants.W_OK | constants.X_OK);
      } catch (e) {
        problems.push({ file, line: o.lines['StateDir'], message: `StateDir: ${d}: cannot write: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      }
      break;
    }
  }
  return problems;
}

/**
 * The backend that closes a grant: the one that opened it (journaled by name), even if the
 * door now names another; a door's own commands only while the door still runs commands.
 */
export function closingBackend(runtime: Pick<Runtime, 'backends'>, g: { door: string; backend?: string }): Backend | undefined {
  const current = runtime.backends.get(g.door);
  if (g.backend === undefined || g.backend === current?.name) return current;
  if (g.backend === 'command') return undefined;
  return makeBackend({ name: g.backend } as Parameters<typeof makeBackend>[0]);
}
