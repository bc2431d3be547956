// One SPA knock: load the keys, choose addresses, encode, send (or show with --dry-run). Shell.
import { existsSync } from 'node:fs';
import { SystemError, UserError } from '../src/errors.js';
import { toHex } from '../src/bytes.js';
import { accessText } from '../src/net/access.js';
import { neverAClient, parseAddressOrThrow, type Address } from '../src/net/address.js';
import { encodeKnock } from '../src/protocol/datagram.js';
import { DATAGRAM_BYTES, MAX_ACCESS, NONCE_BYTES } from '../src/protocol/constants.js';
import { readClientSecretKey, resolveServerPublicKey } from '../keys/files.js';
import { localAddressFor, resolveHost, sendDatagram } from './resolve.js';
import type { SpaPlan } from './plan.js';

export interface KnockOptions {
  readonly plan: SpaPlan;
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
  const p = o.plan;
  if (p.access.length === 0) throw new UserError('usage', 'no access given (-A PROTO/PORT)');
  if (p.access.length > MAX_ACCESS) throw new UserError('usage', `at most ${MAX_ACCESS} access entries fit in one knock, got ${p.access.length}`);
  if (p.keyById && !existsSync(p.keyFile)) {
    throw new UserError('key.missing', `unknown key id ${JSON.stringify(p.keyId)}: no ${p.keyFile} (make one with: spa-knock keygen --id ${p.keyId})`);
  }
  const client = readClientSecretKey(p.keyFile);
  const server = resolveServerPublicKey(p.serverKey);
  const target = await resolveHost(p.target, p.family);
  const allow = p.allowIp === undefined ? await localAddressFor(target, p.port) : parseAddressOrThrow(p.allowIp, '--allow-ip');
  const never = neverAClient(allow);
  if (never) throw new UserError('address.parse', `--allow-ip: ${allow.text} is ${never}, which is never a client's address`);
  const timeSec = Math.floor(io.nowMs() / 1000);
  const datagram = encodeKnock({ client, server, allow, access: p.access, timeSec, nonce: io.random(NONCE_BYTES) });
  const summary = `knock ${p.host} (${target.text}) udp/${p.port} as ${p.keyId}: allow ${allow.text} ${p.access.map(accessText).join(',')}, ${DATAGRAM_BYTES} bytes`;
  if (o.dryRun) {
    io.stdout(`${summary} (dry run, not sent)\n${toHex(datagram)}\n`);
    return { target, allow, datagram };
  }
  try {
    await sendDatagram(target, p.port, datagram);
  } catch (e) {
    throw new SystemError('net', `${p.host}: cannot send knock: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (o.verbose) io.stderr(`spa-knock: sent ${summary}\n`);
  return { target, allow, datagram };
}
