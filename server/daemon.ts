// The running server's lifecycle: load, StateDir and its lock, replay state, the effects
// runner's recovery, the firewall's base rules, the packet source, the control socket and the
// periodic timers; reload (SIGHUP) and shutdown. Packets go to receive.ts, effects to
// effects.ts. Shell.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Server, Socket } from 'node:net';
import { SystemError, UserError } from '../src/errors.js';
import { DEFAULTS } from '../src/config/types.js';
import { DATAGRAM_BYTES, VERSION } from '../src/protocol/constants.js';
import { ReplayGuard } from '../src/protocol/replay.js';
import { TagTable } from '../src/protocol/tag.js';
import type { Frame } from './core/frame.js';
import { GrantRunner, realScheduler } from './effects.js';
import { FirewallGuard } from './firewall-guard.js';
import { applyAll } from './firewall/run.js';
import type { Logger } from './log.js';
import { Receiver } from './receive.js';
import { formatProblem, loadRuntime, type Runtime } from './runtime.js';
import { Journal, REPLAY_FILE, ReplayStore, readJournalReport, type JournalRead } from './state.js';
import type { PacketSource } from './udp-source.js';
import { openUdpSource } from './udp-source.js';
import { DEFAULT_INTERFACE, SequenceEngine } from './sequences.js';
import { openPcapSource, type PcapSource } from './pcap-source.js';
import { captureUnavailable } from './capture.js';
import { serveControl, viewOf, type GrantView, type ReloadResult } from './control.js';
import { checkTrustedPath } from './trust.js';
import { LOCK_FILE, lockStateDir, type StateLock } from './lock.js';
import { FwknopHandler } from './fwknop-handler.js';
import { fwknopFilterClause } from './fwknop-filter.js';
import type { MetricsSample, MetricsWriter } from './metrics.js';

export interface DaemonOptions {
  readonly configFile: string;
  /** Use a bound UDP socket instead of libpcap (--udp). */
  readonly udp?: boolean;
  /** Overrides [options] Interface. */
  readonly iface?: string;
  readonly log: Logger;
  readonly nowMs?: () => number;
}

const SECOND = 1000;
/** How often the tag table, the replay guard and the sequence attempts are swept. */
const TICK_MS = 5 * SECOND;
/** How often the rejections not logged are reported. */
const SUPPRESSED_REPORT_MS = 10 * SECOND;
/** How often the base rules (protect = yes) are checked for and reinstalled if gone. */
const FIREWALL_CHECK_MS = 10 * SECOND;
/** At shutdown, how long a control client may take to receive its reply before it is cut off. */
const CONTROL_LINGER_MS = SECOND;

export class Daemon {
  private runtime!: Runtime;
  private readonly nowMs: () => number;
  private readonly log: Logger;
  private tags!: TagTable;
  private replay!: ReplayGuard;
  private replayStore!: ReplayStore;
  private effects!: GrantRunner;
  private receiver!: Receiver;
  private readonly firewall: FirewallGuard;
  private source: PacketSource | undefined;
  private openedSourceKey = '';
  private sequences: SequenceEngine | undefined;
  private intervals: NodeJS.Timeout[] = [];
  private lastShed = 0;
  private lastKernelDrops = 0;
  private stopping = false;
  private control: Server | undefined;
  /** Open control connections: server.close() waits for them, so shutdown ends them itself. */
  private readonly controlConns = new Set<Socket>();
  /** The reload in progress (SIGHUP and the control socket's reload queue behind it). */
  private reloadQueue: Promise<void> = Promise.resolve();
  private lock: StateLock | undefined;
  /** fwknop stanzas (issue 14); undefined without any. */
  private fwknop: FwknopHandler | undefined;
  /** MetricsFile (issue 13, item 7); undefined without one (prom-client is then not loaded). */
  private metrics: MetricsWriter | undefined;

  constructor(private readonly opts: DaemonOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log;
    this.firewall = new FirewallGuard(opts.log);
  }

  private load(): Runtime {
    const { runtime, problems } = loadRuntime(this.opts.configFile, { udp: this.opts.udp, iface: this.opts.iface });
    if (!runtime) throw new UserError('config', problems.map(formatProblem).join('\n'));
    return runtime;
  }

