// A valid knock during a bounded flood at the SPA port is still accepted, the close timer
// still fires on time, and the daemon lives (libpcap on lo, as root). Speed is the
// benchmark's business (npm run bench); this checks that nothing is lost or starved.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATAGRAM_BYTES } from '../../src/protocol/constants.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { fileLines, makeKeys, startServer, stopAllServers, until, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true });
const PORT = 62321;

function flood(o: { payloadBytes: number; ratePerSec: number; durationMs: number }): Promise<{ sent: number; ms: number }> {
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

describe.runIf(enabled)('knock during a flood (libpcap on lo)', () => {
  let keys: Keys;
  let conf: string;
  let effects: string;

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    const work = mkdtempSync(join(tmpdir(), 'spa-flood-'));
    effects = join(work, 'effects');
    conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]
Interface = lo
SPAPort = ${PORT}
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/22
start_command = echo open %IP% >> ${effects}
cmd_timeout = 1
stop_command = echo close %IP% >> ${effects}
`,
    );
  });
  afterAll(stopAllServers);

  it.each([
    ['right-size garbage (passes the kernel filter, dies at the tag lookup), unpaced', DATAGRAM_BYTES, 0],
    ['right-size garbage at 10k/s', DATAGRAM_BYTES, 10_000],
    ['wrong-size garbage (dropped in the kernel), unpaced', 100, 0],
  ])('%s', async (_name, payloadBytes, ratePerSec) => {
    writeFileSync(effects, '');
    const server = await startServer(['run', '--config', conf]);
    const flooding = flood({ payloadBytes, ratePerSec, durationMs: 3000 });
    await new Promise((r) => setTimeout(r, 1000));
    const r = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(r.code).toBe(0);
    const accepted = await server.waitFor(server.msg('accepted'), 5000);
    const closed = await server.waitFor(server.msg('closed'), 5000);
    const f = await flooding;
    expect(f.sent).toBeGreaterThan(1000);
    // The close timer fired about cmd_timeout after the grant, flood or not.
    const lateMs = Date.parse(String(closed['time'])) - Date.parse(String(accepted['time'])) - 1000;
    expect(lateMs).toBeGreaterThanOrEqual(-50);
    expect(lateMs).toBeLessThan(1500);
    await until(() => fileLines(effects).length === 2, 3000, 'open and close commands');
    expect(fileLines(effects)).toEqual(['open 127.0.0.1', 'close 127.0.0.1']);
    // Alive and answering its control socket after the flood.
    const st = await runCli('spa-server', ['status', '--config', conf]);
    expect(st).toMatchObject({ code: 0, stdout: 'no open rules\n' });
    expect((await server.stop()).code).toBe(0);
  }, 30_000);
});
