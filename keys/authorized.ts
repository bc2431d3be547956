// Authorized-keys files: one `<client public key> <id>` per line, '#' comments and blank
// lines allowed. Pure. Text in, entries and FILE:LINE problems out.
import { formatWhere } from '../src/errors.js';
import { toHex } from '../src/bytes.js';
import { clientPublicKey, type ClientPublicKey } from '../src/protocol/keys.js';
import { checkKeyId, checkKeyString, type KeyReason } from './format.js';

export interface AuthorizedEntry {
  readonly id: string;
  readonly key: ClientPublicKey;
  readonly line: number;
}

/** Why a line of an authorized-keys file is refused (the test vectors name them, PROTOCOL.md §1.3). */
export type LineReason = 'fields' | 'id' | 'duplicate-id' | 'shared-half' | KeyReason;

export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
  readonly reason?: LineReason;
}

export function formatProblem(p: Problem): string {
  return formatWhere(p.file, p.line, p.message);
}

export function parseAuthorizedKeys(text: string, file: string): { entries: AuthorizedEntry[]; problems: Problem[] } {
  const entries: AuthorizedEntry[] = [];
  const problems: Problem[] = [];
  const ids = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const s = raw.replace(/\r$/, '').trim();
    if (s === '' || s.startsWith('#')) return;
    const fields = s.split(/\s+/);
    if (fields.length !== 2) {
      problems.push({ file, line, reason: 'fields', message: `expected "<client public key> <id>", got ${fields.length} field${fields.length === 1 ? '' : 's'}` });
      return;
    }
    const [keyText = '', id = ''] = fields;
    const idProblem = checkKeyId(id);
    if (idProblem) {
      problems.push({ file, line, reason: 'id', message: idProblem });
      return;
    }
    const key = checkKeyString(keyText, 'client-public');
    if ('reason' in key) {
      problems.push({ file, line, reason: key.reason, message: key.message });
      return;
    }
    const first = ids.get(id);
    if (first !== undefined) {
      problems.push({ file, line, reason: 'duplicate-id', message: `duplicate key id ${JSON.stringify(id)} (first on line ${first})` });
      return;
    }
    ids.set(id, line);
    entries.push({ id, key: clientPublicKey(key.payload), line });
  });
  const shared = sharedHalves(entries.map((entry) => ({ file, entry })));
  problems.push(...shared);
  const bad = new Set(shared.map((p) => p.line));
  return { entries: entries.filter((e) => !bad.has(e.line)), problems };
}

const sameKey = (a: ClientPublicKey, b: ClientPublicKey): boolean => toHex(a.signPublic) === toHex(b.signPublic) && toHex(a.boxPublic) === toHex(b.boxPublic);

/** An authorized entry and the file it came from. */
export interface LocatedEntry {
  readonly file: string;
  readonly entry: AuthorizedEntry;
}

/**
 * Entries that share an Ed25519 or an X25519 half with an earlier entry but are not the
 * same key under the same id (PROTOCOL.md §1.1): one FILE:LINE problem each, naming the
 * earlier FILE:LINE. A key pasted together from two people's halves would otherwise take
 * one of their places; the same key with the same id in two doors' files is one client.
 */
export function sharedHalves(all: readonly LocatedEntry[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, LocatedEntry>();
  for (const e of all) {
    const halves: [string, string][] = [
      ['Ed25519', `e${toHex(e.entry.key.signPublic)}`],
      ['X25519', `x${toHex(e.entry.key.boxPublic)}`],
    ];
    const clash = halves.find(([, k]) => {
      const first = seen.get(k);
      return first !== undefined && !(first.entry.id === e.entry.id && sameKey(first.entry.key, e.entry.key));
    });
    if (clash) {
      const first = seen.get(clash[1])!;
      const where = first.file === e.file ? `line ${first.entry.line}` : `${first.file}:${first.entry.line}`;
      problems.push({ file: e.file, line: e.entry.line, reason: 'shared-half', message: `key ${JSON.stringify(e.entry.id)} shares its ${clash[0]} half with key ${JSON.stringify(first.entry.id)} (${where}); every key must be a client's own pair` });
      continue; // a refused entry counts for no later one (PROTOCOL.md §1.3)
    }
    for (const [, k] of halves) if (!seen.has(k)) seen.set(k, e);
  }
  return problems;
}
