// Fuzzing as a habit: structure-aware properties over everything that reads attacker or
// operator input. `npm test` runs a short pass; `npm run fuzz` (FUZZ_SCALE=full) runs at least
// 10 million datagrams and frames and a large pass over each text parser, and prints counts
// and time (docs/FUZZING.md has the last figures). The properties: nothing throws, and nothing
// invalid is accepted.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concat, toHex } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { DATAGRAM_BYTES, DEFAULT_WINDOW_SEC, OFF_TAG, TAG_BYTES } from '../../src/protocol/constants.js';
import { encodeKnock, verifyDatagram, type VerifyContext } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { decodeFrame, FRAME_REJECT_REASONS, isFrameReject, type LinkType } from '../../server/core/frame.js';
import { parseConfig } from '../../src/config/parse.js';
import { parseProfileConfig } from '../../client/profile.js';
import { parseOneTimeFile } from '../../server/core/one-time.js';
import { ReplayStore, REPLAY_FILE, JOURNAL_FILE, readJournal } from '../../server/state.js';
import { checkKeyString, encodeKey, KEY_TYPES, type KeyType } from '../../keys/format.js';
import { parseAuthorizedKeys } from '../../keys/authorized.js';
import { frameOn, ipv4, ipv6, tcp, udp } from '../helpers/frame-builders.js';
import { det } from '../vectors/generate.js';

const FULL = process.env['FUZZ_SCALE'] === 'full';
/** Runs per property: [short (npm test), full (npm run fuzz)]. */
const runs = (short: number, full: number): number => (FULL ? full : short);
const counts = new Map<string, { runs: number; ms: number }>();

function property<T>(name: string, arb: fc.Arbitrary<T>, n: number, check: (t: T) => void): void {
  it(`${name} (${n.toLocaleString('en-US')} inputs)`, () => {
    const t0 = performance.now();
    fc.assert(fc.property(arb, check), { numRuns: n });
    counts.set(name, { runs: n, ms: performance.now() - t0 });
  }, FULL ? 3_600_000 : 60_000);
}

afterAll(() => {
  if (counts.size === 0) return;
  const rows = [...counts].map(([name, c]) => `  ${name}: ${c.runs.toLocaleString('en-US')} inputs in ${(c.ms / 1000).toFixed(1)} s, 0 exceptions, 0 invalid accepted`);
  const total = [...counts.values()].reduce((a, c) => a + c.runs, 0);
  console.log(`fuzz (${FULL ? 'full' : 'short'}):\n${rows.join('\n')}\n  total: ${total.toLocaleString('en-US')} inputs`);
});

// ---- the datagram verifier ----

const server = serverSecretKey(det('fuzz server', 32));
const clients = ['alice', 'bob', 'carol'].map((id) => ({ id, secret: clientSecretKey(det(`fuzz ${id}`, 64)) }));
const NOW = 1_800_000_030;
const authorized = clients.map((c) => authorizeClient(server, c.id, c.secret)!);
function freshContext(): VerifyContext {
  const tags = new TagTable(DEFAULT_WINDOW_SEC);
  tags.setClients(authorized, NOW);
  return { server, tags, replay: new ReplayGuard(DEFAULT_WINDOW_SEC), windowSec: DEFAULT_WINDOW_SEC };
}
const ctx = freshContext();
const allows = [parseAddress('192.0.2.7') as Address, parseAddress('2001:db8::7') as Address, 'source' as const];
const originals: Uint8Array[] = [];
clients.forEach((c, ci) =>
  allows.forEach((allow, ai) => {
    for (const dt of [-119, -30, 0, 45, 120]) {
      originals.push(encodeKnock({ client: c.secret, server, allow, access: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }], timeSec: NOW + dt, nonce: det(`fuzz ${ci} ${ai} ${dt}`, 24) }));
    }
  }),
);
const originalHex = new Set(originals.map(toHex));

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'append'; bytes: Uint8Array }
  | { kind: 'splice'; from: number; at: number; length: number; source: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat({ max: DATAGRAM_BYTES }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  // A range copied from another valid datagram (a tag of another client or epoch, its nonce, its box).
  fc.record({ kind: fc.constant('splice' as const), from: fc.nat(), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }), source: fc.nat() }),
);

function mutate(d: Uint8Array, m: Mutation): Uint8Array {
  if (d.length === 0 && m.kind !== 'append') return d;
  switch (m.kind) {
    case 'flip': {
      const out = Uint8Array.from(d);
      out[m.at % d.length]! ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      const out = Uint8Array.from(d);
      out[m.at % d.length] = m.value;
      return out;
    }
    case 'truncate':
      return d.subarray(0, m.length);
    case 'append':
      return concat(d, m.bytes);
    case 'splice': {
      const src = originals[m.source % originals.length]!;
      const out = Uint8Array.from(d);
      const at = m.at % d.length;
      const from = m.from % src.length;
      out.set(src.subarray(from, Math.min(from + m.length, src.length, from + d.length - at)), at);
      return out;
    }
  }
}

