// fwknopd.conf -> the settings spa-server uses, every other directive named with the reason
// it is ignored or refused (CONFIG.md §2). Same line syntax as access.conf; a value may use
// `$VAR` of an earlier or default variable (`$FWKNOP_RUN_DIR/digest.cache`). Pure.
import { closestWord } from '../suggest.js';
import type { FirewallName } from '../config/types.js';
import { FIREWALL_NAMES } from '../config/types.js';
import type { Problem } from './access-conf.js';
import { lexFwknopLines, parseCount, parseYesNo } from './syntax.js';

export interface FwknopdConf {
  readonly file: string;
  /** PCAP_INTF (default eth0; `-i` / --interface overrides). */
  readonly interface: string;
  /** The UDP port: of PCAP_FILTER `udp port N`, or UDPSERV_PORT with ENABLE_UDP_SERVER. */
  readonly port: number;
  /** ENABLE_UDP_SERVER: read a bound UDP socket instead of sniffing. */
  readonly udpServer: boolean;
  readonly agingEnabled: boolean;
  readonly maxAgeSec: number;
  /** ACCESS_FILE, or ACCESS_FOLDER when `accessIsFolder`. */
  readonly access: string;
  readonly accessIsFolder: boolean;
  /** DIGEST_FILE: fwknopd's replay cache, imported at start when it exists. */
  readonly digestFile: string;
  /** SPA_FIREWALL (ours): the backend that opens; default iptables, as fwknopd on Debian. */
  readonly firewall: FirewallName;
  /** SPA_STATE_DIR (ours): the replay guard and journal; default /var/lib/spa. */
  readonly stateDir: string;
  /** Line of each directive set, for messages. */
  readonly lines: Readonly<Record<string, number>>;
}

export type FwknopdResult = { readonly ok: true; readonly conf: FwknopdConf; readonly warnings: readonly Problem[] } | { readonly ok: false; readonly errors: readonly Problem[]; readonly warnings: readonly Problem[] };

const DEFAULT_VARS: Readonly<Record<string, string>> = {
  FWKNOP_CONF_DIR: '/etc/fwknop',
  FWKNOP_RUN_DIR: '/var/run/fwknop',
  PCAP_INTF: 'eth0',
  PCAP_FILTER: 'udp port 62201',
  ENABLE_UDP_SERVER: 'N',
  UDPSERV_PORT: '62201',
  ENABLE_SPA_PACKET_AGING: 'Y',
  MAX_SPA_PACKET_AGE: '120',
  ACCESS_FILE: '$FWKNOP_CONF_DIR/access.conf',
  DIGEST_FILE: '$FWKNOP_RUN_DIR/digest.cache',
  SPA_FIREWALL: 'iptables',
  SPA_STATE_DIR: '/var/lib/spa',
};

const USED = [...Object.keys(DEFAULT_VARS), 'ACCESS_FOLDER', 'ENABLE_DIGEST_PERSISTENCE'];

/** Directives read and ignored, with the reason `check` gives. */
const IGNORED: Readonly<Record<string, string>> = {
  firewall: 'spa opens through its own backend (SPA_FIREWALL) with its own rules',
  tuning: 'capture tuning of fwknopd; spa-server sizes its own capture',
  logging: 'spa-server logs JSON lines to stdout (journald)',
  files: 'spa-server keeps its own pid, lock and state files',
  misc: 'no effect in spa-server',
  gpg: 'only GPG stanzas use it, and they are refused',
};
const IGNORED_NAMES: Record<string, keyof typeof IGNORED> = {};
for (const n of ['FIREWALL_EXE', 'FIREWALL_TYPE', 'IPT_INPUT_ACCESS', 'IPT_OUTPUT_ACCESS', 'IPT_FORWARD_ACCESS', 'IPT_DNAT_ACCESS', 'IPT_SNAT_ACCESS',
  'IPT_MASQUERADE_ACCESS', 'FLUSH_IPT_AT_INIT', 'FLUSH_IPT_AT_EXIT', 'ENABLE_IPT_COMMENT_CHECK', 'IPT_EXEC_TRIES', 'RULES_CHECK_THRESHOLD',
  'ENABLE_DESTINATION_RULE', 'ENABLE_RULE_PREPEND', 'ENABLE_IPT_OUTPUT', 'FIREWD_INPUT_ACCESS', 'FIREWD_OUTPUT_ACCESS', 'FIREWD_FORWARD_ACCESS',
  'FIREWD_DNAT_ACCESS', 'FIREWD_SNAT_ACCESS', 'FIREWD_MASQUERADE_ACCESS', 'FLUSH_FIREWD_AT_INIT', 'FLUSH_FIREWD_AT_EXIT', 'ENABLE_FIREWD_OUTPUT',
  'ENABLE_FIREWD_COMMENT_CHECK', 'FIREWD_EXEC_TRIES', 'IPFW_START_RULE_NUM', 'IPFW_MAX_RULES', 'IPFW_ACTIVE_SET_NUM', 'IPFW_EXPIRE_SET_NUM',
  'IPFW_EXPIRE_PURGE_INTERVAL', 'IPFW_ADD_CHECK_STATE', 'PF_ANCHOR_NAME', 'PF_EXPIRE_INTERVAL', 'ENABLE_NAT_DNS', 'SNAT_TRANSLATE_IP']) IGNORED_NAMES[n] = 'firewall';
