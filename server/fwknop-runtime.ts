// Loads fwknopd.conf and the access.conf it names into what the daemon runs: a Config of
// options (no doors of its own), the stanzas, one door name and backend per stanza. Files are
// read with the project's checks: regular files of bounded size, and, as root, owned by root
// and not writable by others; access files hold keys, so group/other may not read them. Shell.
import { readdirSync, statSync, readFileSync } from 'node:fs';
import type { Config, SpaDoor } from '../src/config/types.js';
import { DEFAULTS } from '../src/config/types.js';
import { parseAccessConf, type ConfReader, type Problem } from '../src/fwknop/access-conf.js';
import { parseFwknopdConf } from '../src/fwknop/fwknopd-conf.js';
import type { FwknopGlobals, FwknopStanza } from '../src/fwknop/stanza.js';
import { cmdCycleBackend } from './fwknop-cmd-cycle.js';
import { makeBackend, type Backend } from './firewall/index.js';
import type { Runtime } from './runtime.js';

/** Config files larger than this are refused (a real access.conf is a few KiB). */
const MAX_CONF_BYTES = 1024 * 1024;
/** Directory entries read from an ACCESS_FOLDER / %include_folder. */
const MAX_DIR_ENTRIES = 4096;

export interface FwknopRuntime {
  /** The access files read (for `check`). */
  readonly accessFiles: readonly string[];
  /** fwknopd's DIGEST_FILE, imported at start when it exists; undefined in spa.conf. */
  readonly digestFile: string | undefined;
  readonly stanzas: readonly FwknopStanza[];
  /** Door name per stanza (`fwknop-1` ...), used for grants, journal and logs. */
  readonly doors: readonly string[];
  readonly globals: FwknopGlobals;
  /** Problems that do not stop the start; logged at every start, printed by check. */
  readonly warnings: readonly Problem[];
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Why a file may not be trusted, or undefined. `secret`: it holds keys. */
export function checkConfFile(path: string, secret: boolean): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : `cannot read: ${code ?? (e as Error).message}`;
  }
  if (!st.isFile()) return 'not a regular file';
  if (st.size > MAX_CONF_BYTES) return `larger than ${MAX_CONF_BYTES} bytes`;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (isRoot() && st.uid !== 0) return `owned by uid ${st.uid}, not root; run: chown root ${path}`;
  if ((st.mode & 0o022) !== 0) return `writable by group or others (mode ${mode}); run: chmod go-w ${path}`;
  if (secret && (st.mode & 0o077) !== 0) return `holds keys and is accessible by group or others (mode ${mode}); run: chmod 600 ${path}`;
  return undefined;
}

