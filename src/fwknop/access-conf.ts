// access.conf (fwknopd's stanzas) -> FwknopStanza[] and every problem as FILE:LINE, with
// %include, %include_folder and %include_keys (CONFIG.md §1). Pure. Files come through the
// injected reader, which the shell backs with the project's file checks.
import { dirname, isAbsolute, join } from 'node:path';
import { checkAccessSpec, type Access } from '../net/access.js';
import { closestWord } from '../suggest.js';
import { decodeB64Padded } from './base64.js';
import { DIGEST_NAMES, MAX_HMAC_KEY_BYTES, MAX_KEY_BYTES, WEAK_DIGESTS, type DigestName, type EncryptionMode } from './crypto.js';
import { parseNetList, type Net4 } from './ipv4.js';
import { FWKNOP_DEFAULTS, type CmdCycle, type FwknopStanza } from './stanza.js';
import { lexFwknopLines, parseCount, parseYesNo } from './syntax.js';

export interface Problem {
  readonly file: string;
  readonly line?: number | undefined;
  readonly message: string;
}

/** What the shell gives the parser: a file's text or a directory's names, or a reason. */
export interface ConfReader {
  readText(path: string): { readonly text: string } | { readonly error: string };
  listDir(path: string): { readonly names: readonly string[] } | { readonly error: string };
}

export interface AccessResult {
  readonly stanzas: readonly FwknopStanza[];
  /** Refusals: `check` fails and `run` will not start. */
  readonly errors: readonly Problem[];
  /** Said at every start (weak options accepted explicitly, REQUIRE_SOURCE_ADDRESS unset ...). */
  readonly warnings: readonly Problem[];
}

/** fwknopd's MAX_DEPTH for %include. */
const MAX_INCLUDE_DEPTH = 3;
/** CMD_CYCLE_TIMER upper bound (fwknopd: 2^23). */
const MAX_TIMER_SEC = 8_388_608;
/** What a CMD_CYCLE command may substitute (server/cmd_cycle.c build_cmd). */
export const CMD_CYCLE_VARS = ['IP', 'SRC', 'PKT_SRC', 'DST', 'PORT', 'PROTO', 'TIMEOUT', 'CLIENT_TIMEOUT'] as const;

const SUPPORTED = [
  'SOURCE', 'DESTINATION', 'KEY', 'KEY_BASE64', 'HMAC_KEY', 'HMAC_KEY_BASE64', 'HMAC_DIGEST_TYPE', 'ENCRYPTION_MODE',
  'OPEN_PORTS', 'RESTRICT_PORTS', 'FW_ACCESS_TIMEOUT', 'MAX_FW_TIMEOUT', 'REQUIRE_SOURCE_ADDRESS', 'REQUIRE_SOURCE',
  'REQUIRE_USERNAME', 'ACCESS_EXPIRE', 'ACCESS_EXPIRE_EPOCH', 'CMD_CYCLE_OPEN', 'CMD_CYCLE_CLOSE', 'CMD_CYCLE_TIMER',
  'ENABLE_CMD_EXEC', 'SPA_ALLOW_NO_HMAC', 'SPA_ALLOW_WEAK_HMAC', 'SPA_ALLOW_LEGACY',
] as const;

/** Directives we refuse, and why (a stanza that names one is not loaded). */
const REFUSED: Readonly<Record<string, string>> = {
  GPG: 'GPG stanzas are not supported (symmetric keys with an HMAC only)',
  NAT: 'NAT access is not supported (spa opens the allow address on this host only)',
  SUDO: 'command messages are not supported, so there is nothing to run with sudo',
  CMD: 'command messages (ENABLE_CMD_EXEC) are not supported: they run client-chosen commands as root',
};
const REFUSED_NAMES: Readonly<Record<string, keyof typeof REFUSED>> = {
  GPG_REMOTE_ID: 'GPG', GPG_FINGERPRINT_ID: 'GPG', GPG_DECRYPT_ID: 'GPG', GPG_DECRYPT_PW: 'GPG', GPG_ALLOW_NO_PW: 'GPG',
  GPG_REQUIRE_SIG: 'GPG', GPG_IGNORE_SIG_VERIFY_ERROR: 'GPG', GPG_HOME_DIR: 'GPG', GPG_EXE: 'GPG',
  FORCE_NAT: 'NAT', FORCE_SNAT: 'NAT', FORCE_MASQUERADE: 'NAT', FORWARD_ALL: 'NAT', DISABLE_DNAT: 'NAT',
  ENABLE_CMD_SUDO_EXEC: 'SUDO', CMD_SUDO_EXEC_USER: 'SUDO', CMD_SUDO_EXEC_GROUP: 'SUDO', CMD_EXEC_USER: 'CMD', CMD_EXEC_GROUP: 'CMD',
};
const KEY_NAMES = ['KEY', 'KEY_BASE64', 'HMAC_KEY', 'HMAC_KEY_BASE64'];

