// The cap (libpcap) wrapper: opens a capture, decodes each frame synchronously and hands out
// frames whose bytes are copies. Shell. It owns the Buffer cap writes into (DESIGN.md, "cap and its
// buffer"), never lets V8 collect a cap handle, and keeps a flood from starving the event loop.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { SystemError } from '../src/errors.js';
import {
  decodeFrame,
  isFrameReject,
  linkTypeFromCap,
  type Frame,
  type FrameRejectReason,
  type LinkType,
} from './core/frame.js';
import { OverlapDedup } from './core/overlap.js';

/**
 * 2 MiB, PcapBufferMB's default: with the tag filter in the kernel (server/bpf.ts) only knocks,
 * early replays and forgeries with a copied tag reach the ring, and the ring is resident memory.
 * libpcap's TPACKET_V2 ring (cap asks for immediate mode) gives each frame a slot sized by the
 * snaplen (65535) wherever the interface offloads (lo, veth, most NICs): 32 frames in 4 MiB of
 * blocks; without offloads and at MTU 1500, ~1,300 (docs/CONFIGURATION.md, PcapBufferMB).
 */
export const DEFAULT_KERNEL_BUFFER_BYTES = 2 * 1024 * 1024;
/** cap asks libpcap for a 65535-byte snaplen; a frame buffer this size never truncates. */
export const DEFAULT_FRAME_BUFFER_BYTES = 65535;
/** After this long without the event loop turning, frames are counted and dropped (onPacket). */
export const DEFAULT_MAX_BURST_MS = 100;
/** After this long, the handle is closed and reopened so the loop can turn (onPacket). */
export const DEFAULT_MAX_STALL_MS = 1000;
/**
 * A burst sheds (or reopens) only past this many frames: one slow frame (an accepted knock whose
 * command is being spawned on a busy machine took over 100 ms here) followed by the next knock
 * in the same poll callback is not a flood, and that knock must not be dropped.
 */
export const MIN_BURST_FRAMES = 32;
/**
 * Every cap handle this process ever made is kept (see `retained`), ~1 KB each measured here.
 * Reopens stop at this many (10 MB); the capture then only sheds.
 */
export const MAX_RETAINED_HANDLES = 10_000;
/**
 * setFilter: the old handle stays open this long beside the new one, so the frames already in its
 * ring are read before it closes (no gap); frames both rings hold meanwhile are delivered once
 * (server/core/overlap.ts), and for as long again after it closes.
 */
export const FILTER_OVERLAP_MS = 250;
/** Frames remembered per handle while two are open, to deliver each frame once (bounded). */
const MAX_OVERLAP_FRAMES = 4096;

export type CaptureRejectReason = FrameRejectReason | 'capture.truncated';

export interface CaptureOptions {
  /** Interface name as libpcap knows it (`lo`, `eth0`, `any`). */
  readonly iface: string;
  /** libpcap filter expression (server/bpf.ts builds it). */
  readonly filter: string;
  /** libpcap's ring (pcap_set_buffer_size); default DEFAULT_KERNEL_BUFFER_BYTES. */
  readonly kernelBufferBytes?: number;
  /** Infinity: never shed. */
  readonly maxBurstMs?: number;
  /**
   * Past maxBurstMs, frames for which this says yes are still decoded and handled (it must be
   * cheap: a port compare), the rest are shed. Unset: every frame past maxBurstMs is shed.
   */
  readonly keepWhenShedding?: (dstPort: number, proto: 'tcp' | 'udp') => boolean;
  /** Infinity: never reopen (with maxBurstMs Infinity too, cap drains its ring however long it takes). */
  readonly maxStallMs?: number;
}

