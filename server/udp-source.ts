// The --udp packet source: a bound UDP socket instead of libpcap, for hosts without
// libpcap or root. Nothing is ever sent from it. Shell.
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { SystemError } from '../src/errors.js';
import { parseAddress, type Address } from '../src/net/address.js';
import type { Frame } from './core/frame.js';

export interface PacketSource {
  /**
   * Capture counters where there are any. cap 0.2.1 does not expose pcap_stats, so kernel
   * drops are not known; `shed` counts frames dropped undecoded so that timers could run
   * under a flood, `reopens` the times the handle was reopened for the same reason.
   */
  stats(): { received: number; frames: number; rejected: number; shed: number; reopens: number; kernelDrops?: number; filterSwaps?: number; duplicates?: number } | undefined;
  close(): void;
  /** The receive buffer the kernel granted (UDP socket), in bytes. */
  readonly bufferBytes?: number;
  /** The kernel filter (pcap only): tags may have changed (tick, reload: keysChanged). */
  refresh?(nowSec: number, keysChanged?: boolean): void;
  /** The kernel filter (pcap only): this datagram was accepted; exclude its nonce. */
  accepted?(datagram: Uint8Array, nowSec: number): void;
}

/**
 * Datagrams the kernel dropped for sockets bound to `port` (the last field of
 * /proc/net/udp and udp6: a full receive buffer), or undefined when it cannot be read.
 */
function kernelDrops(port: number): number | undefined {
  let total = 0;
  let seen = false;
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !f[1]!.endsWith(portHex)) continue;
      seen = true;
      total += Number(f[f.length - 1]) || 0;
    }
  }
  return seen ? total : undefined;
}

/**
 * Binds `listen`:port (UDPListen), or by default [::]:port dual-stack (IPv4 arrives as
 * ::ffff:a.b.c.d and is folded to IPv4).
 */
export async function openUdpSource(port: number, onFrame: (f: Frame) => void, listen?: Address, bufferBytes?: number): Promise<PacketSource> {
  const sock: Socket = listen?.family === 4 ? createSocket({ type: 'udp4' }) : createSocket({ type: 'udp6', ipv6Only: listen !== undefined });
  const where = listen === undefined ? `udp/${port}` : `${listen.family === 6 ? `[${listen.text}]` : listen.text}:${port}/udp`;
  await new Promise<void>((resolve, reject) => {
    sock.once('error', (e) => reject(new SystemError('net', `${where}: cannot bind: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    sock.bind(port, listen?.text ?? '::', () => resolve());
  });
  // The default (~208 KiB) lost a third of a 5k/s flood; the kernel caps what we ask for at
  // net.core.rmem_max (SO_RCVBUFFORCE is not reachable from Node): the daemon logs what it got.
  if (bufferBytes !== undefined) {
    try {
      sock.setRecvBufferSize(bufferBytes);
    } catch {
      // keep the default; bufferBytes below says what the socket has
    }
  }
  let granted: number | undefined;
  try {
    granted = sock.getRecvBufferSize();
  } catch {
    granted = undefined;
  }
  let received = 0;
  const local = listen ?? parseAddress('::') ?? undefined;
  sock.on('message', (msg, rinfo) => {
    received++;
    const src = parseAddress(rinfo.address.replace(/%.*$/, ''));
    if (!src || !local) return;
    onFrame({ src, dst: local, proto: 'udp', srcPort: rinfo.port, dstPort: port, tcpFlags: 0, payload: new Uint8Array(msg) });
  });
  sock.on('error', () => undefined); // a receive error on UDP is transient; nothing to answer
  const dropsAtStart = kernelDrops(port) ?? 0;
  return {
    stats: () => {
      const d = kernelDrops(port);
      return { received, frames: received, rejected: 0, shed: 0, reopens: 0, ...(d === undefined ? {} : { kernelDrops: Math.max(0, d - dropsAtStart) }) };
    },
    close: () => sock.close(),
    ...(granted === undefined ? {} : { bufferBytes: granted }),
  };
}
