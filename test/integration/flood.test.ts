// A valid knock during a bounded flood at the SPA port is still accepted, the close timer
// still fires on time, and the daemon lives (libpcap on lo, as root). Speed is the
// benchmark's business (npm run bench); this checks that nothing is lost or starved.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fromHex } from '../../src/bytes.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DATAGRAM_BYTES } from '../../src/protocol/constants.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { fileLines, makeKeys, startServer, stopAllServers, until, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true });
const PORT = 62321;

function flood(o: { payloadBytes: number; ratePerSec: number; durationMs: number; prefixHex: string }): Promise<{ sent: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/helpers/udp-flood.mjs'), JSON.stringify({ host: '127.0.0.1', port: PORT, count: 1_000_000, firstByte: 1, ...o })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.durationMs + 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as { sent: number; ms: number });
      else reject(new Error(`flood exited ${code}`));
    });
  });
}

async function sendUdp(d: Uint8Array): Promise<void> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => s.send(d, PORT, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  s.close();
}

describe.runIf(enabled)('knock during a flood (libpcap on lo)', () => {
  const knockBytes = async (): Promise<Uint8Array> => {
    const r = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '--dry-run'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(r.code).toBe(0);
    return fromHex(r.stdout.trim().split('\n')[1] ?? '');
  };
  let keys: Keys;
  let conf: string;
  let effects: string;
  let stateDir: string;

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    const work = mkdtempSync(join(tmpdir(), 'spa-flood-'));
    stateDir = join(work, 'state');
    effects = join(work, 'effects');
    conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]
Interface = lo
SPAPort = ${PORT}
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}
# lo's frames take 64 KiB slots (cap's snaplen, lo's MTU): the default 2 MiB holds 32 of them,
# too few for a flood that reaches user space while gc() runs every 10 ms.
PcapBufferMB = 64

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/22
start_command = echo open %IP% >> ${effects}
cmd_timeout = 1
stop_command = echo close %IP% >> ${effects}
`,
    );
  });
  afterEach(async () => {
    await stopAllServers();
    rmSync(stateDir, { recursive: true, force: true });
  });
  afterAll(stopAllServers);

  it.each([
    // Right-size garbage with random tags stays in the kernel (the tag filter): the process sleeps.
    ['right-size garbage at 30k/s (dropped in the kernel)', DATAGRAM_BYTES, 30_000, false, false],
    ['wrong-size garbage (dropped in the kernel), unpaced', 100, 0, false, false],
    // Forgeries that copy a valid knock's tag pass the kernel filter and die at the box: every
    // frame reaches cap's buffer, and a full gc() runs every 10 ms: the use-after-free of
    // DESIGN.md would kill the server here. 20k/s, not unpaced: full GCs every 10 ms leave the
    // daemon too little CPU to drain lo's ring at any rate.
    ['forgeries with a copied tag at 20k/s, with gc() forced in the server every 10 ms', DATAGRAM_BYTES, 20_000, true, true],
    ['forgeries with a copied tag at 10k/s', DATAGRAM_BYTES, 10_000, false, true],
  ])('%s', async (_name, payloadBytes, ratePerSec, forceGc, copiedTag) => {
    writeFileSync(effects, '');
    const server = await startServer(['run', '--config', conf], { forceGc });
    // A knock never sent: its version byte and tag, as an eavesdropper would copy them.
    const prefixHex = copiedTag ? Buffer.from((await knockBytes()).subarray(0, 17)).toString('hex') : '';
    // Made before the flood, sent in-process during it: up to three knocks 600 ms apart, as a
    // person would knock again. With both cores busy a flood reaching user space can cost a
    // knock like any packet in a full ring; how often, and how fast, is the bench's to say.
    const knocks = [await knockBytes(), await knockBytes(), await knockBytes()];
    const flooding = flood({ payloadBytes, ratePerSec, durationMs: 3000, prefixHex });
    await new Promise((r) => setTimeout(r, 1000));
    let opened = false;
    for (const datagram of knocks) {
      await sendUdp(datagram);
      opened = await until(() => fileLines(effects).includes('open 127.0.0.1'), 600, 'open').then(() => true, () => false);
      if (opened) break;
    }
    expect(opened, 'the door opened for one of three knocks sent during the flood').toBe(true);
    const accepted = await server.waitFor(server.msg('accepted'), 5000);
    const closed = await server.waitFor(server.msg('closed'), 5000);
    const f = await flooding;
    expect(f.sent).toBeGreaterThan(1000);
    // The close timer fired on time (the grant's `until`, cmd_timeout after the packet), flood or not.
    const lateMs = Date.parse(String(closed['time'])) - Date.parse(String(accepted['until']));
    expect(lateMs).toBeGreaterThanOrEqual(-50);
    expect(lateMs).toBeLessThan(1500);
    await until(() => fileLines(effects).length === 2, 3000, 'open and close commands');
    // The flood went on while the server lived; it was not killed by a use-after-free.
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();
    expect(fileLines(effects)).toEqual(['open 127.0.0.1', 'close 127.0.0.1']);
    // Alive and answering its control socket after the flood.
    const st = await runCli('spa-server', ['status', '--config', conf]);
    expect(st).toMatchObject({ code: 0, stdout: 'no open rules\n' });
    expect((await server.stop()).code).toBe(0);
  }, 30_000);
});