export interface CaptureStats {
  /** Frames cap handed to us. Kernel drops are not known: cap 0.2.1 does not expose pcap_stats. */
  readonly received: number;
  /** Frames decoded and passed to the frame handler. */
  readonly frames: number;
  /** Frames refused, truncated ones included (by reason in rejectedBy). */
  readonly rejected: number;
  readonly rejectedBy: Readonly<Partial<Record<CaptureRejectReason, number>>>;
  /** Frames dropped undecoded because the capture had held the event loop for maxBurstMs. */
  readonly shed: number;
  /** Times the capture closed and reopened its handle because a burst lasted maxStallMs. */
  readonly reopens: number;
  /** Times setFilter replaced the filter. */
  readonly filterSwaps: number;
  /** Frames both handles delivered while a filter was replaced, dropped as the copies they are. */
  readonly duplicates: number;
}

// cap 0.2.1 ships no types; this is the part of its API we use (lib/Cap.js, src/binding.cc).
interface CapHandle {
  open(device: string, filter: string, kernelBufferBytes: number, buffer: Buffer): string;
  close(): boolean;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): unknown;
  removeAllListeners(event: 'packet'): unknown;
}
interface CapModule {
  Cap: { new (): CapHandle; deviceList(): { name: string }[] };
}

/** The one line `run` (libpcap mode) and `check` refuse with when cap is not installed. */
export const CAP_MISSING =
  'libpcap capture needs the optional package cap, which is not installed: it builds at install with ' +
  "libpcap's headers and a C++ compiler (apt-get install libpcap-dev g++ make python3, then npm install cap), " +
  'or set UDPSocket = yes (or run --udp) to bind the port instead';

// cap is an optional dependency (an install needs no compiler): loaded on first use, not at import.
let capModule: CapModule | undefined;
let capError: string | undefined;

function loadCap(): CapModule {
  if (capModule !== undefined) return capModule;
  if (capError === undefined) {
    try {
      capModule = createRequire(import.meta.url)('cap') as CapModule;
      return capModule;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      capError = code === 'MODULE_NOT_FOUND' ? CAP_MISSING : `${CAP_MISSING} (cap: ${(err as Error).message.split('\n')[0]})`;
    }
  }
  throw new SystemError('capture', capError);
}

