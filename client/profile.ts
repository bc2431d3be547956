// Client profiles: the config file (HOME/config) in ssh_config's syntax and Host matching,
// parsed into blocks and looked up by the host name typed on the command line.
// Pure. Text in, a ProfileConfig or FILE:LINE errors out; lookup is a function of both.
import { closestWord } from '../src/suggest.js';
import { isAbsolute, join, dirname } from 'node:path';
import type { ConfigError, KnockPort } from '../src/config/types.js';
import { parseSequence } from '../src/config/sequence.js';
import { checkAccessSpec, dedupeAccess, type Access } from '../src/net/access.js';
import { parseAddress, type Address } from '../src/net/address.js';
import { UserError } from '../src/errors.js';
import { checkKeyId, keyTypeOf, parseKey } from '../keys/format.js';
import { parseStunServer, type StunServer } from './stun-servers.js';

export type AddressFamilyName = 'any' | 'inet' | 'inet6';

/** `Key`: an id (KEY_DIR/ID.key) or the path of a secret key file. */
export type ProfileKey = { readonly kind: 'id'; readonly id: string } | { readonly kind: 'file'; readonly file: string };

/** What the config file says about one host. Absent fields: not set (flags or defaults apply). */
export interface Profile {
  /** With `%h` already replaced by the host as typed. */
  readonly hostName?: string;
  readonly key?: ProfileKey;
  /** A server public key text (spa1-server-pub:...) or an absolute path to a file holding one. */
  readonly serverKey?: string;
  readonly port?: number;
  readonly access?: readonly Access[];
  readonly allowIp?: Address | 'auto' | 'source';
  /** StunServer: servers in order, or none. */
  readonly stunServers?: readonly StunServer[] | 'none';
  readonly sequence?: readonly KnockPort[];
  readonly delayMs?: number;
  readonly addressFamily?: AddressFamilyName;
  /** Lines of the Host entries that matched, in file order (0: the lines before any Host). */
  readonly matchedLines: readonly number[];
}

type Setting =
  | { readonly k: 'HostName'; readonly line: number; readonly v: string }
  | { readonly k: 'Key'; readonly line: number; readonly v: ProfileKey }
  | { readonly k: 'ServerKey'; readonly line: number; readonly v: string }
  | { readonly k: 'Port'; readonly line: number; readonly v: number }
  | { readonly k: 'Access'; readonly line: number; readonly v: readonly Access[] }
  | { readonly k: 'AllowIP'; readonly line: number; readonly v: Address | 'auto' | 'source' }
  | { readonly k: 'StunServer'; readonly line: number; readonly v: readonly StunServer[] | 'none' }
  | { readonly k: 'Sequence'; readonly line: number; readonly v: readonly KnockPort[] }
  | { readonly k: 'Delay'; readonly line: number; readonly v: number }
  | { readonly k: 'AddressFamily'; readonly line: number; readonly v: AddressFamilyName };

export type Keyword = Setting['k'] | 'Host';

/** Every keyword, in the order of spa-knock(1)'s FILES section. */
export const PROFILE_KEYWORDS: readonly Keyword[] = ['Host', 'HostName', 'Key', 'ServerKey', 'Port', 'Access', 'AllowIP', 'StunServer', 'Sequence', 'Delay', 'AddressFamily'];

export interface HostBlock {
  /** undefined: the lines before the first Host, which apply to every host (as in ssh_config). */
  readonly patterns: readonly string[] | undefined;
  readonly line: number;
  readonly settings: readonly Setting[];
}

export interface ProfileConfig {
  readonly file: string;
  readonly blocks: readonly HostBlock[];
}

export type ProfileParse = { readonly ok: true; readonly config: ProfileConfig } | { readonly ok: false; readonly errors: readonly ConfigError[] };

export const MAX_DELAY_MS = 60_000;

/** An empty config: every lookup gives an empty profile (no file). */
export function emptyProfileConfig(file: string): ProfileConfig {
  return { file, blocks: [] };
}

/**
 * Splits the arguments of a line as ssh_config does: whitespace separates, double quotes group,
 * an unquoted word starting with `#` ends the line. Returns a message on an unclosed quote.
 */
