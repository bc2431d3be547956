// knockd (Debian's knockd 0.8) under test: `knockd -c CONF -i lo` in the foreground, one door
// with a UDP sequence whose start/stop commands write time stamps. A knock is the sequence's
// three datagrams, sent in-process as `knock -u` would; the flood goes to the first sequence
// port from another address, so every flood packet is a hit in knockd's state machine. Shell.
import { createReadStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRunning, spawnTracked, stopTracked, type Tracked } from './procs.js';
import { exitText, Sender, StampedSubject, waitUntil, type FloodSpec, type StopReport, type Subject } from './subject.js';

export const KNOCKD_SEQUENCE = [7000, 8000, 9000] as const;
const FLOOD_SOURCE = '127.0.0.2';

/** Occurrences of `needle` in a file of any size, read in chunks. */
async function countInFile(file: string, needle: string): Promise<number> {
  if (!existsSync(file)) return 0;
  let n = 0;
  let carry = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = carry + (chunk as string);
    let i = text.indexOf(needle);
    while (i >= 0) {
      n++;
      i = text.indexOf(needle, i + needle.length);
    }
    carry = text.slice(Math.max(0, text.length - needle.length + 1));
  }
  return n;
}

export class KnockdSubject extends StampedSubject implements Subject {
  readonly name = 'knockd';
  readonly flood: FloodSpec = {
    port: KNOCKD_SEQUENCE[0],
    mode: 'bin',
    size: 185,
    firstByte: -1,
    what: `185-byte UDP datagrams to the first sequence port (${KNOCKD_SEQUENCE[0]}) from ${FLOOD_SOURCE}: each one a sequence hit`,
  };
  readonly timeoutMs = 1000;
  private proc: Tracked | undefined;
  private readonly sender = new Sender();
  private dir = '';
  private logFile = '';

  constructor(
    private readonly workRoot: string,
    private readonly stamp: string,
  ) {
    super();
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  running(): boolean {
    return this.proc !== undefined && isRunning(this.proc);
  }

  async prepare(): Promise<void> {
    // Nothing to make: a knock is three 1-byte datagrams.
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(this.workRoot, 'knockd-'));
    this.openFile = join(this.dir, 'open.stamps');
    this.closeFile = join(this.dir, 'close.stamps');
    this.logFile = join(this.dir, 'knockd.log');
    const conf = join(this.dir, 'knockd.conf');
    writeFileSync(
      conf,
      [
        '[options]',
        `\tLogFile = ${this.logFile}`,
        '',
        '[bench]',
        `\tsequence = ${KNOCKD_SEQUENCE.map((p) => `${p}:udp`).join(',')}`,
        '\tseq_timeout = 5',
        `\tstart_command = ${this.stamp} ${this.openFile}`,
        `\tcmd_timeout = ${this.timeoutMs / 1000}`,
        `\tstop_command = ${this.stamp} ${this.closeFile}`,
        '',
      ].join('\n'),
    );
    const p = spawnTracked('knockd', 'knockd', ['-c', conf, '-i', 'lo'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = p;
    let stderr = '';
    p.child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const listening = (): boolean => existsSync(this.logFile) && readFileSync(this.logFile, 'utf8').includes('listening on lo');
    const ok = await waitUntil(() => listening() || !isRunning(p), 10_000, 10);
    if (!ok || !isRunning(p)) throw new Error(`knockd did not start: ${stderr.trim()}`);
  }

  knock(): Promise<number> {
    const one = Uint8Array.of(0);
    return this.sender.send(KNOCKD_SEQUENCE, [one, one, one]);
  }


  async stop(): Promise<StopReport> {
    const p = this.proc;
    if (!p) return { seen: undefined, exit: 'not started', notes: [] };
    const r = await stopTracked(p, 'SIGTERM', 5000);
    this.sender.close();
    // knockd logs "<ip>: <door>: Stage 1" for a hit that starts an attempt; the next hit on the
    // same first port ends that attempt without a log line, the one after starts it again. So
    // every logged hit stands for two examined ones (checked here: 9 hits gave 5 lines).
    const stages = await countInFile(this.logFile, `${FLOOD_SOURCE}: bench: Stage`);
    return { seen: 2 * stages, exit: exitText(r), notes: [] };
  }
}
