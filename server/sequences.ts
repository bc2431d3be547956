// Sequence doors in the daemon: feeds captured TCP/UDP hits to the knockd state machine
// (core/knock.ts) and carries out its effects: one-time file updates first, then the
// door's start command. Shell.
import type { Config, KnockPort, SequenceDoor } from '../src/config/types.js';
import { sequenceText } from '../src/config/sequence.js';
import type { Address } from '../src/net/address.js';
import { createKnockState, knockDoorOf, reloadKnockState, step, sweep, type KnockEffect, type KnockState } from './core/knock.js';
import type { Frame } from './core/frame.js';
import { readOneTimeFile, useOneTimeSequence } from './one-time-store.js';
import type { Logger } from './log.js';

export type OpenSequence = (door: string, addr: Address) => Promise<boolean>;

export class SequenceEngine {
  private state: KnockState;
  /** One-time doors' unused sequences, read at start and reload. */
  private oneTime = new Map<string, (readonly KnockPort[])[]>();
  /** One chain for effects, so a one-time advance is on disk before its door opens. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    private config: Config,
    private readonly log: Logger,
    private readonly open: OpenSequence,
  ) {
    this.state = createKnockState([]);
  }

  static async create(config: Config, log: Logger, open: OpenSequence): Promise<SequenceEngine> {
    const e = new SequenceEngine(config, log, open);
    await e.readOneTime(config);
    e.state = createKnockState(e.knockDoors(config));
    return e;
  }

  private doors(config: Config): SequenceDoor[] {
    return config.doors.filter((d): d is SequenceDoor => d.kind === 'sequence');
  }

  private async readOneTime(config: Config): Promise<void> {
    const next = new Map<string, (readonly KnockPort[])[]>();
    for (const d of this.doors(config)) {
      if (d.oneTimeSequences === undefined) continue;
      const f = await readOneTimeFile(d.oneTimeSequences);
      for (const p of f.problems) this.log.warn({ door: d.name, file: d.oneTimeSequences, line: p.line, problem: p.message }, 'one-time sequence line skipped');
      next.set(d.name, f.entries.map((e) => e.sequence));
    }
    this.oneTime = next;
  }

  private knockDoors(config: Config) {
    return this.doors(config).map((d) => knockDoorOf(d, this.oneTime.get(d.name)));
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

  expire(nowMs: number): void {
    const r = sweep(this.state, nowMs);
    this.state = r.state;
    this.carryOut(r.effects);
  }

  async reconfigure(config: Config): Promise<void> {
    this.config = config;
    await this.readOneTime(config);
    const r = reloadKnockState(this.state, this.knockDoors(config));
    this.state = r.state;
    this.carryOut(r.effects);
  }

  /** Waits until every queued effect has been carried out (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
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
          advances.set(
            e.door,
            this.enqueue(async () => {
              const plan = await useOneTimeSequence(file, e.used);
              if (!plan.ok) throw new Error(`${file}: the used sequence ${sequenceText(e.used)} is no longer in the file`);
              this.log.info({ door: e.door, file, line: plan.line, remaining: plan.remaining }, 'one-time sequence used');
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
            await this.open(e.door, e.src);
          });
          break;
        }
      }
    }
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
