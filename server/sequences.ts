// Sequence doors in the daemon: feeds captured TCP/UDP hits to the knockd state machine
// (core/knock.ts) and carries out its effects: one-time file updates first, then the door's
// opening, handed straight to the effects runner (effects.ts openSequence). Shell (reads the
// interface's addresses and the one-time files).
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { SystemError, UserError } from '../src/errors.js';
import { commandsFor } from '../src/config/commands.js';
import type { Config, KnockPort, SequenceDoor } from '../src/config/types.js';
import { sameSequence, sequenceText } from '../src/config/sequence.js';
import { parseAddress, type Address } from '../src/net/address.js';
import { createKnockState, knockDoorOf, reloadKnockState, setLocalAddresses, step, sweep, type KnockEffect, type KnockState } from './core/knock.js';
import type { Frame } from './core/frame.js';
import { readOneTimeFileSync, useOneTimeSequence } from './one-time-store.js';
import type { Logger } from './log.js';
import type { SequenceOpening } from './effects.js';

/** The effects runner's openSequence: resolves whether the door's start command ran. */
export type OpenSequence = (s: SequenceOpening) => Promise<boolean>;

/** The interface the daemon captures on when neither --interface nor Interface says (knockd's). */
export const DEFAULT_INTERFACE = 'eth0';

/**
 * The addresses of an interface as knockd learns them (getifaddrs: every IPv4 and IPv6 address
 * of the interface of that name, the zone of a link-local one dropped), as canonical text,
 * sorted. `any` (the capture of every interface, which knockd cannot do) takes them all.
 */
export function interfaceAddresses(iface: string, table: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const [name, infos] of Object.entries(table)) {
    if (iface !== 'any' && name !== iface) continue;
    for (const info of infos ?? []) {
      const a = parseAddress(info.address.split('%')[0] ?? '');
      if (a) out.add(a.text);
    }
  }
  return [...out].sort();
}

export class SequenceEngine {
  private state: KnockState;
  /** One-time doors' unused sequences, read at start and reload. */
  private oneTime = new Map<string, (readonly KnockPort[])[]>();
  /**
   * Per one-time door, sequences used in memory whose line is not yet (or could not be)
   * commented out on disk. A reload drops them from what it reads, so that a sequence used just
   * before a SIGHUP, or whose update failed, is never accepted again by this process.
   */
  private readonly unwritten = new Map<string, (readonly KnockPort[])[]>();
  /** One chain for effects, so a one-time advance is on disk before its door opens. */
  private queue: Promise<void> = Promise.resolve();
  /** Opens handed to the daemon and not yet finished (the chain does not wait for commands). */
  private readonly opening = new Set<Promise<unknown>>();
  /** The capture interface's addresses, as last read (undefined before the first read). */
  private local: string[] | undefined;

  private constructor(
    private config: Config,
    private readonly log: Logger,
    private readonly open: OpenSequence,
    /** The interface actually captured on: knocks count only when sent to its addresses. */
    private readonly iface: string,
    private readonly addressesOf: (iface: string) => string[],
  ) {
    this.state = createKnockState([]);
  }

  /**
   * `iface`: the interface the daemon captures on, when the command line overrides [options]
   * Interface (`spa-server run --interface`). `addressesOf` is for tests (default: the
   * host's interfaces). Throws UserError (FILE:LINE) when a one_time_sequences file is missing.
   */
  static create(config: Config, log: Logger, open: OpenSequence, iface?: string, addressesOf: (iface: string) => string[] = (i) => interfaceAddresses(i)): Promise<SequenceEngine> {
    const e = new SequenceEngine(config, log, open, iface ?? config.options.interface ?? DEFAULT_INTERFACE, addressesOf);
    e.oneTime = e.readOneTime(config);
    e.state = createKnockState(e.knockDoors(config), { localAddresses: e.readLocalAddresses() });
    return Promise.resolve(e);
  }

  private doors(config: Config): SequenceDoor[] {
    return config.doors.filter((d): d is SequenceDoor => d.kind === 'sequence');
  }

  /** Synchronous, so that no packet is handled between the read and the use of what was read. */
  private readOneTime(config: Config): Map<string, (readonly KnockPort[])[]> {
    const next = new Map<string, (readonly KnockPort[])[]>();
    for (const d of this.doors(config)) {
      if (d.oneTimeSequences === undefined) continue;
      const where = { file: config.file, line: d.lines['one_time_sequences'] ?? d.line };
      let f: ReturnType<typeof readOneTimeFileSync>;
      try {
        f = readOneTimeFileSync(d.oneTimeSequences);
      } catch (e) {
        if (e instanceof UserError) throw new UserError('file.missing', `one_time_sequences: ${d.oneTimeSequences}: no such file`, where);
        if (e instanceof SystemError) throw new UserError('config', `one_time_sequences: ${d.oneTimeSequences}: cannot read: ${(e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.message}`, where);
        throw e;
      }
      for (const p of f.problems) this.log.warn({ door: d.name, file: d.oneTimeSequences, line: p.line, problem: p.message }, 'one-time sequence line skipped');
      const seqs = f.entries.map((x) => x.sequence);
      for (const used of this.unwritten.get(d.name) ?? []) {
        const i = seqs.findIndex((s) => sameSequence(s, used));
        if (i >= 0) seqs.splice(i, 1);
      }
      if (seqs.length === 0) this.log.warn({ door: d.name, file: d.oneTimeSequences }, 'no one-time sequence left; door disabled');
      next.set(d.name, seqs);
    }
    return next;
  }

  private knockDoors(config: Config) {
    return this.doors(config).map((d) => knockDoorOf(d, this.oneTime.get(d.name)));
  }