  get config(): Runtime['config'] {
    return this.runtime.config;
  }

  async start(): Promise<void> {
    this.runtime = this.load();
    for (const w of this.runtime.warnings) this.log.warn({ file: w.file, line: w.line }, w.message);
    // Before any effect: without cap (an optional dependency) libpcap mode cannot start.
    const noCapture = this.udpMode() ? undefined : captureUnavailable();
    if (noCapture !== undefined) throw new SystemError('capture', noCapture);
    const o = this.runtime.config.options;
    const nowSec = Math.floor(this.nowMs() / SECOND);
    const ranBefore = this.openStateDir(o.stateDir);
    const replayHeld = fileHasBytes(join(o.stateDir, REPLAY_FILE));
    this.tags = new TagTable(o.windowSec);
    this.tags.setClients(this.runtime.clients, nowSec);
    this.replay = new ReplayGuard(o.windowSec, o.replayPerClient, o.replayTotal);
    this.replayStore = new ReplayStore(o.stateDir);
    const loaded = this.replayStore.load(this.replay, nowSec);
    if (loaded.legacyFloor !== undefined) {
      this.log.warn({ file: this.replayStore.file, floor: loaded.legacyFloor }, 'replay.log was in the 0.1 format (one guard for all keys); converted: every knock timestamped at or before its newest entry is refused');
    }
    // Fail closed (issue 12, item 6): a replay log that a daemon has used (StateDir/lock is
    // there) but that is now missing, emptied or damaged may have held knocks still in their
    // window. Refuse every knock stamped at or before now; clients' new knocks work at once.
    if ((ranBefore && !replayHeld) || loaded.skipped > 0) {
      this.replay.raiseFloor(nowSec);
      this.replayStore.compact(this.replay);
      const reason = loaded.skipped > 0 ? { reason: 'damaged', skipped: loaded.skipped } : { reason: 'missing or empty' };
      this.log.warn({ file: this.replayStore.file, floor: nowSec, ...reason }, 'replay state lost: every knock stamped at or before the start is refused');
    }
    const journaled = this.startEffects(o.stateDir);
    const fw = this.runtime.fwknop;
    this.fwknop = fw ? FwknopHandler.open(fw, o.stateDir, this.log, (door, id, addr, access, untilMs) => this.receiver.grantFwknop(door, id, addr, access, untilMs), this.nowMs) : undefined;
    await this.effects.recover(journaled);
    await this.firewall.setup(this.runtime, true);
    this.sequences = await SequenceEngine.create(this.runtime.config, this.log, (s) => this.effects.openSequence(s), this.opts.iface);

    this.source = await this.openSource();
    this.control = serveControl(o.stateDir, {
      status: () => this.effects.list().map(viewOf),
      close: (addr) => this.closeMatching(addr),
      reload: () => this.reload(),
    });
    this.control.on('connection', (c: Socket) => {
      this.controlConns.add(c);
      c.once('close', () => this.controlConns.delete(c));
    });
    this.intervals.push(
      setInterval(() => this.tick(), TICK_MS),
      setInterval(() => {
        if (!this.stopping) void this.firewall.check(this.runtime);
      }, FIREWALL_CHECK_MS),
      setInterval(() => this.receiver.reportSuppressed(), SUPPRESSED_REPORT_MS),
    );
    if (o.metricsFile !== undefined) {
      const { Metrics, MetricsWriter } = await import('./metrics.js');
      this.metrics = new MetricsWriter(new Metrics(this.runtime.config.doors.map((d) => d.name)), o.metricsFile, () => this.metricsSample(), this.log);
      this.metrics.start();
    }
    this.log.info(
      {
        config: this.opts.configFile,
        capture: this.udpMode() ? 'udp-socket' : 'pcap',
        iface: this.udpMode() ? undefined : (this.opts.iface ?? o.interface ?? DEFAULT_INTERFACE),
        spaPort: o.spaPort,
        doors: this.runtime.config.doors.map((d) => d.name),
        keys: this.runtime.clients.length,
        reopened: this.effects.size,
      },
      'started',
    );
  }