interface Draft {
  file: string;
  line: number;
  values: Map<string, { value: string; file: string; line: number }>;
  dead: boolean;
}

interface Ctx {
  readonly reader: ConfReader;
  readonly errors: Problem[];
  readonly warnings: Problem[];
  readonly drafts: Draft[];
  current: Draft | undefined;
}

function resolvePath(from: string, p: string): string {
  return isAbsolute(p) ? p : join(dirname(from), p);
}

function parseFile(ctx: Ctx, file: string, depth: number, via: { file: string; line: number } | undefined): void {
  const r = ctx.reader.readText(file);
  if ('error' in r) {
    ctx.errors.push({ file: via?.file ?? file, line: via?.line, message: via ? `%include: ${file}: ${r.error}` : r.error });
    return;
  }
  for (const l of lexFwknopLines(r.text)) {
    const at = { file, line: l.line };
    const err = (message: string): void => void ctx.errors.push({ ...at, message });
    if (l.name === '%include' || l.name === '%include_folder') {
      if (depth >= MAX_INCLUDE_DEPTH) {
        err(`${l.name}: nested deeper than ${MAX_INCLUDE_DEPTH} files (fwknopd's limit)`);
        continue;
      }
      const target = resolvePath(file, l.value);
      if (l.name === '%include') parseFile(ctx, target, depth + 1, at);
      else {
        const d = ctx.reader.listDir(target);
        if ('error' in d) err(`%include_folder: ${target}: ${d.error}`);
        else for (const n of [...d.names].filter((x) => x.endsWith('.conf')).sort()) parseFile(ctx, join(target, n), depth + 1, at);
      }
      continue;
    }
    if (l.name === '%include_keys') {
      if (ctx.current === undefined) err('%include_keys: outside a stanza (put it after a SOURCE line)');
      else includeKeys(ctx, ctx.current, resolvePath(file, l.value), at);
      continue;
    }
    if (l.name === 'SOURCE') {
      ctx.current = { file, line: l.line, values: new Map(), dead: false };
      ctx.drafts.push(ctx.current);
    }
    if (ctx.current === undefined) {
      err(`${l.name}: before the first SOURCE line (fwknopd ignores it; a stanza starts with SOURCE)`);
      continue;
    }
    setValue(ctx, ctx.current, l.name, l.value, at);
  }
}

function setValue(ctx: Ctx, d: Draft, name: string, value: string, at: { file: string; line: number }): void {
  const refused = REFUSED_NAMES[name] ?? (name.startsWith('GPG_') ? 'GPG' : undefined);
  if (refused !== undefined) {
    ctx.errors.push({ ...at, message: `${name}: ${REFUSED[refused]}` });
    d.dead = true;
    return;
  }
  if (!(SUPPORTED as readonly string[]).includes(name)) {
    const hint = closestWord(name, SUPPORTED);
    ctx.errors.push({ ...at, message: `${name}: unknown access.conf variable${hint ? ` (did you mean ${hint}?)` : ''}` });
    return;
  }
  if (d.values.has(name)) ctx.warnings.push({ ...at, message: `${name}: set twice in the stanza of ${d.file}:${d.line}; the last value is used` });
  d.values.set(name, { value, ...at });
}

function includeKeys(ctx: Ctx, d: Draft, path: string, via: { file: string; line: number }): void {
  const r = ctx.reader.readText(path);
  if ('error' in r) {
    ctx.errors.push({ ...via, message: `%include_keys: ${path}: ${r.error}` });
    return;
  }
  for (const l of lexFwknopLines(r.text)) {
    const at = { file: path, line: l.line };
    if (KEY_NAMES.includes(l.name)) d.values.set(l.name, { value: l.value, ...at });
    else if (l.name.startsWith('GPG_')) setValue(ctx, d, l.name, l.value, at);
    else ctx.warnings.push({ ...at, message: `${l.name}: ignored in an %include_keys file (only KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64 are read there, as in fwknopd)` });
  }
}

