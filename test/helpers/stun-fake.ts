// A scripted STUN responder on 127.0.0.1 or ::1 (real UDP), for the discovery paths a real server
// does not take on demand: silence, an error answer, garbage before the answer, any address.
// Test helper; coturn (test/helpers/coturn.ts) is the real server.
import { createSocket, type Socket } from 'node:dgram';
import { MAGIC_COOKIE } from '../../client/stun.js';
import { parseAddress } from '../../src/net/address.js';

export type FakeBehaviour =
  /** Answers every request with this address and port (XOR-MAPPED-ADDRESS). */
  | { readonly kind: 'answer'; readonly ip: string; readonly port: number; readonly garbageFirst?: boolean }
  /** Reads requests and never answers. */
  | { readonly kind: 'silent' }
  /** Answers with a Binding error response of this code. */
  | { readonly kind: 'error'; readonly code: number; readonly phrase: string };

export interface FakeStun {
  readonly port: number;
  /** Requests received so far. */
  readonly requests: number;
  close(): void;
}

/** A Binding success (or error) answer for the request's transaction id. */
export function answerFor(request: Uint8Array, b: FakeBehaviour): Uint8Array | undefined {
  if (request.length < 20) return undefined;
  const txid = request.subarray(8, 20);
  let type: number;
  let attr: number[];
  if (b.kind === 'answer') {
    type = 0x0101;
    const a = parseAddress(b.ip);
    if (!a) throw new Error(`fake STUN: bad address ${b.ip}`);
    // RFC 8489 §14.2: XOR with the cookie, and for IPv6 the transaction id after it.
    const key = [0x21, 0x12, 0xa4, 0x42, ...txid];
    const x = [...a.bytes].map((v, i) => v ^ (key[i] ?? 0));
    attr = [0x00, 0x20, 0, 4 + x.length, 0, a.family === 4 ? 1 : 2, (b.port >> 8) ^ 0x21, (b.port & 0xff) ^ 0x12, ...x];
  } else if (b.kind === 'error') {
    type = 0x0111;
    const phrase = [...Buffer.from(b.phrase, 'ascii')];
    while (phrase.length % 4 !== 0) phrase.push(0x20);
    attr = [0x00, 0x09, 0, 4 + phrase.length, 0, 0, Math.floor(b.code / 100), b.code % 100, ...phrase];
  } else {
    return undefined;
  }
  const out = new Uint8Array(20 + attr.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, type);
  v.setUint16(2, attr.length);
  v.setUint32(4, MAGIC_COOKIE);
  out.set(txid, 8);
  out.set(attr, 20);
  return out;
}

export async function startFakeStun(b: FakeBehaviour, host = '127.0.0.1'): Promise<FakeStun> {
  const sock: Socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let requests = 0;
  sock.on('message', (m, from) => {
    requests++;
    const reply = answerFor(new Uint8Array(m), b);
    if (!reply) return;
    if (b.kind === 'answer' && b.garbageFirst) sock.send(Buffer.from('not stun at all, but first'), from.port, from.address);
    sock.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => sock.bind(0, host, r));
  return {
    port: sock.address().port,
    get requests() {
      return requests;
    },
    close: () => sock.close(),
  };
}

/** A UDP port on 127.0.0.1 with nothing bound to it: requests there get ICMP port unreachable. */
export async function closedUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
