// The libpcap packet source: a Capture on the configured interface with the filter that keeps
// garbage in the kernel (server/bpf.ts), replaced as tag epochs pass and knocks are accepted. Shell.
import { OFF_NONCE } from '../src/protocol/constants.js';
import {
  buildFilter,
  covers,
  estimateInstructions,
  maxFilterKeys,
  MAX_EXCLUDED_NONCES,
  PER_EXTRA_CLAUSE,
  planEpochs,
  type EpochRange,
  type FilterSpec,
} from './bpf.js';
import { Capture } from './capture.js';
import type { Frame } from './core/frame.js';
import type { PacketSource } from './udp-source.js';

/** A nonce-only change (a knock accepted) replaces the filter at most this often. */
export const NONCE_SWAP_MIN_MS = 60_000;
/** Handles kept back for the last swap, to the filter without tags, and for capture reopens. */
const HANDLE_RESERVE = 16;

/** What the filter needs from the daemon's tag table (src/protocol/tag.ts). */
export interface TagSource {
  /** First 4 tag bytes of every authorized client for this epoch. */
  tagPrefixes(epoch: number): Uint32Array;
}

export interface KernelFilterOptions {
  readonly tags: TagSource;
  /** The freshness window now (it may change on reload). */
  readonly windowSec: () => number;
  readonly nowMs: () => number;
  /** One line when the filter leaves or returns to tag mode (warn when it leaves). */
  readonly notice: (level: 'info' | 'warn', fields: Record<string, unknown>, msg: string) => void;
}

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
  /** With it, the filter checks tags and accepted nonces in the kernel; without, length and version. */
  readonly kernelFilter?: KernelFilterOptions;
}

export type FilterMode = 'tags' | 'fallback' | 'length';

export interface PcapSource extends PacketSource {
  /** Re-plans the filter at nowSec (epochs passing, pending nonces); keysChanged after a reload. */
  refresh(nowSec: number, keysChanged?: boolean): void;
  /** A knock was accepted: its nonce is excluded in the kernel from now on (rate-limited). */
  accepted(datagram: Uint8Array, nowSec: number): void;
  filterMode(): FilterMode;
}

export function openPcapSource(o: PcapSourceOptions): PcapSource {
  const capture = new Capture();
  capture.onFrame(o.onFrame);
  capture.onError(o.onError);
  const base: FilterSpec = { spaPort: o.spaPort, datagramBytes: o.datagramBytes, version: o.version, tcpPorts: o.tcpPorts, udpPorts: o.udpPorts, extraClauses: o.extraClauses };
  const kf = o.kernelFilter;
  const filter = kf ? new KernelFilter(base, kf, capture) : undefined;
  // Past its burst limit the capture sheds the SPA port's frames (where a flood aims, and where
  // each frame may cost crypto) but keeps a sequence knock's few, cheap frames to other ports.
  const keepWhenShedding = (dstPort: number): boolean => dstPort !== o.spaPort;
  capture.open({ iface: o.iface, filter: filter ? filter.initial() : buildFilter(base), kernelBufferBytes: o.bufferBytes, keepWhenShedding });
  return {
    stats: () => {
      const s = capture.stats();
      return { received: s.received, frames: s.frames, rejected: s.rejected, shed: s.shed, reopens: s.reopens, filterSwaps: s.filterSwaps, duplicates: s.duplicates };
    },
    close: () => capture.close(),
    refresh: (nowSec, keysChanged = false) => filter?.refresh(nowSec, keysChanged),
    accepted: (datagram, nowSec) => filter?.accepted(datagram, nowSec),
    filterMode: () => filter?.mode ?? 'length',
  };
}

interface ExcludedNonce {
  readonly prefix: number;
  readonly untilSec: number;
}

/** Decides when the filter changes (the plan is bpf.ts's, pure); the Capture swaps the handles. */
class KernelFilter {
  mode: FilterMode = 'fallback';
  private keys = 0;
  private epochs: EpochRange | undefined;
  private nonces: ExcludedNonce[] = [];
  private noncesInstalled = true;
  private lastSwapMs = -Infinity;
  /** The handle budget ran out: the filter without tags stays for the life of the process. */
  private exhausted = false;
  private scheduled = false;

  constructor(
    private readonly base: FilterSpec,
    private readonly o: KernelFilterOptions,
    private readonly capture: Capture,
  ) {}