for (const n of ['ENABLE_PCAP_PROMISC', 'MAX_SNIFF_BYTES', 'ENABLE_PCAP_ANY_DIRECTION', 'PCAP_DISPATCH_COUNT', 'PCAP_LOOP_SLEEP', 'EXIT_AT_INTF_DOWN',
  'PCAP_FILTER_STRICT', 'ENABLE_TCP_SERVER', 'TCPSERV_PORT']) IGNORED_NAMES[n] = 'tuning';
for (const n of ['SYSLOG_IDENTITY', 'SYSLOG_FACILITY', 'VERBOSE', 'LOCALE']) IGNORED_NAMES[n] = 'logging';
for (const n of ['FWKNOP_PID_FILE', 'DIGEST_DB_FILE', 'FWKNOP_CONF_DIR']) IGNORED_NAMES[n] = 'files';
for (const n of ['SUDO_EXE', 'ENABLE_FAULT_INJECTION', 'ENABLE_IPT_SNAT', 'ENABLE_FIREWD_SNAT']) IGNORED_NAMES[n] = 'misc';
for (const n of ['GPG_HOME_DIR', 'GPG_EXE']) IGNORED_NAMES[n] = 'gpg';

/** Directives refused when set to Y: the feature is not supported. */
const REFUSED_IF_YES: Readonly<Record<string, string>> = {
  ENABLE_SPA_OVER_HTTP: 'SPA over HTTP (fwknop -P http) is not supported: spa-server sniffs UDP',
  ENABLE_X_FORWARDED_FOR: 'SPA over HTTP is not supported',
  ENABLE_IPT_FORWARDING: 'NAT access messages are not supported',
  ENABLE_FIREWD_FORWARDING: 'NAT access messages are not supported',
  ENABLE_IPT_LOCAL_NAT: 'local NAT access messages are not supported',
  ENABLE_FIREWD_LOCAL_NAT: 'local NAT access messages are not supported',
};

/** `udp port N` / `udp dst port N` / `port N` (and `... and ...` is refused): the port. */
export function portOfPcapFilter(filter: string): number | undefined {
  const m = /^\s*(?:udp\s+)?(?:dst\s+)?port\s+(\d{1,5})\s*$/i.exec(filter);
  const n = Number(m?.[1]);
  return m !== null && n >= 1 && n <= 65535 ? n : undefined;
}

/** Detects fwknopd.conf by its format: a line `PCAP_INTF`, `ACCESS_FILE`, ... (no `[section]`). */
export function looksLikeFwknopdConf(text: string): boolean {
  if (/^\s*\[[^\]]+\]\s*$/m.test(text)) return false;
  // Debian's file sets nothing: every line is a commented-out default (#PCAP_INTF eth0;).
  const known = (n: string): boolean => USED.includes(n) || n in IGNORED_NAMES || n in REFUSED_IF_YES;
  return text.split('\n').some((line) => {
    const m = /^#?\s*([A-Z][A-Z0-9_]+)\s/.exec(line);
    return m !== null && known(m[1] as string);
  });
}