  /** Reads the capture interface's addresses; logs when they change. Keeps the last on error. */
  private readLocalAddresses(): string[] {
    let now: string[];
    try {
      now = this.addressesOf(this.iface);
    } catch (e) {
      this.log.warn({ iface: this.iface, error: (e as Error).message }, 'cannot read the interface addresses; keeping the last ones');
      return this.local ?? [];
    }
    const before = this.local;
    if ((before === undefined || before.join(' ') !== now.join(' ')) && this.doors(this.config).length > 0) {
      if (now.length === 0) this.log.warn({ iface: this.iface }, 'the capture interface has no address; sequence doors without target match nothing');
      else this.log.info({ iface: this.iface, addresses: now }, 'sequence doors count knocks to these addresses');
    }
    this.local = now;
    return now;
  }

  /** Every port any sequence door may knock on (all one-time lines too), for the capture filter. */
  ports(proto: 'tcp' | 'udp'): number[] {
    const out = new Set<number>();
    for (const d of this.doors(this.config)) {
      const seqs = d.oneTimeSequences !== undefined ? (this.oneTime.get(d.name) ?? []) : d.sequence ? [d.sequence] : [];
      for (const s of seqs) for (const k of s) if (k.proto === proto) out.add(k.port);
    }
    return [...out].sort((a, b) => a - b);
  }

  hit(f: Frame, nowMs: number): void {
    const r = step(this.state, { src: f.src, dst: f.dst, proto: f.proto, dstPort: f.dstPort, tcpFlags: f.tcpFlags }, nowMs);
    this.state = r.state;
    this.carryOut(r.effects);
  }

  /** The daemon's timer (every few seconds): retires timed-out attempts, re-reads the interface's addresses. */
  expire(nowMs: number): void {
    const before = this.local;
    const now = this.readLocalAddresses();
    if (before === undefined || before.join(' ') !== now.join(' ')) this.state = setLocalAddresses(this.state, now);
    const r = sweep(this.state, nowMs);
    this.state = r.state;
    this.carryOut(r.effects);
  }

  /** SIGHUP. On a problem (a one-time file gone) throws and keeps running as before. */
  reconfigure(config: Config): Promise<void> {
    try {
      this.oneTime = this.readOneTime(config);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    this.config = config;
    const r = reloadKnockState(this.state, this.knockDoors(config));
    this.state = r.state;
    this.carryOut(r.effects);
    return Promise.resolve();
  }

  /** Waits until every queued effect has been carried out, the doors' start commands included (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const q = this.queue;
      await q;
      await Promise.all([...this.opening]);
      if (q === this.queue && this.opening.size === 0) return;
    }
  }

  private carryOut(effects: readonly KnockEffect[]): void {
    /** One-time updates of this batch by door: the door's open waits for its update and is skipped if it failed (fail closed). */
    const advances = new Map<string, Promise<boolean>>();
    for (const e of effects) {
      switch (e.kind) {
        case 'knock-stage':
          this.log.debug({ door: e.door, src: e.src.text, stage: e.stage, of: e.of }, 'knock stage');
          break;
        case 'knock-ended':
          this.log.debug({ door: e.door, src: e.src.text, stage: e.stage, reason: e.reason }, 'knock attempt ended');
          break;
        case 'one-time-advance': {
          const file = this.doors(this.config).find((d) => d.name === e.door)?.oneTimeSequences;
          if (file === undefined) break;
          const pending = this.unwritten.get(e.door) ?? [];
          pending.push(e.used);
          this.unwritten.set(e.door, pending);
          advances.set(
            e.door,
            this.enqueue(async () => {
              const plan = await useOneTimeSequence(file, e.used);
              if (!plan.ok) throw new Error(`${file}: the used sequence ${sequenceText(e.used)} is no longer in the file`);
              // On disk now: a reload reads it commented out. (On failure it stays listed: never again.)
              const i = pending.indexOf(e.used);
              if (i >= 0) pending.splice(i, 1);
              this.log.info({ door: e.door, file, line: plan.line, remaining: plan.remaining }, 'one-time sequence used');
              if (plan.next === undefined) this.log.warn({ door: e.door, file }, 'no one-time sequence left; door disabled');
            }),
          );
          break;
        }
        case 'sequence-open': {
          const advanced = advances.get(e.door) ?? Promise.resolve(true);
          this.enqueue(async () => {
            if (!(await advanced)) {
              this.log.error({ door: e.door, src: e.src.text }, 'one-time sequence not marked used; not opening');
              return;
            }
            this.log.info({ door: e.door, src: e.src.text }, 'sequence accepted');
            // Not awaited: a slow start command must not hold up other doors' opens. Each
            // completion runs on its own, as knockd forks one child per open.
            const p = this.openDoor(e.door, e.src).catch((err: unknown) => this.log.error({ door: e.door, src: e.src.text, error: (err as Error).message }, 'sequence open failed'));
            this.opening.add(p);
            void p.then(() => this.opening.delete(p));
          });
          break;
        }
      }
    }
  }

  /** A completed knock's opening: the door's cmd_timeout, and whether it has a stop command for addr. */
  private openDoor(door: string, addr: Address): Promise<boolean> {
    const d = this.doors(this.config).find((x) => x.name === door);
    if (!d) return Promise.resolve(false);
    return this.open({ door, addr, cmdTimeoutSec: d.cmdTimeoutSec, closes: commandsFor(d, addr.family).stop !== undefined });
  }

  /** Queues a job after every earlier one; resolves true when it succeeded. */
  private enqueue(job: () => Promise<void>): Promise<boolean> {
    const done = this.queue.then(job).then(
      () => true,
      (err: unknown) => {
        this.log.error({ error: (err as Error).message }, 'sequence effect failed');
        return false;
      },
    );
    this.queue = done.then(() => undefined);
    return done;
  }
}
