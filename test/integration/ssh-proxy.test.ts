// Real OpenSSH behind a real door. In a network namespace of its own: Debian's sshd on
// 127.0.0.1:2222, our spa-server capturing lo with the nftables backend guarding tcp/2222
// (`protect = yes`: established accept, knocked addresses accept, else drop), and the
// client side, ssh with spa-knock as its ProxyCommand (or `Match exec "spa-knock --wait"`).
// The port is shown dropped before each knock; ssh runs `echo ok` only after a good knock, and
// fails cleanly (one line from spa-knock, ssh's exit 255) with a key the door does not know.
// Needs root (namespaces, nftables, libpcap), sshd, ssh, ssh-keygen and nft.
import { execFileSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { NetnsLab, sweepStaleNetns, type Netns } from '../helpers/netns.js';
import { ServerProcess, makeKeys, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['sshd', 'ssh', 'ssh-keygen', 'nft', 'ip'] });
const SSH_PORT = 2222;
const KNOCK = `${process.execPath} ${BIN['spa-knock']}`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Waits for a spawned process to end (killing it after timeoutMs) and returns its output. */
function finish(child: ChildProcess, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin?.end();
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.runIf(enabled)('ssh through spa-knock proxy, to a real sshd behind a real door (netns)', () => {
  const lab = new NetnsLab();
  const work = mkdtempSync(join(tmpdir(), 'spa-ssh-'));
  let ns: Netns;
  let keys: Keys;
  let server: ServerProcess;
  let sshd: ChildProcess;
  let sshdLog = '';
  let madePrivsepDir = false;
  let conf = '';

  const probe = () => lab.probeTcp(ns, { host: '127.0.0.1', port: SSH_PORT, from: '127.0.0.1' }, 1000);
  const ssh = (config: string, env: Record<string, string>, ...args: string[]) =>
    finish(lab.spawn(ns, ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'ssh', '-F', config, ...args]), 30_000);

  beforeAll(async () => {
    await sweepStaleNetns();
    ns = await lab.makeNetns();
    keys = await makeKeys(['alice', 'mallory']);

    // sshd: its own host key, config and authorized key; root login by key only.
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'id_ed25519')]);
    writeFileSync(join(work, 'authorized_keys'), readFileSync(join(work, 'id_ed25519.pub')));
    const hostPub = readFileSync(join(work, 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(join(work, 'known_hosts'), `sshtest ${hostPub}\n[sshtest]:${SSH_PORT} ${hostPub}\n`);
    writeFileSync(
      join(work, 'sshd_config'),
      `Port ${SSH_PORT}
ListenAddress 127.0.0.1
HostKey ${join(work, 'host_key')}
PidFile ${join(work, 'sshd.pid')}
AuthorizedKeysFile ${join(work, 'authorized_keys')}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
`,
    );
    // sshd's privilege-separation directory (the openssh-server service makes it at boot).
    if (!existsSync('/run/sshd')) {
      mkdirSync('/run/sshd', { mode: 0o755 });
      madePrivsepDir = true;
    }
    execFileSync('/usr/sbin/sshd', ['-t', '-f', join(work, 'sshd_config')]);
    sshd = lab.spawn(ns, ['/usr/sbin/sshd', '-D', '-e', '-f', join(work, 'sshd_config')]);
    sshd.stderr?.on('data', (d: Buffer) => (sshdLog += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!sshdLog.includes(`Server listening on 127.0.0.1 port ${SSH_PORT}`)) {
      if (sshd.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${sshdLog}`);
      await new Promise((r) => setTimeout(r, 20));
    }

    // The door: spa-server in the namespace, nftables guarding tcp/2222.
    conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]
Interface = lo
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/${SSH_PORT}
firewall = nftables
protect = yes
cmd_timeout = 60
`,
    );
    const child = lab.spawn(ns, [process.execPath, BIN['spa-server'], 'run', '--config', conf]) as ChildProcessWithoutNullStreams;
    server = new ServerProcess(child);
    await server.waitFor(server.msg('started'));
    await server.waitFor(server.msg('firewall set up'));

    // The client: spa-knock profiles, and two ssh_config files, one for each README recipe.
    writeFileSync(
      join(keys.clientHome, 'config'),
      `Host lab
    HostName 127.0.0.1
    Key alice
    ServerKey ${keys.serverPub}
    Access tcp/${SSH_PORT}
`,
    );
    writeFileSync(join(work, 'mallory.conf'), `Host lab\n    HostName 127.0.0.1\n    Key mallory\n    ServerKey ${keys.serverPub}\n`);
    const common = `    User root
    Port ${SSH_PORT}
    IdentityFile ${join(work, 'id_ed25519')}
    IdentitiesOnly yes
    HostKeyAlias sshtest
    UserKnownHostsFile ${join(work, 'known_hosts')}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
    LogLevel ERROR
`;
    writeFileSync(join(work, 'ssh_proxy.conf'), `Host lab\n${common}    ProxyCommand ${KNOCK} proxy %h %p\n`);
    writeFileSync(join(work, 'ssh_mallory.conf'), `Host lab\n${common}    ProxyCommand ${KNOCK} proxy -F ${join(work, 'mallory.conf')} %h %p\n`);
    writeFileSync(join(work, 'ssh_match.conf'), `Host lab\n    HostName 127.0.0.1\n${common}\nMatch originalhost lab exec "${KNOCK} %n --wait"\n`);
  });

  afterAll(async () => {
    if (server) await server.stop();
    await lab.cleanup();
    if (madePrivsepDir) rmdirSync('/run/sshd');
  });

  it('the port is dropped before any knock', async () => {
    expect(await probe()).toBe('timeout');
  });

  it('with a key the door does not know: spa-knock says why in one line, ssh fails, the port stays shut', async () => {
    const r = await ssh(join(work, 'ssh_mallory.conf'), { SPA_KNOCK_HOME: keys.clientHome }, 'lab', 'echo', 'ok');
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`spa-knock: lab: 127.0.0.1 port ${SSH_PORT}: no connection within 3 s (no answer)\n`);
    expect(r.code).toBe(255);
    // An unknown key's tag is one no key expects: the kernel filter drops the datagram, so the
    // daemon never sees it (no 'rejected' line either); it certainly opened nothing.
    expect(server.lines.some((l) => l['msg'] === 'accepted' || l['msg'] === 'rejected')).toBe(false);
    expect(await probe()).toBe('timeout');
    expect(sshdLog).not.toContain('Accepted publickey');
  });

  it('ProxyCommand spa-knock proxy %h %p: knocks, connects and runs the command', async () => {
    const r = await ssh(join(work, 'ssh_proxy.conf'), { SPA_KNOCK_HOME: keys.clientHome }, 'lab', 'echo', 'ok');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(r.code).toBe(0);
    expect(await server.waitFor(server.msg('accepted'))).toMatchObject({ door: 'ssh', id: 'alice', allow: '127.0.0.1', access: [`tcp/${SSH_PORT}`] });
    expect(sshdLog).toContain('Accepted publickey for root from 127.0.0.1');
  });

  it('Match originalhost ... exec "spa-knock %n --wait": knocks before ssh connects directly', async () => {
    // Close the door the previous test opened, and show it is shut again.
    const c = await runCli('spa-server', ['close', '--all', '--config', conf]);
    expect(c.code).toBe(0);
    expect(await probe()).toBe('timeout');
    const mark = server.lines.length;
    const r = await ssh(join(work, 'ssh_match.conf'), { SPA_KNOCK_HOME: keys.clientHome }, 'lab', 'echo', 'ok');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(r.code).toBe(0);
    await server.waitFor(server.msg('accepted'), 5000, mark);
  });
});