export function parseFwknopdConf(file: string, text: string): FwknopdResult {
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const vars = new Map<string, string>(Object.entries(DEFAULT_VARS));
  const lines: Record<string, number> = {};
  for (const l of lexFwknopLines(text)) {
    const at = { file, line: l.line };
    if (l.name in IGNORED_NAMES) {
      warnings.push({ ...at, message: `${l.name}: ignored: ${IGNORED[IGNORED_NAMES[l.name] as string]}` });
      continue;
    }
    const refused = REFUSED_IF_YES[l.name];
    if (refused !== undefined) {
      if (parseYesNo(l.value) !== false) errors.push({ ...at, message: `${l.name}: ${refused}` });
      continue;
    }
    if (!USED.includes(l.name)) {
      const hint = closestWord(l.name, [...USED, ...Object.keys(IGNORED_NAMES), ...Object.keys(REFUSED_IF_YES)]);
      errors.push({ ...at, message: `${l.name}: unknown fwknopd.conf variable${hint ? ` (did you mean ${hint}?)` : ''}` });
      continue;
    }
    lines[l.name] = l.line;
    vars.set(l.name, l.value);
  }
  const expand = (name: string, depth = 0): string => {
    const v = vars.get(name) ?? '';
    return depth > 8 ? v : v.replace(/\$([A-Z_]+)/g, (all, n: string) => (vars.has(n) && n !== name ? expand(n, depth + 1) : all));
  };
  const at = (name: string): { file: string; line: number | undefined } => ({ file, line: lines[name] });
  const yes = (name: string): boolean => {
    const b = parseYesNo(expand(name));
    if (b === undefined) errors.push({ ...at(name), message: `${name}: expected Y or N, got ${JSON.stringify(expand(name))}` });
    return b === true;
  };
  const udpServer = yes('ENABLE_UDP_SERVER');
  const agingEnabled = yes('ENABLE_SPA_PACKET_AGING');
  if (!agingEnabled) warnings.push({ ...at('ENABLE_SPA_PACKET_AGING'), message: 'ENABLE_SPA_PACKET_AGING: N: packets never go stale, so the replay cache can never forget (it grows with every knock)' });
  if (vars.has('ENABLE_DIGEST_PERSISTENCE') && parseYesNo(expand('ENABLE_DIGEST_PERSISTENCE')) === false) {
    warnings.push({ ...at('ENABLE_DIGEST_PERSISTENCE'), message: 'ENABLE_DIGEST_PERSISTENCE: N ignored: spa-server always keeps a durable replay cache' });
  }
  const maxAgeSec = parseCount(expand('MAX_SPA_PACKET_AGE'), 1, 86_400);
  if (maxAgeSec === undefined) errors.push({ ...at('MAX_SPA_PACKET_AGE'), message: `MAX_SPA_PACKET_AGE: expected seconds 1-86400, got ${JSON.stringify(expand('MAX_SPA_PACKET_AGE'))}` });
  let port: number | undefined;
  if (udpServer) {
    port = parseCount(expand('UDPSERV_PORT'), 1, 65535);
    if (port === undefined) errors.push({ ...at('UDPSERV_PORT'), message: `UDPSERV_PORT: expected a port 1-65535, got ${JSON.stringify(expand('UDPSERV_PORT'))}` });
  } else {
    port = portOfPcapFilter(expand('PCAP_FILTER'));
    if (port === undefined) errors.push({ ...at('PCAP_FILTER'), message: `PCAP_FILTER: only "udp port N" is understood (spa-server builds its own kernel filter), got ${JSON.stringify(expand('PCAP_FILTER'))}` });
  }
  const firewall = expand('SPA_FIREWALL') as FirewallName;
  if (!FIREWALL_NAMES.includes(firewall)) errors.push({ ...at('SPA_FIREWALL'), message: `SPA_FIREWALL: expected one of ${FIREWALL_NAMES.join(', ')}, got ${JSON.stringify(firewall)}` });
  const folder = vars.has('ACCESS_FOLDER') && lines.ACCESS_FOLDER !== undefined;
  if (folder && lines.ACCESS_FILE !== undefined) errors.push({ ...at('ACCESS_FOLDER'), message: 'ACCESS_FOLDER: set together with ACCESS_FILE; keep one' });
  const access = folder ? expand('ACCESS_FOLDER') : expand('ACCESS_FILE');
  for (const [name, v] of [['access', access], ['DIGEST_FILE', expand('DIGEST_FILE')], ['SPA_STATE_DIR', expand('SPA_STATE_DIR')]] as const) {
    if (!v.startsWith('/')) errors.push({ ...at(name === 'access' ? (folder ? 'ACCESS_FOLDER' : 'ACCESS_FILE') : name), message: `${name === 'access' ? (folder ? 'ACCESS_FOLDER' : 'ACCESS_FILE') : name}: must be an absolute path, got ${JSON.stringify(v)}` });
  }
  if (errors.length > 0 || port === undefined || maxAgeSec === undefined) return { ok: false, errors, warnings };
  return {
    ok: true,
    warnings,
    conf: {
      file, interface: expand('PCAP_INTF'), port, udpServer, agingEnabled, maxAgeSec, access, accessIsFolder: folder,
      digestFile: expand('DIGEST_FILE'), firewall, stateDir: expand('SPA_STATE_DIR'), lines,
    },
  };
}


