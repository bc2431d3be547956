// The --udp packet source: a bound UDP socket instead of libpcap, for hosts without
// libpcap or root. Nothing is ever sent from it. Shell.
import { createSocket, type Socket } from 'node:dgram';
import { SystemError } from '../src/errors.js';
import { parseAddress } from '../src/net/address.js';
import type { Frame } from './core/frame.js';

export interface PacketSource {
  /**
   * Capture counters where there are any. cap 0.2.1 does not expose pcap_stats, so kernel
   * drops are not known; `shed` counts frames dropped undecoded so that timers could run
   * under a flood, `reopens` the times the handle was reopened for the same reason.
   */
  stats(): { received: number; frames: number; rejected: number; shed: number; reopens: number; filterSwaps?: number; duplicates?: number } | undefined;
  close(): void;
  /** The kernel filter (pcap only): tags may have changed (tick, reload: keysChanged). */
  refresh?(nowSec: number, keysChanged?: boolean): void;
  /** The kernel filter (pcap only): this datagram was accepted; exclude its nonce. */
  accepted?(datagram: Uint8Array, nowSec: number): void;
}

/** Binds [::]:port dual-stack (IPv4 arrives as ::ffff:a.b.c.d and is folded to IPv4). */
export async function openUdpSource(port: number, onFrame: (f: Frame) => void): Promise<PacketSource> {
  const sock: Socket = createSocket({ type: 'udp6', ipv6Only: false });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => reject(new SystemError('net', `udp/${port}: cannot bind: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    sock.bind(port, '::', () => resolve());
  });
  const local = parseAddress('::') ?? undefined;
  sock.on('message', (msg, rinfo) => {
    const src = parseAddress(rinfo.address.replace(/%.*$/, ''));
    if (!src || !local) return;
    onFrame({ src, dst: local, proto: 'udp', srcPort: rinfo.port, dstPort: port, tcpFlags: 0, payload: new Uint8Array(msg) });
  });
  sock.on('error', () => undefined); // a receive error on UDP is transient; nothing to answer
  return { stats: () => undefined, close: () => sock.close() };
}
