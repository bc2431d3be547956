// The running server: packets in, decisions out, effects carried out in order
// (persist replay -> journal -> open -> schedule close), one log line per decision. Shell.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError, UserError } from '../src/errors.js';
import { commandsFor } from '../src/config/commands.js';
import { DEFAULTS } from '../src/config/types.js';
import { accessText, type Access } from '../src/net/access.js';
import { DATAGRAM_BYTES, VERSION } from '../src/protocol/constants.js';
import { verifyDatagram, type VerifyContext } from '../src/protocol/datagram.js';
import { ReplayGuard } from '../src/protocol/replay.js';
import { TagTable } from '../src/protocol/tag.js';
import type { Frame } from './core/frame.js';
import { chooseDoor } from './core/policy.js';
import { GrantTable, SEQUENCE_ID, grantKey, openingOf, type Grant } from './core/grants.js';
import { RateLimiter } from './core/rate-limit.js';
import { protectedAccess, type Backend, type Step } from './firewall/index.js';
import { applyAll, runArgv } from './firewall/run.js';
import type { Logger } from './log.js';
import { closingBackend, formatProblem, loadRuntime, type Runtime } from './runtime.js';
import { Journal, REPLAY_FILE, ReplayStore, readJournalReport } from './state.js';
import type { PacketSource } from './udp-source.js';
import { openUdpSource } from './udp-source.js';
import { SequenceEngine } from './sequences.js';
import { openPcapSource, type PcapSource } from './pcap-source.js';
import { captureUnavailable } from './capture.js';
import { serveControl, viewOf, type GrantView, type ReloadResult } from './control.js';
import type { Server, Socket } from 'node:net';
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
/** setTimeout's longest delay (2^31 - 1 ms); longer deadlines are reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A close whose command failed is tried again after this long. */
const CLOSE_RETRY_MS = 30 * SECOND;
/** How often the base rules (protect = yes) are checked for and reinstalled if gone. */
const FIREWALL_CHECK_MS = 10 * SECOND;
/** At shutdown, how long a control client may take to receive its reply before it is cut off. */
const CONTROL_LINGER_MS = SECOND;
/** Sequence-door openings held at once (each completed knock holds one until its stop runs). */
const MAX_SEQUENCE_GRANTS = 1024;

export class Daemon {
  private runtime!: Runtime;
  private readonly nowMs: () => number;
  private readonly log: Logger;
  private tags!: TagTable;
  private replay!: ReplayGuard;
  private replayStore!: ReplayStore;
  private journal!: Journal;
  private readonly grants = new GrantTable();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Per-grant chains, so an open, an extend and a close of one rule never overlap. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly rejectLog = new RateLimiter(20, 2);
  private source: PacketSource | undefined;
  private openedSourceKey = '';
  private sequences: SequenceEngine | undefined;
  private intervals: NodeJS.Timeout[] = [];
  private lastShed = 0;
  private checkingFirewall = false;
  private lastKernelDrops = 0;
  private stopping = false;
  private control: Server | undefined;
  /** Open control connections: server.close() waits for them, so shutdown ends them itself. */
  private readonly controlConns = new Set<Socket>();
  /** The reload in progress (SIGHUP and the control socket's reload queue behind it). */
  private reloadQueue: Promise<void> = Promise.resolve();
  private lock: StateLock | undefined;
  readonly counters = { accepted: 0, rejected: 0 };
  private sequenceOpens = 0;
  /** fwknop stanzas (issue 14); undefined without any. */
  private fwknop: FwknopHandler | undefined;
  /** MetricsFile (issue 13, item 7); undefined without one (prom-client is then not loaded). */
  private metrics: MetricsWriter | undefined;