function keyBytes(ctx: Ctx, d: Draft, textName: string, b64Name: string, max: number): Uint8Array | undefined {
  const t = d.values.get(textName);
  const b = d.values.get(b64Name);
  const use = b ?? t;
  if (use === undefined) return undefined;
  const at = { file: use.file, line: use.line };
  if (t !== undefined && b !== undefined) ctx.errors.push({ ...at, message: `${b64Name}: the stanza also has ${textName}; keep one` });
  if (/^__CHANGEME__$/.test(use.value)) {
    ctx.errors.push({ ...at, message: `${b ? b64Name : textName}: still the placeholder __CHANGEME__ (run: fwknop --key-gen)` });
    return undefined;
  }
  const bytes = b ? decodeB64Padded(b.value) : new Uint8Array(Buffer.from(use.value, 'latin1'));
  const name = b ? b64Name : textName;
  if (bytes === undefined) {
    ctx.errors.push({ ...at, message: `${name}: not valid base64` });
    return undefined;
  }
  if (bytes.length < 1 || bytes.length > max) {
    ctx.errors.push({ ...at, message: `${name}: must be 1-${max} bytes, got ${bytes.length}` });
    return undefined;
  }
  if (!b) ctx.warnings.push({ ...at, message: `${name}: a passphrase key; fwknop's one-round MD5 derivation makes it cheap to guess from one packet (use fwknop --key-gen and ${b64Name})` });
  return bytes;
}

function ports(ctx: Ctx, v: { value: string; file: string; line: number } | undefined, name: string): Access[] | undefined {
  if (v === undefined) return undefined;
  const out: Access[] = [];
  for (const item of v.value.split(',')) {
    const a = checkAccessSpec(item.trim());
    if (typeof a === 'string') {
      ctx.errors.push({ file: v.file, line: v.line, message: `${name}: ${a}` });
      return undefined;
    }
    out.push(a);
  }
  return out;
}

function splitCommand(ctx: Ctx, v: { value: string; file: string; line: number }, name: string): string[] | undefined {
  const argv = v.value.split(/\s+/).filter(Boolean);
  if (argv.length === 0) {
    ctx.errors.push({ file: v.file, line: v.line, message: `${name}: empty command` });
    return undefined;
  }
  for (const m of v.value.matchAll(/\$([A-Z_]+)/g)) {
    const word = m[1] as string;
    if (!CMD_CYCLE_VARS.some((x) => word.startsWith(x))) {
      ctx.errors.push({ file: v.file, line: v.line, message: `${name}: unknown variable $${word} (known: ${CMD_CYCLE_VARS.map((x) => '$' + x).join(' ')})` });
      return undefined;
    }
  }
  return argv;
}

/** ACCESS_EXPIRE MM/DD/YYYY: midnight UTC of that day (fwknopd takes local midnight). */
function expireOf(v: string): number | undefined {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(v);
  if (m === null) return undefined;
  const t = Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2])) / 1000;
  const back = new Date(t * 1000);
  return back.getUTCDate() === Number(m[2]) && back.getUTCMonth() === Number(m[1]) - 1 ? t : undefined;
}

