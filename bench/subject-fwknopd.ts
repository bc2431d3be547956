// fwknopd (Debian's fwknop-server 2.6.10) under test: -f -i lo, Debian's defaults otherwise, an
// access.conf of N stanzas with the knocking client's last, and a command cycle (CMD_CYCLE_OPEN /
// CLOSE / TIMER) that writes time stamps, so no firewall is touched. Knocks are made by the real
// fwknop client (`-T -B`: build and save, do not send) and sent in-process. The same files and
// packets also run spa-server, which reads fwknopd.conf as it is (issue 14). Shell.
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, onLines, runTracked, spawnTracked, stopTracked, type Tracked } from './procs.js';
import { exitText, Sender, StampedSubject, waitUntil, type FloodSpec, type StopReport, type Subject } from './subject.js';
import { det } from './util.js';
import { SPA_SERVER_BIN } from './subject-spa.js';

/** Which daemon reads the fwknopd.conf: fwknopd itself, or spa-server in its place. */
export type FwknopDaemon = 'fwknopd' | 'spa-server';

const PORT = 62201;
/** Packet i asks for tcp/(FIRST_PORT + i): a rule of its own, so each runs the open command. */
export const FIRST_PORT = 20000;
export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A fresh key pair from `fwknop --key-gen` (KEY_BASE64, HMAC_KEY_BASE64: SHA-256). */
export function fwknopKeyGen(): { key: string; hmacKey: string } {
  const out = execFileSync('fwknop', ['--key-gen', '--no-rc-file', '--no-save-args'], { encoding: 'utf8', env: { ...process.env, HOME: tmpdir() } });
  const key = /^KEY_BASE64:\s*(\S+)/m.exec(out)?.[1];
  const hmacKey = /^HMAC_KEY_BASE64:\s*(\S+)/m.exec(out)?.[1];
  if (key === undefined || hmacKey === undefined) throw new Error(`fwknop --key-gen: unexpected output: ${out.trim()}`);
  return { key, hmacKey };
}

/**
 * n packets from the real client (`fwknop -T -B FILE`: build and save, do not send), to
 * 127.0.0.1:62201 (or port), allow 127.0.0.1; packet i asks for tcp/(FIRST_PORT + i). Each
 * carries its own random data and the current time: send them within MAX_SPA_PACKET_AGE.
 */
export async function makeFwknopPackets(workRoot: string, n: number, key: string, hmacKey: string, port = PORT): Promise<Buffer[]> {
  const dir = mkdtempSync(join(workRoot, 'fwknop-client-'));
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  const file = join(dir, 'packets');
  // The client writes ~/.fwknoprc without --no-rc-file; HOME points at a throwaway directory anyway.
  for (let i = 0; i < n; i++) {
    const args = ['-T', '-B', file, '-b', '-A', `tcp/${FIRST_PORT + i}`, '-a', '127.0.0.1', '-D', '127.0.0.1', '-p', String(port), '--key-base64-rijndael', key, '--key-base64-hmac', hmacKey, '--no-rc-file', '--no-save-args'];
    await runTracked('fwknop', 'fwknop', args, { env: { ...process.env, HOME: home }, timeoutMs: 10_000 });
  }
  const packets = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l, 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  if (packets.length !== n) throw new Error(`fwknop made ${packets.length} packets, wanted ${n}`);
  return packets;
}

export class FwknopdSubject extends StampedSubject implements Subject {
  readonly name: string;
  readonly flood: FloodSpec = {
    port: PORT,
    mode: 'b64',
    size: 204,
    firstByte: -1,
    what: '204 random base64 characters (the size of a real fwknop packet): fwknopd HMAC-checks each against every stanza',
  };
  readonly timeoutMs = 1000;
  private proc: Tracked | undefined;
  private readonly sender = new Sender();
  private packets: Buffer[] = [];
  private dir = '';
  private hmacFailLines = 0;
  private ready = false;
  /** spa-server: when it logged each accepted knock (pino's time, whole milliseconds). */
  private accepted: number[] = [];
  private readonly key: string;
  private readonly hmacKey: string;