  constructor(private readonly opts: DaemonOptions) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.log = opts.log;
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
    const nowMs = this.nowMs();
    const nowSec = Math.floor(nowMs / SECOND);
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
    const fw = this.runtime.fwknop;
    this.fwknop = fw ? FwknopHandler.open(fw, o.stateDir, this.log, (door, id, addr, access, untilMs) => this.grantFwknop(door, id, addr, access, untilMs), this.nowMs) : undefined;
    await this.recoverJournal(nowMs);
    await this.setupBackends(true);
    this.sequences = await SequenceEngine.create(this.runtime.config, this.log, (door, addr) => this.grantSequence(door, addr), this.opts.iface);

    this.source = await this.openSource();
    this.control = serveControl(o.stateDir, {
      status: () => this.grants.list().map(viewOf),
      close: (addr) => this.closeMatching(addr),
      reload: () => this.reload(),
    });
    this.control.on('connection', (c: Socket) => {
      this.controlConns.add(c);
      c.once('close', () => this.controlConns.delete(c));
    });
    this.intervals.push(
      setInterval(() => this.tick(), 5 * SECOND),
      setInterval(() => void this.checkFirewall(), FIREWALL_CHECK_MS),
      setInterval(() => this.reportSuppressed(), 10 * SECOND),
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
        iface: this.udpMode() ? undefined : (this.opts.iface ?? o.interface ?? 'eth0'),
        spaPort: o.spaPort,
        doors: this.runtime.config.doors.map((d) => d.name),
        keys: this.runtime.clients.length,
        reopened: this.grants.size,
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
    return `pcap ${this.opts.iface ?? o.interface ?? 'eth0'} ${o.spaPort} ${this.pcapBufferMb()} tcp:${this.sequences?.ports('tcp').join(',')} udp:${this.sequences?.ports('udp').join(',')}`;
  }

  /** PcapBufferMB as set, else its default: larger when fwknop clients are served (DEFAULTS). */
  private pcapBufferMb(): number {
    const o = this.runtime.config.options;
    return o.lines['PcapBufferMB'] === undefined && this.runtime.fwknop ? DEFAULTS.pcapBufferMbFwknop : o.pcapBufferMb;
  }