function finish(ctx: Ctx, d: Draft): FwknopStanza | undefined {
  const before = ctx.errors.length;
  const at = { file: d.file, line: d.line };
  const get = (n: string): { value: string; file: string; line: number } | undefined => d.values.get(n);
  const err = (n: string, message: string): void => {
    const v = get(n);
    ctx.errors.push({ file: v?.file ?? d.file, line: v?.line ?? d.line, message: `${n}: ${message}` });
  };
  const yes = (n: string): boolean => {
    const v = get(n);
    if (v === undefined) return false;
    const b = parseYesNo(v.value);
    if (b === undefined) err(n, `expected Y or N, got ${JSON.stringify(v.value)}`);
    return b === true;
  };
  const nets = (n: string): 'any' | readonly Net4[] => {
    const v = get(n);
    if (v === undefined) return 'any';
    const r = parseNetList(v.value);
    if (r !== 'any' && typeof r === 'string') {
      err(n, r);
      return 'any';
    }
    return r;
  };
  const count = (n: string, def: number, min: number, max: number): number => {
    const v = get(n);
    if (v === undefined) return def;
    const c = parseCount(v.value, min, max);
    if (c === undefined) err(n, `expected seconds ${min}-${max}, got ${JSON.stringify(v.value)}`);
    return c ?? def;
  };

  const sources = nets('SOURCE');
  const destinations = nets('DESTINATION');
  const allowNoHmac = yes('SPA_ALLOW_NO_HMAC');
  const allowWeak = yes('SPA_ALLOW_WEAK_HMAC');
  const allowLegacy = yes('SPA_ALLOW_LEGACY');
  const key = keyBytes(ctx, d, 'KEY', 'KEY_BASE64', MAX_KEY_BYTES);
  const hmacKey = keyBytes(ctx, d, 'HMAC_KEY', 'HMAC_KEY_BASE64', MAX_HMAC_KEY_BYTES);
  if (key === undefined && get('KEY') === undefined && get('KEY_BASE64') === undefined) ctx.errors.push({ ...at, message: 'SOURCE: stanza has no KEY or KEY_BASE64' });
  if (key !== undefined && hmacKey !== undefined && Buffer.from(key).equals(Buffer.from(hmacKey))) err(get('HMAC_KEY_BASE64') ? 'HMAC_KEY_BASE64' : 'HMAC_KEY', 'must differ from the encryption key');

  let hmacType: DigestName = FWKNOP_DEFAULTS.hmacType;
  const ht = get('HMAC_DIGEST_TYPE');
  if (ht !== undefined) {
    const n = ht.value.toLowerCase() as DigestName;
    if (!DIGEST_NAMES.includes(n)) err('HMAC_DIGEST_TYPE', `expected one of ${DIGEST_NAMES.join(', ')}, got ${JSON.stringify(ht.value)}`);
    else hmacType = n;
  }
  let mode: EncryptionMode = 'cbc';
  const em = get('ENCRYPTION_MODE');
  if (em !== undefined) {
    const m = em.value.toLowerCase();
    if (m === 'cbc' || m === 'ctr') mode = m;
    else if (m === 'legacy') {
      mode = 'legacy';
      if (!allowLegacy) err('ENCRYPTION_MODE', 'legacy mode (pre-2.5 clients: key cut to 16 bytes, no HMAC) is refused; add SPA_ALLOW_LEGACY Y to accept it');
      else ctx.warnings.push({ file: em.file, line: em.line, message: 'ENCRYPTION_MODE: legacy accepted by SPA_ALLOW_LEGACY: no HMAC, a key of at most 16 bytes' });
      if (hmacKey !== undefined) err('ENCRYPTION_MODE', 'legacy mode cannot be combined with an HMAC key');
    } else if (m === 'asymmetric') err('ENCRYPTION_MODE', REFUSED.GPG as string);
    else if (['ecb', 'cfb', 'ofb'].includes(m)) err('ENCRYPTION_MODE', `${em.value} is not supported (CBC, the default of every client, and CTR are)`);
    else err('ENCRYPTION_MODE', `expected CBC, CTR or legacy, got ${JSON.stringify(em.value)}`);
  }
  if (hmacKey === undefined && mode !== 'legacy' && get('HMAC_KEY') === undefined && get('HMAC_KEY_BASE64') === undefined) {
    if (!allowNoHmac) ctx.errors.push({ ...at, message: 'SOURCE: stanza has no HMAC_KEY or HMAC_KEY_BASE64: unauthenticated CBC is malleable; add an HMAC key (fwknop --key-gen), or SPA_ALLOW_NO_HMAC Y' });
    else ctx.warnings.push({ ...at, message: 'SOURCE: stanza without an HMAC accepted by SPA_ALLOW_NO_HMAC' });
  }
  if (hmacKey !== undefined && WEAK_DIGESTS.includes(hmacType)) {
    if (!allowWeak) err('HMAC_DIGEST_TYPE', `${hmacType} HMACs are refused; use sha256 or better, or add SPA_ALLOW_WEAK_HMAC Y`);
    else ctx.warnings.push({ file: ht?.file ?? d.file, line: ht?.line ?? d.line, message: `HMAC_DIGEST_TYPE: ${hmacType} accepted by SPA_ALLOW_WEAK_HMAC` });
  }
  const execV = get('ENABLE_CMD_EXEC');
  if (execV !== undefined && yes('ENABLE_CMD_EXEC')) err('ENABLE_CMD_EXEC', REFUSED.CMD as string);

  let cmdCycle: CmdCycle | undefined;
  const open = get('CMD_CYCLE_OPEN');
  const close = get('CMD_CYCLE_CLOSE');
  const timerV = get('CMD_CYCLE_TIMER');
  if (open !== undefined) {
    const openArgv = splitCommand(ctx, open, 'CMD_CYCLE_OPEN');
    const none = close !== undefined && close.value.toUpperCase() === 'NONE';
    const closeArgv = close === undefined || none ? undefined : splitCommand(ctx, close, 'CMD_CYCLE_CLOSE');
    if (close === undefined) err('CMD_CYCLE_OPEN', 'needs CMD_CYCLE_CLOSE (a command, or NONE)');
    if (close !== undefined && !none && timerV === undefined) err('CMD_CYCLE_OPEN', 'needs CMD_CYCLE_TIMER (seconds) unless CMD_CYCLE_CLOSE is NONE');
    const timerSec = timerV === undefined ? undefined : count('CMD_CYCLE_TIMER', 0, 1, MAX_TIMER_SEC);
    if (openArgv !== undefined) cmdCycle = { open: openArgv, close: closeArgv, timerSec };
  } else if (close !== undefined || timerV !== undefined) err(close ? 'CMD_CYCLE_CLOSE' : 'CMD_CYCLE_TIMER', 'without CMD_CYCLE_OPEN');

  let expireSec: number | undefined;
  const ex = get('ACCESS_EXPIRE');
  const exe = get('ACCESS_EXPIRE_EPOCH');
  if (ex !== undefined) {
    expireSec = expireOf(ex.value);
    if (expireSec === undefined) err('ACCESS_EXPIRE', `expected MM/DD/YYYY, got ${JSON.stringify(ex.value)}`);
  }
  if (exe !== undefined) {
    expireSec = parseCount(exe.value, 0, 2 ** 40);
    if (expireSec === undefined) err('ACCESS_EXPIRE_EPOCH', `expected Unix seconds, got ${JSON.stringify(exe.value)}`);
  }
  const requireSource = yes('REQUIRE_SOURCE_ADDRESS') || yes('REQUIRE_SOURCE');
  if (!requireSource) ctx.warnings.push({ ...at, message: 'SOURCE: REQUIRE_SOURCE_ADDRESS is not Y: a packet made with -s (allow IP 0.0.0.0) can be resent first from another address' });
  const requireUsername = get('REQUIRE_USERNAME')?.value;
  const stanza: FwknopStanza = {
    file: d.file,
    line: d.line,
    sources,
    destinations,
    key: key ?? new Uint8Array(0),
    hmacKey,
    hmacType,
    mode,
    openPorts: ports(ctx, get('OPEN_PORTS'), 'OPEN_PORTS'),
    restrictPorts: ports(ctx, get('RESTRICT_PORTS'), 'RESTRICT_PORTS') ?? [],
    accessTimeoutSec: count('FW_ACCESS_TIMEOUT', FWKNOP_DEFAULTS.accessTimeoutSec, 1, 31_536_000),
    maxTimeoutSec: count('MAX_FW_TIMEOUT', FWKNOP_DEFAULTS.maxTimeoutSec, 1, 31_536_000),
    requireSourceAddress: requireSource,
    requireUsername,
    expireSec,
    cmdCycle,
  };
  return ctx.errors.length === before && !d.dead ? stanza : undefined;
}