export function splitArgs(s: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? '';
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') break;
    if (c === '"') {
      const end = s.indexOf('"', i + 1);
      if (end < 0) return 'unclosed double quote';
      out.push(s.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < s.length && s[j] !== ' ' && s[j] !== '\t' && s[j] !== '"') j++;
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

/** Glob match with ssh's `*` (any run, also empty) and `?` (one character); case as given. */
export function matchPattern(pattern: string, s: string): boolean {
  // Iterative wildcard match with one backtrack point: linear in practice, no regex built from input.
  let p = 0;
  let i = 0;
  let star = -1;
  let mark = 0;
  while (i < s.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === s[i])) {
      p++;
      i++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = i;
    } else if (star >= 0) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * ssh_config's Host rule: the entry applies if at least one plain pattern matches and no
 * `!pattern` does (a line of negations alone never matches). Case-insensitive, as ssh
 * lower-cases both the host name and the patterns.
 */
export function matchHost(patterns: readonly string[], host: string): boolean {
  const h = host.toLowerCase();
  let positive = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const p = (negated ? raw.slice(1) : raw).toLowerCase();
    if (matchPattern(p, h)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** The host as the patterns see it: an IPv6 literal in brackets loses them. */
export function hostForMatching(host: string): string {
  const m = /^\[(.*)\]$/.exec(host);
  return m ? (m[1] ?? '') : host;
}

/** The profile for a host: for each keyword the first value in file order wins. */
export function lookupProfile(config: ProfileConfig, host: string): Profile {
  const h = hostForMatching(host);
  const got: { -readonly [K in keyof Profile]?: Profile[K] } = {};
  const matched: number[] = [];
  for (const b of config.blocks) {
    if (b.patterns !== undefined && !matchHost(b.patterns, h)) continue;
    if (b.patterns !== undefined) matched.push(b.line);
    else if (b.settings.length > 0) matched.push(0);
    // Access is one list-valued setting: the lines of the first entry that has any are its
    // value (they add up within that entry); later entries cannot add to it. So `Host *`
    // at the end can give a default that a specific entry replaces.
    let accessHere: Access[] | undefined;
    // StunServer likewise: the lines of the first entry that has any; `none` stands alone.
    let stunHere: StunServer[] | 'none' | undefined;
    for (const s of b.settings) {
      switch (s.k) {
        case 'HostName':
          got.hostName ??= s.v.replace(/%([h%])/g, (_, c: string) => (c === 'h' ? h : '%'));
          break;
        case 'Key':
          got.key ??= s.v;
          break;
        case 'ServerKey':
          got.serverKey ??= s.v;
          break;
        case 'Port':
          got.port ??= s.v;
          break;
        case 'Access':
          if (got.access === undefined || accessHere !== undefined) {
            accessHere = [...(accessHere ?? []), ...s.v];
          }
          break;
        case 'AllowIP':
          got.allowIp ??= s.v;
          break;
        case 'StunServer':
          if (got.stunServers === undefined || stunHere !== undefined) {
            stunHere = s.v === 'none' || stunHere === 'none' ? 'none' : [...(stunHere ?? []), ...s.v];
          }
          break;
        case 'Sequence':
          got.sequence ??= s.v;
          break;
        case 'Delay':
          got.delayMs ??= s.v;
          break;
        case 'AddressFamily':
          got.addressFamily ??= s.v;
          break;
      }
    }
    if (accessHere !== undefined) got.access = dedupeAccess(accessHere);
    if (stunHere !== undefined) got.stunServers = stunHere;
  }
  return { ...got, matchedLines: matched };
}

export interface ParseProfileOptions {
  /** For `~/` in Key and ServerKey paths. */
  readonly homedir: string;
}

/** Parses the whole file; every problem is reported, in line order. */
export function parseProfileConfig(text: string, file: string, opts: ParseProfileOptions): ProfileParse {
  const errors: ConfigError[] = [];
  const blocks: { patterns: string[] | undefined; line: number; settings: Setting[] }[] = [{ patterns: undefined, line: 0, settings: [] }];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const baseDir = dirname(file);
  const path = (v: string): string => {
    if (v === '~' || v.startsWith('~/')) return join(opts.homedir, v.slice(1));
    return isAbsolute(v) ? v : join(baseDir, v);
  };

  lines.forEach((raw, idx) => {
    const line = idx + 1;
    const err = (message: string): void => void errors.push({ file, line, message });
    const s = raw.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) return;
    // ssh_config: the keyword ends at whitespace or at one `=` (with optional spaces around it).
    const m = /^([A-Za-z][A-Za-z0-9_]*)(?:\s*=\s*|\s+|$)(.*)$/.exec(s);
    if (!m) return err(`expected KEYWORD VALUE, got ${JSON.stringify(s)}`);
    const word = m[1] ?? '';
    const keyword = PROFILE_KEYWORDS.find((k) => k.toLowerCase() === word.toLowerCase());
    if (keyword === undefined) {
      if (word.toLowerCase() === 'match') return err('Match: not supported; use Host patterns (*, ?, !negation)');
      const hint = suggestKeyword(word);
      return err(`${word}: unknown keyword${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    const args = splitArgs(m[2] ?? '');
    if (typeof args === 'string') return err(`${keyword}: ${args}`);
    if (args.length === 0) return err(`${keyword}: expected a value`);
    const block = blocks[blocks.length - 1]!;

    if (keyword === 'Host') {
      for (const p of args) {
        const bare = p.startsWith('!') ? p.slice(1) : p;
        if (bare === '') return err(`Host: empty pattern in ${JSON.stringify(p)}`);
        if (p.includes(',')) return err(`Host: patterns are separated by spaces, not commas, got ${JSON.stringify(p)}`);
      }
      blocks.push({ patterns: args, line, settings: [] });
      return;
    }

    const one = (): string | undefined => {
      if (args.length !== 1) {
        err(`${keyword}: expected one value, got ${args.length}`);
        return undefined;
      }
      return args[0];
    };
    const read = (): Setting | string | undefined => {
      switch (keyword) {
        case 'HostName': {
          const v = one();
          if (v === undefined) return undefined;
          if (!/^[A-Za-z0-9._:%[\]-]+$/.test(v)) return `expected a host name or address, got ${JSON.stringify(v)}`;
          if (/%[^h%]|%$/.test(v.replace(/%%/g, ''))) return `only %h (the host as typed) and %% may follow %, got ${JSON.stringify(v)}`;
          return { k: keyword, line, v };
        }
        case 'Key': {
          const v = one();
          if (v === undefined) return undefined;
          if (v.includes('/') || v.startsWith('~')) return { k: keyword, line, v: { kind: 'file', file: path(v) } };
          const bad = checkKeyId(v);
          return bad ? `${bad} (or a path to a key file, with a /)` : { k: keyword, line, v: { kind: 'id', id: v } };
        }
        case 'ServerKey': {
          const v = one();
          if (v === undefined) return undefined;
          if (keyTypeOf(v) === undefined) return { k: keyword, line, v: path(v) };
          try {
            parseKey(v, 'server-public');
          } catch (e) {
            if (e instanceof UserError) return e.message;
            throw e;
          }
          return { k: keyword, line, v };
        }
        case 'Port': {
          const v = one();
          if (v === undefined) return undefined;
          if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) return `expected a UDP port 1-65535, got ${JSON.stringify(v)}`;
          return { k: keyword, line, v: Number(v) };
        }
        case 'Access': {
          const items = listItems(args);
          if (items.some((x) => x === '')) return `empty item in ${JSON.stringify(args.join(' '))}`;
          const out: Access[] = [];
          for (const item of items) {
            const a = checkAccessSpec(item);
            if (typeof a === 'string') return a;
            out.push(a);
          }
          return { k: keyword, line, v: out };
        }
        case 'AllowIP': {
          const v = one();
          if (v === undefined) return undefined;
          const w = v.toLowerCase();
          if (w === 'auto' || w === 'source') return { k: keyword, line, v: w };
          const a = parseAddress(v);
          return a ? { k: keyword, line, v: a } : `expected an IPv4 or IPv6 address, auto or source, got ${JSON.stringify(v)}`;
        }
        case 'StunServer': {
          const items = listItems(args);
          if (items.some((x) => x.toLowerCase() === 'none')) {
            return items.length === 1 ? { k: keyword, line, v: 'none' } : `none stands alone, got ${JSON.stringify(args.join(' '))}`;
          }
          const out: StunServer[] = [];
          for (const item of items) {
            const r = parseStunServer(item);
            if (typeof r === 'string') return r;
            out.push(r);
          }
          return { k: keyword, line, v: out };
        }
        case 'Sequence': {
          const r = parseSequence(listItems(args).join(','));
          return typeof r === 'string' ? r : { k: keyword, line, v: r };
        }
        case 'Delay': {
          const v = one();
          if (v === undefined) return undefined;
          if (!/^[0-9]{1,6}$/.test(v) || Number(v) > MAX_DELAY_MS) return `expected milliseconds 0-${MAX_DELAY_MS}, got ${JSON.stringify(v)}`;
          return { k: keyword, line, v: Number(v) };
        }
        case 'AddressFamily': {
          const v = one();
          if (v === undefined) return undefined;
          const f = v.toLowerCase();
          if (f === 'any' || f === 'inet' || f === 'inet6') return { k: keyword, line, v: f };
          return `expected any, inet or inet6, got ${JSON.stringify(v)}`;
        }
      }
    };
    const r = read();
    if (r === undefined) return;
    if (typeof r === 'string') return err(`${keyword}: ${r}`);
    if (r.k === 'StunServer') {
      const before = block.settings.find((x) => x.k === 'StunServer');
      if (before && (before.v === 'none' || r.v === 'none')) return err(`StunServer: none and a server cannot both be set in this ${block.patterns ? 'Host entry' : 'part (before any Host)'} (line ${before.line})`);
    } else if (r.k !== 'Access') {
      const before = block.settings.find((x) => x.k === r.k);
      if (before) return err(`${keyword}: already set on line ${before.line} in this ${block.patterns ? 'Host entry' : 'part (before any Host)'}`);
    }
    block.settings.push(r);
  });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { file, blocks } };
}

/** Items of a list value written `a,b`, `a, b` or `a b`. */
function listItems(args: readonly string[]): string[] {
  return args
    .join(' ')
    .replace(/\s*,\s*/g, ',')
    .split(/[\s,]/);
}

function suggestKeyword(word: string): string | undefined {
  return closestWord(word, PROFILE_KEYWORDS);
}
