// Metrics for operators' dashboards without opening a port (issue 13, item 7): MetricsFile =
// PATH gets Prometheus text format for node_exporter's textfile collector, rewritten
// atomically every few seconds and at stop. prom-client writes the format, on a registry of
// our own (no global registry, no default process metrics). docs/METRICS.md lists the
// series. Shell (a timer, a file).
import { Counter, Gauge, Registry } from 'prom-client';
import { REASONS } from '../src/protocol/reasons.js';
import type { Logger } from './log.js';
import { writeFileAtomic } from './store.js';
import type { PacketSource } from './udp-source.js';

/** How often the file is rewritten. node_exporter reads it at each scrape. */
export const METRICS_INTERVAL_MS = 10_000;

/** The state the daemon holds, read at each write. */
export interface MetricsSample {
  /** The capture now running (a new one, after a reopen, counts from zero). */
  readonly source: PacketSource | undefined;
  /** The kernel filter's mode (libpcap capture only). */
  readonly filterMode: string | undefined;
  /** The door of each open rule (grant). */
  readonly openRules: readonly string[];
  readonly replayEntries: number;
  readonly replayCapacity: number;
  /** fwknop packets refused so far (a running total), when there are fwknop stanzas. */
  readonly fwknopRejected: number | undefined;
}

type CaptureField = 'received' | 'frames' | 'rejected' | 'shed' | 'reopens' | 'kernelDrops' | 'filterSwaps' | 'duplicates';

const CAPTURE: readonly { field: CaptureField; name: string; help: string }[] = [
  { field: 'received', name: 'spa_capture_frames_received_total', help: 'Frames (libpcap) or datagrams (UDP socket) the capture received.' },
  { field: 'frames', name: 'spa_capture_frames_decoded_total', help: 'Frames decoded and handed to the verifier or the sequence engine.' },
  { field: 'rejected', name: 'spa_capture_frames_malformed_total', help: 'Frames the decoder refused (truncated, not IP/UDP/TCP).' },
  { field: 'shed', name: 'spa_capture_frames_shed_total', help: 'Frames dropped undecoded so timers could run under a flood.' },
  { field: 'reopens', name: 'spa_capture_reopens_total', help: 'Times the libpcap handle was reopened because a burst held the event loop.' },
  { field: 'kernelDrops', name: 'spa_capture_kernel_drops_total', help: 'Datagrams the kernel dropped on a full receive buffer (UDP socket mode only; libpcap drops are not reported by cap).' },
  { field: 'filterSwaps', name: 'spa_capture_filter_swaps_total', help: 'Times the kernel filter was replaced (libpcap only).' },
  { field: 'duplicates', name: 'spa_capture_duplicates_total', help: 'Frames both handles delivered while a filter was replaced, dropped as copies (libpcap only).' },
];

const FILTER_MODES = ['tags', 'fallback'] as const;

/** The registry and its series; no file, no timer (the unit tests read text()). */
export class Metrics {
  readonly registry = new Registry();
  private readonly acceptedBy: Counter<'door'>;
  private readonly rejectedBy: Counter<'reason'>;
  private readonly openRules: Gauge<'door'>;
  private readonly filterMode: Gauge<'mode'>;
  private readonly replayEntries: Gauge;
  private readonly replayCapacity: Gauge;
  private readonly fwknopRejected: Counter;
  /** Capture counters, each made when its source first reports it. */
  private readonly capture = new Map<CaptureField, Counter>();
  private doors: readonly string[] = [];
  /** What the running capture (and the fwknop handler) had counted at the last update. */
  private lastSource: PacketSource | undefined;
  private lastCapture: Partial<Record<CaptureField, number>> = {};
  private lastFwknop = 0;

  constructor(doors: readonly string[]) {
    const registers = [this.registry];
    this.acceptedBy = new Counter({ name: 'spa_knocks_accepted_total', help: 'Knocks accepted (SPA and fwknop), by door.', labelNames: ['door'], registers });
    this.rejectedBy = new Counter({ name: 'spa_knocks_rejected_total', help: 'SPA datagrams refused, by reason (the checks of docs/PROTOCOL.md section 5).', labelNames: ['reason'], registers });
    this.openRules = new Gauge({ name: 'spa_open_rules', help: 'Open rules (grants) the daemon holds now, by door.', labelNames: ['door'], registers });
    this.filterMode = new Gauge({ name: 'spa_kernel_filter_mode', help: 'The kernel filter in use: 1 for the current mode (tags or fallback), 0 for the other. libpcap capture only.', labelNames: ['mode'], registers });
    this.replayEntries = new Gauge({ name: 'spa_replay_guard_entries', help: 'Nonces the replay guard holds.', registers });
    this.replayCapacity = new Gauge({ name: 'spa_replay_guard_capacity', help: 'The replay guard capacity (ReplayTotal).', registers });
    this.fwknopRejected = new Counter({ name: 'spa_fwknop_rejected_total', help: 'fwknop packets refused (fwknop_access doors).', registers });
    // Every reason at 0, so that rate() has a series from the start.
    for (const r of Object.keys(REASONS)) this.rejectedBy.inc({ reason: r }, 0);
    this.setDoors(doors);
  }

