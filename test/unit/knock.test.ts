import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { parseSequence } from '../../src/config/sequence.js';
import { TCP_FLAG, type KnockPort } from '../../src/config/types.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import {
  attemptCount,
  createKnockState,
  currentSequenceOf,
  knockDoorOf,
  reloadKnockState,
  step,
  sweep,
  type KnockDoor,
  type KnockEffect,
  type KnockHit,
  type KnockOptions,
  type KnockState,
} from '../../server/core/knock.js';

const S = TCP_FLAG.syn;
const A = TCP_FLAG.ack;

function addr(s: string): Address {
  const a = parseAddress(s);
  if (!a) throw new Error(s);
  return a;
}

/** Doors from knockd.conf text (each gets `command = true`), one-time doors from `sequences`. */
function doorsOf(conf: string, oneTime: Record<string, string[]> = {}): KnockDoor[] {
  const r = parseConfig(conf, 'test.conf');
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.message}`).join('\n'));
  return r.config.doors.map((d) => {
    if (d.kind !== 'sequence') throw new Error('sequence doors only');
    return knockDoorOf(d, oneTime[d.name]?.map(seq));
  });
}

function seq(s: string): KnockPort[] {
  const r = parseSequence(s);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

/** `1.2.3.4 7000` (SYN), `1.2.3.4 7000/A` (flags), `1.2.3.4 53:udp`, `... >192.0.2.1` (dst). */
function hit(spec: string): KnockHit {
  const [src = '', what = '', dst] = spec.split(' ');
  const m = /^(\d+)(?::(udp|tcp))?(?:\/([SAFRPU]*))?$/.exec(what);
  if (!m) throw new Error(spec);
  const proto = (m[2] ?? 'tcp') as 'tcp' | 'udp';
  const flagChars = m[3] ?? (proto === 'tcp' ? 'S' : '');
  const bits: Record<string, number> = { S: TCP_FLAG.syn, A: TCP_FLAG.ack, F: TCP_FLAG.fin, R: TCP_FLAG.rst, P: TCP_FLAG.psh, U: TCP_FLAG.urg };
  const tcpFlags = [...flagChars].reduce((f, c) => f | (bits[c] ?? 0), 0);
  return { src: addr(src), proto, dstPort: Number(m[1]), tcpFlags, ...(dst ? { dst: addr(dst.slice(1)) } : {}) };
}

interface Run {
  opens: string[];
  effects: KnockEffect[];
  state: KnockState;
}

/** Feeds `[seconds, hit spec]` pairs; returns `door@src` for each sequence-open, in order. */
function run(doors: KnockDoor[], hits: [number, string][], options: KnockOptions = {}): Run {
  let state = createKnockState(doors, options);
  const effects: KnockEffect[] = [];
  for (const [sec, spec] of hits) {
    const r = step(state, hit(spec), Math.round(sec * 1000));
    state = r.state;
    effects.push(...r.effects);
  }
  const opens = effects.flatMap((e) => (e.kind === 'sequence-open' ? [`${e.door}@${e.src.text}`] : []));
  return { opens, effects, state };
}

const X = '10.0.0.1';
const Y = '10.0.0.2';
const Z = '2001:db8::9';

/** knockd.conf snippets used by the scenarios. */
const ONE = '[A]\nsequence = 7000,8000,9000\ntcpflags = syn\nseq_timeout = 5\ncommand = true\n';
const NOFLAGS = '[A]\nsequence = 7000,8000,9000\nseq_timeout = 5\ncommand = true\n';
const TWO = '[A]\nsequence = 1,2,3\ntcpflags = syn\ncommand = true\n[B]\nsequence = 5,6,7\ntcpflags = syn\ncommand = true\n';
const SHARED = '[A]\nsequence = 1,2,3\ncommand = true\n[B]\nsequence = 1,2,4\ncommand = true\n';
const DUP_OK = '[A]\nsequence = 7000,8000,9000\ntcpflags = syn\nignore_duplicates = yes\ncommand = true\n';

interface Scenario {
  name: string;
  conf: string;
  hits: [number, string][];
  opens: string[];
  options?: KnockOptions;
}

const t = (sec: number, ...specs: string[]): [number, string][] => specs.map((s) => [sec, s]);

const SCENARIOS: Scenario[] = [
  { name: 'the right sequence opens', conf: ONE, hits: t(0, `${X} 7000`, `${X} 8000`, `${X} 9000`), opens: [`A@${X}`] },
  { name: 'the wrong order does not', conf: ONE, hits: t(0, `${X} 9000`, `${X} 8000`, `${X} 7000`), opens: [] },
  { name: 'an incomplete sequence does not', conf: ONE, hits: t(0, `${X} 7000`, `${X} 8000`), opens: [] },
  { name: 'a port in no sequence never resets a knock', conf: ONE, hits: t(0, `${X} 7000`, `${X} 22`, `${X} 8000`, `${X} 1234`, `${X} 9000`), opens: [`A@${X}`] },
  { name: 'a UDP datagram to a TCP sequence port is in no sequence either', conf: ONE, hits: t(0, `${X} 7000`, `${X} 8000:udp`, `${X} 8000`, `${X} 9000`), opens: [`A@${X}`] },
  { name: 'a wrong port of the sequence breaks the attempt', conf: ONE, hits: t(0, `${X} 7000`, `${X} 9000`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'the packet that breaks an attempt is not a new start', conf: ONE, hits: t(0, `${X} 7000`, `${X} 7000`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'the packet after the breaking one may start again', conf: ONE, hits: t(0, `${X} 7000`, `${X} 7000`, `${X} 7000`, `${X} 8000`, `${X} 9000`), opens: [`A@${X}`] },
  { name: 'a duplicate packet (retransmitted SYN) kills the attempt', conf: ONE, hits: t(0, `${X} 7000`, `${X} 8000`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'ignore_duplicates: a repeat of the previous knock is harmless', conf: DUP_OK, hits: t(0, `${X} 7000`, `${X} 7000`, `${X} 8000`, `${X} 8000`, `${X} 8000`, `${X} 9000`), opens: [`A@${X}`] },
  { name: 'ignore_duplicates: an older knock still breaks', conf: DUP_OK, hits: t(0, `${X} 7000`, `${X} 8000`, `${X} 7000`, `${X} 9000`), opens: [] },
  { name: 'ignore_duplicates: a wrong port still breaks', conf: DUP_OK, hits: t(0, `${X} 7000`, `${X} 9000`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'while an attempt is alive no other door can start (its first port breaks the attempt)', conf: TWO, hits: t(0, `${X} 1`, `${X} 5`, `${X} 6`, `${X} 7`), opens: [] },
  { name: 'the other door opens once the broken attempt is gone', conf: TWO, hits: t(0, `${X} 1`, `${X} 5`, `${X} 5`, `${X} 6`, `${X} 7`), opens: [`B@${X}`] },
  {
    name: "a door's first port that is the next knock of a live attempt advances it and starts nothing",
    conf: '[A]\nsequence = 1,2,3\ncommand = true\n[B]\nsequence = 2,9\ncommand = true\n',
    hits: t(0, `${X} 1`, `${X} 2`, `${X} 9`),
    opens: [],
  },
  { name: 'doors sharing a prefix run side by side: the first to complete opens', conf: SHARED, hits: t(0, `${X} 1`, `${X} 2`, `${X} 3`), opens: [`A@${X}`] },
  { name: 'doors sharing a prefix: the other one', conf: SHARED, hits: t(0, `${X} 1`, `${X} 2`, `${X} 4`), opens: [`B@${X}`] },
  { name: 'two doors with the same sequence both open', conf: '[A]\nsequence = 1,2\ncommand = a\n[B]\nsequence = 1,2\ncommand = b\n', hits: t(0, `${X} 1`, `${X} 2`), opens: [`A@${X}`, `B@${X}`] },
  { name: 'a one-port door opens on its first packet', conf: '[A]\nsequence = 4444:udp\ncommand = true\n', hits: t(0, `${X} 4444:udp`), opens: [`A@${X}`] },
  { name: 'UDP sequences (seed 001)', conf: '[SSH]\nsequence = 1111:udp,2222:udp\nseq_timeout = 5\ncommand = true\n', hits: t(0, `${X} 1111:udp`, `${X} 2222:udp`), opens: [`SSH@${X}`] },
  { name: 'mixed protocols (man example 2), TCP knocks need syn and ack', conf: '[D]\nsequence = 2222:udp,3333:tcp,4444:udp\ntcpflags = syn,ack\ncommand = true\n', hits: t(0, `${X} 2222:udp`, `${X} 3333/S`, `${X} 3333/SA`, `${X} 4444:udp`), opens: [`D@${X}`] },
  { name: 'a UDP datagram where TCP is expected breaks the attempt', conf: '[A]\nsequence = 1,2\ncommand = true\n[B]\nsequence = 2:udp,9\ncommand = true\n', hits: t(0, `${X} 1`, `${X} 2:udp`, `${X} 2`), opens: [] },
  { name: 'tcpflags = syn: a non-SYN packet to a sequence port is ignored, not a break', conf: ONE, hits: t(0, `${X} 7000`, `${X} 9000/A`, `${X} 8000/A`, `${X} 8000/S`, `${X} 9000/PA`, `${X} 9000/S`), opens: [`A@${X}`] },
  { name: 'tcpflags = syn: a non-SYN first knock starts nothing', conf: ONE, hits: t(0, `${X} 7000/A`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'no tcpflags: any TCP packet counts, an ACK breaks like a SYN', conf: NOFLAGS, hits: t(0, `${X} 7000`, `${X} 9000/A`, `${X} 8000`, `${X} 9000`), opens: [] },
  { name: 'no tcpflags: an ACK is a knock too', conf: NOFLAGS, hits: t(0, `${X} 7000/A`, `${X} 8000/R`, `${X} 9000/FA`), opens: [`A@${X}`] },
  {
    name: "a packet that passes only another door's flags is ignored by this door's attempt",
    conf: '[A]\nsequence = 1,2,3\ntcpflags = syn\ncommand = true\n[B]\nsequence = 4,5\ncommand = true\n',
    hits: t(0, `${X} 1`, `${X} 4/A`, `${X} 2`, `${X} 3`),
    opens: [`A@${X}`],
  },
  { name: 'tcpflags = fin,!ack (man example 3)', conf: '[D]\nsequence = 1,2\ntcpflags = fin,!ack\ncommand = true\n', hits: t(0, `${X} 1/F`, `${X} 2/FA`, `${X} 2/S`, `${X} 2/FP`), opens: [`D@${X}`] },
  { name: 'seq_timeout is counted from the first knock', conf: ONE, hits: [[0, `${X} 7000`], [2, `${X} 8000`], [4.999, `${X} 9000`]], opens: [`A@${X}`] },
  { name: 'seq_timeout passed: the late packet finds no attempt', conf: ONE, hits: [[0, `${X} 7000`], [1, `${X} 8000`], [5, `${X} 9000`]], opens: [] },
  { name: 'seq_timeout counts whole seconds, as pcap timestamps do in knockd (4.1 s here)', conf: ONE, hits: [[0.9, `${X} 7000`], [1, `${X} 8000`], [5.0, `${X} 9000`]], opens: [] },
  { name: 'seq_timeout is only checked when the next packet comes; that packet may start anew', conf: '[A]\nsequence = 7000,8000\nseq_timeout = 5\ncommand = true\n', hits: [[0, `${X} 7000`], [10, `${X} 7000`], [11, `${X} 8000`]], opens: [`A@${X}`] },
  { name: 'seq_timeout = 0: only one-port doors can open', conf: '[A]\nsequence = 1,2\nseq_timeout = 0\ncommand = true\n[B]\nsequence = 3\nseq_timeout = 0\ncommand = true\n', hits: t(0, `${X} 1`, `${X} 2`, `${X} 3`), opens: [`B@${X}`] },
  { name: 'several addresses knock at once, interleaved', conf: ONE, hits: t(0, `${X} 7000`, `${Y} 7000`, `${Z} 7000`, `${Y} 8000`, `${X} 8000`, `${Z} 8000`, `${Z} 9000`, `${X} 9000`, `${Y} 9000`), opens: [`A@${Z}`, `A@${X}`, `A@${Y}`] },
  { name: "another address's packets to sequence ports do not break a knock", conf: ONE, hits: t(0, `${X} 7000`, `${Y} 9000`, `${Y} 7000`, `${Y} 7000`, `${X} 8000`, `${Y} 8000`, `${X} 9000`), opens: [`A@${X}`] },
  {
    name: 'a stream of unrelated SYNs from another address does not break a knock',
    conf: ONE,
    hits: [[0, `${X} 7000`], ...Array.from({ length: 200 }, (_, i): [number, string] => [0.5, `${Y} ${1 + i}`]), [1, `${X} 8000`], [1, `${X} 9000`]],
    opens: [`A@${X}`],
  },
  {
    name: "one address's ended attempt does not disturb another's (knockd 0.8 loses it; see knockdListBug)",
    conf: ONE,
    hits: t(0, `${X} 7000`, `${Y} 7000`, `${Y} 8000`, `${X} 9000`, `${Y} 9000`),
    opens: [`A@${Y}`],
  },
  {
    name: 'knockdListBug: removing the oldest attempt loses every other one, as knockd 0.8 does',
    conf: ONE,
    hits: t(0, `${X} 7000`, `${Y} 7000`, `${Y} 8000`, `${X} 9000`, `${Y} 9000`),
    opens: [],
    options: { knockdListBug: true },
  },
  {
    name: 'knockdListBug: an ended attempt that is not the oldest goes alone',
    conf: ONE,
    hits: t(0, `${X} 7000`, `${Y} 7000`, `${Y} 9000`, `${X} 8000`, `${X} 9000`),
    opens: [`A@${X}`],
    options: { knockdListBug: true },
  },
  {
    name: 'knockdListBug: an opened attempt at the head also takes the others with it',
    conf: ONE,
    hits: t(0, `${X} 7000`, `${Y} 7000`, `${X} 8000`, `${X} 9000`, `${Y} 8000`, `${Y} 9000`),
    opens: [`A@${X}`],
    options: { knockdListBug: true },
  },
  {
    name: 'knockdListBug: without the bug the same knocks open for both',
    conf: ONE,
    hits: t(0, `${X} 7000`, `${Y} 7000`, `${X} 8000`, `${X} 9000`, `${Y} 8000`, `${Y} 9000`),
    opens: [`A@${X}`, `A@${Y}`],
  },
  {
    name: 'target: knocks to the target address count, knocks to this host do not',
    conf: '[wake]\nsequence = 1,2\ntarget = 192.0.2.10\ncommand = true\n',
    hits: t(0, `${X} 1 >192.0.2.10`, `${X} 2 >192.0.2.10`, `${Y} 1 >10.0.0.254`, `${Y} 2 >10.0.0.254`, `${Y} 1`, `${Y} 2`),
    opens: [`wake@${X}`],
  },
  {
    name: 'target: an attempt toward the target does not stop a door of this host from starting',
    conf: '[wake]\nsequence = 1,2\ntarget = 192.0.2.10\ncommand = true\n[local]\nsequence = 1,3\ncommand = true\n',
    hits: t(0, `${X} 1 >192.0.2.10`, `${X} 1 >10.0.0.254`, `${X} 3 >10.0.0.254`, `${X} 2 >192.0.2.10`),
    opens: [`local@${X}`, `wake@${X}`],
    options: { localAddresses: ['10.0.0.254'] },
  },
  {
    name: 'localAddresses: a door without target ignores knocks to other addresses',
    conf: ONE,
    hits: t(0, `${X} 7000 >10.0.0.254`, `${X} 8000 >10.0.0.99`, `${X} 8000 >10.0.0.254`, `${X} 9000 >10.0.0.254`),
    opens: [`A@${X}`],
    options: { localAddresses: ['10.0.0.254', '::1'] },
  },
  { name: 'IPv6 knockers', conf: ONE, hits: t(0, `${Z} 7000`, `::1 7000`, `${Z} 8000`, `${Z} 9000`), opens: [`A@${Z}`] },
];

describe('knock state machine: knockd 0.8 semantics', () => {
  it.each(SCENARIOS)('$name', ({ conf, hits, opens, options }) => {
    expect(run(doorsOf(conf), hits, options).opens).toEqual(opens);
  });

  it('effects: one knock-stage per matched knock, then sequence-open with the packet time', () => {
    const { effects } = run(doorsOf(ONE), [[10, `${X} 7000`], [11, `${X} 8000`], [12.5, `${X} 9000`]]);
    expect(effects.map((e) => (e.kind === 'knock-stage' ? `${e.kind} ${e.stage}/${e.of}` : e.kind))).toEqual([
      'knock-stage 1/3',
      'knock-stage 2/3',
      'knock-stage 3/3',
      'sequence-open',
    ]);
    expect(effects[3]).toEqual({ kind: 'sequence-open', door: 'A', src: addr(X), atMs: 12_500 });
  });

  it('effects: a broken attempt and a timed-out one say why, at the packet that shows it', () => {
    const broken = run(doorsOf(ONE), t(0, `${X} 7000`, `${X} 9000`)).effects.at(-1);
    expect(broken).toEqual({ kind: 'knock-ended', door: 'A', src: addr(X), stage: 1, reason: 'broken' });
    const late = run(doorsOf(ONE), [[0, `${X} 7000`], [1, `${X} 8000`], [9, `${X} 9000`]]).effects.at(-1);
    expect(late).toEqual({ kind: 'knock-ended', door: 'A', src: addr(X), stage: 2, reason: 'timeout' });
  });

  it('a packet that passes no filter leaves the state untouched and has no effects', () => {
    const state = createKnockState(doorsOf(ONE));
    step(state, hit(`${X} 7000`), 0);
    const r = step(state, hit(`${X} 22`), 1000);
    expect(r.effects).toEqual([]);
    expect(attemptCount(r.state)).toBe(1);
  });
});

describe('one_time_sequences in the machine', () => {
  const CONF = '[otp]\none_time_sequences = /etc/knockd/otp\nseq_timeout = 15\ncommand = true\n';

  it('each use moves to the next sequence; a used one no longer opens; the last use disables the door', () => {
    const doors = doorsOf(CONF, { otp: ['1,2', '3,4:udp'] });
    const r = run(doors, t(0, `${X} 1`, `${X} 2`, `${X} 1`, `${X} 2`, `${X} 3`, `${X} 4:udp`, `${X} 3`, `${X} 4:udp`));
    expect(r.opens).toEqual([`otp@${X}`, `otp@${X}`]);
    const adv = r.effects.filter((e) => e.kind === 'one-time-advance');
    expect(adv).toEqual([
      { kind: 'one-time-advance', door: 'otp', used: seq('1,2'), next: seq('3,4:udp') },
      { kind: 'one-time-advance', door: 'otp', used: seq('3,4:udp'), next: undefined },
    ]);
    expect(currentSequenceOf(r.state, 'otp')).toBeUndefined();
  });

  it('the advance comes before the open, so the daemon persists first', () => {
    const r = run(doorsOf(CONF, { otp: ['1,2', '3,4'] }), t(0, `${X} 1`, `${X} 2`));
    expect(r.effects.map((e) => e.kind)).toEqual(['knock-stage', 'knock-stage', 'one-time-advance', 'sequence-open']);
  });

  it("another address's attempt keeps its stage but now faces the new sequence (knockd rewrites the door in place)", () => {
    // X matched 1 of 1,2,3; Y used 1,2,3; the door is now 4,5,6 and X is at stage 1 of it:
    // 2 and 3 are in no sequence any more (ignored), and 5,6 complete X's knock.
    const r = run(doorsOf(CONF, { otp: ['1,2,3', '4,5,6'] }), t(0, `${X} 1`, `${Y} 1`, `${Y} 2`, `${Y} 3`, `${X} 2`, `${X} 3`, `${X} 5`, `${X} 6`));
    expect(r.opens).toEqual([`otp@${Y}`, `otp@${X}`]);
  });

  it('a one-time door with no sequence left never opens', () => {
    expect(run(doorsOf(CONF, { otp: [] }), t(0, `${X} 1`)).opens).toEqual([]);
  });
});

describe('bounded attempt table', () => {
  it('evicts the oldest attempt when full, and says so', () => {
    const srcs = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
    const r = run(doorsOf(ONE), [...srcs.map((s): [number, string] => [0, `${s} 7000`]), ...srcs.flatMap((s): [number, string][] => [[1, `${s} 8000`], [1, `${s} 9000`]])], { maxAttempts: 3 });
    expect(r.effects.filter((e) => e.kind === 'knock-ended')).toEqual([{ kind: 'knock-ended', door: 'A', src: addr('10.0.1.1'), stage: 1, reason: 'evicted' }]);
    expect(r.opens).toEqual(['A@10.0.1.2', 'A@10.0.1.3', 'A@10.0.1.4']);
  });

  it('a flood of first knocks from many addresses never grows it past the bound, and a knock still opens', () => {
    let state = createKnockState(doorsOf(ONE), { maxAttempts: 100 });
    state = step(state, hit(`${X} 7000`), 0).state;
    for (let i = 0; i < 5000; i++) {
      state = step(state, hit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255} 7000`), 1).state;
      expect(attemptCount(state)).toBeLessThanOrEqual(100);
    }
    // X was evicted long ago: it must start over, and then it opens.
    const effects = [`${X} 8000`, `${X} 9000`, `${X} 7000`, `${X} 8000`, `${X} 9000`].flatMap((s) => step(state, hit(s), 2).effects);
    expect(effects.filter((e) => e.kind === 'sequence-open')).toHaveLength(1);
  });

  it('timed-out attempts are retired from the old end as packets come, and by sweep()', () => {
    let state = createKnockState(doorsOf(ONE));
    for (let i = 0; i < 50; i++) state = step(state, hit(`10.0.2.${i} 7000`), 0).state;
    expect(attemptCount(state)).toBe(50);
    state = step(state, hit(`${X} 7000`), 60_000).state;
    expect(attemptCount(state)).toBe(50 - 4 + 1);
    const r = sweep(state, 60_000);
    expect(attemptCount(r.state)).toBe(1);
    expect(r.effects).toHaveLength(46);
    expect(r.effects.every((e) => e.kind === 'knock-ended' && e.reason === 'timeout')).toBe(true);
  });

  it('refuses a table bound below 1', () => {
    expect(() => createKnockState([], { maxAttempts: 0 })).toThrow(RangeError);
  });
});

