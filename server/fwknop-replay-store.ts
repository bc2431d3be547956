// The fwknop replay cache on disk: fwknop-replay.log under the state directory, one
// `<digest> <untilSec>` line per burned packet, fsynced before anything opens (so a resent
// packet is refused after kill -9), compacted to the live entries. At the first start it
// imports fwknopd's DIGEST_FILE when there is one. Shell.
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FwknopReplayTable, parseDigestCache, parseReplayLog, replayLogLine } from '../src/fwknop/replay.js';
import { AppendLog, readLogLines } from './store.js';

export const FWKNOP_REPLAY_FILE = 'fwknop-replay.log';
/** fwknopd's digest.cache is read only if it is a regular file of at most this size. */
const MAX_DIGEST_CACHE_BYTES = 64 * 1024 * 1024;

export class FwknopReplayStore {
  readonly table = new FwknopReplayTable();
  private readonly log: AppendLog;

  constructor(stateDir: string, private readonly maxAgeSec: number | undefined) {
    this.log = new AppendLog(join(stateDir, FWKNOP_REPLAY_FILE));
  }

  /** Loads our log (and fwknopd's cache, if given and readable), sweeps, compacts. Returns the number imported. */
  load(nowSec: number, digestCache?: string): number {
    for (const e of parseReplayLog(readLogLines(this.log.file))) this.table.add(e.digest, e.untilSec);
    let imported = 0;
    if (digestCache !== undefined && existsSync(digestCache)) {
      const st = lstatSync(digestCache);
      if (st.isFile() && st.size <= MAX_DIGEST_CACHE_BYTES) {
        for (const e of parseDigestCache(readFileSync(digestCache, 'latin1'), this.maxAgeSec)) {
          if (!this.table.has(e.digest) && e.untilSec >= nowSec) imported++;
          this.table.add(e.digest, e.untilSec);
        }
      }
    }
    this.table.sweep(nowSec);
    this.compact();
    return imported;
  }

  /** Durably records a burned packet; throws if it cannot (then nothing opens). */
  record(digest: string, untilSec: number): void {
    this.log.append([replayLogLine(digest, untilSec)]);
    this.table.add(digest, untilSec);
  }

  sweep(nowSec: number): void {
    this.table.sweep(nowSec);
    if (this.log.lineCount > 2 * this.table.size + 1000) this.compact();
  }

  compact(): void {
    this.log.rewrite(this.table.entries().map((e) => replayLogLine(e.digest, e.untilSec)));
  }

  close(): void {
    this.log.close();
  }
}