  private async openSource(): Promise<PacketSource> {
    const o = this.runtime.config.options;
    const onFrame = (f: Frame): void => this.handleFrame(f);
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
      iface: this.opts.iface ?? o.interface ?? 'eth0',
      spaPort: o.spaPort,
      datagramBytes: DATAGRAM_BYTES,
      version: VERSION,
      extraClauses: this.runtime.fwknop ? [fwknopFilterClause(o.spaPort)] : [],
      tcpPorts: this.sequences?.ports('tcp') ?? [],
      udpPorts: this.sequences?.ports('udp') ?? [],
      bufferBytes: this.pcapBufferMb() * 1024 * 1024,
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

  /** Journal entries left by a previous run: close those past their time, re-arm the rest. */
  private async recoverJournal(nowMs: number): Promise<void> {
    const read = readJournalReport(this.runtime.config.options.stateDir);
    const left = read.grants;
    // Not a torn last record (expected after a crash): something changed the file. A stop
    // command it held is lost; say so loudly, the records that check out are still used.
    if (read.damaged.length > 0) this.log.error({ file: read.file, lines: read.damaged.slice(0, 20), count: read.damaged.length }, 'journal damaged: records failed their check; rules they held may still be open');
    this.journal = new Journal(this.runtime.config.options.stateDir);
    this.journal.compact(left, read.unsure);
    for (const g of left) {
      this.grants.set(g);
      const fields = { door: g.door, id: g.id, addr: g.addr.text, access: g.access ? accessText(g.access) : undefined };
      if (g.untilMs <= nowMs) {
        this.log.info(fields, 'closing rule that expired while down');
        await this.close(grantKey(g));
      } else if (read.unsure.has(grantKey(g))) {
        // Its start was cut off (the daemon died while it ran): it may have done part of its
        // work. Close it now, so the firewall and status agree; the client knocks again.
        this.log.info(fields, 'closing rule whose start did not finish before the daemon stopped');
        await this.close(grantKey(g));
      } else {
        this.armClose(g);
      }
    }
  }

  /**
   * Installs each built-in backend's base rules. At start (`fatal`), a backend that cannot
   * install a door's `protect = yes` stops the daemon: a door must not run as if protected
   * while its port is exposed (systemd's Restart= tries again). On a reload it is logged and
   * returned (one line per backend that failed).
   */
  private async setupBackends(fatal = false): Promise<string[]> {
    const failed: string[] = [];
    const seen = new Set<Backend>();
    for (const door of this.runtime.config.doors) {
      const b = this.runtime.backends.get(door.name);
      if (door.kind !== 'spa' || !b || seen.has(b)) continue;
      seen.add(b);
      const doors = this.runtime.config.doors.flatMap((d) => (d.kind === 'spa' && this.runtime.backends.get(d.name) === b ? [{ door: d.name, protect: d.protect, access: d.access }] : []));
      const r = await applyAll(b.setup(doors));
      if (!r.ok) {
        this.log.error({ backend: b.name, error: r.message }, 'firewall setup failed');
        failed.push(`firewall setup failed: ${b.name}: ${r.message}`);
        const guarded = doors.filter((d) => d.protect).map((d) => d.door);
        if (fatal && guarded.length > 0) throw new SystemError('command', `firewall ${b.name}: cannot install protect = yes for ${guarded.map((d) => `[${d}]`).join(', ')}: ${r.message}`);
      } else this.log.info({ backend: b.name, doors: doors.map((d) => d.door), protect: protectedAccess(doors).map(accessText) }, 'firewall set up');
    }
    // fwknop stanzas' doors: base rules of their shared backend (CMD_CYCLE backends have none).
    const fw = this.runtime.fwknop;
    const fb = fw ? this.runtime.backends.get(fw.doors[0] ?? '') : undefined;
    if (fw && fb && !seen.has(fb)) {
      const r = await applyAll(fb.setup(fw.doors.filter((d) => this.runtime.backends.get(d) === fb).map((door) => ({ door, protect: false, access: [] }))));
      if (!r.ok) {
        this.log.error({ backend: fb.name, error: r.message }, 'firewall setup failed');
        failed.push(`firewall setup failed: ${fb.name}: ${r.message}`);
      }
    }
    return failed;
  }

  /**
   * Issue 12, item 10: after `nft flush ruleset` (or another tool's reload) the protected
   * ports were exposed until a restart. Each backend that can say whether its base rules are
   * in place is asked; rules found gone are reinstalled, with a log line either way.
   */
  private async checkFirewall(): Promise<void> {
    if (this.stopping || this.checkingFirewall) return;
    this.checkingFirewall = true;
    try {
      const seen = new Set<Backend>();
      for (const door of this.runtime.config.doors) {
        const b = this.runtime.backends.get(door.name);
        if (door.kind !== 'spa' || !b?.installed || seen.has(b)) continue;
        seen.add(b);
        const doors = this.runtime.config.doors.flatMap((d) => (d.kind === 'spa' && this.runtime.backends.get(d.name) === b ? [{ door: d.name, protect: d.protect, access: d.access }] : []));
        const probe = b.installed(doors);
        const r = await runArgv(probe.argv);
        if (r.ok) continue;
        if (r.failure !== 'exit' || r.code === null || !probe.absentCodes.includes(r.code)) {
          this.log.error({ backend: b.name, error: r.stderr }, 'firewall check failed');
          continue;
        }
        this.log.warn({ backend: b.name, doors: doors.map((d) => d.door), protect: protectedAccess(doors).map(accessText) }, 'firewall rules gone (flushed?); reinstalling');
        const s = await applyAll(b.setup(doors));
        if (s.ok) this.log.info({ backend: b.name }, 'firewall rules reinstalled');
        else this.log.error({ backend: b.name, error: s.message }, 'firewall reinstall failed');
      }
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'firewall check failed');
    } finally {
      this.checkingFirewall = false;
    }
  }