export const checkedReader: ConfReader = {
  readText(path) {
    const why = checkConfFile(path, true);
    if (why !== undefined) return { error: why };
    try {
      return { text: readFileSync(path, 'latin1') };
    } catch (e) {
      return { error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
  },
  listDir(path) {
    try {
      const st = statSync(path);
      if (!st.isDirectory()) return { error: 'not a directory' };
      if (isRoot() && st.uid !== 0) return { error: `owned by uid ${st.uid}, not root` };
      if ((st.mode & 0o022) !== 0) return { error: `writable by group or others; run: chmod go-w ${path}` };
      const names = readdirSync(path);
      return names.length > MAX_DIR_ENTRIES ? { error: `more than ${MAX_DIR_ENTRIES} entries` } : { names };
    } catch (e) {
      return { error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
  },
};

/** The whole load from fwknopd.conf's text: problems (all of them), or the runtime. */
export function loadFwknopd(configFile: string, text: string): { config?: Config; fwknop?: FwknopRuntime; backends?: Map<string, Backend>; problems: Problem[] } {
  const parsed = parseFwknopdConf(configFile, text);
  if (!parsed.ok) return { problems: [...parsed.errors] };
  const conf = parsed.conf;
  const access = parseAccessConf(conf.access, checkedReader, { folder: conf.accessIsFolder });
  if (access.errors.length > 0) return { problems: [...access.errors] };
  if (access.stanzas.length === 0) return { problems: [{ file: conf.access, line: undefined, message: 'no usable stanza' }] };
  const doors = access.stanzas.map((_, i) => `fwknop-${i + 1}`);
  const backends = new Map<string, Backend>();
  const shared = conf.firewall === 'command' ? undefined : makeBackend({ name: conf.firewall } as Parameters<typeof makeBackend>[0]);
  const problems: Problem[] = [];
  access.stanzas.forEach((s, i) => {
    const door = doors[i] as string;
    if (s.cmdCycle !== undefined) backends.set(door, cmdCycleBackend(s.cmdCycle, () => Math.floor(Date.now() / 1000)));
    else if (shared !== undefined) backends.set(door, shared);
    else problems.push({ file: s.file, line: s.line, message: 'SOURCE: SPA_FIREWALL is command but the stanza has no CMD_CYCLE_OPEN' });
  });
  if (problems.length > 0) return { problems };
  const config: Config = {
    file: configFile,
    options: {
      useSyslog: false, logFile: undefined, pidFile: undefined, interface: conf.interface, spaPort: conf.port, serverKey: undefined,
      stateDir: conf.stateDir, udpSocket: conf.udpServer, udpListen: undefined, udpBufferMb: DEFAULTS.udpBufferMb, metricsFile: undefined, windowSec: conf.maxAgeSec, firewall: conf.firewall === 'command' ? undefined : conf.firewall,
      closeOnExit: DEFAULTS.closeOnExit, pcapBufferMb: DEFAULTS.pcapBufferMb, replayPerClient: DEFAULTS.replayPerClient, replayTotal: DEFAULTS.replayTotal, lines: {},
    },
    doors: [],
  };
  const fwknop: FwknopRuntime = {
    accessFiles: [conf.access],
    digestFile: conf.digestFile,
    stanzas: access.stanzas,
    doors,
    globals: { agingEnabled: conf.agingEnabled, maxAgeSec: conf.maxAgeSec },
    warnings: [...parsed.warnings, ...access.warnings],
  };
  return { config, fwknop, backends, problems: [] };
}

/** loadRuntime's branch for fwknopd.conf (server/runtime.ts calls it when the format matches). */
export function loadFwknopdRuntime(configFile: string, text: string): { runtime?: Runtime; problems: Problem[] } {
  const why = checkConfFile(configFile, false);
  if (why !== undefined) return { problems: [{ file: configFile, line: undefined, message: why }] };
  const r = loadFwknopd(configFile, text);
  if (!r.config || !r.fwknop || !r.backends) return { problems: r.problems };
  return { runtime: { config: r.config, server: undefined, clients: [], spaDoors: [], backends: r.backends, fwknop: r.fwknop, warnings: r.fwknop.warnings }, problems: [] };
}

/**
 * spa.conf doors with `fwknop_access = FILE`: their stanzas, opened through the door's own
 * backend (its firewall or start_command), the ports limited to the door's `access` as well as
 * the stanza's OPEN_PORTS. CMD_CYCLE_* belongs to fwknopd.conf mode and is refused here.
 * Pushes problems; undefined when no door has fwknop_access.
 */
export function loadFwknopDoors(config: Config, problems: Problem[]): FwknopRuntime | undefined {
  const doors = config.doors.filter((d): d is SpaDoor => d.kind === 'spa' && d.fwknopAccess !== undefined);
  if (doors.length === 0) return undefined;
  const stanzas: FwknopStanza[] = [];
  const names: string[] = [];
  const warnings: Problem[] = [];
  for (const door of doors) {
    const file = door.fwknopAccess as string;
    const r = parseAccessConf(file, checkedReader);
    const line = door.lines['fwknop_access'];
    for (const e of r.errors) problems.push(e.line === undefined ? { file: config.file, line, message: `fwknop_access: ${file}: ${e.message}` } : e);
    warnings.push(...r.warnings);
    for (const s of r.stanzas) {
      if (s.cmdCycle !== undefined) {
        problems.push({ file: s.file, line: s.line, message: `SOURCE: CMD_CYCLE_OPEN in a stanza of [${door.name}]: the door's firewall or start_command opens (CMD_CYCLE_* works when spa-server reads fwknopd.conf)` });
        continue;
      }
      const inDoor = (a: { proto: string; port: number }): boolean => door.access.some((x) => x.proto === a.proto && x.port === a.port);
      stanzas.push({ ...s, openPorts: (s.openPorts ?? door.access).filter(inDoor) });
      names.push(door.name);
    }
  }
  return {
    accessFiles: doors.map((d) => d.fwknopAccess as string),
    digestFile: undefined,
    stanzas,
    doors: names,
    globals: { agingEnabled: true, maxAgeSec: config.options.windowSec },
    warnings,
  };
}