/** Problems in file order (first mention), then line order. */
export function sortProblems(ps: readonly Problem[]): Problem[] {
  const files = new Map<string, number>();
  for (const p of ps) if (!files.has(p.file)) files.set(p.file, files.size);
  return [...ps].sort((a, b) => (files.get(a.file) ?? 0) - (files.get(b.file) ?? 0) || (a.line ?? 0) - (b.line ?? 0));
}

/** Parses the access.conf at `path` (or, with `folder`, every *.conf in that directory). */
export function parseAccessConf(path: string, reader: ConfReader, opts: { folder?: boolean } = {}): AccessResult {
  const ctx: Ctx = { reader, errors: [], warnings: [], drafts: [], current: undefined };
  if (opts.folder) {
    const d = reader.listDir(path);
    if ('error' in d) ctx.errors.push({ file: path, line: undefined, message: d.error });
    else for (const n of [...d.names].filter((x) => x.endsWith('.conf')).sort()) {
      ctx.current = undefined;
      parseFile(ctx, join(path, n), 1, undefined);
    }
  } else parseFile(ctx, path, 0, undefined);
  const stanzas: FwknopStanza[] = [];
  for (const d of ctx.drafts) {
    const s = finish(ctx, d);
    if (s !== undefined) stanzas.push(s);
  }
  if (ctx.drafts.length === 0 && ctx.errors.length === 0) ctx.errors.push({ file: path, line: undefined, message: 'no stanza (a stanza starts with a SOURCE line)' });
  return { stanzas, errors: sortProblems(ctx.errors), warnings: sortProblems(ctx.warnings) };
}