/** Why libpcap capture cannot work in this installation (cap missing or broken), or undefined. */
export function captureUnavailable(): string | undefined {
  try {
    loadCap();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// No cap handle may ever be collected: its destructor is unsafe whatever state it is in (cap 0.2.1,
// src/binding.cc, seen here):
// - closed or never opened: ~Pcap's Nan::AsyncResource calls node::EmitAsyncDestroy from inside
//   V8's GC weak callback, which segfaults in AsyncWrap::EmitDestroy when the collection is
//   triggered from some JS (reproduced in plain node and in vitest workers);
// - open() threw after pcap_create: ~Pcap calls uv_poll_stop on a never-initialised uv_poll_t
//   (SIGSEGV, or an assertion abort in uv_poll_stop).
// So every handle is kept here for the life of the process: one per Capture in normal use, plus
// one per reopen (bounded by MAX_RETAINED_HANDLES) and per failed open.
const retained: CapHandle[] = [];

type FrameHandler = (frame: Frame) => void;
type RejectHandler = (reason: CaptureRejectReason) => void;
type ErrorHandler = (err: SystemError) => void;

export class Capture {
  // The Buffer cap copies every frame into. cap keeps only a raw pointer to it; this field (and
  // the packet listener's closure) keep it reachable for as long as any handle may write to it:
  // the whole life of the Capture, never reassigned, never released.
  private readonly buffer: Buffer;
  private readonly view: Uint8Array;
  private handle: CapHandle | undefined;
  /** The previous handle after setFilter, open until FILTER_OVERLAP_MS have passed. */
  private draining: CapHandle | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  /** While two handles are open, and for FILTER_OVERLAP_MS after: frames that both deliver, once. */
  private readonly overlap = new OverlapDedup(MAX_OVERLAP_FRAMES);
  private filterSwaps = 0;
  private duplicates = 0;
  private options: (Required<Omit<CaptureOptions, 'keepWhenShedding'>> & Pick<CaptureOptions, 'keepWhenShedding'>) | undefined;
  private linkType: LinkType = 'ETHERNET';
  private closed = false;
  private frameHandler: FrameHandler = () => {};
  private rejectHandler: RejectHandler = () => {};
  private errorHandler: ErrorHandler | undefined;
  private received = 0;
  private frames = 0;
  private rejected = 0;
  private readonly rejectedBy: Partial<Record<CaptureRejectReason, number>> = {};
  private shed = 0;
  private reopens = 0;
  /** performance.now() of the first frame since the event loop last turned; -1 between bursts. */
  private burstStartMs = -1;
  /** Frames since the burst started. */
  private burstFrames = 0;
  private readonly endBurst = (): void => {
    this.burstStartMs = -1;
    this.burstFrames = 0;
  };

  /** frameBufferBytes: the largest frame kept whole; longer ones are rejected as capture.truncated. */
  constructor(frameBufferBytes: number = DEFAULT_FRAME_BUFFER_BYTES) {
    if (!Number.isInteger(frameBufferBytes) || frameBufferBytes < 64) {
      throw new RangeError(`frameBufferBytes: expected an integer >= 64, got ${String(frameBufferBytes)}`);
    }
    this.buffer = Buffer.alloc(frameBufferBytes);
    // A plain Uint8Array over the same bytes: subarray/slice then behave as Uint8Array's
    // (Buffer#slice is a view, not a copy).
    this.view = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset, this.buffer.length);
  }

  /** Called synchronously for each frame; the frame's bytes are the handler's to keep. */
  onFrame(handler: FrameHandler): void {
    this.frameHandler = handler;
  }

  /** Called for each refused frame with its reason (count them; do not log each one). */
  onReject(handler: RejectHandler): void {
    this.rejectHandler = handler;
  }

  /**
   * Called if reopening after a pause fails (the interface went away, say); the capture is then
   * closed. Without a handler the error is thrown from a setImmediate callback.
   */
  onError(handler: ErrorHandler): void {
    this.errorHandler = handler;
  }

  /** Opens the capture; throws SystemError('capture') if libpcap refuses. Returns the link type. */
  open(options: CaptureOptions): LinkType {
    if (this.options !== undefined) throw new Error('Capture.open called twice');
    if (this.closed) throw new Error('Capture.open after close');
    this.options = {
      iface: options.iface,
      filter: options.filter,
      kernelBufferBytes: options.kernelBufferBytes ?? DEFAULT_KERNEL_BUFFER_BYTES,
      maxBurstMs: options.maxBurstMs ?? DEFAULT_MAX_BURST_MS,
      maxStallMs: options.maxStallMs ?? DEFAULT_MAX_STALL_MS,
      keepWhenShedding: options.keepWhenShedding,
    };
    if (!Number.isInteger(this.options.kernelBufferBytes) || this.options.kernelBufferBytes <= 0) {
      throw new RangeError(`kernelBufferBytes: expected a positive integer, got ${String(options.kernelBufferBytes)}`);
    }
    // Refuse an unknown interface before cap touches it: a failed open leaks a pcap handle.
    const names = loadCap().Cap.deviceList().map((d) => d.name);
    if (!names.includes(options.iface)) {
      throw new SystemError('capture', `${options.iface}: no such capture device (known: ${names.join(', ')})`);
    }
    this.linkType = this.openHandle();
    return this.linkType;
  }

  stats(): CaptureStats {
    return {
      received: this.received,
      frames: this.frames,
      rejected: this.rejected,
      rejectedBy: { ...this.rejectedBy },
      shed: this.shed,
      reopens: this.reopens,
      filterSwaps: this.filterSwaps,
      duplicates: this.duplicates,
    };
  }

  /** Capture handles this process may still make (see MAX_RETAINED_HANDLES). */
  handlesLeft(): number {
    return MAX_RETAINED_HANDLES - retained.length;
  }

  /**
   * Replaces the filter with no gap: a handle on the new filter opens first (the kernel fills both
   * rings from then on), the old one is read for FILTER_OVERLAP_MS more and then closed, and a
   * frame that both deliver in that time is passed on once. cap 0.2.1 has no pcap_setfilter, and
   * each replacement retains one handle (~1 KB, see `retained`). Throws SystemError('capture') if
   * libpcap refuses the filter; the old one then stays. Returns whether a handle was replaced
   * (not when the filter is the same, nor while paused: the reopen takes the new filter).
   */
  setFilter(filter: string): boolean {
    const o = this.options;
    if (o === undefined || this.closed) throw new Error('Capture.setFilter before open or after close');
    if (filter === o.filter) return false;
    this.options = { ...o, filter };
    const old = this.handle;
    if (old === undefined) return false;
    try {
      this.openHandle();
    } catch (err) {
      this.options = o;
      this.handle = old;
      throw err;
    }
    this.filterSwaps++;
    // A third handle: the oldest one has had its time (what it delivered alone stays in `overlap`).
    this.closeDraining();
    this.draining = old;
    this.overlap.begin();
    this.afterOverlap(() => this.closeOlder());
    return true;
  }

  /** The overlap's time is up: the old handle closes; its frames still count as seen a while longer. */
  private closeOlder(): void {
    this.closeDraining();
    this.overlap.olderClosed();
    this.afterOverlap(() => this.endOverlap());
  }

  private endOverlap(): void {
    this.closeDraining();
    this.overlap.end();
  }

  /** Closes the previous handle, if one is still open, and stops its timer. */
  private closeDraining(): void {
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    const h = this.draining;
    this.draining = undefined;
    if (h !== undefined) closeHandle(h);
  }

  /** Runs `next` FILTER_OVERLAP_MS from now (the one drain timer; it does not hold the process). */
  private afterOverlap(next: () => void): void {
    this.drainTimer = setTimeout(next, FILTER_OVERLAP_MS);
    this.drainTimer.unref();
  }

  /** Stops capturing. Safe to call more than once, and from inside a frame handler. */
  close(): void {
    this.closed = true;
    this.endOverlap();
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) closeHandle(h);
  }

  private openHandle(): LinkType {
    const o = this.options!;
    if (retained.length >= MAX_RETAINED_HANDLES) {
      throw new SystemError('capture', `${o.iface}: cannot capture: ${MAX_RETAINED_HANDLES} capture handles made already`);
    }
    const handle = new (loadCap().Cap)();
    retained.push(handle);
    const buffer = this.buffer;
    // The listener's closure holds `view`, a view of the same ArrayBuffer: an open handle (cap
    // Ref()s itself while open) keeps its listener, and so the memory cap writes to, alive even
    // if nothing else referred to this Capture.
    const view = this.view;
    handle.on('packet', (nbytes: number, truncated: boolean) => {
      this.onPacket(handle, view, nbytes, truncated);
    });
    let name: string;
    try {
      name = handle.open(o.iface, o.filter, o.kernelBufferBytes, buffer);
    } catch (err) {
      // The handle stays in `retained`, and so does the listener's `view` of the Buffer cap was
      // given: a failed open has no poll handle, so nothing is written to it, but keep it anyway.
      const msg = err instanceof Error ? err.message : String(err);
      throw new SystemError('capture', `${o.iface}: cannot capture: ${msg}`, { cause: err });
    }
    const linkType = linkTypeFromCap(name);
    if (linkType === undefined) {
      closeHandle(handle);
      throw new SystemError('capture', `${o.iface}: link type ${name} is not supported`);
    }
    this.handle = handle;
    return linkType;
  }

  /**
   * One frame, already copied by cap into this.buffer[0, nbytes).
   *
   * Starvation: cap's poll callback calls pcap_dispatch(1) in a loop until the ring is empty, and
   * only then returns to the event loop. Under a flood faster than we handle frames the ring
   * never empties and timers (the ones that close firewall rules) never run. So we note when a
   * burst starts (the first frame since the loop last reached its check phase, which a
   * setImmediate marks), and, once the burst has MIN_BURST_FRAMES frames:
   * - past maxBurstMs, frames are counted as shed and dropped undecoded. cap alone empties the
   *   ring several times faster than it fills from one sender here, so the burst ends soon and
   *   the loop turns; a valid knock in that window is lost, as it would be in a full ring.
   * - past maxStallMs (a flood faster than cap itself), the handle is closed: cap leaves its loop
   *   after this frame, the loop runs its timers, and a setImmediate opens a fresh handle (a
   *   closed cap handle cannot be reopened: binding.cc never clears its `closing` flag). Frames
   *   in the old ring and during the reopen are lost (pcap_close ~25 ms, a 64 MiB open 30-90 ms,
   *   measured here), and each reopen retains one more handle (~1 KB, see `retained`).
   * The real fix is in cap: dispatch a bounded number of frames per poll callback (uv_poll is
   * level-triggered; the rest would come on the next turn).
   */
  private onPacket(handle: CapHandle, view: Uint8Array, nbytes: number, truncated: boolean): void {
    if (handle !== this.handle && handle !== this.draining) return; // cap delivers while closing: not ours
    if (this.overlap.watching && this.overlap.isCopy(handle === this.draining ? 'older' : 'newer', this.buffer.toString('latin1', 0, nbytes))) {
      this.duplicates++;
      return;
    }
    this.received++;
    const t = performance.now();
    let shedding = false;
    if (this.burstStartMs < 0) {
      this.burstStartMs = t;
      setImmediate(this.endBurst);
    } else if (++this.burstFrames >= MIN_BURST_FRAMES) {
      const burstMs = t - this.burstStartMs;
      if (burstMs > this.options!.maxStallMs) this.pause();
      if (burstMs > this.options!.maxBurstMs) shedding = true;
    }
    if (shedding && this.options!.keepWhenShedding === undefined) {
      this.shed++;
      return;
    }
    if (truncated) {
      this.reject('capture.truncated');
      return;
    }
    const r = decodeFrame(this.linkType, view, nbytes);
    if (isFrameReject(r)) {
      this.reject(r.reject);
      return;
    }
    // A flood aims at one port; a knock sequence's few frames to other ports are cheap to keep.
    if (shedding && !this.options!.keepWhenShedding!(r.dstPort, r.proto)) {
      this.shed++;
      return;
    }
    this.frames++;
    // Copy out: cap overwrites this.buffer with the next frame. Addresses are copies already.
    this.frameHandler({
      src: r.src,
      dst: r.dst,
      proto: r.proto,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      tcpFlags: r.tcpFlags,
      payload: r.payload.slice(),
    });
  }

  private reject(reason: CaptureRejectReason): void {
    this.rejected++;
    this.rejectedBy[reason] = (this.rejectedBy[reason] ?? 0) + 1;
    this.rejectHandler(reason);
  }

  private pause(): void {
    const h = this.handle;
    // Out of handles to spend: keep shedding (the loop still starves if cap alone cannot keep up).
    if (h === undefined || retained.length >= MAX_RETAINED_HANDLES) return;
    this.endOverlap();
    this.handle = undefined;
    this.reopens++;
    closeHandle(h);
    setImmediate(() => this.reopen());
  }

  private reopen(): void {
    if (this.closed || this.handle !== undefined) return;
    try {
      const linkType = this.openHandle();
      if (linkType !== this.linkType) {
        this.close();
        throw new SystemError('capture', `${this.options!.iface}: link type changed to ${linkType} on reopen`);
      }
    } catch (err) {
      this.closed = true;
      const e = err instanceof SystemError ? err : new SystemError('capture', String(err), { cause: err });
      if (this.errorHandler === undefined) throw e;
      this.errorHandler(e);
    }
  }
}

// Called from a packet listener, cap stops after the current frame and pcap_close()s on its way
// out, before any other JS runs; otherwise at once. Either way it never writes to the Buffer
// again, so the listener (and its view of the Buffer) can go; the handle itself stays retained.
function closeHandle(h: CapHandle): void {
  h.close();
  h.removeAllListeners('packet');
}
