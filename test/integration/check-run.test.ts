// `check` refuses whatever `run` would refuse, first, with FILE:LINE; `run` never exits 70
// (internal error) on its input (issue 12, items 7 and 8). Each case: a config `check` used
// to pass while `run` crashed, failed later, or ran doors that could never work.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { makeKeys, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['mount', 'umount', 'firewall-cmd'] });

describe.runIf(enabled)('check = run: what run refuses, check refuses first', () => {
  let keys: Keys;
  let work: string;
  let ro: string;
  let n = 0;

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    work = mkdtempSync(join(tmpdir(), 'spa-checkrun-'));
    // A read-only file system for StateDir (a real one: tmpfs mounted ro, unmounted after).
    ro = join(work, 'ro');
    mkdirSync(ro, { mode: 0o700 });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,mode=0700,size=1m', 'spa-test-ro', ro], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount: ${m.stderr}`);
  });
  afterAll(() => {
    spawnSync('umount', [ro]);
    rmSync(work, { recursive: true, force: true });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  function write(text: string): string {
    const file = join(work, `c${++n}.conf`);
    writeFileSync(file, text);
    return file;
  }
  const options = (extra = ''): string => `[options]\nInterface = lo\nSPAPort = 62371\nServerKey = ${keys.serverKey}\nStateDir = ${join(work, `state${n}`)}\n${extra}`;
  const spaDoor = (name = 'ssh', extra = ''): string => `[${name}]\nspa_keys = ${keys.authorized('a', ['alice'])}\naccess = tcp/22\n${extra}`;

  async function refusedByBoth(conf: string, first: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
    const c = await runCli('spa-server', ['check', '-c', conf], { env });
    expect(c.code, c.stderr).toBe(2);
    // The problem is listed (with the others check finds), each as FILE:LINE or FILE.
    expect(c.stderr.split('\n')).toContain(`spa-server: ${first}`);
    expect(c.stderr.split('\n').every((l) => l === '' || l.startsWith(`spa-server: ${conf}`) || /^spa-server: \d+ problems? found$/.test(l))).toBe(true);
    const r = await runCli('spa-server', ['run', '-c', conf], { env, timeoutMs: 30_000 });
    expect(r.signal, r.stderr).toBeNull();
    expect([1, 2]).toContain(r.code);
    expect(r.stderr).not.toContain('internal error');
    expect(r.stderr.length).toBeLessThan(4096);
  }

  it('a door name with a space and a firewall backend', async () => {
    const conf = write(`${options()}\n[my door]\nspa_keys = ${keys.authorized('a', ['alice'])}\naccess = tcp/22\nfirewall = nftables\n`);
    await refusedByBoth(conf, `${conf}:7: [my door]: firewall nftables: door name must be 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit, got "my door"`);
  });

  it('an empty file (no doors)', async () => {
    const conf = write('');
    await refusedByBoth(conf, `${conf}: no doors: add a [DOOR] section with spa_keys or sequence (see spa.conf(5))`);
  });

  it('an Interface that does not exist', async () => {
    const conf = write(`${options().replace('Interface = lo', 'Interface = nosuch9')}\n${spaDoor('ssh', 'start_command = true\n')}`);
    await refusedByBoth(conf, `${conf}:2: Interface: no such network interface: nosuch9`);
  });

  it('UDPSocket = yes with a sequence door', async () => {
    const conf = write(`${options('UDPSocket = yes\n')}\n[seq]\nsequence = 7000,8000\nstart_command = true\n`);
    await refusedByBoth(conf, `${conf}:6: [seq]: a sequence door needs libpcap capture; with UDPSocket = yes it would never open`);
  });

  it('a NUL byte in start_command', async () => {
    const conf = write(`${options()}\n${spaDoor('ssh', 'start_command = echo \0 open\n')}`);
    await refusedByBoth(conf, `${conf}:10: start_command: a value cannot contain NUL`);
  });

  it('a read-only StateDir', async () => {
    const conf = write(`${options().replace(/StateDir = .*/, `StateDir = ${ro}`)}\n${spaDoor('ssh', 'start_command = true\n')}`);
    await refusedByBoth(conf, `${conf}:5: StateDir: ${ro}: cannot write: EROFS`);
  });

  it('a 512 KiB path: one FILE:LINE line, not megabytes of stderr; a config over 1 MiB: one line', async () => {
    const conf = write(`${options().replace(/ServerKey = .*/, `ServerKey = /${'a'.repeat(512 * 1024)}`)}\n${spaDoor('ssh', 'start_command = true\n')}`);
    await refusedByBoth(conf, `${conf}:4: ServerKey: path too long (524289 bytes; at most 4095)`);
    const huge = write(`${options().replace(/ServerKey = .*/, `ServerKey = /${'a'.repeat(1024 * 1024)}`)}\n${spaDoor('ssh', 'start_command = true\n')}`);
    await refusedByBoth(huge, `${huge}: too large (${statSync(huge).size} bytes; at most 1048576)`);
  });

  it('protect = yes with firewalld unreachable: check says so; run exits 1 instead of running unprotected', async () => {
    // No firewalld on this bus (a socket that does not exist): firewall-cmd fails as with firewalld stopped.
    const env = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(work, 'no-bus')}` };
    const conf = write(`${options()}\n${spaDoor('ssh', 'firewall = firewalld\nprotect = yes\n')}`);
    const c = await runCli('spa-server', ['check', '-c', conf], { env });
    expect(c.code).toBe(2);
    expect(c.stderr.split('\n')[0]).toMatch(new RegExp(`^spa-server: ${conf}:10: \\[ssh\\]: firewall firewalld: not reachable: .*no-bus`));
    const r = await runCli('spa-server', ['run', '-c', conf], { env, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^spa-server: firewall firewalld: cannot install protect = yes for \[ssh\]: .*\n$/);
  }, 90_000);
});