  private backendFor(g: Grant): Backend | undefined {
    return this.runtime.backends.get(g.door);
  }

  /** The per-packet entry point. Synchronous: decides and queues effects; never throws. */
  handleFrame(f: Frame): void {
    try {
      if (f.proto === 'udp' && f.dstPort === this.runtime.config.options.spaPort) {
        // A fwknop packet is base64 text; a v1 datagram starts with 0x01, which is not.
        if (!this.fwknop?.handle(f)) this.handleSpa(f);
      } else this.sequences?.hit(f, this.nowMs());
    } catch (e) {
      this.log.error({ err: e }, 'packet handling failed');
    }
  }

  private handleSpa(f: Frame): void {
    const nowMs = this.nowMs();
    const nowSec = Math.floor(nowMs / SECOND);
    if (!this.runtime.server) return this.reject('tag.unknown', f, undefined, nowMs);
    const ctx: VerifyContext = { server: this.runtime.server, tags: this.tags, replay: this.replay, windowSec: this.runtime.config.options.windowSec };
    const v = verifyDatagram(ctx, f.payload, nowSec);
    if (!v.ok) return this.reject(v.reason, f, v.id, nowMs);
    const p = chooseDoor(this.runtime.spaDoors, v.client.id, v.access, v.allow, f.src);
    if (!p.ok) return this.reject(p.reason, f, v.client.id, nowMs);
    // PROTOCOL.md §5.3: durable before any action; if the disk refuses, nothing opens.
    try {
      this.replayStore.record(v.client.guardKey, v.nonceKey, v.timeSec);
    } catch (e) {
      this.log.error({ error: (e as Error).message, id: v.client.id, src: f.src.text }, 'replay guard not persisted; knock refused');
      return;
    }
    this.replay.add(v.client.guardKey, v.nonceKey, v.timeSec);
    this.source?.accepted?.(f.payload, nowSec);
    const door = this.runtime.config.doors.find((d) => d.name === p.door.name);
    const untilMs = nowMs + (door?.cmdTimeoutSec ?? 10) * SECOND;
    this.counters.accepted++;
    this.metrics?.metrics.accepted(p.door.name);
    for (const eff of this.grants.plan(p.door.name, v.client.id, p.addr, v.access, untilMs)) this.grant(eff.grant, eff.kind);
    this.log.info(
      { door: p.door.name, id: v.client.id, src: f.src.text, allow: p.addr.text, access: v.access.map(accessText), until: new Date(untilMs).toISOString() },
      'accepted',
    );
  }

  /** A fwknop stanza accepted a packet: the usual grant path (issue 14). */
  private grantFwknop(door: string, id: string, addr: Grant['addr'], access: readonly Access[], untilMs: number): void {
    this.counters.accepted++;
    this.metrics?.metrics.accepted(door);
    for (const eff of this.grants.plan(door, id, addr, access, untilMs)) this.grant(eff.grant, eff.kind);
  }

  private reject(reason: string, f: Frame, id: string | undefined, nowMs: number): void {
    this.counters.rejected++;
    this.metrics?.metrics.rejected(reason);
    if (this.rejectLog.take(reason, nowMs)) this.log.info({ reason, src: f.src.text, id }, 'rejected');
  }

  private metricsSample(): MetricsSample {
    const src = this.source;
    return {
      source: src,
      filterMode: src && 'filterMode' in src ? (src as PcapSource).filterMode() : undefined,
      openRules: this.grants.list().map((g) => g.door),
      replayEntries: this.replay.size,
      replayCapacity: this.runtime.config.options.replayTotal,
      fwknopRejected: this.fwknop?.counters.rejected,
    };
  }

  private reportSuppressed(): void {
    const s = this.rejectLog.drainSuppressed();
    if (Object.keys(s).length > 0) this.log.info({ suppressed: s }, 'rejections not logged');
  }