describe('reload', () => {
  it('keeps attempts of unchanged doors and ends the others as lost', () => {
    const before = createKnockState(doorsOf(TWO));
    step(before, hit(`${X} 1`), 0);
    step(before, hit(`${Y} 5`), 0);
    const r = reloadKnockState(before, doorsOf('[A]\nsequence = 1,2,3\ntcpflags = syn\ncommand = true\n[B]\nsequence = 5,6,8\ncommand = true\n'));
    expect(r.effects).toEqual([{ kind: 'knock-ended', door: 'B', src: addr(Y), stage: 1, reason: 'lost' }]);
    const opens = [`${X} 2`, `${X} 3`].flatMap((s) => step(r.state, hit(s), 1000).effects).filter((e) => e.kind === 'sequence-open');
    expect(opens).toHaveLength(1);
  });
});

describe('robustness', () => {
  it('any stream of packets: no throw, the bound holds, opens only after a full sequence', () => {
    const doors = doorsOf(SHARED + '[C]\nsequence = 5:udp,1\ntcpflags = !ack\nseq_timeout = 3\ncommand = true\n');
    const arb = fc.record({
      src: fc.constantFrom(X, Y, Z),
      port: fc.constantFrom(1, 2, 3, 4, 5, 9),
      proto: fc.constantFrom('tcp' as const, 'udp' as const),
      flags: fc.integer({ min: 0, max: 0xff }),
      dtMs: fc.integer({ min: 0, max: 2000 }),
    });
    fc.assert(
      fc.property(fc.array(arb, { maxLength: 60 }), fc.boolean(), (packets, bug) => {
        let state = createKnockState(doors, { maxAttempts: 2, knockdListBug: bug });
        let now = 0;
        const seen = new Map<string, number>();
        for (const p of packets) {
          now += p.dtMs;
          const r = step(state, { src: addr(p.src), proto: p.proto, dstPort: p.port, tcpFlags: p.flags }, now);
          state = r.state;
          seen.set(p.src, (seen.get(p.src) ?? 0) + 1);
          expect(attemptCount(state)).toBeLessThanOrEqual(2);
          for (const e of r.effects) {
            if (e.kind === 'sequence-open') expect(seen.get(e.src.text) ?? 0).toBeGreaterThanOrEqual(e.door === 'C' ? 2 : 3);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('knockDoorOf: a fixed door has one sequence; a one-time door the file list', () => {
    const [fixed] = doorsOf(ONE);
    expect(fixed?.sequences).toEqual([seq('7000,8000,9000')]);
    expect(fixed).toMatchObject({ oneTime: false, seqTimeoutSec: 5, tcpFlags: { set: S, clear: 0 }, ignoreDuplicates: false });
    const [ot] = doorsOf('[o]\none_time_sequences = /f\ncommand = x\ntcpflags = ack\n', { o: ['1', '2'] });
    expect(ot).toMatchObject({ oneTime: true, sequences: [seq('1'), seq('2')], tcpFlags: { set: A, clear: 0 } });
  });
});
