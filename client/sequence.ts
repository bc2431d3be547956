// Classic port-knock sequences, as knock(1) sends them: TCP by one SYN (a non-blocking connect
// that is dropped at once, so no handshake and no retransmission) and UDP by a 1-byte
// datagram, in order, with an optional pause between knocks. Shell (sockets, timers).
import { Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { SystemError } from '../src/errors.js';
import { sequenceText } from '../src/config/sequence.js';
import type { KnockPort } from '../src/config/types.js';
import type { Address } from '../src/net/address.js';
import { resolveHost } from './resolve.js';
import type { SequencePlan } from './plan.js';

export interface SequenceIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

export interface SequenceResult {
  readonly target: Address;
}

/**
 * Sends one TCP SYN to target:port. connect() on a non-blocking socket sends the SYN before
 * it returns; Node issues that call on the next tick for an IP literal, so once setImmediate
 * fires the SYN is out and the socket is closed. A socket closed in SYN-SENT sends nothing
 * more: no retransmitted SYN, which knockd would count as a wrong knock (a duplicate), and no
 * completed handshake, even if the port is listening (our kernel answers its SYN-ACK with RST).
 */
export async function sendSyn(target: Address, port: number): Promise<void> {
  const s = new Socket();
  let failed: NodeJS.ErrnoException | undefined;
  s.on('error', (e: NodeJS.ErrnoException) => {
    // A refusal is the closed port answering the SYN: the knock went out. Anything else
    // reported this early (ENETUNREACH, EACCES...) means connect() itself failed.
    if (e.code !== 'ECONNREFUSED' && e.code !== 'ECONNRESET') failed ??= e;
  });
  s.connect({ host: target.text, port, family: target.family });
  await new Promise<void>((resolve) => setImmediate(resolve));
  s.destroy();
  if (failed) throw failed;
}

/** Sends a 1-byte UDP datagram (one NUL, as knock(1) does) to target:port. */
export async function sendUdpKnock(target: Address, port: number): Promise<void> {
  const sock = createSocket(target.family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.send(Uint8Array.of(0), port, target.text, (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    sock.close();
  }
}

export async function sendKnockPort(target: Address, k: KnockPort): Promise<void> {
  if (k.proto === 'tcp') await sendSyn(target, k.port);
  else await sendUdpKnock(target, k.port);
}

export async function runSequence(plan: SequencePlan, opts: { dryRun: boolean; verbose: boolean }, io: SequenceIo): Promise<SequenceResult> {
  const target = await resolveHost(plan.target, plan.family);
  const text = sequenceText(plan.sequence);
  const summary = `knock ${plan.host} (${target.text}) sequence ${text}${plan.delayMs > 0 ? `, ${plan.delayMs} ms apart` : ''}`;
  if (plan.why === 'fallback' && opts.verbose) io.stderr(`spa-knock: ${plan.host}: no SPA key for this host; knocking its Sequence instead\n`);
  if (opts.dryRun) {
    io.stdout(`${summary} (dry run, not sent)\n`);
    return { target };
  }
  for (let i = 0; i < plan.sequence.length; i++) {
    const k = plan.sequence[i]!;
    if (i > 0 && plan.delayMs > 0) await new Promise((r) => setTimeout(r, plan.delayMs));
    try {
      await sendKnockPort(target, k);
    } catch (e) {
      throw new SystemError('net', `${plan.host}: cannot knock ${k.port}:${k.proto}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
  }
  if (opts.verbose) io.stderr(`spa-knock: sent ${summary}\n`);
  return { target };
}
