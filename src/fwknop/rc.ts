// ~/.fwknoprc (the fwknop client's stanzas, CONFIG.md §3) -> what spa-knock -n NAME sends.
// `[name]` starts a stanza, `[default]` holds defaults a named stanza overrides; a value ends
// at the first blank, ';' or '#' (client/config_init.c sscanf "%s %[^ ;\t\n\r#]"). Pure.
import { checkAccessSpec, type Access } from '../net/access.js';
import type { Problem } from './access-conf.js';
import { decodeB64Padded } from './base64.js';
import { DIGEST_NAMES, MAX_HMAC_KEY_BYTES, MAX_KEY_BYTES, type DigestName, type EncryptionMode } from './crypto.js';
import { parseIPv4 } from './ipv4.js';
import { FWKNOP_DEFAULTS } from './stanza.js';
import { parseCount, parseYesNo } from './syntax.js';

export interface RcStanza {
  readonly name: string;
  readonly server: string;
  readonly port: number;
  readonly access: readonly Access[];
  /** A dotted quad, or `source` (allow IP 0.0.0.0: the server opens the packet's source). */
  readonly allowIp: string;
  readonly key: Uint8Array;
  readonly hmacKey: Uint8Array;
  readonly hmacType: DigestName;
  readonly digestType: DigestName;
  readonly mode: Exclude<EncryptionMode, 'legacy'>;
  /** FW_TIMEOUT: 0 = let the server choose (message type 1). */
  readonly clientTimeoutSec: number;
  /** SPOOF_USER; undefined = the caller's login name. */
  readonly username: string | undefined;
}

export type RcResult = { readonly ok: true; readonly stanza: RcStanza } | { readonly ok: false; readonly errors: readonly Problem[] };

/** Variables that change nothing spa-knock sends, or that it does by other means. */
const IGNORED = new Set(['NO_SAVE_ARGS', 'VERBOSE', 'RESOLVE_URL', 'WGET_CMD', 'USE_WGET_USER_AGENT', 'SPA_SOURCE_PORT', 'TIME_OFFSET', 'USE_HMAC']);
const KNOWN = new Set(['SPA_SERVER', 'SPA_SERVER_PORT', 'SPA_SERVER_PROTO', 'ACCESS', 'ALLOW_IP', 'KEY', 'KEY_BASE64', 'HMAC_KEY', 'HMAC_KEY_BASE64',
  'HMAC_DIGEST_TYPE', 'DIGEST_TYPE', 'ENCRYPTION_MODE', 'FW_TIMEOUT', 'SPOOF_USER', ...IGNORED]);

