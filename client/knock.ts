// One SPA knock: load the keys, choose addresses, encode, send (or show with --dry-run). Shell.
import { existsSync } from 'node:fs';
import { SystemError, UserError } from '../src/errors.js';
import { toHex } from '../src/bytes.js';
import { accessText } from '../src/net/access.js';
import type { Address } from '../src/net/address.js';
import { encodeKnock } from '../src/protocol/datagram.js';
import { allowText } from '../src/protocol/body.js';
import { DATAGRAM_BYTES, MAX_ACCESS, NONCE_BYTES } from '../src/protocol/constants.js';
import { readClientSecretKey, resolveServerPublicKey } from '../keys/files.js';
import { resolveHost, sendDatagram } from './resolve.js';
import type { SpaPlan } from './plan.js';
import { chooseAllow } from './allow.js';
import { allowOfChoice, allowWarning, type AllowChoice } from './nat-advice.js';

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
  /** How the allow address was chosen (for the hint when the door stays shut). */
  readonly allow: AllowChoice;
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
  const choice = await chooseAllow(p, target, o.verbose, io);
  const warning = allowWarning(choice, target);
  if (warning) io.stderr(`spa-knock: ${warning}\n`);
  const allow = allowOfChoice(choice);
  const timeSec = Math.floor(io.nowMs() / 1000);
  const datagram = encodeKnock({ client, server, allow, access: p.access, timeSec, nonce: io.random(NONCE_BYTES) });
  const summary = `knock ${p.host} (${target.text}) udp/${p.port} as ${p.keyId}: allow ${allowText(allow)} ${p.access.map(accessText).join(',')}, ${DATAGRAM_BYTES} bytes`;
  if (o.dryRun) {
    io.stdout(`${summary} (dry run, not sent)\n${toHex(datagram)}\n`);
    return { target, allow: choice, datagram };
  }
  try {
    await sendDatagram(target, p.port, datagram);
  } catch (e) {
    throw new SystemError('net', `${p.host}: cannot send knock: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (o.verbose) io.stderr(`spa-knock: sent ${summary}\n`);
  return { target, allow: choice, datagram };
}
