// Deterministic key material for the benchmark: one server key and up to 10,000 authorized
// client keys (client 0 is the one that knocks), as objects and as the files the CLIs read.
// Shell only in writeKeyFiles (files); the rest is pure.
//
// Only the first few clients get secret key objects (tweetnacl's, ~2 ms each here). The others
// only have to be authorized: their public halves are derived from deterministic seeds with
// node:crypto, since the server refuses keys that are not real (protocol v1's strict keys).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { concat } from '../src/bytes.js';
import { clientSecretKey, serverSecretKey, type ClientSecretKey, type ServerSecretKey } from '../src/protocol/keys.js';
import { ed25519PublicFromSeed, x25519PublicFromSecret } from '../src/protocol/primitives.js';
import { encodeKey } from '../keys/format.js';
import { secretFileText } from '../keys/keygen.js';
import { det } from './util.js';

export const KNOCKER_ID = 'bench0';

export interface BenchKeys {
  readonly server: ServerSecretKey;
  readonly serverSecretText: string;
  readonly serverPublicText: string;
  /** Clients with secret keys: clients[i] has id `bench${i}`. */
  readonly clients: readonly ClientSecretKey[];
  readonly clientSecretTexts: readonly string[];
  /** Public keys (signPublic ‖ boxPublic) of all `count` clients, id `bench${i}`. */
  readonly publics: readonly Uint8Array[];
  /** `<client public key> <id>` lines, same order. */
  readonly authorizedLines: readonly string[];
}

export function makeBenchKeys(count: number, withSecrets = 4): BenchKeys {
  const serverSecret = det('server', 32);
  const server = serverSecretKey(serverSecret);
  const clients: ClientSecretKey[] = [];
  const clientSecretTexts: string[] = [];
  const publics: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (i < withSecrets) {
      const secret = det(`client ${i}`, 64);
      const c = clientSecretKey(secret);
      clients.push(c);
      clientSecretTexts.push(encodeKey('client-secret', secret));
      publics.push(concat(c.signPublic, c.boxPublic));
    } else {
      // Real public keys from deterministic seeds via node:crypto (~0.1 ms each): the server
      // refuses an Ed25519 key off the curve and a non-canonical X25519 one, as it should.
      const seed = det(`client public ${i}`, 64);
      publics.push(concat(ed25519PublicFromSeed(seed.subarray(0, 32)), x25519PublicFromSecret(seed.subarray(32))));
    }
  }
  const authorizedLines = publics.map((p, i) => `${encodeKey('client-public', p)} bench${i}`);
  return {
    server,
    serverSecretText: encodeKey('server-secret', serverSecret),
    serverPublicText: encodeKey('server-public', server.boxPublic),
    clients,
    clientSecretTexts,
    publics,
    authorizedLines,
  };
}

export interface KeyFiles {
  readonly serverKey: string;
  readonly serverPub: string;
  /** SPA_KNOCK_HOME holding bench0.key for spa-knock. */
  readonly clientHome: string;
  /** Authorized-keys file with the first n clients. */
  authorized(n: number): string;
}

export function writeKeyFiles(dir: string, k: BenchKeys): KeyFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const serverKey = join(dir, 'server.key');
  const serverPub = join(dir, 'server.pub');
  writeFileSync(serverKey, secretFileText('spa server secret key', k.serverSecretText), { mode: 0o600 });
  writeFileSync(serverPub, `${k.serverPublicText}\n`, { mode: 0o644 });
  const clientHome = join(dir, 'client');
  mkdirSync(clientHome, { recursive: true, mode: 0o700 });
  writeFileSync(join(clientHome, `${KNOCKER_ID}.key`), secretFileText('spa client secret key', k.clientSecretTexts[0] ?? ''), { mode: 0o600 });
  return {
    serverKey,
    serverPub,
    clientHome,
    authorized(n: number): string {
      const file = join(dir, `authorized-${n}.keys`);
      writeFileSync(file, `${k.authorizedLines.slice(0, n).join('\n')}\n`, { mode: 0o644 });
      return file;
    },
  };
}
