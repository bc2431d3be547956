// What the daemon trusts on the local machine (issue 12): StrictModes-style ownership and
// mode checks by both `check` and `run`, no symlinks followed into state, bounded reads of
// regular files only, one daemon per StateDir, commands that die with the daemon, and a
// stop command that gets exactly its start command's values. Real processes, a real second
// user (useradd, removed afterwards).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { runCli } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';
import { craftKnock, fileLines, makeKeys, startServer, stopAllServers, until, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['useradd', 'userdel', 'mkfifo', 'ss'] });
// The second user: a name per test run, so parallel runs on one machine cannot collide.
const OTHER = `spatrust${process.pid % 100000}`;
let otherUid = -1;
let otherGid = -1;

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Runs argv as the other user (setpriv: util-linux, no PAM or shell needed). */
function asOther(argv: string[]): void {
  sh('setpriv', ['--reuid', String(otherUid), '--regid', String(otherGid), '--clear-groups', '--', ...argv]);
}

describe.runIf(enabled)('local trust: check and run refuse what others can change', () => {
  let keys: Keys;
  let work: string;
  let n = 0;
  const PORT = 62351;

  beforeAll(async () => {
    sh('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER]);
    const id = (flag: string): number => Number(spawnSync('id', [flag, OTHER], { encoding: 'utf8' }).stdout.trim());
    otherUid = id('-u');
    otherGid = id('-g');
    keys = await makeKeys(['alice', 'bob']);
    work = mkdtempSync(join(tmpdir(), 'spa-trust-'));
  });
  afterEach(async () => {
    await stopAllServers();
  });
  afterAll(async () => {
    await stopAllServers();
    spawnSync('userdel', [OTHER]);
    rmSync(work, { recursive: true, force: true });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  /** A config in its own directory; returns its path. */
  function config(o: { stateDir?: string; spaKeys?: string; serverKey?: string; extra?: string } = {}): string {
    const dir = join(work, `c${++n}`);
    mkdirSync(dir);
    const file = join(dir, 'spa.conf');
    writeFileSync(
      file,
      `[options]
SPAPort = ${PORT}
UDPSocket = yes
ServerKey = ${o.serverKey ?? keys.serverKey}
StateDir = ${o.stateDir ?? join(dir, 'state')}

[ssh]
spa_keys = ${o.spaKeys ?? keys.authorized(`k${n}`, ['alice'])}
access = tcp/22
start_command = true
${o.extra ?? ''}`,
    );
    return file;
  }

  /** check and run both refuse, each with the same FILE:LINE: message. */
  async function bothRefuse(conf: string, line: number, message: RegExp): Promise<void> {
    const c = await runCli('spa-server', ['check', '-c', conf]);
    expect(c.code, c.stderr).toBe(2);
    const first = c.stderr.split('\n')[0]!;
    expect(first.startsWith(`spa-server: ${conf}:${line}: `), first).toBe(true);
    expect(first).toMatch(message);
    const r = await runCli('spa-server', ['run', '-c', conf], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(first.replace(/^spa-server: /, ''));
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  }

  it('a StateDir another user made first: refused by check and run, and its planted symlinks are never followed', async () => {
    // The issue's attack: another user made StateDir first and planted replay.log -> a root file.
    chmodSync(work, 0o755); // the other user reaches the directory it made, as under /tmp
    const state = join(work, 'planted');
    mkdirSync(state, { mode: 0o777 });
    chmodSync(state, 0o777);
    chownSync(state, otherUid, otherGid);
    const victim = join(work, 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o600 });
    asOther(['ln', '-s', victim, join(state, 'replay.log')]);
    asOther(['ln', '-s', victim, join(state, 'openings.journal')]);
    const conf = config({ stateDir: state });
    await bothRefuse(conf, 5, new RegExp(`StateDir: not trusted: ${state}: owned by uid ${otherUid}, not by root`));
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('a StateDir in a directory others can write (no sticky bit): refused naming that directory', async () => {
    const open = join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const conf = config({ stateDir: join(open, 'state') });
    await bothRefuse(conf, 5, new RegExp(`StateDir: not trusted: ${open}: writable by group and others \\(mode 0777\\)`));
  });

  it('a StateDir that is a symlink, even to a good directory, is refused', async () => {
    const real = join(work, 'real-state');
    mkdirSync(real, { mode: 0o700 });
    const link = join(work, 'link-state');
    symlinkSync(real, link);
    await bothRefuse(config({ stateDir: link }), 5, /StateDir: not trusted: .*link-state: is a symbolic link/);
  });

  it('a relative StateDir, or one that is a file, is refused by check and run', async () => {
    await bothRefuse(config({ stateDir: 'state' }), 5, /StateDir: expected an absolute path, got "state"/);
    const file = join(work, 'not-a-dir');
    writeFileSync(file, '');
    await bothRefuse(config({ stateDir: file }), 5, /StateDir: not trusted: .*not-a-dir: not a directory/);
  });

  it('spa_keys: mode 0666, owned by another user, or in a 0777 directory: each refused', async () => {
    const loose = keys.authorized('loose', ['alice']);
    chmodSync(loose, 0o666);
    await bothRefuse(config({ spaKeys: loose }), 8, /\[ssh\]: spa_keys: not trusted: .*loose\.keys: writable by group and others \(mode 0666\)/);

    const theirs = keys.authorized('theirs', ['alice']);
    chownSync(theirs, otherUid, otherGid);
    await bothRefuse(config({ spaKeys: theirs }), 8, new RegExp(`spa_keys: not trusted: .*theirs\\.keys: owned by uid ${otherUid}`));

    const openDir = join(work, 'openkeys');
    mkdirSync(openDir);
    chmodSync(openDir, 0o777);
    const inOpen = join(openDir, 'k.keys');
    writeFileSync(inOpen, readFileSync(keys.authorized('x', ['alice'])));
    await bothRefuse(config({ spaKeys: inOpen }), 8, /spa_keys: not trusted: .*openkeys: writable by group and others \(mode 0777\)/);
  });

  it('a server key owned by another user is refused (even mode 0600)', async () => {
    const dir = join(work, 'theirkey');
    mkdirSync(dir);
    const key = join(dir, 'server.key');
    writeFileSync(key, readFileSync(keys.serverKey), { mode: 0o600 });
    chownSync(key, otherUid, otherGid);
    await bothRefuse(config({ serverKey: key }), 4, new RegExp(`ServerKey: not trusted: ${key}: owned by uid ${otherUid}`));
  });

  it('a group-writable config file is refused by check and run', async () => {
    const conf = config();
    chmodSync(conf, 0o664);
    const c = await runCli('spa-server', ['check', '-c', conf]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain(`spa-server: ${conf}: not trusted: ${conf}: writable by group (mode 0664)`);
    const r = await runCli('spa-server', ['run', '-c', conf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${conf}: not trusted: ${conf}: writable by group (mode 0664)`);
  });

  it('reads only regular files of bounded size: /dev/zero, a FIFO, a huge file are refused at once', async () => {
    await bothRefuse(config({ spaKeys: '/dev/zero' }), 8, /spa_keys: not trusted: \/dev\/zero: not a regular file/);
    const fifo = join(work, 'fifo.key');
    sh('mkfifo', ['-m', '0600', fifo]);
    await bothRefuse(config({ serverKey: fifo }), 4, /ServerKey: not trusted: .*fifo\.key: not a regular file/);
    const huge = join(work, 'huge.keys');
    writeFileSync(huge, '');
    sh('truncate', ['-s', '5M', huge]);
    const c = await runCli('spa-server', ['check', '-c', config({ spaKeys: huge })]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/:8: spa_keys: .*huge\.keys: authorized keys file: too large \(5242880 bytes; at most 4194304\)/);
    // The client too: a server key that is a device or a FIFO is one line, at once.
    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', '/dev/zero', '--port', String(PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome }, timeoutMs: 10_000 });
    expect(k.code).toBe(2);
    expect(k.stderr).toBe('spa-knock: /dev/zero: server public key: not a regular file\n');
    const f = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', fifo, '--port', String(PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome }, timeoutMs: 10_000 });
    expect(f.code).toBe(2);
    expect(f.stderr).toBe(`spa-knock: ${fifo}: server public key: not a regular file\n`);
  });

  it('run creates a missing StateDir with mode 0700; a sticky world-writable parent (as /tmp) is fine', async () => {
    const sticky = join(work, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    const state = join(sticky, 'state');
    const conf = config({ stateDir: state });
    expect((await runCli('spa-server', ['check', '-c', conf])).code).toBe(0);
    const s = await startServer(['run', '-c', conf]);
    expect(lstatSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, 'replay.log')).mode & 0o777).toBe(0o600);
    expect((await s.stop()).code).toBe(0);
  });

  it('a second daemon on the same StateDir refuses with one line naming the first one\'s pid', async () => {
    const conf = config();
    const first = await startServer(['run', '-c', conf]);
    // Another config (another port, so the bind cannot be what fails) on the same StateDir.
    const other = config({ stateDir: join(conf, '..', 'state') });
    writeFileSync(other, readFileSync(other, 'utf8').replace(`SPAPort = ${PORT}`, `SPAPort = ${PORT + 1}`));
    const r = await runCli('spa-server', ['run', '-c', other], { timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`spa-server: StateDir ${join(conf, '..', 'state')} is in use by another spa-server (pid ${first.child.pid}); one daemon per StateDir\n`);
    // The first one still owns its control socket: status asks it, not the journal.
    const st = await runCli('spa-server', ['status', '-c', conf]);
    expect(st.stderr).toBe('');
    expect((await first.stop()).code).toBe(0);
    // Its lock died with it: a new daemon starts.
    const again = await startServer(['run', '-c', other]);
    expect((await again.stop()).code).toBe(0);
  });

  it('kill -9 during a slow start_command: the command dies with the daemon; the next start closes it; status agrees', async () => {
    const dir = join(work, 'slow');
    mkdirSync(dir);
    const opened = join(dir, 'opened');
    const log = join(dir, 'effects');
    const conf = config({ extra: '' });
    writeFileSync(
      conf,
      readFileSync(conf, 'utf8').replace(
        'start_command = true\n',
        `start_command = sleep 3; echo open %ID% >> ${log}; touch ${opened}\ncmd_timeout = 1\nstop_command = echo close %ID% >> ${log}; rm -f ${opened}\n`,
      ),
    );
    const s = await startServer(['run', '-c', conf]);
    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(k.code, k.stderr).toBe(0);
    await s.waitFor(s.msg('accepted'));
    await new Promise((r) => setTimeout(r, 300)); // the start command is sleeping now
    await s.stop('SIGKILL');
    // Past the opening's time and past the start command's sleep: nothing may have opened.
    await new Promise((r) => setTimeout(r, 4000));
    expect(existsSync(opened)).toBe(false);
    expect(fileLines(log)).toEqual([]);
    const offline = await runCli('spa-server', ['status', '-c', conf]);
    expect(offline.stdout).toMatch(/ssh\s+alice\s+127\.0\.0\.1\s+tcp\/22/); // the journal still owes a close
    const again = await startServer(['run', '-c', conf]);
    await again.waitFor(again.msg('closed'));
    await until(() => fileLines(log).length === 1, 5000, 'the stop command');
    expect(fileLines(log)).toEqual(['close alice']);
    const st = await runCli('spa-server', ['status', '-c', conf]);
    expect(st.stdout).toBe('no open rules\n');
    await new Promise((r) => setTimeout(r, 3500));
    expect(existsSync(opened)).toBe(false);
    expect((await again.stop()).code).toBe(0);
  }, 40_000);

  it('kill -9 during a slow start_command, restart before the opening\'s time: closed at once, status agrees', async () => {
    const dir = join(work, 'slow2');
    mkdirSync(dir);
    const log = join(dir, 'effects');
    const conf = config();
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('start_command = true\n', `start_command = sleep 3; echo open %ID% >> ${log}\ncmd_timeout = 600\nstop_command = echo close %ID% >> ${log}\n`));
    const s = await startServer(['run', '-c', conf]);
    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(k.code, k.stderr).toBe(0);
    await s.waitFor(s.msg('accepted'));
    await new Promise((r) => setTimeout(r, 300));
    await s.stop('SIGKILL');
    const again = await startServer(['run', '-c', conf]);
    await again.waitFor(again.msg('closing rule whose start did not finish before the daemon stopped'));
    await again.waitFor(again.msg('closed'));
    expect((await runCli('spa-server', ['status', '-c', conf])).stdout).toBe('no open rules\n');
    await new Promise((r) => setTimeout(r, 3500)); // the killed start's sleep is over: it must not have gone on
    expect(fileLines(log)).toEqual(['close alice']);
    expect((await again.stop()).code).toBe(0);
  }, 40_000);

  it('a lost, emptied or damaged replay.log fails closed: the used knock is refused after a restart, a new one works', async () => {
    const conf = config();
    const state = join(conf, '..', 'state');
    const craft = (): Uint8Array => craftKnock(keys, 'alice');
    const send = async (d: Uint8Array): Promise<void> => {
      const sock = createSocket('udp4');
      await new Promise<void>((r, j) => sock.send(d, PORT, '127.0.0.1', (e) => (e ? j(e) : r())));
      sock.close();
    };
    const verdict = async (s: Awaited<ReturnType<typeof startServer>>, d: Uint8Array): Promise<unknown> => {
      const mark = s.lines.length;
      await send(d);
      const l = await s.waitFor((x) => x['msg'] === 'rejected' || x['msg'] === 'accepted', 10_000, mark);
      return l['msg'] === 'accepted' ? 'ACCEPTED' : l['reason'];
    };
    for (const damage of ['delete', 'empty', 'garble'] as const) {
      const used = craft();
      const s = await startServer(['run', '-c', conf]);
      expect(await verdict(s, used)).toBe('ACCEPTED');
      expect((await s.stop()).code).toBe(0);
      const file = join(state, 'replay.log');
      if (damage === 'delete') rmSync(file);
      else if (damage === 'empty') writeFileSync(file, '');
      else writeFileSync(file, readFileSync(file, 'utf8').replace(/^n .*$/m, 'n garbage'));
      const again = await startServer(['run', '-c', conf]);
      await again.waitFor(again.msg('replay state lost: every knock stamped at or before the start is refused'));
      expect(await verdict(again, used), damage).not.toBe('ACCEPTED');
      // A knock made after the start is fine at once (the floor is the start's second).
      await new Promise((r) => setTimeout(r, 1100));
      expect(await verdict(again, craft())).toBe('ACCEPTED');
      expect((await again.stop()).code).toBe(0);
    }
  }, 90_000);

  it('bob extends alice\'s opening: the stop command gets alice\'s %ID%, as the start did', async () => {
    const dir = join(work, 'ids');
    mkdirSync(dir);
    const log = join(dir, 'effects');
    const conf = config({ spaKeys: keys.authorized('both', ['alice', 'bob']) });
    // Closed at shutdown (CloseOnExit), not by the timer: the close path is the same (effects.ts).
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('start_command = true\n', `start_command = echo open %ID% >> ${log}\ncmd_timeout = 600\nstop_command = echo close %ID% >> ${log}\n`));
    const s = await startServer(['run', '-c', conf]);
    const knock = (id: string) => runCli('spa-knock', ['127.0.0.1', '--key', id, '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect((await knock('alice')).code).toBe(0);
    await s.waitFor((l) => l['msg'] === 'accepted' && l['id'] === 'alice');
    expect((await knock('bob')).code).toBe(0);
    await s.waitFor((l) => l['msg'] === 'accepted' && l['id'] === 'bob');
    expect((await s.stop()).code).toBe(0);
    expect(s.lines.find((l) => l['msg'] === 'closed')).toMatchObject({ id: 'alice' });
    expect(fileLines(log)).toEqual(['open alice', 'close alice']);
  });

  it('UDP socket mode sizes its receive buffer and logs the datagrams the kernel dropped', async () => {
    const conf = config();
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('UDPSocket = yes\n', 'UDPSocket = yes\nUDPBufferMB = 1\n'));
    const s = await startServer(['run', '-c', conf]);
    // Stopped, the daemon reads nothing: 3000 datagrams of 1400 bytes (4 MB, bounded, to
    // loopback) overflow a 1 MiB buffer whatever the machine's rmem_max.
    process.kill(s.child.pid!, 'SIGSTOP');
    try {
      const sock = createSocket('udp4');
      const junk = Buffer.alloc(1400, 0x41);
      for (let i = 0; i < 3000; i++) await new Promise<void>((r) => sock.send(junk, PORT, '127.0.0.1', () => r()));
      sock.close();
    } finally {
      process.kill(s.child.pid!, 'SIGCONT');
    }
    const l = await s.waitFor(s.msg('UDP socket overflowed: the kernel dropped datagrams (UDPBufferMB, net.core.rmem_max)'), 20_000);
    expect(Number(l['drops'])).toBeGreaterThan(0);
    expect(Number(l['received']) + Number(l['total'])).toBeLessThanOrEqual(3000);
    expect((await s.stop()).code).toBe(0);
  }, 60_000);

  it('UDPListen binds the socket to that address only; check refuses a bad one', async () => {
    const conf = config({ extra: '' });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('UDPSocket = yes\n', 'UDPSocket = yes\nUDPListen = 127.0.0.1\n'));
    const s = await startServer(['run', '-c', conf]);
    // ss -Huln: one line per bound socket; the 4th field is the local address.
    const bound = spawnSync('ss', ['-Huln', 'sport', '=', `:${PORT}`], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(/\s+/)[3]);
    expect(bound).toEqual([`127.0.0.1:${PORT}`]);
    const k = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(PORT), '-A', 'tcp/22'], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(k.code).toBe(0);
    await s.waitFor(s.msg('accepted'));
    expect((await s.stop()).code).toBe(0);

    const bad = config();
    writeFileSync(bad, readFileSync(bad, 'utf8').replace('UDPSocket = yes\n', 'UDPSocket = yes\nUDPListen = localhost\n'));
    const c = await runCli('spa-server', ['check', '-c', bad]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain(`spa-server: ${bad}:4: UDPListen: expected an IPv4 or IPv6 address, got "localhost"`);
  });
});
