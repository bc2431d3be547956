// The --udp packet source: a bound UDP socket instead of libpcap, for hosts without
// libpcap or root. Nothing is ever sent from it. Shell.
import { createSocket, type Socket } from 'node:dgram';
import { SystemError } from '../src/errors.js';
import { parseAddress, type Address } from '../src/net/address.js';
import type { Frame } from './core/frame.js';

export interface PacketSource {
  /**
   * Capture counters where there are any. cap 0.2.1 does not expose pcap_stats, so kernel
   * drops are not known; `shed` counts frames dropped undecoded so that timers could run
   * under a flood, `reopens` the times the handle was reopened for the same reason.
   */
  stats(): { received: number; frames: number; rejected: number; shed: number; reopens: number } | undefined;
  close(): void;
}

/**
 * Binds `listen`:port (UDPListen), or by default [::]:port dual-stack (IPv4 arrives as
 * ::ffff:a.b.c.d and is folded to IPv4).
 */
export async function openUdpSource(port: number, onFrame: (f: Frame) => void, listen?: Address): Promise<PacketSource> {
  const sock: Socket = listen?.family === 4 ? createSocket({ type: 'udp4' }) : createSocket({ type: 'udp6', ipv6Only: listen !== undefined });
  const where = listen === undefined ? `udp/${port}` : `${listen.family === 6 ? `[${listen.text}]` : listen.text}:${port}/udp`;
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => reject(new SystemError('net', `${where}: cannot bind: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    sock.bind(port, listen?.text ?? '::', () => resolve());
  });
  const local = listen ?? parseAddress('::') ?? undefined;
  sock.on('message', (msg, rinfo) => {
    const src = parseAddress(rinfo.address.replace(/%.*$/, ''));
    if (!src || !local) return;
    onFrame({ src, dst: local, proto: 'udp', srcPort: rinfo.port, dstPort: port, tcpFlags: 0, payload: new Uint8Array(msg) });
  });
  sock.on('error', () => undefined); // a receive error on UDP is transient; nothing to answer
  return { stats: () => undefined, close: () => sock.close() };
}
