// The replay guard's and the openings' durable records under StateDir. Shell.
// replay.log: `n <nonce hex> <time sec>` per accepted knock, `w <sec>` watermark lines.
// openings.journal: JSON lines {op: open|close, door, id, addr, proto, port, untilMs}, each
// followed by a space and its checksum (16 hex of SHA-256 of the JSON): a damaged record is
// told from a torn last one (a crash mid-append), which is expected and dropped.
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

export class ReplayStore {
  private readonly log: AppendLog;

  constructor(stateDir: string) {
    this.log = new AppendLog(join(stateDir, REPLAY_FILE));
  }

  /** Loads every record into `guard`, sweeps it at nowSec, and compacts the file. */
  load(guard: ReplayGuard, nowSec: number): void {
    for (const line of readLogLines(this.log.file)) {
      const [kind, a, b] = line.split(' ');
      if (kind === 'w' && a !== undefined && /^-?\d+$/.test(a)) guard.raiseWatermark(Number(a));
      else if (kind === 'n' && a !== undefined && /^[0-9a-f]{48}$/.test(a) && b !== undefined && /^\d+$/.test(b)) {
        guard.add(Buffer.from(a, 'hex').toString('latin1'), Number(b));
      }
    }
    guard.sweep(nowSec);
    this.compact(guard);
  }

  /** Durably records an accepted knock; throws if it cannot (fail closed). */
  record(nonceKey: string, timeSec: number): void {
    this.log.append([`n ${toHex(Buffer.from(nonceKey, 'latin1'))} ${timeSec}`]);
  }

  /** Rewrites the file from the guard when it has grown to twice the live entries. */
  maybeCompact(guard: ReplayGuard): void {
    if (this.log.lineCount > 2 * guard.size + 1000) this.compact(guard);
  }

  compact(guard: ReplayGuard): void {
    const lines = Number.isFinite(guard.watermark) ? [`w ${guard.watermark}`] : [];
    for (const e of guard.entries()) lines.push(`n ${toHex(Buffer.from(e.nonceKey, 'latin1'))} ${e.timeSec}`);
    this.log.rewrite(lines);
  }

  close(): void {
    this.log.close();
  }
}

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