  /** The instruction room the ports and extra clauses take, in ports (bpf.ts's PER_PORT each). */
  private ports(): number {
    const extra = Math.ceil((PER_EXTRA_CLAUSE * (this.base.extraClauses?.length ?? 0)) / 6);
    return new Set(this.base.tcpPorts).size + new Set(this.base.udpPorts).size + extra;
  }

  /** The filter to open the capture with. */
  initial(): string {
    const nowSec = Math.floor(this.o.nowMs() / 1000);
    this.keys = this.o.tags.tagPrefixes(0).length;
    return this.plan(nowSec) ?? buildFilter(this.base);
  }

  /** The next filter text, updating mode and epochs; undefined: the filter without tags. */
  private plan(nowSec: number): string | undefined {
    const windowSec = this.o.windowSec();
    const range = this.exhausted ? undefined : planEpochs(nowSec, windowSec, this.keys, this.ports());
    const wasMode = this.mode;
    if (range === undefined) {
      this.mode = 'fallback';
      this.epochs = undefined;
      if (wasMode !== 'fallback' || this.lastSwapMs === -Infinity) {
        const why = this.exhausted
          ? { reason: 'capture handles spent (cap 0.2.1 keeps one per filter change); restart to check tags again' }
          : { reason: `${this.keys} keys, more than the ${maxFilterKeys(windowSec, this.ports())} a BPF program holds with Window ${windowSec}`, keys: this.keys };
        this.o.notice('warn', why, 'kernel tag filter off: right-size datagrams reach the daemon');
      }
      return undefined;
    }
    const tagPrefixes: number[] = [];
    for (let e = range.first; e <= range.last; e++) tagPrefixes.push(...this.o.tags.tagPrefixes(e));
    const nonces = this.nonces.filter((n) => n.untilSec >= nowSec);
    this.nonces = nonces;
    const spec: FilterSpec = { ...this.base, tags: { tagPrefixes, noncePrefixes: nonces.map((n) => n.prefix) } };
    this.mode = 'tags';
    this.epochs = range;
    if (wasMode !== 'tags') {
      this.o.notice('info', { keys: this.keys, epochs: range.last - range.first + 1, instructions: estimateInstructions(spec) }, 'kernel tag filter on');
    }
    return buildFilter(spec);
  }

  refresh(nowSec: number, keysChanged: boolean): void {
    if (keysChanged) this.keys = this.o.tags.tagPrefixes(0).length;
    const nowMs = this.o.nowMs();
    const stale = this.mode === 'tags' && (this.epochs === undefined || !covers(this.epochs, nowSec, this.o.windowSec()));
    const noncesDue = !this.noncesInstalled && nowMs - this.lastSwapMs >= NONCE_SWAP_MIN_MS;
    // A fallback filter changes only when the keys (or the window) let tags back in.
    const backToTags = this.mode === 'fallback' && !this.exhausted && planEpochs(nowSec, this.o.windowSec(), this.keys, this.ports()) !== undefined;
    if (!keysChanged && !stale && !(this.mode === 'tags' && noncesDue) && !backToTags) return;
    if (!this.exhausted && this.capture.handlesLeft() <= HANDLE_RESERVE) this.exhausted = true;
    const text = this.plan(nowSec) ?? buildFilter(this.base);
    this.lastSwapMs = nowMs;
    this.noncesInstalled = true;
    try {
      this.capture.setFilter(text);
    } catch (e) {
      // The old filter stays; the next tick tries again.
      this.epochs = undefined;
      this.o.notice('warn', { error: (e as Error).message }, 'capture filter not replaced; keeping the previous one');
    }
  }

  accepted(datagram: Uint8Array, nowSec: number): void {
    if (datagram.length < OFF_NONCE + 4) return;
    const prefix = (((datagram[OFF_NONCE] ?? 0) << 24) | ((datagram[OFF_NONCE + 1] ?? 0) << 16) | ((datagram[OFF_NONCE + 2] ?? 0) << 8) | (datagram[OFF_NONCE + 3] ?? 0)) >>> 0;
    // Its timestamp may be up to a window ahead, and it stays fresh a window after that.
    this.nonces.push({ prefix, untilSec: nowSec + 2 * this.o.windowSec() });
    if (this.nonces.length > MAX_EXCLUDED_NONCES) this.nonces.shift();
    this.noncesInstalled = false;
    // Off the packet path: opening a handle takes a while (the ring), and the knock's open
    // command should not wait for it.
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.refresh(Math.floor(this.o.nowMs() / 1000), false);
    });
  }
}