  constructor(
    private readonly workRoot: string,
    private readonly stanzas: number,
    private readonly stamp: string,
    private readonly daemon: FwknopDaemon = 'fwknopd',
  ) {
    super();
    this.name = `${daemon === 'fwknopd' ? 'fwknopd' : 'spa-server (fwknopd.conf)'}, ${stanzas} stanza${stanzas === 1 ? '' : 's'}`;
    const k = fwknopKeyGen();
    this.key = k.key;
    this.hmacKey = k.hmacKey;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  running(): boolean {
    return this.proc !== undefined && isRunning(this.proc);
  }

  /** n packets from the real client (makeFwknopPackets). */
  async prepare(n: number): Promise<void> {
    this.packets = await makeFwknopPackets(this.workRoot, n, this.key, this.hmacKey);
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(this.workRoot, 'fwknopd-'));
    const run = join(this.dir, 'run');
    mkdirSync(run, { mode: 0o700 });
    this.openFile = join(this.dir, 'open.stamps');
    this.closeFile = join(this.dir, 'close.stamps');
    const conf = join(this.dir, 'fwknopd.conf');
    const access = join(this.dir, 'access.conf');
    // fwknopd wants absolute paths and 0600 files (DESIGN.md, facts).
    const ours = this.daemon === 'spa-server' ? [`SPA_STATE_DIR ${this.dir}/state;`, `ACCESS_FILE ${access};`] : [];
    writeFileSync(conf, [`PCAP_INTF lo;`, `PCAP_FILTER udp port ${PORT};`, `FWKNOP_RUN_DIR ${run};`, `FWKNOP_PID_FILE ${run}/fwknopd.pid;`, `DIGEST_FILE ${run}/digest.cache;`, ...ours, ''].join('\n'), { mode: 0o600 });
    const stanza = (key: string, hmac: string): string =>
      [
        'SOURCE ANY',
        `KEY_BASE64 ${key}`,
        `HMAC_KEY_BASE64 ${hmac}`,
        `CMD_CYCLE_OPEN ${this.stamp} ${this.openFile}`,
        `CMD_CYCLE_CLOSE ${this.stamp} ${this.closeFile}`,
        `CMD_CYCLE_TIMER ${this.timeoutMs / 1000}`,
        '',
      ].join('\n');
    const others = Array.from({ length: this.stanzas - 1 }, (_, i) => stanza(b64(det(`fwknop other key ${i}`, 32)), b64(det(`fwknop other hmac ${i}`, 64))));
    writeFileSync(access, [...others, stanza(this.key, this.hmacKey)].join('\n'), { mode: 0o600 });
    this.hmacFailLines = 0;
    this.ready = false;
    this.accepted = [];
    const p =
      this.daemon === 'fwknopd'
        ? spawnTracked('fwknopd', 'fwknopd', ['-f', '-i', 'lo', '-c', conf, '-a', access])
        : spawnTracked('spa-server', process.execPath, [SPA_SERVER_BIN, 'run', '--config', conf]);
    this.proc = p;
    let text = '';
    const onLine = (line: string): void => {
      if (line.includes('HMAC_COMPAREFAIL')) this.hmacFailLines++;
      else if (line.includes('"msg":"accepted"')) {
        if (this.accepted.length < 1000) this.accepted.push(Date.parse(/"time":"([^"]+)"/.exec(line)?.[1] ?? ''));
      }
      else if (line.includes('main event loop') || line.includes('"msg":"started"')) this.ready = true;
      else if (text.length < 4000) text += `${line}\n`;
    };
    onLines(p.child.stdout, onLine);
    onLines(p.child.stderr, onLine);
    const ok = await waitUntil(() => this.ready || !isRunning(p), 10_000, 10);
    if (!ok || !isRunning(p)) throw new Error(`${this.daemon} did not start: ${text.trim()}`);
  }

  knock(i: number): Promise<number> {
    const d = this.packets[i];
    if (!d) throw new Error(`fwknopd: knock ${i} was not prepared`);
    return this.sender.send(PORT, [d]);
  }


  /** spa-server only (fwknopd logs no decision line we time): when it decided each knock. */
  decisionTimes(): number[] {
    return this.accepted;
  }

  async stop(): Promise<StopReport> {
    const p = this.proc;
    if (!p) return { seen: undefined, exit: 'not started', notes: [] };
    const r = await stopTracked(p, 'SIGTERM', 5000);
    this.sender.close();
    await new Promise((res) => setTimeout(res, 50));
    // Each garbage packet fwknopd fully examined logs one HMAC failure per stanza; spa-server
    // logs rejections rate-limited, so it has no such count.
    if (this.daemon === 'spa-server') return { seen: undefined, exit: exitText(r), notes: [] };
    return { seen: Math.floor(this.hmacFailLines / this.stanzas), exit: exitText(r), notes: [] };
  }
}