  /** The configured doors, so each has its series at 0 (after a reload too). */
  setDoors(doors: readonly string[]): void {
    this.doors = doors;
    for (const d of doors) this.acceptedBy.inc({ door: d }, 0);
  }

  accepted(door: string): void {
    this.acceptedBy.inc({ door });
  }

  rejected(reason: string): void {
    this.rejectedBy.inc({ reason });
  }

  /** Reads the daemon's state into the gauges and the capture counters. */
  update(s: MetricsSample): void {
    this.openRules.reset();
    for (const d of this.doors) this.openRules.set({ door: d }, 0);
    for (const d of s.openRules) this.openRules.inc({ door: d });
    this.filterMode.reset();
    if (s.filterMode !== undefined) for (const m of new Set([...FILTER_MODES, s.filterMode])) this.filterMode.set({ mode: m }, m === s.filterMode ? 1 : 0);
    this.replayEntries.set(s.replayEntries);
    this.replayCapacity.set(s.replayCapacity);
    if (s.fwknopRejected !== undefined) {
      this.fwknopRejected.inc(Math.max(0, s.fwknopRejected - this.lastFwknop));
      this.lastFwknop = s.fwknopRejected;
    }
    // A source's stats are running totals from its opening: add what is new since the last
    // look; a reopened capture (another object) counts from zero.
    if (s.source !== this.lastSource) this.lastCapture = {};
    this.lastSource = s.source;
    const stats = s.source?.stats();
    if (!stats) return;
    for (const c of CAPTURE) {
      const v = stats[c.field];
      if (v === undefined) continue;
      // Made at the first value: a series the source does not report (kernel drops under
      // libpcap) is absent, not a misleading 0.
      let counter = this.capture.get(c.field);
      if (!counter) this.capture.set(c.field, (counter = new Counter({ name: c.name, help: c.help, registers: [this.registry] })));
      counter.inc(Math.max(0, v - (this.lastCapture[c.field] ?? 0)));
      this.lastCapture[c.field] = v;
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Owns the timer and the file: every METRICS_INTERVAL_MS (and at stop) samples the daemon and
 * replaces the file atomically (tmp file created exclusively and never through a link; a
 * symlink at the path itself is refused). Mode 0644 for a new file: node_exporter runs as
 * its own user. A failed write is logged once (and once when it works again), never thrown.
 */
export class MetricsWriter {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failing: string | undefined;

  constructor(
    readonly metrics: Metrics,
    private file: string | undefined,
    private readonly sample: () => MetricsSample,
    private readonly log: Logger,
  ) {}

  start(intervalMs = METRICS_INTERVAL_MS): void {
    this.timer = setInterval(() => void this.write(), intervalMs);
    void this.write();
  }

  /** A reload: another file (or none: writing stops) and the doors. */
  reconfigure(file: string | undefined, doors: readonly string[]): void {
    this.file = file;
    this.metrics.setDoors(doors);
  }

  /** One write; a write already under way is waited for instead of overlapped. */
  write(): Promise<void> {
    this.writing ??= this.writeOnce().finally(() => (this.writing = undefined));
    return this.writing;
  }

  private async writeOnce(): Promise<void> {
    const file = this.file;
    if (file === undefined) return;
    try {
      this.metrics.update(this.sample());
      writeFileAtomic(file, await this.metrics.text(), 0o644, { noFollow: true });
      if (this.failing !== undefined) this.log.info({ file }, 'metrics file written again');
      this.failing = undefined;
    } catch (e) {
      const message = (e as Error).message;
      if (message !== this.failing) this.log.warn({ file, error: message }, 'metrics file not written');
      this.failing = message;
    }
  }

  /** At stop: the last counts, then no more writes. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing; // begun before the last counts: write again after it
    await this.write();
    this.file = undefined;
  }
}
