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
import { Capture, DEFAULT_KERNEL_BUFFER_BYTES } from './capture.js';
import type { Frame } from './core/frame.js';
import type { PacketSource } from './udp-source.js';

/** A nonce-only change (a replayed knock) replaces the filter at most this often. */
export const NONCE_SWAP_MIN_MS = 60_000;
/** After a filter replacement failed, the next try waits this long. */
const FAILED_SWAP_RETRY_MS = 60_000;
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
  /** One line when the filter leaves or returns to tag mode (warn when it leaves); a debug line at each swap. */
  readonly notice: (level: 'debug' | 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string) => void;
}

export interface PcapSourceOptions {
  readonly iface: string;
  readonly spaPort: number;
  readonly datagramBytes: number;
  readonly version: number;
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  /**
   * More filter clauses (the fwknop shape, server/fwknop-filter.ts), captured on a handle and a
   * ring of their own: see openPcapSource.
   */
  readonly extraClauses?: readonly string[];
  /** The ring of the handle that carries the extra clauses when there are any, else the only ring. */
  readonly bufferBytes: number;
  /**
   * With extra clauses: the ring of the handle for v1 knocks and sequence ports. Default: the
   * smaller of bufferBytes and PcapBufferMB's default (2 MiB).
   */
  readonly mainBufferBytes?: number;
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
  /**
   * A knock was accepted: its nonce goes into the next filter, and the filter is replaced for it
   * as soon as a replay of it reaches the daemon (rate-limited), not at once (see KernelFilter).
   */
  accepted(datagram: Uint8Array, nowSec: number): void;
  filterMode(): FilterMode;
}

/**
 * Extra clauses (fwknop packets) get a capture handle of their own. A fwknop packet names no key,
 * so the kernel can check only its shape, and a flood of fwknop-shaped garbage reaches the ring;
 * on lo (and any interface that offloads) a 64 MiB ring is 1,023 slots of 64 KiB, filled in
 * ~20 ms at 50,000/s. Whenever the event loop stalls longer (spawning a door's command took
 * 10-35 ms on this loaded 2-core machine, measured), the kernel drops what arrives, and with one
 * ring that was the v1 knocks and sequence knocks too: the knockd sequence sent just after an
 * accepted spa knock, whose start command was being spawned, was lost every time
 * (test/integration/fwknop-flood.test.ts). With two rings, the flood fills only its own; v1
 * knocks (tags checked in the kernel) and sequence ports keep a ring that garbage cannot reach.
 * With fwknop stanzas alone (fwknopd.conf) there is one handle, as there is nothing to keep apart.
 */
export function openPcapSource(o: PcapSourceOptions): PcapSource {
  const extras = o.extraClauses ?? [];
  // Only fwknop stanzas (fwknopd.conf; no spa key, no sequence door): nothing else to keep apart,
  // and a filter for nothing is one libpcap refuses ("expression rejects all packets").
  const onlyExtras = o.tcpPorts.length + o.udpPorts.length === 0 && o.kernelFilter !== undefined && o.kernelFilter.tags.tagPrefixes(0).length === 0;
  const split = extras.length > 0 && !onlyExtras;
  const capture = new Capture();
  capture.onError(o.onError);
  const base: FilterSpec = { spaPort: o.spaPort, datagramBytes: o.datagramBytes, version: o.version, tcpPorts: o.tcpPorts, udpPorts: o.udpPorts, extraClauses: split ? [] : extras };
  const kf = o.kernelFilter;
  const filter = kf ? new KernelFilter(base, kf, capture) : undefined;
  // Past its burst limit the capture sheds the SPA port's frames (where a flood aims, and where
  // each frame may cost crypto) but keeps a sequence knock's few, cheap frames to other ports.
  const keepWhenShedding = (dstPort: number): boolean => dstPort !== o.spaPort;
  capture.onFrame(
    filter
      ? (f) => {
          if (f.dstPort === o.spaPort && f.proto === 'udp') filter.seen(f.payload);
          o.onFrame(f);
        }
      : o.onFrame,
  );
  const mainBytes = !split ? o.bufferBytes : (o.mainBufferBytes ?? Math.min(o.bufferBytes, DEFAULT_KERNEL_BUFFER_BYTES));
  capture.open({ iface: o.iface, filter: filter ? filter.initial() : buildFilter(base), kernelBufferBytes: mainBytes, keepWhenShedding });
  let side: Capture | undefined;
  if (split) {
    side = new Capture();
    side.onError(o.onError);
    side.onFrame(o.onFrame);
    try {
      side.open({ iface: o.iface, filter: extras.map((c) => `(${c})`).join(' or '), kernelBufferBytes: o.bufferBytes });
    } catch (e) {
      capture.close();
      throw e;
    }
  }
  return {
    stats: () => {
      const s = capture.stats();
      const x = side?.stats();
      const sum = (k: 'received' | 'frames' | 'rejected' | 'shed' | 'reopens' | 'duplicates'): number => s[k] + (x?.[k] ?? 0);
      return { received: sum('received'), frames: sum('frames'), rejected: sum('rejected'), shed: sum('shed'), reopens: sum('reopens'), filterSwaps: s.filterSwaps, duplicates: sum('duplicates') };
    },
    close: () => {
      capture.close();
      side?.close();
    },
    refresh: (nowSec, keysChanged = false) => filter?.refresh(nowSec, keysChanged),
    accepted: (datagram, nowSec) => filter?.accepted(datagram, nowSec),
    filterMode: () => filter?.mode ?? 'length',
  };
}

interface ExcludedNonce {
  readonly prefix: number;
  readonly untilSec: number;
}

