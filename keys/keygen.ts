// Key generation from injected randomness: key strings and the files' text. Pure.
import { encodeKey, parseKey } from './format.js';
import { clientSecretKey, serverSecretKey } from '../src/protocol/keys.js';
import { concat } from '../src/bytes.js';

export type RandomBytes = (n: number) => Uint8Array;

export interface GeneratedServerKey {
  readonly secretText: string;
  readonly publicText: string;
}

export function generateServerKey(random: RandomBytes): GeneratedServerKey {
  const secret = random(32);
  const key = serverSecretKey(secret);
  const publicText = encodeKey('server-public', key.boxPublic);
  parseKey(publicText, 'server-public'); // refuses a low-order key, as every client would
  return { secretText: encodeKey('server-secret', secret), publicText };
}

export interface GeneratedClientKey {
  readonly secretText: string;
  readonly publicText: string;
  /** The authorized-keys line: `<client public key> <id>`. */
  readonly authorizedLine: string;
}

export function generateClientKey(random: RandomBytes, id: string): GeneratedClientKey {
  const secret = random(64);
  const key = clientSecretKey(secret);
  const publicText = encodeKey('client-public', concat(key.signPublic, key.boxPublic));
  parseKey(publicText, 'client-public'); // what we hand out passes every check a server makes (PROTOCOL.md §1.1)
  return { secretText: encodeKey('client-secret', secret), publicText, authorizedLine: `${publicText} ${id}` };
}

/** The text of a secret key file: a comment line, then the key. */
export function secretFileText(what: string, keyText: string): string {
  return `# ${what}: keep this file secret (mode 0600)\n${keyText}\n`;
}
