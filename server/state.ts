// The replay guard's and the openings' durable records under StateDir. Shell.
// replay.log: the per-client replay guard (format below, ReplayStore).
// openings.journal: JSON lines {op: open|started|close, door, id, addr, proto, port, untilMs},
// each followed by a space and its checksum (16 hex of SHA-256 of the JSON): a damaged record
// is told from a torn last one (a crash mid-append), which is expected and dropped.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { toHex } from '../src/bytes.js';
import { parseAddress } from '../src/net/address.js';
import { checkAccessSpec } from '../src/net/access.js';
import { ReplayGuard } from '../src/protocol/replay.js';
import { AppendLog, readLogLines } from './store.js';
import { grantKey, type Grant } from './core/grants.js';

export const REPLAY_FILE = 'replay.log';
export const JOURNAL_FILE = 'openings.journal';

/** First line of a replay.log in the format of 0.2 (per-client guard). */
const REPLAY_HEADER = 'spa-replay 2';
const HEX64 = /^[0-9a-f]{64}$/;
const HEX48 = /^[0-9a-f]{48}$/;
const SECONDS = /^-?\d{1,16}$/;

/** What load() found, for the daemon's start-up log line. */
export interface ReplayLoad {
  readonly entries: number;
  /** Lines that were not records (damaged file); they are dropped at compaction. */
  readonly skipped: number;
  /** The file was in 0.1's format (one guard for all clients); it became a common floor. */
  readonly legacyFloor?: number;
}

/**
 * replay.log: `spa-replay 2`, then `n <client hex> <nonce hex> <sec>` per accepted knock,
 * `w <client hex> <sec>` per client watermark and `f <sec>` for the common floor.
 */
export class ReplayStore {
  private readonly log: AppendLog;

  constructor(stateDir: string) {
    this.log = new AppendLog(join(stateDir, REPLAY_FILE));
  }

  get file(): string {
    return this.log.file;
  }

  /**
   * Loads every record into `guard`, sweeps it at nowSec, and compacts the file. A file of
   * 0.1 (no header; `n <nonce> <sec>` and `w <sec>`) named no clients: its newest time becomes
   * a floor for every client, so none of its knocks can be accepted again (fail closed).
   */
  load(guard: ReplayGuard, nowSec: number): ReplayLoad {
    const lines = readLogLines(this.log.file);
    let entries = 0;
    let skipped = 0;
    let legacyFloor: number | undefined;
    if (lines.length > 0 && lines[0] !== REPLAY_HEADER) {
      for (const line of lines) {
        const f = line.split(' ');
        const t = f[0] === 'w' ? f[1] : f[0] === 'n' ? f[2] : undefined;
        if (t !== undefined && SECONDS.test(t)) legacyFloor = Math.max(legacyFloor ?? -Infinity, Number(t));
        else skipped++;
      }
      if (legacyFloor !== undefined) guard.raiseFloor(legacyFloor);
    } else {
      for (const line of lines.slice(1)) {
        const f = line.split(' ');
        if (f[0] === 'n' && f.length === 4 && HEX64.test(f[1]!) && HEX48.test(f[2]!) && SECONDS.test(f[3]!)) {
          guard.add(latin1(f[1]!), latin1(f[2]!), Number(f[3]));
          entries++;
        } else if (f[0] === 'w' && f.length === 3 && HEX64.test(f[1]!) && SECONDS.test(f[2]!)) {
          guard.raiseWatermark(latin1(f[1]!), Number(f[2]));
        } else if (f[0] === 'f' && f.length === 2 && SECONDS.test(f[1]!)) {
          guard.raiseFloor(Number(f[1]));
        } else {
          skipped++;
        }
      }
    }
    guard.sweep(nowSec);
    this.compact(guard);
    return legacyFloor === undefined ? { entries, skipped } : { entries, skipped, legacyFloor };
  }

  /** Durably records an accepted knock; throws if it cannot (fail closed). */
  record(client: string, nonceKey: string, timeSec: number): void {
    this.log.append([`n ${hexOf(client)} ${hexOf(nonceKey)} ${timeSec}`]);
  }

  /** Rewrites the file from the guard when it has grown to twice the live entries. */
  maybeCompact(guard: ReplayGuard): void {
    if (this.log.lineCount > 2 * guard.size + 1000) this.compact(guard);
  }

  compact(guard: ReplayGuard): void {
    const lines = [REPLAY_HEADER];
    if (Number.isFinite(guard.floor)) lines.push(`f ${guard.floor}`);
    for (const w of guard.watermarks()) lines.push(`w ${hexOf(w.client)} ${w.timeSec}`);
    for (const e of guard.entries()) lines.push(`n ${hexOf(e.client)} ${hexOf(e.nonceKey)} ${e.timeSec}`);
    this.log.rewrite(lines);
  }

  close(): void {
    this.log.close();
  }
}

