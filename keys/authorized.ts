// Authorized-keys files: one `<client public key> <id>` per line, '#' comments and blank
// lines allowed. Pure: text in, entries and FILE:LINE problems out.
import { UserError, formatWhere } from '../src/errors.js';
import { clientPublicKey, type ClientPublicKey } from '../src/protocol/keys.js';
import { checkKeyId, parseKey } from './format.js';

export interface AuthorizedEntry {
  readonly id: string;
  readonly key: ClientPublicKey;
  readonly line: number;
}

export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
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
      problems.push({ file, line, message: `expected "<client public key> <id>", got ${fields.length} field${fields.length === 1 ? '' : 's'}` });
      return;
    }
    const [keyText = '', id = ''] = fields;
    const idProblem = checkKeyId(id);
    if (idProblem) {
      problems.push({ file, line, message: idProblem });
      return;
    }
    let payload: Uint8Array;
    try {
      payload = parseKey(keyText, 'client-public');
    } catch (e) {
      if (e instanceof UserError) {
        problems.push({ file, line, message: e.message });
        return;
      }
      throw e;
    }
    const first = ids.get(id);
    if (first !== undefined) {
      problems.push({ file, line, message: `duplicate key id ${JSON.stringify(id)} (first on line ${first})` });
      return;
    }
    ids.set(id, line);
    entries.push({ id, key: clientPublicKey(payload), line });
  });
  return { entries, problems };
}