const mutatedArb = fc.tuple(fc.nat({ max: originals.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([i, ms]) => ms.reduce(mutate, originals[i]!));

function acceptsOnlyOriginals(d: Uint8Array): void {
  const r = verifyDatagram(ctx, d, NOW);
  if (r.ok) expect(originalHex.has(toHex(d))).toBe(true);
}

// A right-size datagram with a tag someone expects, then anything: the path past the tag lookup.
const taggedArb = fc.tuple(fc.nat({ max: originals.length - 1 }), fc.uint8Array({ minLength: DATAGRAM_BYTES - 1 - TAG_BYTES, maxLength: DATAGRAM_BYTES - 1 - TAG_BYTES })).map(([i, rest]) =>
  concat(Uint8Array.of(1), originals[i]!.subarray(OFF_TAG, OFF_TAG + TAG_BYTES), rest),
);

describe('fuzz: the datagram verifier', () => {
  it('accepts every original (the harness is sound)', () => {
    for (const d of originals) expect(verifyDatagram(freshContext(), d, NOW).ok).toBe(true);
  });
  property('verifier: valid knocks mutated', mutatedArb, runs(20_000, 6_000_000), acceptsOnlyOriginals);
  property('verifier: known tag, random rest', taggedArb, runs(2_000, 1_000_000), acceptsOnlyOriginals);
  property('verifier: random bytes of any length', fc.uint8Array({ maxLength: 400 }), runs(2_000, 1_000_000), acceptsOnlyOriginals);
});

// ---- the frame decoder ----

const LINKS: LinkType[] = ['ETHERNET', 'LINUX_SLL', 'LINUX_SLL2', 'RAW', 'NULL'];
const frameArb = fc
  .tuple(fc.constantFrom(...LINKS), fc.boolean(), fc.boolean(), fc.uint8Array({ maxLength: 200 }), fc.array(fc.constantFrom(0, 43, 60, 44), { maxLength: 3 }), fc.array(mutationArb, { maxLength: 4 }), fc.nat())
  .map(([link, v6, isTcp, payload, ext, ms, cut]) => {
    const body = isTcp ? tcp({ payload }) : udp({ payload });
    const proto = isTcp ? 6 : 17;
    const ip = v6 ? ipv6({ proto, body, extensions: ext.map((type) => ({ type })) }) : ipv4({ proto, body });
    const bytes = ms.reduce(mutate, frameOn(link, ip));
    return { link, bytes: Uint8Array.from(bytes), nbytes: cut % (bytes.length + 1) };
  });
const REASONS = new Set<string>(FRAME_REJECT_REASONS);

describe('fuzz: the frame decoder', () => {
  property('frames: valid frames mutated and cut', frameArb, runs(10_000, 2_000_000), ({ link, bytes, nbytes }) => {
    const r = decodeFrame(link, bytes, nbytes);
    if (isFrameReject(r)) {
      expect(REASONS.has(r.reject)).toBe(true);
      return;
    }
    // Nothing outside the captured bytes is ever handed on.
    expect(r.payload.buffer).toBe(bytes.buffer);
    expect(r.payload.byteOffset + r.payload.length).toBeLessThanOrEqual(nbytes);
    expect(r.dstPort >= 0 && r.dstPort < 65536 && r.srcPort >= 0 && r.srcPort < 65536).toBe(true);
  });
});

// ---- text parsers ----

/** Text made of the pieces a parser's grammar uses, plus noise. */
const textOf = (pieces: string[]): fc.Arbitrary<string> =>
  fc
    .array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 12 }), fc.constantFrom('\n', '\n', ' ', '\t', '=', '#', '[', ']', '\r\n', '\u0000', '\uFEFF', '%')), { maxLength: 40 })
    .map((a) => a.join(''));

const lineCount = (text: string): number => text.split('\n').length;

const keyStrings = (Object.keys(KEY_TYPES) as KeyType[]).map((type) => {
  const payload =
    type === 'server-public' ? server.boxPublic : type === 'client-public' ? concat(clients[0]!.secret.signPublic, clients[0]!.secret.boxPublic) : det(`fuzz ${type}`, KEY_TYPES[type].bytes);
  return { type, text: encodeKey(type, payload) };
});
const keyArb = fc
  .tuple(fc.nat({ max: keyStrings.length - 1 }), fc.constantFrom(...(Object.keys(KEY_TYPES) as KeyType[])), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...'AZaz09-_+/=: '.split(''))), { maxLength: 3 }), fc.nat())
  .map(([i, expected, edits, cut]) => {
    let s = keyStrings[i]!.text;
    for (const [at, ch] of edits) s = s.slice(0, at % s.length) + ch + s.slice((at % s.length) + 1);
    if (cut % 5 === 0) s = s.slice(0, cut % (s.length + 1));
    return { text: s, expected };
  });