  /** Journals, records and queues one open or extend; the close timer is armed at once. */
  private grant(planned: Grant, kind: 'open' | 'extend'): void {
    const backend = this.backendFor(planned);
    const g: Grant = backend ? { ...planned, backend: backend.name } : planned;
    const key = grantKey(g);
    try {
      this.journal.opened(g);
    } catch (e) {
      this.log.error({ error: (e as Error).message, door: g.door, addr: g.addr.text }, 'journal not written; not opening');
      return;
    }
    this.grants.set(g);
    this.armClose(g);
    if (!backend || !g.access) return this.journalStarted(g); // nothing to run: started
    const opening = openingOf(g, this.nowMs());
    const steps: Step[] = kind === 'open' ? backend.open(opening) : backend.extend(opening);
    this.chain(key, async () => {
      // An extend queued behind an open that failed (and was rolled back), or behind a
      // close, has nothing left to extend.
      if (kind === 'extend' && this.grants.get(key) !== g) return;
      const r = await applyAll(steps);
      if (r.ok) {
        this.journalStarted(g);
        return;
      }
      this.log.error({ door: g.door, id: g.id, addr: g.addr.text, access: accessText(g.access!), error: r.message }, kind === 'open' ? 'open failed' : 'extend failed');
      // Nothing was opened: the journal must not claim it. Unless a later knock's extend is
      // queued behind this (it owns the grant now, and will ensure the rule itself).
      if (kind === 'open' && this.grants.get(key) === g) {
        clearTimeout(this.timers.get(key));
        this.timers.delete(key);
        this.grants.delete(key);
        this.journal.closed(g);
      }
    });
  }

  /** A sequence door's start command ran for addr (knockd: every completed knock). */
  private grantSequence(door: string, addr: Grant['addr']): Promise<boolean> {
    const d = this.runtime.config.doors.find((x) => x.name === door);
    const b = this.runtime.backends.get(door);
    if (!d || !b) return Promise.resolve(false);
    // Sequences are unauthenticated and replayable: bound what completions can hold open.
    if (this.grants.list().filter((x) => x.access === undefined).length >= MAX_SEQUENCE_GRANTS) {
      this.log.warn({ door, src: addr.text, limit: MAX_SEQUENCE_GRANTS }, 'too many sequence openings; not opening');
      return Promise.resolve(false);
    }
    // One grant per completed knock, as knockd: a start now, its own stop cmd_timeout later.
    // The id tells them apart, also from a previous run's (journal) ones.
    const nowMs = this.nowMs();
    const g: Grant = { door, id: `${SEQUENCE_ID}@${nowMs}.${++this.sequenceOpens}`, addr, access: undefined, untilMs: nowMs + d.cmdTimeoutSec * SECOND, backend: b.name };
    const key = grantKey(g);
    if (commandsFor(d, addr.family).stop !== undefined) {
      try {
        this.journal.opened(g);
      } catch (e) {
        this.log.error({ error: (e as Error).message, door }, 'journal not written; not opening');
        return Promise.resolve(false);
      }
      this.grants.set(g);
      this.armClose(g);
    }
    return new Promise((resolve) => {
      this.chain(key, async () => {
        let ok = false;
        try {
          const r = await applyAll(b.open(openingOf(g, this.nowMs())));
          if (!r.ok) this.log.error({ door, addr: addr.text, error: r.message }, 'open failed');
          else if (this.grants.get(key) === g) this.journalStarted(g);
          ok = r.ok;
        } finally {
          resolve(ok);
        }
      });
    });
  }

  /** Journals that g's start finished (best effort: without it a restart closes g early, never late). */
  private journalStarted(g: Grant): void {
    try {
      this.journal.started(g);
    } catch (e) {
      this.log.warn({ error: (e as Error).message, door: g.door, addr: g.addr.text }, 'journal not written (start finished)');
    }
  }