const hexOf = (latin1Key: string): string => toHex(Buffer.from(latin1Key, 'latin1'));
const latin1 = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1');

/**
 * open: written before the start command runs (a crash then still knows to close it);
 * started: after it succeeded; close: after the stop command. An open never followed by
 * its started is an opening whose start may have run in part: the next start closes it.
 */
type JournalOp = 'open' | 'started' | 'close';

interface JournalRecord {
  op: JournalOp;
  door: string;
  id: string;
  addr: string;
  proto?: string;
  port?: number;
  untilMs: number;
  backend?: string;
}

const recordSum = (json: string): string => createHash('sha256').update(json).digest('hex').slice(0, 16);

function toRecord(op: JournalOp, o: Grant): string {
  const r: JournalRecord = { op, door: o.door, id: o.id, addr: o.addr.text, untilMs: o.untilMs };
  if (o.access) {
    r.proto = o.access.proto;
    r.port = o.access.port;
  }
  if (o.backend !== undefined) r.backend = o.backend;
  const json = JSON.stringify(r);
  return `${json} ${recordSum(json)}`;
}

function fromRecord(line: string): { op: JournalOp; grant: Grant } | undefined {
  // `JSON SUM`; a line of 0.1.0 (JSON alone, ending in `}`) is read unchecked, once: the
  // first compaction rewrites it with its sum.
  const sp = line.lastIndexOf(' ');
  const json = line.endsWith('}') ? line : line.slice(0, sp);
  if (json !== line && (sp < 0 || recordSum(json) !== line.slice(sp + 1))) return undefined;
  let r: Partial<JournalRecord>;
  try {
    r = JSON.parse(json) as Partial<JournalRecord>;
  } catch {
    return undefined;
  }
  // A line of JSON that is not an object ("null", "3"): found by npm run fuzz, it crashed the start.
  if (typeof r !== 'object' || r === null) return undefined;
  const addr = typeof r.addr === 'string' ? parseAddress(r.addr) : undefined;
  const access = r.proto === undefined && r.port === undefined ? undefined : checkAccessSpec(`${r.proto}/${r.port}`);
  if ((r.op !== 'open' && r.op !== 'close' && r.op !== 'started') || !addr || typeof access === 'string' || typeof r.door !== 'string' || typeof r.id !== 'string' || typeof r.untilMs !== 'number') return undefined;
  const grant: Grant = { door: r.door, id: r.id, addr, access, untilMs: r.untilMs };
  return { op: r.op, grant: typeof r.backend === 'string' ? { ...grant, backend: r.backend } : grant };
}

/** The journal as read: the openings still in force, and the lines that failed their check. */
export interface JournalRead {
  readonly grants: Grant[];
  /** Keys (grantKey) of grants whose last open has no started after it. */
  readonly unsure: ReadonlySet<string>;
  /** 1-based line numbers of damaged records (not the torn last one: that is expected). */
  readonly damaged: number[];
  readonly file: string;
}

/** Reads the journal: the openings still in force (opened, not closed), latest deadline each. */
export function readJournalReport(stateDir: string): JournalRead {
  const file = join(stateDir, JOURNAL_FILE);
  const live = new Map<string, Grant>();
  const damaged: number[] = [];
  const unsure = new Set<string>();
  for (const [i, line] of readLogLines(file, { keepEmpty: true }).entries()) {
    const r = line === '' ? undefined : fromRecord(line);
    if (!r) {
      damaged.push(i + 1);
      continue;
    }
    const k = grantKey(r.grant);
    if (r.op === 'open') {
      live.set(k, r.grant);
      unsure.add(k);
    } else if (r.op === 'started') {
      unsure.delete(k);
    } else {
      live.delete(k);
      unsure.delete(k);
    }
  }
  for (const k of unsure) if (!live.has(k)) unsure.delete(k);
  return { grants: [...live.values()], unsure, damaged, file };
}

export function readJournal(stateDir: string): Grant[] {
  return readJournalReport(stateDir).grants;
}

export class Journal {
  private readonly log: AppendLog;

  constructor(readonly stateDir: string) {
    this.log = new AppendLog(join(stateDir, JOURNAL_FILE));
  }

  /** Written before the open command runs: a crash then still knows to close it. */
  opened(o: Grant): void {
    this.log.append([toRecord('open', o)]);
  }

  /** The start command (or rule) succeeded. */
  started(o: Grant): void {
    this.log.append([toRecord('started', o)]);
  }

  closed(o: Grant): void {
    this.log.append([toRecord('close', o)]);
  }

  /** Rewrites the journal to just these openings (all started, unless named in `unsure`). */
  compact(live: readonly Grant[], unsure: ReadonlySet<string> = new Set()): void {
    this.log.rewrite(live.flatMap((o) => (unsure.has(grantKey(o)) ? [toRecord('open', o)] : [toRecord('open', o), toRecord('started', o)])));
  }

  close(): void {
    this.log.close();
  }
}
