// The tag check in the kernel (server/bpf.ts, server/capture.ts setFilter, server/pcap-source.ts),
// on real libpcap on lo: what the filter drops never reaches our code, a swap loses nothing and
// delivers nothing twice, and the daemon accepts knocks sent while it replaces its filter.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { buildFilter, estimateInstructions, KERNEL_MAX_INSTRUCTIONS, maxFilterKeys, planEpochs, type FilterSpec } from '../../server/bpf.js';
import { Capture } from '../../server/capture.js';
import type { Frame } from '../../server/core/frame.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { DATAGRAM_BYTES, OFF_NONCE, OFF_TAG, VERSION } from '../../src/protocol/constants.js';
import { encodeKnock } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, serverPublicKey, serverSecretKey, type AuthorizedClient } from '../../src/protocol/keys.js';
import { TagTable } from '../../src/protocol/tag.js';
import { readClientSecretKey, resolveServerPublicKey } from '../../keys/files.js';
import { describeNeeding } from '../helpers/requirements.js';
import { makeKeys, startServer, stopAllServers } from '../helpers/server.js';

const WINDOW_SEC = 120;

function u32(bytes: Uint8Array, off: number): number {
  return (((bytes[off] ?? 0) << 24) | ((bytes[off + 1] ?? 0) << 16) | ((bytes[off + 2] ?? 0) << 8) | (bytes[off + 3] ?? 0)) >>> 0;
}

