// The libpcap packet source: a Capture on the configured interface with the filter that
// keeps garbage in the kernel (server/bpf.ts). Shell.
import { buildFilter } from './bpf.js';
import { Capture } from './capture.js';
import type { Frame } from './core/frame.js';
import type { PacketSource } from './udp-source.js';

export interface PcapSourceOptions {
  readonly iface: string;
  readonly spaPort: number;
  readonly datagramBytes: number;
  readonly version: number;
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  /** More filter clauses, OR-ed in (the fwknop shape, server/fwknop-filter.ts). */
  readonly extraClauses?: readonly string[];
  readonly bufferBytes: number;
  readonly onFrame: (f: Frame) => void;
  /** The capture died (interface gone): the daemon logs it and stops. */
  readonly onError: (e: Error) => void;
}

export function openPcapSource(o: PcapSourceOptions): PacketSource {
  const capture = new Capture();
  capture.onFrame(o.onFrame);
  capture.onError(o.onError);
  capture.open({
    iface: o.iface,
    filter: buildFilter({ spaPort: o.spaPort, datagramBytes: o.datagramBytes, version: o.version, tcpPorts: o.tcpPorts, udpPorts: o.udpPorts, extraClauses: o.extraClauses }),
    kernelBufferBytes: o.bufferBytes,
  });
  return {
    stats: () => {
      const s = capture.stats();
      return { received: s.received, frames: s.frames, rejected: s.rejected, shed: s.shed, reopens: s.reopens };
    },
    close: () => capture.close(),
  };
}
