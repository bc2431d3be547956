// One SPA knock: load the keys, choose addresses, encode, send (or show with --dry-run). Shell.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError, UserError } from '../src/errors.js';
import { toHex } from '../src/bytes.js';
import { accessText, type Access } from '../src/net/access.js';
import { parseAddressOrThrow, type Address, type Family } from '../src/net/address.js';
import { encodeKnock } from '../src/protocol/datagram.js';
import { DATAGRAM_BYTES, MAX_ACCESS, NONCE_BYTES } from '../src/protocol/constants.js';
import { checkKeyId } from '../keys/format.js';
import { readClientSecretKey, resolveServerPublicKey } from '../keys/files.js';
import { localAddressFor, resolveHost, sendDatagram } from './resolve.js';

export interface KnockOptions {
  readonly host: string;
  readonly keyId: string;
  readonly keyDir: string;
  readonly serverKey: string;
  readonly port: number;
  readonly access: readonly Access[];
  /** An address, or undefined for the kernel's choice of source address. */
  readonly allowIp: string | undefined;
  readonly family: Family | undefined;
  readonly dryRun: boolean;
  readonly verbose: boolean;
}

export interface KnockIo {
  stdout(s: string): void;
  stderr(s: string): void;
  nowMs(): number;
  random(n: number): Uint8Array;
}

export interface KnockResult {
  readonly target: Address;
  readonly allow: Address;
  readonly datagram: Uint8Array;
}

export async function runKnock(o: KnockOptions, io: KnockIo): Promise<KnockResult> {
  const badId = checkKeyId(o.keyId);
  if (badId) throw new UserError('usage', `--key: ${badId}`);
  if (o.access.length === 0) throw new UserError('usage', 'no access given (-A PROTO/PORT)');
  if (o.access.length > MAX_ACCESS) throw new UserError('usage', `at most ${MAX_ACCESS} access entries fit in one knock, got ${o.access.length}`);
  const keyFile = join(o.keyDir, `${o.keyId}.key`);
  if (!existsSync(keyFile)) {
    throw new UserError('key.missing', `unknown key id ${JSON.stringify(o.keyId)}: no ${keyFile} (make one with: spa-knock keygen --id ${o.keyId})`);
  }
  const client = readClientSecretKey(keyFile);
  const server = resolveServerPublicKey(o.serverKey);
  const target = await resolveHost(o.host, o.family);
  const allow = o.allowIp === undefined ? await localAddressFor(target, o.port) : parseAddressOrThrow(o.allowIp, '--allow-ip');
  const timeSec = Math.floor(io.nowMs() / 1000);
  const datagram = encodeKnock({ client, server, allow, access: o.access, timeSec, nonce: io.random(NONCE_BYTES) });
  const summary = `knock ${o.host} (${target.text}) udp/${o.port} as ${o.keyId}: allow ${allow.text} ${o.access.map(accessText).join(',')}, ${DATAGRAM_BYTES} bytes`;
  if (o.dryRun) {
    io.stdout(`${summary} (dry run, not sent)\n${toHex(datagram)}\n`);
    return { target, allow, datagram };
  }
  try {
    await sendDatagram(target, o.port, datagram);
  } catch (e) {
    throw new SystemError('net', `${o.host}: cannot send knock: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (o.verbose) io.stderr(`spa-knock: sent ${summary}\n`);
  return { target, allow, datagram };
}