function randomWords(n: number): number[] {
  return Array.from({ length: n }, () => randomBytes(4).readUInt32BE(0));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeNeeding('the filter estimate against libpcap', { tools: ['tcpdump'] }, 'tcpdump -d (libpcap compiles the filter)', () => {
  // tcpdump -d compiles with the same libpcap and optimizer cap uses; its listing has one line per
  // instruction. The estimate must never be below it, or a filter the daemon thinks fits would be
  // refused by the kernel (and libpcap would silently filter in user space).
  it.each([
    [1, 0, 0],
    [10, 4, 2],
    [100, 16, 0],
    [300, 16, 3],
    [600, 16, 0],
    [960, 16, 4],
  ])('%i tags and %i nonces, %i sequence ports: estimate >= compiled', (tags, nonces, ports) => {
    const spec: FilterSpec = {
      spaPort: 62201,
      datagramBytes: DATAGRAM_BYTES,
      version: VERSION,
      tcpPorts: Array.from({ length: ports }, (_, i) => 7000 + i),
      udpPorts: [],
      tags: { tagPrefixes: randomWords(tags), noncePrefixes: randomWords(nonces) },
    };
    const r = spawnSync('tcpdump', ['-d', '-i', 'lo', buildFilter(spec)], { encoding: 'utf8', maxBuffer: 16 << 20 });
    expect(r.status, r.stderr).toBe(0);
    const compiled = r.stdout.trim().split('\n').length;
    expect(estimateInstructions(spec)).toBeGreaterThanOrEqual(compiled);
    expect(estimateInstructions(spec)).toBeLessThanOrEqual(KERNEL_MAX_INSTRUCTIONS);
  });

  it('the most keys the docs promise fit: Window 120 with no sequence port', () => {
    const keys = maxFilterKeys(WINDOW_SEC, 0);
    expect(keys).toBe(161); // docs/CONFIGURATION.md, "Kernel filter"
    const range = planEpochs(0, WINDOW_SEC, keys, 0)!;
    const epochs = range.last - range.first + 1;
    const spec: FilterSpec = {
      spaPort: 62201,
      datagramBytes: DATAGRAM_BYTES,
      version: VERSION,
      tcpPorts: [],
      udpPorts: [],
      tags: { tagPrefixes: randomWords(keys * epochs), noncePrefixes: randomWords(16) },
    };
    const r = spawnSync('tcpdump', ['-d', '-i', 'lo', buildFilter(spec)], { encoding: 'utf8', maxBuffer: 16 << 20 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').length).toBeLessThanOrEqual(KERNEL_MAX_INSTRUCTIONS);
    expect(planEpochs(0, WINDOW_SEC, keys + 1, 0)).toBeUndefined();
  });
});

describeNeeding('the tag filter on lo (libpcap)', { root: true }, 'libpcap capture on lo', () => {
  const open: Capture[] = [];
  const sockets: dgram.Socket[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    for (const s of sockets.splice(0)) s.close();
  });

  const server = serverSecretKey(new Uint8Array(randomBytes(32)));
  const serverPub = serverPublicKey(server.boxPublic);
  const aliceSecret = clientSecretKey(new Uint8Array(randomBytes(64)));
  const alice = authorizeClient(server, 'alice', aliceSecret) as AuthorizedClient;
  const allow = parseAddress('127.0.0.1') as Address;

  const knock = (timeSec = Math.floor(Date.now() / 1000)): Uint8Array =>
    encodeKnock({ client: aliceSecret, server: serverPub, allow, access: [{ proto: 'tcp', port: 22 }], timeSec, nonce: new Uint8Array(randomBytes(24)) });

  function tagSpec(port: number, nowSec: number, nonces: number[] = []): FilterSpec {
    const table = new TagTable(WINDOW_SEC);
    table.setClients([alice], nowSec);
    const range = planEpochs(nowSec, WINDOW_SEC, 1, 0)!;
    const tagPrefixes: number[] = [];
    for (let e = range.first; e <= range.last; e++) tagPrefixes.push(...table.tagPrefixes(e));
    return { spaPort: port, datagramBytes: DATAGRAM_BYTES, version: VERSION, tcpPorts: [], udpPorts: [], tags: { tagPrefixes, noncePrefixes: nonces } };
  }

  async function start(spec: FilterSpec) {
    const capture = new Capture();
    open.push(capture);
    const frames: Frame[] = [];
    capture.onFrame((f) => frames.push(f));
    capture.open({ iface: 'lo', filter: buildFilter(spec), kernelBufferBytes: 2 * 1024 * 1024 });
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => {});
    sockets.push(sock);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (d: Uint8Array): Promise<void> => new Promise((r) => sock.send(d, spec.spaPort, '127.0.0.1', () => r()));
    return { capture, frames, send };
  }

  it('a right-size datagram with a wrong tag never reaches user space; a valid knock does', async () => {
    const port = 40000 + Math.floor(Math.random() * 10000);
    const nowSec = Math.floor(Date.now() / 1000);
    const { frames, send } = await start(tagSpec(port, nowSec));
    const valid = knock(nowSec);
    // Right size, right version, the valid knock's bytes but for its tag: 200 of them, then the knock.
    for (let i = 0; i < 200; i++) {
      const forged = valid.slice();
      forged.set(randomBytes(16), OFF_TAG);
      await send(forged);
    }
    // A tag of an epoch far outside the window is wrong too.
    await send(knock(nowSec - 3600));
    await send(valid);
    await waitFor('the valid knock', () => frames.length >= 1);
    await sleep(200);
    expect(frames.map((f) => Buffer.from(f.payload).toString('hex'))).toEqual([Buffer.from(valid).toString('hex')]);
  });

  it('the nonce of an accepted knock is excluded: its replays stay in the kernel, a new knock passes', async () => {
    const port = 40000 + Math.floor(Math.random() * 10000);
    const nowSec = Math.floor(Date.now() / 1000);
    const { capture, frames, send } = await start(tagSpec(port, nowSec));
    const first = knock(nowSec);
    await send(first);
    await waitFor('the first knock', () => frames.length === 1);
    capture.setFilter(buildFilter(tagSpec(port, nowSec, [u32(first, OFF_NONCE)])));
    await sleep(400); // past FILTER_OVERLAP_MS: the old handle is closed
    for (let i = 0; i < 50; i++) await send(first);
    const second = knock(nowSec);
    await send(second);
    await waitFor('the second knock', () => frames.length >= 2);
    await sleep(200);
    expect(frames.map((f) => Buffer.from(f.payload).toString('hex'))).toEqual([first, second].map((d) => Buffer.from(d).toString('hex')));
    expect(capture.stats().filterSwaps).toBe(1);
  });

  it('replacing the filter loses no datagram and delivers none twice', async () => {
    const port = 40000 + Math.floor(Math.random() * 10000);
    const nowSec = Math.floor(Date.now() / 1000);
    const spec = tagSpec(port, nowSec);
    const { capture, frames, send } = await start(spec);
    const template = knock(nowSec);
    const sent: string[] = [];
    let stop = false;
    // A steady stream of distinct datagrams with the valid tag (nonces differ) while the filter is
    // replaced five times (each time with other nonces excluded, so the text differs).
    const sender = (async () => {
      for (let i = 0; !stop && i < 3000; i++) {
        const d = template.slice();
        d.set(randomBytes(24), OFF_NONCE);
        sent.push(Buffer.from(d).toString('hex'));
        await send(d);
        if (i % 4 === 0) await sleep(1);
      }
    })();
    for (let i = 0; i < 5; i++) {
      await sleep(150);
      capture.setFilter(buildFilter({ ...spec, tags: { tagPrefixes: spec.tags!.tagPrefixes, noncePrefixes: randomWords(i + 1) } }));
    }
    await sleep(400);
    stop = true;
    await sender;
    await waitFor('every datagram', () => frames.length >= sent.length, 10_000).catch(() => undefined);
    await sleep(300);
    const got = frames.map((f) => Buffer.from(f.payload).toString('hex'));
    expect(capture.stats().filterSwaps).toBe(5);
    // Both handles saw the stream while they overlapped, and the copies were dropped.
    expect(capture.stats().duplicates).toBeGreaterThan(0);
    expect(new Set(got).size).toBe(got.length); // none twice
    expect(got.length).toBe(sent.length); // none lost
    expect(new Set(got)).toEqual(new Set(sent));
  });
});

describeNeeding('spa-server replaces its kernel filter (libpcap on lo)', { root: true }, 'libpcap capture on lo', () => {
  afterAll(async () => {
    await stopAllServers();
  });

  it('a replay of an accepted knock gets its nonce into the filter; knocks sent while the filter is replaced are each accepted once', async () => {
    const keys = await makeKeys(['alice']);
    const work = mkdtempSync(join(tmpdir(), 'spa-kf-'));
    const port = 40000 + Math.floor(Math.random() * 10000);
    const conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]\nInterface = lo\nSPAPort = ${port}\nServerKey = ${keys.serverKey}\nStateDir = ${join(work, 'state')}\n\n` +
        `[ssh]\nspa_keys = ${keys.authorized('ssh', ['alice'])}\naccess = tcp/22\nstart_command = true\ncmd_timeout = 30\nstop_command = true\n`,
    );
    const server = await startServer(['run', '--config', conf]);
    expect(server.lines.find((l) => l['msg'] === 'kernel tag filter on')).toMatchObject({ keys: 1 });
    const client = readClientSecretKey(join(keys.clientHome, 'alice.key'));
    const serverKey = resolveServerPublicKey(keys.serverPub);
    const allow = parseAddress('127.0.0.1') as Address;
    const craft = (): Uint8Array =>
      encodeKnock({ client, server: serverKey, allow, access: [{ proto: 'tcp', port: 22 }], timeSec: Math.floor(Date.now() / 1000), nonce: new Uint8Array(randomBytes(24)) });
    const sock = dgram.createSocket('udp4');
    sock.on('error', () => {});
    const send = (d: Uint8Array): Promise<void> => new Promise((r) => sock.send(d, port, '127.0.0.1', () => r()));
    try {
      const first = craft();
      await send(first);
      await server.waitFor(server.msg('accepted'));
      // An accept alone does not replace the filter (a swap blinds the capture while its new ring
      // is set up: server/pcap-source.ts). The first replay reaches the daemon, is refused, and
      // has the filter replaced to exclude its nonce; these ten knocks, 20 ms apart, are sent
      // before, during and after the two handles overlap.
      await send(first);
      await server.waitFor((l) => l['msg'] === 'rejected' && l['reason'] === 'replay.seen');
      const more = Array.from({ length: 10 }, craft);
      for (const d of more) {
        await send(d);
        await sleep(20);
      }
      await server.waitFor(() => server.lines.filter((l) => l['msg'] === 'accepted').length >= 11, 10_000);
      await sleep(600);
      // More replays of the first knock: its nonce is in the filter now.
      for (let i = 0; i < 20; i++) await send(first);
      await sleep(500);
      await server.stop();
      const stopped = await server.waitFor(server.msg('stopped'));
      expect(server.lines.filter((l) => l['msg'] === 'accepted')).toHaveLength(11);
      expect(server.lines.filter((l) => l['msg'] === 'rejected')).toHaveLength(1);
      expect(stopped).toMatchObject({ accepted: 11, rejected: 1 });
      expect((stopped['capture'] as { filterSwaps: number }).filterSwaps).toBeGreaterThanOrEqual(1);
    } finally {
      sock.close();
    }
  });
});
