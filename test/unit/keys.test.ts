import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { parseKey, encodeKey, KEY_TYPES } from '../../keys/format.js';
import { parseAuthorizedKeys } from '../../keys/authorized.js';
import { generateClientKey, generateServerKey } from '../../keys/keygen.js';
import { det } from '../vectors/generate.js';
import { concat } from '../../src/bytes.js';
import { clientSecretKey, serverSecretKey } from '../../src/protocol/keys.js';

const srvKey = serverSecretKey(det('keys server', 32));
const cliKey = clientSecretKey(det('keys client', 64));

let n = 0;
const random = (k: number): Uint8Array => det(`keys ${n++}`, k);

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  return 'no error';
}

describe('key strings', () => {
  const srv = generateServerKey(random);
  const cli = generateClientKey(random, 'alice');

  it('round-trips every type', () => {
    for (const type of Object.keys(KEY_TYPES) as (keyof typeof KEY_TYPES)[]) {
      // A public payload must hold valid points (PROTOCOL.md §1.1): take them from real keys.
      const payload =
        type === 'server-public' ? srvKey.boxPublic : type === 'client-public' ? concat(cliKey.signPublic, cliKey.boxPublic) : det(type, KEY_TYPES[type].bytes);
      expect(parseKey(encodeKey(type, payload), type)).toEqual(payload);
    }
  });

  it('names the type it got when it is the wrong one', () => {
    expect(message(() => parseKey(srv.publicText, 'client-public'))).toBe('expected a client public key (spa1-client-pub:...), got a server public key');
    expect(message(() => parseKey(cli.publicText, 'server-public'))).toBe('expected a server public key (spa1-server-pub:...), got a client public key');
    expect(message(() => parseKey(cli.secretText, 'client-public'))).toBe('expected a client public key (spa1-client-pub:...), got a client secret key');
  });

  it('refuses a wrong prefix, a bad checksum, truncation, and bad characters', () => {
    expect(message(() => parseKey('ssh-ed25519 AAAA', 'server-public'))).toBe('expected a server public key (spa1-server-pub:...), got something that is not a spa key');
    // A swapped prefix with the same payload fails the checksum: the prefix is inside it.
    const swapped = srv.publicText.replace('spa1-server-pub:', 'spa1-server-secret:');
    expect(message(() => parseKey(swapped, 'server-secret'))).toBe('a server secret key: checksum mismatch (mistyped or damaged key)');
    const i = srv.publicText.length - 10;
    const typo = srv.publicText.slice(0, i) + (srv.publicText[i] === 'A' ? 'B' : 'A') + srv.publicText.slice(i + 1);
    expect(message(() => parseKey(typo, 'server-public'))).toBe('a server public key: checksum mismatch (mistyped or damaged key)');
    expect(message(() => parseKey(srv.publicText.slice(0, -4), 'server-public'))).toBe('a server public key: truncated (33 bytes, expected 36)');
    expect(message(() => parseKey(srv.publicText + 'AAAA', 'server-public'))).toBe('a server public key: too long (39 bytes, expected 36)');
    expect(message(() => parseKey(srv.publicText.slice(0, -1) + '!', 'server-public'))).toBe('a server public key: invalid characters (expected base64url)');
  });

  it('never echoes key material in a message', () => {
    const m = message(() => parseKey(cli.secretText, 'server-public'));
    expect(m).not.toContain(cli.secretText.slice(20, 40));
  });
});

describe('authorized keys', () => {
  const a = generateClientKey(random, 'alice');
  const b = generateClientKey(random, 'bob');
  const s = generateServerKey(random);

  it('reads lines, comments and blank lines', () => {
    const r = parseAuthorizedKeys(`# team\n\n${a.authorizedLine}\n  ${b.authorizedLine}  \r\n`, 'keys');
    expect(r.problems).toEqual([]);
    expect(r.entries.map((e) => [e.id, e.line])).toEqual([
      ['alice', 3],
      ['bob', 4],
    ]);
  });

  it('reports each bad line with file and line', () => {
    const text = [a.authorizedLine, `${s.publicText} srv`, 'spa1-client-pub:AAAA carol', `${b.publicText}`, `${b.publicText} bad/id`, `${b.publicText} alice`].join('\n');
    const r = parseAuthorizedKeys(text, 'auth');
    expect(r.entries.map((e) => e.id)).toEqual(['alice']);
    expect(r.problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      'auth:2: expected a client public key (spa1-client-pub:...), got a server public key',
      'auth:3: a client public key: truncated (3 bytes, expected 68)',
      'auth:4: expected "<client public key> <id>", got 1 field',
      `auth:5: key id must be 1-64 characters of letters, digits, '_', '.', '@', '-', starting with a letter or digit, got "bad/id"`,
      'auth:6: duplicate key id "alice" (first on line 1)',
    ]);
  });

  it('the generated client public line is exactly one authorized-keys line', () => {
    expect(a.authorizedLine).toBe(`${a.publicText} alice`);
    const key = parseKey(a.publicText, 'client-public');
    expect(key.length).toBe(64);
  });
});