  /**
   * Creates StateDir 0700 if missing, checks it again (it may have been made between `check`
   * and now), and takes its lock: one daemon per StateDir. Returns whether a daemon had used
   * this StateDir before (its lock file was there).
   */
  private openStateDir(dir: string): boolean {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new UserError('config', `StateDir: cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const wrong = checkTrustedPath(dir, 'dir', { noLink: true });
    if (wrong) throw new UserError('config', `${this.opts.configFile}: StateDir: not trusted: ${wrong}`);
    const ranBefore = existsSync(join(dir, LOCK_FILE));
    this.lock = lockStateDir(dir);
    return ranBefore;
  }

  private udpMode(): boolean {
    return Boolean(this.opts.udp || this.runtime.config.options.udpSocket);
  }

  /** What the capture depends on; a reload that changes it reopens the capture. */
  private sourceKey(): string {
    const o = this.runtime.config.options;
    if (this.udpMode()) return `udp ${o.udpListen?.text ?? '*'} ${o.spaPort} ${o.udpBufferMb}`;
    // Whether there are spa keys and fwknop stanzas decides the capture's layout (fwknop
    // packets on a ring of their own beside spa keys: server/pcap-source.ts); a reload that
    // changes it reopens the capture rather than install a filter that libpcap refuses.
    const layout = `spa-keys:${this.runtime.clients.length > 0} fwknop:${this.runtime.fwknop !== undefined} rings:${this.pcapBufferMb()},${o.pcapBufferMb}`;
    return `pcap ${this.opts.iface ?? o.interface ?? DEFAULT_INTERFACE} ${o.spaPort} ${layout} tcp:${this.sequences?.ports('tcp').join(',')} udp:${this.sequences?.ports('udp').join(',')}`;
  }

  /** PcapBufferMB as set, else its default: larger when fwknop clients are served (DEFAULTS). */
  private pcapBufferMb(): number {
    const o = this.runtime.config.options;
    return o.lines['PcapBufferMB'] === undefined && this.runtime.fwknop ? DEFAULTS.pcapBufferMbFwknop : o.pcapBufferMb;
  }

  private async openSource(): Promise<PacketSource> {
    const o = this.runtime.config.options;
    const onFrame = (f: Frame): void => this.receiver.handleFrame(f);
    this.openedSourceKey = this.sourceKey();
    if (this.udpMode()) {
      this.lastKernelDrops = 0; // a new socket counts from zero
      const src = await openUdpSource(o.spaPort, onFrame, o.udpListen, o.udpBufferMb * 1024 * 1024);
      // Linux reports twice what it grants (the doubling covers its own bookkeeping).
      const grantedMb = src.bufferBytes === undefined ? undefined : src.bufferBytes / 2 / 1024 / 1024;
      if (grantedMb !== undefined && grantedMb < o.udpBufferMb) {
        this.log.warn({ askedMb: o.udpBufferMb, grantedMb: Math.round(grantedMb * 100) / 100 }, 'UDP receive buffer capped by net.core.rmem_max; raise it (sysctl) or a flood loses knocks');
      }
      return src;
    }
    return openPcapSource({
      iface: this.opts.iface ?? o.interface ?? DEFAULT_INTERFACE,
      spaPort: o.spaPort,
      datagramBytes: DATAGRAM_BYTES,
      version: VERSION,
      extraClauses: this.runtime.fwknop ? [fwknopFilterClause(o.spaPort)] : [],
      tcpPorts: this.sequences?.ports('tcp') ?? [],
      udpPorts: this.sequences?.ports('udp') ?? [],
      bufferBytes: this.pcapBufferMb() * 1024 * 1024,
      // fwknop packets get a ring of their own (bufferBytes, above); spa knocks and sequence
      // ports keep PcapBufferMB as set, else its spa default (2).
      mainBufferBytes: o.pcapBufferMb * 1024 * 1024,
      onFrame,
      kernelFilter: { tags: this.tags, windowSec: () => this.runtime.config.options.windowSec, nowMs: this.nowMs, notice: (level, fields, msg) => this.log[level](fields, msg) },
      onError: (e) => {
        this.log.error({ error: e.message }, 'capture failed; stopping');
        process.kill(process.pid, 'SIGTERM');
      },
    });
  }

  /** After a reload: reopen the capture if its port, interface or filter ports changed. Returns a failure. */
  private async maybeReopenSource(): Promise<string | undefined> {
    if (this.stopping || this.sourceKey() === this.openedSourceKey) return undefined;
    const old = this.source;
    const previousKey = this.openedSourceKey;
    // A UDP socket must let go of the port before a new one can bind it.
    if (this.udpMode()) old?.close();
    try {
      this.source = await this.openSource();
      if (!this.udpMode()) old?.close();
      this.log.info({ capture: this.openedSourceKey }, 'capture reopened');
      return undefined;
    } catch (e) {
      this.openedSourceKey = previousKey;
      this.log.error({ error: (e as Error).message }, 'capture reopen failed; keeping the previous capture');
      if (this.udpMode()) this.source = undefined;
      return `capture reopen failed: ${(e as Error).message}`;
    }
  }

  /**
   * The effects runner, over the journal, and the receiver, which hands accepted knocks to it.
   * Returns what the journal held (a previous run's openings), for the runner to recover.
   */
  private startEffects(stateDir: string): JournalRead {
    const read = readJournalReport(stateDir);
    this.effects = new GrantRunner({
      journal: new Journal(stateDir),
      log: this.log,
      scheduler: realScheduler(this.nowMs),
      execute: (steps) => applyAll(steps),
      backends: () => this.runtime.backends,
      retryFailedCloses: true,
    });
    this.receiver = new Receiver({
      runtime: () => this.runtime,
      tags: this.tags,
      replay: this.replay,
      replayStore: this.replayStore,
      effects: this.effects,
      log: this.log,
      nowMs: this.nowMs,
      source: () => this.source,
      sequences: () => this.sequences,
      fwknop: () => this.fwknop,
      metrics: () => this.metrics,
    });
    return read;
  }

  private metricsSample(): MetricsSample {
    const src = this.source;
    return {
      source: src,
      filterMode: src && 'filterMode' in src ? (src as PcapSource).filterMode() : undefined,
      openRules: this.effects.list().map((g) => g.door),
      replayEntries: this.replay.size,
      replayCapacity: this.runtime.config.options.replayTotal,
      fwknopRejected: this.fwknop?.counters.rejected,
    };
  }

  private tick(): void {
    const nowMs = this.nowMs();
    const nowSec = Math.floor(nowMs / SECOND);
    this.tags.refresh(nowSec);
    this.source?.refresh?.(nowSec);
    this.replay.sweep(nowSec);
    try {
      this.replayStore.maybeCompact(this.replay);
    } catch (e) {
      this.log.warn({ error: (e as Error).message }, 'replay log compaction failed');
    }
    this.sequences?.expire(nowMs);
    this.fwknop?.tick(nowMs);
    const s = this.source?.stats();
    if (s && s.shed > this.lastShed) {
      this.log.warn({ received: s.received, frames: s.frames, rejected: s.rejected, shed: s.shed, reopens: s.reopens }, 'capture overloaded: frames dropped undecoded so timers could run');
      this.lastShed = s.shed;
    }
    if (s?.kernelDrops !== undefined && s.kernelDrops > this.lastKernelDrops) {
      this.log.warn({ drops: s.kernelDrops - this.lastKernelDrops, total: s.kernelDrops, received: s.received }, 'UDP socket overflowed: the kernel dropped datagrams (UDPBufferMB, net.core.rmem_max)');
      this.lastKernelDrops = s.kernelDrops;
    }
  }

  /**
   * SIGHUP and `spa-server reload` (over the control socket): new config and keys; the
   * replay guard and open rules stay. Reloads run one at a time, in the order asked. A
   * configuration with problems is refused (each FILE:LINE: message) and the running one
   * stays. Resolves once the new configuration is in force: sequence ports, the capture and
   * the firewall's base rules are done (their failures are logged and returned).
   */
  reload(): Promise<ReloadResult> {
    const r = this.reloadQueue.then(() => this.reloadNow());
    this.reloadQueue = r.then(
      () => undefined,
      () => undefined,
    );
    return r;
  }

  private async reloadNow(): Promise<ReloadResult> {
    // Not a configuration problem: the control socket answers it as an error (exit 1).
    if (this.stopping) throw new SystemError('state', 'the daemon is stopping');
    const config = this.opts.configFile;
    let loaded: ReturnType<typeof loadRuntime>;
    try {
      loaded = loadRuntime(config, { udp: this.opts.udp, iface: this.opts.iface });
    } catch (e) {
      loaded = { problems: [{ file: config, message: (e as Error).message }] };
    }
    const next = loaded.runtime;
    if (!next) {
      const problems = loaded.problems.map(formatProblem);
      this.log.error({ error: problems.join('\n') }, 'reload failed; keeping the running configuration');
      return { ok: false, config, problems };
    }
    this.runtime = next;
    if (next.fwknop) this.fwknop?.reconfigure(next.fwknop);
    if (Boolean(next.fwknop) !== Boolean(this.fwknop)) this.log.warn({}, 'fwknop stanzas added or removed: they take effect at the next start');
    this.tags.setClients(next.clients, Math.floor(this.nowMs() / SECOND));
    const errors: string[] = [];
    try {
      await this.sequences?.reconfigure(next.config);
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'sequence reload failed');
      errors.push(`sequence reload failed: ${(e as Error).message}`);
    }
    // The keys changed: a capture that stays gets a new filter; one reopened starts with one.
    if (this.sourceKey() === this.openedSourceKey) this.source?.refresh?.(Math.floor(this.nowMs() / SECOND), true);
    const reopen = await this.maybeReopenSource();
    if (reopen !== undefined) errors.push(reopen);
    if (this.metrics) this.metrics.reconfigure(next.config.options.metricsFile, next.config.doors.map((d) => d.name));
    else if (next.config.options.metricsFile !== undefined) this.log.warn({ file: next.config.options.metricsFile }, 'MetricsFile added: it takes effect at the next start');
    // A changed door (protect, access, firewall) must reach the firewall now, not at the next start.
    try {
      errors.push(...(await this.firewall.setup(next, false)));
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'firewall setup failed');
      errors.push(`firewall setup failed: ${(e as Error).message}`);
    }
    const doors = next.config.doors.map((d) => d.name);
    this.log.info({ doors, keys: next.clients.length, errors: errors.length > 0 ? errors : undefined }, 'reloaded');
    return { ok: true, config, doors, keys: next.clients.length, errors };
  }

  /** `spa-server close`: every grant for addr (canonical text), or all. */
  async closeMatching(addr: string | undefined): Promise<GrantView[]> {
    return (await this.effects.closeMatching(addr)).map(viewOf);
  }

  /** SIGTERM: stop capturing; close every rule unless CloseOnExit = no; wait for commands. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.source?.close();
    this.control?.close();
    for (const i of this.intervals) clearInterval(i);
    const closeAll = this.runtime.config.options.closeOnExit;
    await this.effects.shutdown(closeAll);
    await this.metrics?.stop();
    this.log.info({ closed: closeAll, left: this.effects.size, accepted: this.receiver.counters.accepted, rejected: this.receiver.counters.rejected, capture: this.source?.stats() }, 'stopped');
    this.replayStore.close();
    this.fwknop?.close();
    this.lock?.release();
    // server.close() waits for open connections, and a client that connected and said nothing
    // kept the process alive after 'stopped' for as long as it liked. End each one, letting a
    // reply already written go out first (bounded: a client that never reads is cut off).
    for (const c of this.controlConns) {
      c.end(() => c.destroy());
      setTimeout(() => c.destroy(), CONTROL_LINGER_MS).unref();
    }
  }
}

/** Whether a state file exists with content (a lost or emptied file is not told apart). */
function fileHasBytes(file: string): boolean {
  try {
    return statSync(file).size > 0;
  } catch {
    return false;
  }
}
