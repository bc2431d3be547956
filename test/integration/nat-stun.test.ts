// The STUN client against Debian's coturn (`turnserver --stun-only`, started here on
// loopback, on a random port, killed by PID), and discovery's race and budget against
// scripted responders over real UDP on 127.0.0.1. Needs turnserver (CI installs coturn).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverPublicAddress, type Discovered, type NotDiscovered } from '../../client/discover.js';
import { askStunHere, startCoturnHere, type Coturn } from '../helpers/coturn.js';
import { describeNeeding } from '../helpers/requirements.js';
import { closedUdpPort, startFakeStun, type FakeStun } from '../helpers/stun-fake.js';

let counter = 0;
const random = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => (++counter * 37) & 0xff);
const discover = (servers: { host: string; port: number }[], budgetMs = 1000, notes: string[] = [], family: 4 | 6 = 4): Promise<Discovered | NotDiscovered> =>
  discoverPublicAddress({ servers, family, budgetMs, random, nowMs: Date.now, note: (l) => notes.push(l) });

describeNeeding('STUN against coturn on loopback', { tools: ['turnserver'] }, 'Debian\'s coturn (turnserver)', () => {
  let dir: string;
  let coturn: Coturn;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spa-coturn-'));
    coturn = await startCoturnHere(['127.0.0.1', '::1'], dir);
  }, 40_000);
  afterAll(async () => {
    await coturn?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers our Binding request with our address and port in XOR-MAPPED-ADDRESS, over IPv4 and IPv6', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const r = await askStunHere(host, coturn.port, 5000);
      expect(r, `no answer over ${host}: ${coturn.output()}`).toBeDefined();
      expect(r?.answer).toMatchObject({ ok: true, address: { text: host }, port: r?.localPort, from: 'xor-mapped-address' });
      expect(r?.answer.ok && r.answer.software).toMatch(/^Coturn-/);
    }
  });

  it('discovery takes its answer but refuses a loopback address as the public one', async () => {
    const notes: string[] = [];
    const r = await discover([{ host: '127.0.0.1', port: coturn.port }], 3000, notes);
    expect(r).toEqual({ ok: false, asked: [`127.0.0.1:${coturn.port} (answered 127.0.0.1, which is loopback)`] });
  });
});

describe('discovery: two at a time, first valid answer, one budget', () => {
  const fakes: FakeStun[] = [];
  const fake = async (...a: Parameters<typeof startFakeStun>): Promise<{ host: string; port: number }> => {
    const f = await startFakeStun(...a);
    fakes.push(f);
    return { host: '127.0.0.1', port: f.port };
  };
  afterAll(() => fakes.forEach((f) => f.close()));

  it('a refused server makes room for the next; the answer names its server', async () => {
    const closed = { host: '127.0.0.1', port: await closedUdpPort() };
    const good = await fake({ kind: 'answer', ip: '198.51.100.7', port: 40001 });
    const notes: string[] = [];
    const r = await discover([closed, closed, good], 1000, notes);
    expect(r).toMatchObject({ ok: true, server: good, serverAddress: { text: '127.0.0.1' }, mapped: { address: { text: '198.51.100.7' }, port: 40001 } });
    expect(notes).toContain(`stun: 127.0.0.1:${closed.port}: ECONNREFUSED`);
  });

  it('garbage before the answer is ignored; an error answer ends that server', async () => {
    const err = await fake({ kind: 'error', code: 500, phrase: 'Server Error' });
    const noisy = await fake({ kind: 'answer', ip: '203.0.113.5', port: 5, garbageFirst: true });
    const notes: string[] = [];
    const r = await discover([err, noisy], 1000, notes);
    expect(r).toMatchObject({ ok: true, server: noisy, mapped: { address: { text: '203.0.113.5' } } });
    expect(notes).toContain(`stun: 127.0.0.1:${err.port}: answered with an error: 500 Server Error`);
    expect(notes).toContain(`stun: 127.0.0.1:${noisy.port}: ignored an answer (not-stun)`);
  });

  it('two silent servers do not stop a third from being asked within the budget', async () => {
    const s1 = await fake({ kind: 'silent' });
    const s2 = await fake({ kind: 'silent' });
    const good = await fake({ kind: 'answer', ip: '198.51.100.9', port: 9 });
    const r = await discover([s1, s2, good], 1000);
    expect(r).toMatchObject({ ok: true, server: good });
  });

  it('silence everywhere: not discovered, every server named, each asked more than once and no more than three times', async () => {
    const s1 = await fake({ kind: 'silent' });
    const s2 = await fake({ kind: 'silent' });
    const r = await discover([s1, s2], 1000);
    expect(r).toEqual({ ok: false, asked: [`127.0.0.1:${s1.port} (no answer)`, `127.0.0.1:${s2.port} (no answer)`] });
    const [f1, f2] = fakes.slice(-2);
    for (const f of [f1!, f2!]) {
      expect(f.requests).toBeGreaterThanOrEqual(2);
      expect(f.requests).toBeLessThanOrEqual(3);
    }
  });

  it('a name that does not resolve fails that server, and says so', async () => {
    const r = await discover([{ host: 'no-such-host.invalid', port: 3478 }], 5000);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.asked).toEqual([expect.stringMatching(/^no-such-host\.invalid:3478 \(cannot resolve: (ENOTFOUND|EAI_AGAIN)\)$/)]);
  });

  it('IPv6: the request goes out over IPv6 and an IPv6 answer (XORed with the transaction id) is taken', async () => {
    const f = await startFakeStun({ kind: 'answer', ip: '2001:db8::7', port: 4444 }, '::1');
    fakes.push(f);
    const r = await discover([{ host: '::1', port: f.port }], 1000, [], 6);
    expect(r).toMatchObject({ ok: true, mapped: { address: { family: 6, text: '2001:db8::7' }, port: 4444 } });
  });

  it('an answer of the other family is refused', async () => {
    const f = await startFakeStun({ kind: 'answer', ip: '2001:db8::7', port: 4444 });
    fakes.push(f);
    const r = await discover([{ host: '127.0.0.1', port: f.port }], 1000);
    expect(r).toEqual({ ok: false, asked: [`127.0.0.1:${f.port} (answered an IPv6 address to an IPv4 request)`] });
  });

  it('no servers at all: not discovered at once', async () => {
    expect(await discover([], 1000)).toEqual({ ok: false, asked: [] });
  });
});
