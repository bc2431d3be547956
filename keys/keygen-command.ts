// The keygen commands of both CLIs: write a key pair into a directory. Shell.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../src/errors.js';
import { checkKeyId } from './format.js';
import { generateClientKey, generateServerKey, secretFileText, type RandomBytes } from './keygen.js';
import { writeNewFile } from './files.js';

const osRandom: RandomBytes = (n) => new Uint8Array(randomBytes(n));

export interface WrittenKey {
  readonly secretFile: string;
  readonly publicFile: string;
  /** What keygen prints on stdout. */
  readonly publicLine: string;
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new UserError('file.missing', `cannot create key directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: dir });
  }
}

/** Checks both files before writing either, so a refusal never leaves half a key pair. */
function refuseExisting(force: boolean, ...files: string[]): void {
  if (force) return;
  for (const file of files) {
    if (existsSync(file)) throw new UserError('key.exists', `already exists; not overwriting a key without --force`, { file });
  }
}

export function writeServerKey(dir: string, force: boolean, random: RandomBytes = osRandom): WrittenKey {
  ensureDir(dir);
  const k = generateServerKey(random);
  const secretFile = join(dir, 'server.key');
  const publicFile = join(dir, 'server.pub');
  refuseExisting(force, secretFile, publicFile);
  writeNewFile(secretFile, secretFileText('spa server secret key', k.secretText), 0o600, force);
  writeNewFile(publicFile, `${k.publicText}\n`, 0o644, force);
  return { secretFile, publicFile, publicLine: k.publicText };
}

export function writeClientKey(dir: string, id: string, force: boolean, random: RandomBytes = osRandom): WrittenKey {
  const bad = checkKeyId(id);
  if (bad) throw new UserError('usage', `--id: ${bad}`);
  ensureDir(dir);
  const k = generateClientKey(random, id);
  const secretFile = join(dir, `${id}.key`);
  const publicFile = join(dir, `${id}.pub`);
  refuseExisting(force, secretFile, publicFile);
  writeNewFile(secretFile, secretFileText(`spa client secret key ${id}`, k.secretText), 0o600, force);
  writeNewFile(publicFile, `${k.authorizedLine}\n`, 0o644, force);
  return { secretFile, publicFile, publicLine: k.authorizedLine };
}