/**
 * Decides when the filter changes (the plan is bpf.ts's, pure); the Capture swaps the handles.
 *
 * An accepted knock's nonce is excluded only once a replay of it reaches the daemon (or with the
 * next swap for epochs or keys), never right after the accept. Opening the new handle blocks the
 * event loop for as long as libpcap takes to set up its ring (64 MiB, the fwknop default: 50-400
 * ms measured on this loaded 2-core machine; 2 MiB: 2-5 ms); meanwhile the old ring is not read,
 * and under a flood that passes the filter (fwknop-shaped garbage: no tag to check) it fills in
 * a few ms and the kernel drops the rest, whatever arrives before the new handle's filter is in
 * place. A swap right after each accept put that gap where a client's next knock lands (the
 * knockd sequence sent after a spa knock was lost every time, test/integration/fwknop-flood).
 * A replay flood still stays in the kernel, from its first frames on; a knock never replayed
 * costs no swap and no capture handle (cap keeps every one, server/capture.ts).
 */
class KernelFilter {
  mode: FilterMode = 'fallback';
  private keys = 0;
  private epochs: EpochRange | undefined;
  private nonces: ExcludedNonce[] = [];
  /** Nonce prefixes of accepted knocks that the installed filter does not exclude yet. */
  private pending = new Set<number>();
  /** A frame carrying a pending nonce reached the daemon: a replay, worth a swap. */
  private replayed = false;
  private lastSwapMs = -Infinity;
  /** When replacing the filter last failed (undefined: the last replacement worked). */
  private failedAtMs: number | undefined;
  /** The handle budget ran out: the filter without tags stays for the life of the process. */
  private exhausted = false;
  private scheduled = false;

  constructor(
    private readonly base: FilterSpec,
    private readonly o: KernelFilterOptions,
    private readonly capture: Capture,
  ) {}

  /** The instruction room the ports and extra clauses in this filter take, in ports (bpf.ts's PER_PORT each). */
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
    const noncesDue = this.replayed && this.pending.size > 0 && nowMs - this.lastSwapMs >= NONCE_SWAP_MIN_MS;
    // A fallback filter changes only when the keys (or the window) let tags back in.
    const backToTags = this.mode === 'fallback' && !this.exhausted && planEpochs(nowSec, this.o.windowSec(), this.keys, this.ports()) !== undefined;
    if (!keysChanged && !stale && !(this.mode === 'tags' && noncesDue) && !backToTags) return;
    // A failed replacement may leave its ring mapped (cap cannot close a handle whose open
    // failed): retry once a minute, not at every tick.
    if (!keysChanged && this.failedAtMs !== undefined && nowMs - this.failedAtMs < FAILED_SWAP_RETRY_MS) return;
    if (!this.exhausted && this.capture.handlesLeft() <= HANDLE_RESERVE) this.exhausted = true;
    const text = this.plan(nowSec) ?? buildFilter(this.base);
    this.lastSwapMs = nowMs;
    this.pending.clear();
    this.replayed = false;
    try {
      const replaced = this.capture.setFilter(text);
      this.failedAtMs = undefined;
      if (replaced) this.o.notice('debug', { mode: this.mode, keysChanged, nonces: this.nonces.length }, 'capture filter replaced');
    } catch (e) {
      // The old filter stays; a tick a minute from now tries again.
      this.failedAtMs = nowMs;
      this.epochs = undefined;
      this.o.notice('warn', { error: (e as Error).message }, 'capture filter not replaced; keeping the previous one');
      // The old filter's epochs run out within the minute: rather than drop valid knocks then,
      // pass every right-size datagram until a filter with tags can be installed again.
      const fallback = buildFilter(this.base);
      if (this.mode === 'tags' && text !== fallback) this.installFallback(fallback);
    }
  }

  private installFallback(text: string): void {
    try {
      this.capture.setFilter(text);
      this.mode = 'fallback';
      this.o.notice('warn', { retryInSec: FAILED_SWAP_RETRY_MS / 1000 }, 'kernel tag filter off: right-size datagrams reach the daemon');
    } catch (e) {
      this.o.notice('error', { error: (e as Error).message }, 'capture filter not replaced; keeping the previous one');
    }
  }

  accepted(datagram: Uint8Array, nowSec: number): void {
    if (datagram.length < OFF_NONCE + 4) return;
    const prefix = noncePrefix(datagram);
    // Its timestamp may be up to a window ahead, and it stays fresh a window after that.
    this.nonces.push({ prefix, untilSec: nowSec + 2 * this.o.windowSec() });
    if (this.nonces.length > MAX_EXCLUDED_NONCES) this.pending.delete(this.nonces.shift()!.prefix);
    this.pending.add(prefix);
  }

  /** Every frame to the SPA port (cheap: a length check, then one Set lookup). */
  seen(payload: Uint8Array): void {
    if (this.pending.size === 0 || payload.length !== this.base.datagramBytes) return;
    if (!this.pending.has(noncePrefix(payload))) return;
    this.replayed = true;
    // Off the packet path: opening a handle takes a while (the ring). Within a minute of the last
    // swap, the daemon's tick does it once the minute is up.
    if (this.scheduled || this.o.nowMs() - this.lastSwapMs < NONCE_SWAP_MIN_MS) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.refresh(Math.floor(this.o.nowMs() / 1000), false);
    });
  }
}

function noncePrefix(d: Uint8Array): number {
  return (((d[OFF_NONCE] ?? 0) << 24) | ((d[OFF_NONCE + 1] ?? 0) << 16) | ((d[OFF_NONCE + 2] ?? 0) << 8) | (d[OFF_NONCE + 3] ?? 0)) >>> 0;
}
