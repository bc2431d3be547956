// `spa-server reload` against a real daemon (libpcap on lo): the control socket's reload is
// SIGHUP's, it waits for the result, and a refused configuration comes back as FILE:LINE.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { makeKeys, ServerProcess, startServer, stopAllServers, type Keys } from '../helpers/server.js';

// Root: the daemon captures lo with libpcap.
const enabled = canRun({ root: true });
const PORT = 62331;

describe.runIf(enabled)('spa-server reload (libpcap on lo)', () => {
  let keys: Keys;
  let work: string;
  let conf: string;
  let sshKeys: string;
  let text: string;

  const knock = (id: string) => runCli('spa-knock', ['127.0.0.1', '--key', id, '--server-key', keys.serverPub, '--port', String(PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome } });
  const reload = () => runCli('spa-server', ['reload', '--config', conf], { timeoutMs: 90_000 });
  /** Knocks as id and returns the daemon's verdict on the next knock it logs. */
  const verdict = async (server: ServerProcess, id: string) => {
    const mark = server.lines.length;
    expect((await knock(id)).code).toBe(0);
    return server.waitFor((l) => l['msg'] === 'accepted' || l['msg'] === 'rejected', 10_000, mark);
  };

  beforeAll(async () => {
    keys = await makeKeys(['alice', 'mallory']);
    work = mkdtempSync(join(tmpdir(), 'spa-reload-'));
    sshKeys = keys.authorized('ssh', ['alice']);
    conf = join(work, 'spa.conf');
    text = `[options]
Interface = lo
SPAPort = ${PORT}
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}

[ssh]
spa_keys = ${sshKeys}
access = tcp/22
start_command = true
cmd_timeout = 2
stop_command = true
`;
    writeFileSync(conf, text);
  });
  afterEach(async () => {
    await stopAllServers();
    rmSync(join(work, 'state'), { recursive: true, force: true });
  });
  afterAll(async () => {
    await stopAllServers();
  });

  it('with no daemon running: exit 1, one line', async () => {
    const r = await reload();
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toBe(`spa-server: no daemon running (nothing listens on ${join(work, 'state', 'control.sock')})\n`);
  });

  it('picks up a new key: exit 0 with one line, then the knock is accepted', async () => {
    const server = await startServer(['run', '--config', conf]);
    // Not authorized yet: the kernel filter drops mallory's knock, so alice's is the next line.
    expect((await knock('mallory')).code).toBe(0);
    expect(await verdict(server, 'alice')).toMatchObject({ msg: 'accepted', id: 'alice' });
    writeFileSync(sshKeys, readFileSync(join(keys.clientHome, 'alice.pub'), 'utf8') + readFileSync(join(keys.clientHome, 'mallory.pub'), 'utf8'));
    const mark = server.lines.length;
    const r = await reload();
    // The line reports the daemon's own result (2 keys): it waited for the reload.
    expect(r).toMatchObject({ code: 0, stdout: `${conf}: reloaded: 1 door (ssh), 2 authorized keys\n`, stderr: '' });
    expect(await server.waitFor(server.msg('reloaded'), 10_000, mark)).toMatchObject({ doors: ['ssh'], keys: 2 });
    expect(await verdict(server, 'mallory')).toMatchObject({ msg: 'accepted', id: 'mallory' });
    writeFileSync(sshKeys, readFileSync(join(keys.clientHome, 'alice.pub'), 'utf8'));
  });

  it('a step after the switch fails (the firewall tool is missing): exit 1, the failure named', async () => {
    // The daemon's PATH has no nft, so its firewall setup fails (and no firewall is touched).
    const nftConf = join(work, 'nft.conf');
    writeFileSync(nftConf, text.replace(/start_command = true\n/, 'firewall = nftables\nprotect = no\n').replace(/stop_command = true\n/, ''));
    const server = new ServerProcess(spawn(process.execPath, [BIN['spa-server'], 'run', '--config', nftConf], { env: { ...process.env, PATH: '/nonexistent' }, stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      await server.waitFor(server.msg('started'));
      const r = await runCli('spa-server', ['reload', '--config', nftConf], { timeoutMs: 90_000 });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^spa-server: firewall setup failed: nftables: nft .*: nft: command not found\n/);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`spa-server: ${nftConf}: reloaded, but 1 step failed (see above and the daemon's log)`);
      expect((await server.stop()).code).toBe(0);
    } finally {
      await server.stop('SIGKILL');
    }
  });

  it('a broken configuration: exit 2 with FILE:LINE, the daemon runs on with the old one', async () => {
    const server = await startServer(['run', '--config', conf]);
    const broken = text.replace('cmd_timeout = 2', 'cmd_timeout = soon');
    const line = broken.split('\n').indexOf('cmd_timeout = soon') + 1;
    writeFileSync(conf, broken);
    try {
      const mark = server.lines.length;
      const r = await reload();
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0]).toMatch(new RegExp(`^spa-server: ${conf.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}: .*cmd_timeout`));
      expect(lines.at(-1)).toBe(`spa-server: ${conf}: reload refused (${lines.length - 1} problem${lines.length === 2 ? '' : 's'}); the daemon runs on with its previous configuration`);
      await server.waitFor(server.msg('reload failed; keeping the running configuration'), 10_000, mark);
      expect(server.child.exitCode).toBeNull();
      expect(await verdict(server, 'alice')).toMatchObject({ msg: 'accepted', id: 'alice', door: 'ssh' });
      // SIGHUP takes the same path: refused the same way, still running.
      const mark2 = server.lines.length;
      server.child.kill('SIGHUP');
      expect(await server.waitFor(server.msg('reload failed; keeping the running configuration'), 10_000, mark2)).toMatchObject({ error: expect.stringContaining(`${conf}:${line}: `) });
      expect(await verdict(server, 'alice')).toMatchObject({ msg: 'accepted', id: 'alice' });
    } finally {
      writeFileSync(conf, text);
    }
    expect((await server.stop()).code).toBe(0);
  });
});