export function parseFwknoprc(file: string, text: string, name: string): RcResult {
  const sections = new Map<string, { line: number; values: Map<string, { value: string; line: number }> }>();
  let current: Map<string, { value: string; line: number }> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).replace(/\r$/, '');
    if (/^\s*(#.*)?$/.test(raw)) continue;
    const sec = /^\s*\[([^\]]+)\]/.exec(raw);
    if (sec !== null) {
      const values = new Map<string, { value: string; line: number }>();
      sections.set(sec[1] as string, { line: i + 1, values });
      current = values;
      continue;
    }
    const m = /^\s*(\S+)\s+([^ ;\t\r#]*)/.exec(raw);
    if (m === null || current === undefined) continue;
    current.set(m[1] as string, { value: m[2] as string, line: i + 1 });
  }
  const s = sections.get(name);
  if (s === undefined || name === 'default') {
    const names = [...sections.keys()].filter((n) => n !== 'default');
    return { ok: false, errors: [{ file, line: undefined, message: `no stanza [${name}] (stanzas: ${names.join(', ') || 'none'})` }] };
  }
  const merged = new Map([...(sections.get('default')?.values ?? new Map()), ...s.values]);
  const errors: Problem[] = [];
  const at = (n: string): number => merged.get(n)?.line ?? s.line;
  const err = (n: string, message: string): void => void errors.push({ file, line: at(n), message: `${n}: ${message}` });
  const get = (n: string): string | undefined => merged.get(n)?.value;
  for (const [k, v] of merged) if (!KNOWN.has(k)) errors.push({ file, line: v.line, message: `${k}: not supported by spa-knock (GPG, NAT and HTTP options are not)` });

  const server = get('SPA_SERVER');
  if (server === undefined || server === '') errors.push({ file, line: s.line, message: `[${name}]: no SPA_SERVER` });
  const port = get('SPA_SERVER_PORT') === undefined ? FWKNOP_DEFAULTS.port : parseCount(get('SPA_SERVER_PORT') as string, 1, 65535);
  if (port === undefined) err('SPA_SERVER_PORT', `expected a port 1-65535, got ${JSON.stringify(get('SPA_SERVER_PORT'))}`);
  const proto = get('SPA_SERVER_PROTO');
  if (proto !== undefined && proto.toLowerCase() !== 'udp') err('SPA_SERVER_PROTO', `only udp is supported, got ${JSON.stringify(proto)}`);
  const access: Access[] = [];
  const acc = get('ACCESS');
  if (acc === undefined) errors.push({ file, line: s.line, message: `[${name}]: no ACCESS (such as tcp/22)` });
  else for (const item of acc.split(',')) {
    const a = checkAccessSpec(item);
    if (typeof a === 'string') err('ACCESS', a);
    else access.push(a);
  }
  const allow = get('ALLOW_IP');
  if (allow === undefined) errors.push({ file, line: s.line, message: `[${name}]: no ALLOW_IP (an IPv4 address, or source)` });
  else if (allow !== 'source' && parseIPv4(allow) === undefined) err('ALLOW_IP', allow === 'resolve' ? 'resolve (an HTTPS lookup of our address) is not supported; use source or an address' : `expected an IPv4 address or source, got ${JSON.stringify(allow)}`);
  const keyOf = (textName: string, b64Name: string, max: number): Uint8Array | undefined => {
    const b = get(b64Name);
    const t = get(textName);
    if (b !== undefined) {
      const bytes = decodeB64Padded(b);
      if (bytes === undefined || bytes.length < 1 || bytes.length > max) err(b64Name, `expected base64 of 1-${max} bytes`);
      return bytes;
    }
    if (t === undefined) return undefined;
    const bytes = new Uint8Array(Buffer.from(t, 'latin1'));
    if (bytes.length < 1 || bytes.length > max) err(textName, `must be 1-${max} bytes, got ${bytes.length}`);
    return bytes;
  };
  const key = keyOf('KEY', 'KEY_BASE64', MAX_KEY_BYTES);
  if (key === undefined && get('KEY') === undefined && get('KEY_BASE64') === undefined) errors.push({ file, line: s.line, message: `[${name}]: no KEY or KEY_BASE64` });
  const hmacKey = keyOf('HMAC_KEY', 'HMAC_KEY_BASE64', MAX_HMAC_KEY_BYTES);
  if (get('HMAC_KEY') === undefined && get('HMAC_KEY_BASE64') === undefined) errors.push({ file, line: s.line, message: `[${name}]: no HMAC key (HMAC_KEY or HMAC_KEY_BASE64): spa-knock always sends an HMAC` });
  if (get('USE_HMAC') !== undefined && parseYesNo(get('USE_HMAC') as string) === undefined) err('USE_HMAC', 'expected Y or N');
  const digestName = (n: string, def: DigestName): DigestName => {
    const v = get(n);
    if (v === undefined) return def;
    const d = v.toLowerCase() as DigestName;
    if (!DIGEST_NAMES.includes(d)) err(n, `expected one of ${DIGEST_NAMES.join(', ')}, got ${JSON.stringify(v)}`);
    return d;
  };
  const hmacType = digestName('HMAC_DIGEST_TYPE', FWKNOP_DEFAULTS.hmacType);
  const digestType = digestName('DIGEST_TYPE', 'sha256');
  const modeV = (get('ENCRYPTION_MODE') ?? 'cbc').toLowerCase();
  if (modeV !== 'cbc' && modeV !== 'ctr') err('ENCRYPTION_MODE', `expected CBC or CTR, got ${JSON.stringify(get('ENCRYPTION_MODE'))}`);
  const t = get('FW_TIMEOUT');
  const clientTimeoutSec = t === undefined ? 0 : parseCount(t, 0, 65_536);
  if (clientTimeoutSec === undefined) err('FW_TIMEOUT', `expected seconds 0-65536, got ${JSON.stringify(t)}`);
  const username = get('SPOOF_USER');
  if (errors.length > 0 || key === undefined || hmacKey === undefined || port === undefined || clientTimeoutSec === undefined) return { ok: false, errors };
  return {
    ok: true,
    stanza: { name, server: server as string, port, access, allowIp: allow as string, key, hmacKey, hmacType, digestType, mode: modeV as 'cbc' | 'ctr', clientTimeoutSec, username },
  };
}