  /** Arms the close of g at g.untilMs; a deadline beyond setTimeout's 24.8 days is reached in steps. */
  private armClose(g: Grant): void {
    const key = grantKey(g);
    clearTimeout(this.timers.get(key));
    const delayMs = Math.min(Math.max(0, g.untilMs - this.nowMs()), MAX_TIMER_MS);
    const t = setTimeout(() => {
      const current = this.grants.get(key);
      if (current && current.untilMs > this.nowMs()) this.armClose(current);
      else void this.close(key);
    }, delayMs);
    this.timers.set(key, t);
  }

  /** Closes one grant now: stop command / rule removal, then the journal. */
  close(key: string): Promise<void> {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    const g = this.grants.delete(key);
    if (!g) return Promise.resolve();
    const b = closingBackend(this.runtime, g);
    return this.chain(key, async () => {
      const steps = b ? b.close(openingOf(g, this.nowMs())) : [];
      const r = await applyAll(steps);
      const fields = { door: g.door, id: g.id, addr: g.addr.text, access: g.access ? accessText(g.access) : undefined };
      if (!r.ok) {
        // The rule may still be there: keep it (journal, status) and try again later, unless
        // a new knock reopened it meanwhile (its own timer closes it then).
        this.log.error({ ...fields, error: r.message, retryInSec: CLOSE_RETRY_MS / SECOND }, 'close failed');
        if (!this.stopping && !this.grants.get(key)) {
          const retry: Grant = { ...g, untilMs: this.nowMs() + CLOSE_RETRY_MS };
          this.grants.set(retry);
          this.armClose(retry);
        }
        return;
      }
      this.journal.closed(g);
      // A knock for the same rule between the delete above and now journaled its open before
      // this close: journal it again, or a restart would forget an open rule.
      const reopened = this.grants.get(key);
      if (reopened) this.journal.opened(reopened);
      this.log.info(fields, 'closed');
    });
  }

  private chain(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(job).catch((e: unknown) => this.log.error({ err: e }, 'effect failed'));
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
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
    this.source?.refresh?.(Math.floor(this.nowMs() / SECOND), true);
    const errors: string[] = [];
    try {
      await this.sequences?.reconfigure(next.config);
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'sequence reload failed');
      errors.push(`sequence reload failed: ${(e as Error).message}`);
    }
    const reopen = await this.maybeReopenSource();
    if (reopen !== undefined) errors.push(reopen);
    if (this.metrics) this.metrics.reconfigure(next.config.options.metricsFile, next.config.doors.map((d) => d.name));
    else if (next.config.options.metricsFile !== undefined) this.log.warn({ file: next.config.options.metricsFile }, 'MetricsFile added: it takes effect at the next start');
    // A changed door (protect, access, firewall) must reach the firewall now, not at the next start.
    try {
      errors.push(...(await this.setupBackends()));
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
    const hit = this.grants.list().filter((g) => addr === undefined || g.addr.text === addr);
    await Promise.all(hit.map((g) => this.close(grantKey(g))));
    return hit.map(viewOf);
  }

  /** SIGTERM: stop capturing; close every rule unless CloseOnExit = no; wait for commands. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.source?.close();
    this.control?.close();
    for (const i of this.intervals) clearInterval(i);
    const closeAll = this.runtime.config.options.closeOnExit;
    if (closeAll) {
      await Promise.all(this.grants.list().map((g) => this.close(grantKey(g))));
    } else {
      for (const t of this.timers.values()) clearTimeout(t);
    }
    await Promise.all([...this.chains.values()]);
    await this.metrics?.stop();
    this.log.info({ closed: closeAll, left: this.grants.size, accepted: this.counters.accepted, rejected: this.counters.rejected, capture: this.source?.stats() }, 'stopped');
    this.replayStore.close();
    this.fwknop?.close();
    this.journal.close();
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
