// Key files on disk: read with type and mode checks, write without clobbering. Shell.
import { closeSync, constants, fchmodSync, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { FILE_LIMITS, FileReadError, readRegularFile } from './read-file.js';

export { FILE_LIMITS, FileReadError, readRegularFile };
import { UserError, SystemError } from '../src/errors.js';
import { clientPublicKey, clientSecretKey, serverPublicKey, serverSecretKey, type ClientPublicKey, type ClientSecretKey, type ServerPublicKey, type ServerSecretKey } from '../src/protocol/keys.js';
import { KEY_TYPES, checkKeyId, keyTypeOf, parseKey, type KeyType } from './format.js';
import { parseAuthorizedKeys, type AuthorizedEntry, type Problem } from './authorized.js';

function readText(file: string, what: string, maxBytes = FILE_LIMITS.key): string {
  try {
    return readRegularFile(file, maxBytes);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    if (e.failure === 'io') throw new SystemError('io', `${file}: ${what}: ${e.message}`, { cause: e });
    throw new UserError('file.missing', `${what}: ${e.message}`, { file });
  }
}

/** The first line that is not blank or a comment, with its number. */
function firstKeyLine(text: string): { text: string; line: number } | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const s = (lines[i] ?? '').trim();
    if (s !== '' && !s.startsWith('#')) return { text: s, line: i + 1 };
  }
  return undefined;
}

/** Refuses a secret key file that group or others may read (like OpenSSH's "UNPROTECTED PRIVATE KEY FILE"). */
export function checkSecretMode(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return; // readText reports the missing file with a better message
  }
  if ((mode & 0o077) !== 0) {
    const m = (mode & 0o777).toString(8).padStart(4, '0');
    throw new UserError('key.mode', `secret key is accessible by group or others (mode ${m}); run: chmod 600 ${file}`, { file });
  }
}

/**
 * Reads one key of the given type from a file: the first line that is not blank or a comment
 * holds the key string, optionally followed by whitespace and a key id (a `.pub` file's
 * `<key> <id>`), and nothing else (PROTOCOL.md §1).
 */
export function readKeyFile(file: string, type: KeyType): Uint8Array {
  if (type.endsWith('secret')) checkSecretMode(file);
  const text = readText(file, KEY_TYPES[type].noun.replace(/^an? /, ''));
  const first = firstKeyLine(text);
  if (!first) throw new UserError('key.parse', `no key in file`, { file });
  const where = { file, line: first.line };
  const [keyText = '', id, ...rest] = first.text.split(/\s+/);
  if (rest.length > 0) throw new UserError('key.parse', `expected the key and at most a key id on the line, got ${rest.length + 2} fields`, where);
  const idProblem = id === undefined ? undefined : checkKeyId(id);
  if (idProblem) throw new UserError('key.parse', `after the key: ${idProblem}`, where);
  return parseKey(keyText, type, where);
}

export const readServerSecretKey = (file: string): ServerSecretKey => serverSecretKey(readKeyFile(file, 'server-secret'));
export const readClientSecretKey = (file: string): ClientSecretKey => clientSecretKey(readKeyFile(file, 'client-secret'));

/**
 * A server public key given on the command line: the key text itself, or a file
 * holding it (server.pub).
 */
export function resolveServerPublicKey(textOrFile: string): ServerPublicKey {
  const s = textOrFile.trim();
  if (keyTypeOf(s) !== undefined) return serverPublicKey(parseKey(s, 'server-public'));
  return serverPublicKey(readKeyFile(s, 'server-public'));
}

export function readClientPublicKeyFile(file: string): ClientPublicKey {
  return clientPublicKey(readKeyFile(file, 'client-public'));
}

export function readAuthorizedKeysFile(file: string): { entries: AuthorizedEntry[]; problems: Problem[] } {
  return parseAuthorizedKeys(readText(file, 'authorized keys file', FILE_LIMITS.list), file);
}

/**
 * Writes a new file with the given mode, refusing to replace an existing one unless
 * force; the mode is set at creation so a secret is never briefly readable.
 */
export function writeNewFile(file: string, text: string, mode: number, force: boolean): void {
  // O_NOFOLLOW: --force over a symlink must not write a secret wherever the link points.
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (force ? constants.O_TRUNC : constants.O_EXCL);
  let fd: number;
  try {
    fd = openSync(file, flags, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError('key.exists', `already exists; not overwriting a key without --force`, { file });
    if (code === 'ELOOP') throw new UserError('key.exists', `is a symbolic link; not writing a key through it`, { file });
    if (code === 'ENOENT') throw new UserError('file.missing', `directory does not exist`, { file });
    if (code === 'EACCES') throw new UserError('file.missing', `permission denied`, { file });
    throw new SystemError('io', `${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    fchmodSync(fd, mode); // --force over an existing file keeps its old mode otherwise
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