describe('fuzz: key strings and authorized-keys files', () => {
  property('key strings: valid ones edited', keyArb, runs(5_000, 500_000), ({ text, expected }) => {
    const r = checkKeyString(text, expected);
    // Accepted only in the one canonical spelling of a key of the expected type.
    if ('payload' in r) expect(encodeKey(expected, r.payload)).toBe(text.trim());
  });
  const authLine = keyStrings.filter((k) => k.type === 'client-public').map((k) => `${k.text} alice`);
  const other = encodeKey('client-public', concat(clients[1]!.secret.signPublic, clients[1]!.secret.boxPublic));
  property('authorized-keys files', textOf([...authLine, `${other} bob`, `${other} alice`, 'spa1-client-pub:', ' alice', '# c']), runs(3_000, 300_000), (text) => {
    const r = parseAuthorizedKeys(text, 'k');
    const n = lineCount(text);
    for (const p of r.problems) expect(p.line >= 1 && p.line <= n).toBe(true);
    const ids = r.entries.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const halves = r.entries.flatMap((e) => [toHex(e.key.signPublic), toHex(e.key.boxPublic)]);
    expect(new Set(halves).size).toBe(halves.length);
  });
});

const CONFIG_PIECES = [
  '[options]', '[ssh]', '[openSSH]', 'sequence = 7000,8000:udp,9000', 'seq_timeout = 5', 'tcpflags = syn,!ack', 'command = /sbin/iptables -A INPUT -s %IP% -j ACCEPT',
  'start_command = echo %IP% %PORT%', 'stop_command = x', 'cmd_timeout = 10', 'one_time_sequences = /tmp/x', 'target = 192.0.2.1', 'Interface = lo', 'SPAPort = 62201',
  'ServerKey = /etc/spa/server.key', 'spa_keys = /k', 'access = tcp/22', 'spa_allow_nat = yes', 'spa_allow_source = yes', 'firewall = nftables', 'protect = yes', 'Window = 30', 'UseSyslog',
  'logfile = /var/log/knockd.log', 'PcapBufferMB = 4', 'ReplayPerClient = 64',
];
const PROFILE_PIECES = ['Host web*', 'Host *', 'Key alice', 'ServerKey ~/srv.pub', 'Port 62201', 'Access tcp/22', 'AllowIP auto', 'AllowIP source', 'StunServer none', 'StunServer stun.example.org:3478, [2001:db8::1]:3479', 'Sequence 7000,8000', 'Delay 100', 'Match', '!x', '"a b"'];

describe('fuzz: configuration parsers', () => {
  property('spa.conf / knockd.conf', textOf(CONFIG_PIECES), runs(3_000, 300_000), (text) => {
    const r = parseConfig(text, 'c');
    const n = lineCount(text);
    if (!r.ok) for (const e of r.errors) expect(e.line >= 0 && e.line <= n).toBe(true);
  });
  property('spa-knock profiles', textOf(PROFILE_PIECES), runs(3_000, 300_000), (text) => {
    const r = parseProfileConfig(text, '/home/u/.config/spa-knock/config', { homedir: '/home/u' });
    if (!r.ok) for (const e of r.errors) expect(e.line >= 0 && e.line <= lineCount(text)).toBe(true);
  });
  property('one_time_sequences files', textOf(['7000,8000,9000', '7000:udp, 8000:tcp', '#7000,8000', '1,2,3', '65536', '0']), runs(3_000, 300_000), (text) => {
    const r = parseOneTimeFile(text);
    for (const p of r.problems) expect(p.line >= 1 && p.line <= lineCount(text)).toBe(true);
    for (const e of r.entries) for (const k of e.sequence) expect(k.port >= 1 && k.port <= 65535).toBe(true);
  });
});

describe('fuzz: state files (read at every start)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spa-fuzz-'));
  const hex = (n: number): string => 'ab'.repeat(n);
  property(
    'replay.log',
    textOf(['spa-replay 2', `n ${hex(32)} ${hex(24)} 1800000000`, `w ${hex(32)} 1800000000`, 'f 1800000000', `n ${hex(24)} 5`, 'w 5', '-1', '99999999999999999999']),
    runs(300, 10_000),
    (text) => {
      writeFileSync(join(dir, REPLAY_FILE), text);
      const guard = new ReplayGuard(DEFAULT_WINDOW_SEC);
      const store = new ReplayStore(dir);
      try {
        store.load(guard, NOW);
      } finally {
        store.close();
      }
      for (const e of guard.entries()) {
        expect(e.client.length).toBe(32);
        expect(e.nonceKey.length).toBe(24);
        expect(Number.isSafeInteger(e.timeSec)).toBe(true);
      }
    },
  );
  property(
    'openings.journal',
    textOf(['{"op":"open","door":"ssh","id":"alice","addr":"192.0.2.1","proto":"tcp","port":22,"untilMs":1}', '{"op":"close"', '{"addr":"::1"}', '"port":70000', 'null', '[]', '{}']),
    runs(300, 30_000),
    (text) => {
      writeFileSync(join(dir, JOURNAL_FILE), text);
      for (const g of readJournal(dir)) {
        expect(parseAddress(g.addr.text)).toBeDefined();
        if (g.access) expect(g.access.port >= 1 && g.access.port <= 65535).toBe(true);
      }
    },
  );
});
