// StateDir files: torn lines after a crash, journal replay, replay-guard persistence.
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAddress, type Address } from '../../src/net/address.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { JOURNAL_FILE, Journal, REPLAY_FILE, ReplayStore, readJournal, readJournalReport } from '../../server/state.js';
import { readLogLines } from '../../server/store.js';
import { closingBackend, type Runtime } from '../../server/runtime.js';
import { nftablesBackend } from '../../server/firewall/index.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'spa-state-'));
const grant = (port: number, untilMs = 1000) => ({ door: 'ssh', id: 'alice', addr: parseAddress('2001:db8::7') as Address, access: { proto: 'tcp' as const, port }, untilMs });

describe('journal', () => {
  it('keeps what was opened and not closed, with the latest deadline', () => {
    const d = dir();
    const j = new Journal(d);
    j.opened(grant(22));
    j.opened(grant(23));
    j.opened(grant(22, 5000));
    j.closed(grant(23));
    j.opened({ ...grant(0), access: undefined, id: 'sequence' });
    j.close();
    expect(readJournal(d)).toEqual([grant(22, 5000), { ...grant(0), access: undefined, id: 'sequence' }]);
  });

  it('drops a torn last line and skips lines it cannot read', () => {
    const d = dir();
    const j = new Journal(d);
    j.opened(grant(22));
    j.close();
    appendFileSync(join(d, JOURNAL_FILE), 'not json\n{"op":"open","door":"x","id":"y","addr":"1.2.3.4; rm -rf /","proto":"tcp","port":22,"untilMs":1}\n{"op":"clo');
    expect(readJournal(d)).toEqual([grant(22)]);
    expect(readLogLines(join(d, JOURNAL_FILE))).toHaveLength(3);
  });

  it('each record checks itself: a changed one is reported (with its line), a torn last one is not', () => {
    const d = dir();
    const j = new Journal(d);
    j.opened(grant(22));
    j.opened(grant(23));
    j.closed(grant(22));
    j.close();
    const file = join(d, JOURNAL_FILE);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[0]).toMatch(/^\{.*\} [0-9a-f]{16}$/);
    // The close of tcp/22 altered (port 22 -> 24): without the check, 22 would look closed.
    lines[2] = lines[2]!.replace('"port":22', '"port":24');
    writeFileSync(file, `${lines.join('\n')}{"op":"clo`);
    expect(readJournalReport(d)).toMatchObject({ grants: [grant(22), grant(23)], damaged: [3] });
    // A 0.1.0 journal (JSON without a sum) is still read.
    writeFileSync(file, `${JSON.stringify({ op: 'open', door: 'ssh', id: 'alice', addr: '2001:db8::7', untilMs: 1000, proto: 'tcp', port: 22 })}\n`);
    expect(readJournalReport(d)).toMatchObject({ grants: [grant(22)], damaged: [] });
    // Zeroed blocks (a crash before the data reached the disk) are damage, not silence.
    writeFileSync(file, '\0\0\0\0\n');
    expect(readJournalReport(d).damaged).toEqual([1]);
  });

  it('records which backend opened a grant', () => {
    const d = dir();
    const j = new Journal(d);
    j.opened({ ...grant(22), backend: 'iptables' });
    j.close();
    expect(readJournal(d)).toEqual([{ ...grant(22), backend: 'iptables' }]);
  });

  it('compacts to the live grants only', () => {
    const d = dir();
    const j = new Journal(d);
    for (let i = 1; i <= 50; i++) j.opened(grant(i));
    j.compact([grant(7)]);
    j.opened(grant(8));
    j.close();
    // grant 7 compacted as open + started; grant 8 open only.
    expect(readFileSync(join(d, JOURNAL_FILE), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(readJournal(d).map((g) => g.access?.port)).toEqual([7, 8]);
  });

  it('an open with no started after it is unsure (its start may have run in part); compaction keeps that', () => {
    const d = dir();
    const j = new Journal(d);
    j.opened(grant(22));
    j.started(grant(22));
    j.opened(grant(23));
    j.opened(grant(24));
    j.started(grant(24));
    j.opened(grant(24, 9000)); // an extend: unsure again until its steps ran
    const key = (p: number): string => `ssh 2001:db8::7 tcp/${p}`;
    expect([...readJournalReport(d).unsure].sort()).toEqual([key(23), key(24)]);
    j.compact(readJournalReport(d).grants, readJournalReport(d).unsure);
    j.close();
    expect([...readJournalReport(d).unsure].sort()).toEqual([key(23), key(24)]);
    expect(readJournalReport(d).grants.map((g) => g.access?.port)).toEqual([22, 23, 24]);
  });
});

describe('closingBackend', () => {
  const nft = nftablesBackend();
  const runtime = { backends: new Map([['ssh', nft]]) } as unknown as Runtime;
  it('closes with the backend that opened, even after the door changed firewall', () => {
    expect(closingBackend(runtime, { door: 'ssh' })).toBe(nft);
    expect(closingBackend(runtime, { door: 'ssh', backend: 'nftables' })).toBe(nft);
    expect(closingBackend(runtime, { door: 'ssh', backend: 'iptables' })?.name).toBe('iptables');
    // A door that ran commands and now runs nftables has no stop command left to run.
    expect(closingBackend(runtime, { door: 'ssh', backend: 'command' })).toBeUndefined();
  });
});

describe('replay store', () => {
  const nonce = (c: string): string => Buffer.alloc(24, c).toString('latin1');
  const client = (c: string): string => Buffer.alloc(32, c).toString('latin1');
  const hex = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('hex');

  it('restores nonces and watermarks per client, forgetting what is past the window', () => {
    const d = dir();
    const s = new ReplayStore(d);
    const g = new ReplayGuard(120, 100);
    s.load(g, 1000);
    s.record(client('A'), nonce('a'), 900);
    s.record(client('A'), nonce('b'), 990);
    s.record(client('B'), nonce('a'), 995);
    s.close();
    appendFileSync(join(d, REPLAY_FILE), 'n zz 5\nn 6161'); // garbage and a torn line
    const g2 = new ReplayGuard(120, 100);
    expect(new ReplayStore(d).load(g2, 1030)).toEqual({ entries: 3, skipped: 1 });
    expect(g2.hasNonce(client('A'), nonce('b'))).toBe(true);
    expect(g2.hasNonce(client('B'), nonce('a'))).toBe(true);
    expect(g2.hasNonce(client('A'), nonce('a'))).toBe(false); // 900 < 1030 - 120: swept...
    expect(g2.isBelowWatermark(client('A'), 900)).toBe(true); // ...but still refused
    expect(g2.isBelowWatermark(client('B'), 900)).toBe(false);
    // The file was compacted to the header, the watermark and the live nonces.
    expect(readFileSync(join(d, REPLAY_FILE), 'utf8')).toBe(
      `spa-replay 2\nw ${hex(client('A'))} 900\nn ${hex(client('A'))} ${hex(nonce('b'))} 990\nn ${hex(client('B'))} ${hex(nonce('a'))} 995\n`,
    );
  });

  it("reads 0.1's replay.log (one guard for all keys) as a floor for every client", () => {
    const d = dir();
    writeFileSync(join(d, REPLAY_FILE), `w 900\nn ${hex(nonce('b'))} 990\nn ${hex(nonce('c'))} 985\n`);
    const g = new ReplayGuard(120, 100);
    expect(new ReplayStore(d).load(g, 1000)).toEqual({ entries: 0, skipped: 0, legacyFloor: 990 });
    expect(g.isBelowWatermark(client('A'), 990)).toBe(true);
    expect(g.isBelowWatermark(client('Z'), 991)).toBe(false);
    expect(readFileSync(join(d, REPLAY_FILE), 'utf8')).toBe('spa-replay 2\nf 990\n');
    const g2 = new ReplayGuard(120, 100);
    new ReplayStore(d).load(g2, 1000);
    expect(g2.isBelowWatermark(client('A'), 990)).toBe(true);
  });

  it('a fresh directory starts empty', () => {
    const d = dir();
    writeFileSync(join(d, 'unrelated'), '');
    const g = new ReplayGuard(120, 10);
    new ReplayStore(d).load(g, 0);
    expect(g.size).toBe(0);
  });
});
