// spa-server as a fwknopd replacement, end to end: the REAL fwknop 2.6.10 client (Debian's
// fwknop-client), driven with fresh --key-gen keys, against spa-server run as a process on lo
// (real libpcap) from an unchanged fwknopd.conf + access.conf whose stanzas open through
// CMD_CYCLE_OPEN (a command that leaves a file: no firewall needed to see the opening).
// Needs root (capture) and fwknop.
import { keyGen, type FwknopKeys as Keys } from '../helpers/fwknop.js';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { replayDigestOf } from '../../src/fwknop/verify.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { describeNeeding } from '../helpers/requirements.js';
import { fileLines, makeKeys, startServer, stopAllServers, until, type ServerProcess } from '../helpers/server.js';

// Below the ephemeral range and away from the other suites' ports.
const PORT = 28720;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


/** Runs the real client; saves the packet it sent in `save` when given. */
function fwknop(args: string[], save?: string): string {
  return execFileSync('fwknop', ['--no-rc-file', '--no-save-args', '-D', '127.0.0.1', '-p', String(PORT), ...(save ? ['-B', save] : []), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function sendRaw(payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.send(Buffer.from(payload, 'latin1'), PORT, '127.0.0.1', (e) => {
      s.close();
      if (e) reject(e);
      else resolve();
    });
  });
}

describeNeeding('spa-server with fwknopd.conf and the real fwknop client', { root: true, tools: ['fwknop'] }, 'libpcap capture on lo and Debian\'s fwknop client', () => {
  let dir: string;
  let conf: string;
  let access: string;
  let srv: ServerProcess;
  let k: Record<'sha256' | 'sha512' | 'ctr' | 'req' | 'other', Keys>;
  const opened = (tag: string): string => join(dir, `open-${tag}`);

  // One stanza per scenario; each CMD_CYCLE_OPEN leaves open-<stanza>-<ip>-<proto>-<port>-<timeout>.
  const cycle = (name: string): string[] => [
    `CMD_CYCLE_OPEN /usr/bin/touch ${dir}/open-${name}-$IP-$PROTO-$PORT-$CLIENT_TIMEOUT`,
    `CMD_CYCLE_CLOSE /usr/bin/touch ${dir}/close-${name}-$IP-$PORT`,
    'CMD_CYCLE_TIMER 30',
  ];

  beforeAll(async () => {
    k = { sha256: keyGen(), sha512: keyGen(['--hmac-digest-type', 'sha512']), ctr: keyGen(), req: keyGen(), other: keyGen() };
    dir = mkdtempSync(join(tmpdir(), 'spa-fwknop-'));
    chmodSync(dir, 0o700);
    access = join(dir, 'access.conf');
    conf = join(dir, 'fwknopd.conf');
    writeFileSync(access, [
      '# stanza 1: the default (sha256), two ports allowed',
      'SOURCE 127.0.0.0/8', `KEY_BASE64 ${k.sha256.key}`, `HMAC_KEY_BASE64 ${k.sha256.hmac}`, 'OPEN_PORTS tcp/22, udp/53', 'MAX_FW_TIMEOUT 600', ...cycle('s1'), '',
      'SOURCE ANY', `KEY_BASE64 ${k.sha512.key}`, `HMAC_KEY_BASE64 ${k.sha512.hmac}`, 'HMAC_DIGEST_TYPE sha512', ...cycle('s2'), '',
      'SOURCE ANY', 'KEY correct horse', 'HMAC_KEY battery staple', ...cycle('s3'), '',
      'SOURCE ANY', `KEY_BASE64 ${k.ctr.key}`, `HMAC_KEY_BASE64 ${k.ctr.hmac}`, 'ENCRYPTION_MODE CTR', ...cycle('s4'), '',
      'SOURCE ANY', `KEY_BASE64 ${k.req.key}`, `HMAC_KEY_BASE64 ${k.req.hmac}`, 'REQUIRE_SOURCE_ADDRESS Y', ...cycle('s5'), '',
    ].join('\n'), { mode: 0o600 });
    writeFileSync(conf, `PCAP_INTF lo;\nPCAP_FILTER udp port ${PORT};\nACCESS_FILE ${access};\nFWKNOP_RUN_DIR ${dir}/run;\nSPA_STATE_DIR ${dir}/state;\n`, { mode: 0o600 });
    srv = await startServer(['run', '--config', conf]);
  }, 60_000);

  afterAll(async () => {
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  const accepted = (stanza: number) => (l: Record<string, unknown>) => l['msg'] === 'accepted' && l['stanza'] === `${access}:${[0, 2, 11, 19, 26, 34][stanza]}`;
  const rejected = (reason: string) => (l: Record<string, unknown>) => l['msg'] === 'rejected' && l['reason'] === reason;

  it('check reads the files unchanged and names the stanzas', async () => {
    const r = await runCli('spa-server', ['check', '--config', conf]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${conf}: OK: 5 fwknop stanzas from ${access}, udp/${PORT}\n`);
  });

  it('HMAC SHA-256 with -A tcp/22,udp/53 opens both ports through CMD_CYCLE_OPEN', async () => {
    const from = srv.lines.length;
    fwknop(['-A', 'tcp/22,udp/53', '-a', '127.0.0.1', '--key-base64-rijndael', k.sha256.key, '--key-base64-hmac', k.sha256.hmac]);
    await srv.waitFor(accepted(1), 15_000, from);
    await until(() => existsSync(opened('s1-127.0.0.1-6-22-30')) && existsSync(opened('s1-127.0.0.1-17-53-30')), 10_000, 'both CMD_CYCLE_OPEN runs');
  });

  it('HMAC SHA-512, --fw-timeout (capped by MAX_FW_TIMEOUT), a passphrase KEY, CTR mode', async () => {
    let from = srv.lines.length;
    fwknop(['-A', 'tcp/2222', '-a', '127.0.0.1', '--key-base64-rijndael', k.sha512.key, '--key-base64-hmac', k.sha512.hmac, '--hmac-digest-type', 'sha512', '--fw-timeout', '900']);
    await srv.waitFor(accepted(2), 15_000, from);
    await until(() => existsSync(opened('s2-127.0.0.1-6-2222-300')), 10_000, 'sha512 open, timeout capped at 300');
    from = srv.lines.length;
    fwknop(['-A', 'tcp/2223', '-a', '127.0.0.1', '--key-rijndael', 'correct horse', '--key-hmac', 'battery staple', '--fw-timeout', '45']);
    await srv.waitFor(accepted(3), 15_000, from);
    await until(() => existsSync(opened('s3-127.0.0.1-6-2223-45')), 10_000, 'passphrase open');
    from = srv.lines.length;
    fwknop(['-A', 'udp/2224', '-a', '127.0.0.1', '-M', 'ctr', '--key-base64-rijndael', k.ctr.key, '--key-base64-hmac', k.ctr.hmac]);
    await srv.waitFor(accepted(4), 15_000, from);
    await until(() => existsSync(opened('s4-127.0.0.1-17-2224-30')), 10_000, 'ctr open');
  });

  it('-s opens for the packet source, and is refused where REQUIRE_SOURCE_ADDRESS is Y', async () => {
    let from = srv.lines.length;
    fwknop(['-A', 'tcp/2225', '-s', '--key-base64-rijndael', k.sha512.key, '--key-base64-hmac', k.sha512.hmac, '--hmac-digest-type', 'sha512']);
    await srv.waitFor(accepted(2), 15_000, from);
    await until(() => existsSync(opened('s2-127.0.0.1-6-2225-30')), 10_000, '-s open');
    from = srv.lines.length;
    fwknop(['-A', 'tcp/2226', '-s', '--key-base64-rijndael', k.req.key, '--key-base64-hmac', k.req.hmac]);
    const l = await srv.waitFor(rejected('fwknop.require-source'), 15_000, from);
    expect(l).toMatchObject({ src: '127.0.0.1', stanza: `${access}:34` });
  });

  it('refuses a wrong key, a port outside OPEN_PORTS and a stale packet, with the reason, source and stanza', async () => {
    let from = srv.lines.length;
    fwknop(['-A', 'tcp/22', '-a', '127.0.0.1', '--key-base64-rijndael', k.other.key, '--key-base64-hmac', k.other.hmac]);
    expect(await srv.waitFor(rejected('fwknop.hmac'), 15_000, from)).toMatchObject({ src: '127.0.0.1' });
    from = srv.lines.length;
    fwknop(['-A', 'tcp/23', '-a', '127.0.0.1', '--key-base64-rijndael', k.sha256.key, '--key-base64-hmac', k.sha256.hmac]);
    expect(await srv.waitFor(rejected('fwknop.ports'), 15_000, from)).toMatchObject({ src: '127.0.0.1', stanza: `${access}:2` });
    from = srv.lines.length;
    fwknop(['-A', 'tcp/22', '-a', '127.0.0.1', '--time-offset-minus', '300s', '--key-base64-rijndael', k.sha256.key, '--key-base64-hmac', k.sha256.hmac]);
    expect(await srv.waitFor(rejected('fwknop.age'), 15_000, from)).toMatchObject({ src: '127.0.0.1', stanza: `${access}:2` });
  });

  it('a resent packet is refused, also after kill -9 and a restart', async () => {
    const save = join(dir, 'packet.txt');
    let from = srv.lines.length;
    fwknop(['-A', 'udp/53', '-a', '127.0.0.1', '--key-base64-rijndael', k.sha256.key, '--key-base64-hmac', k.sha256.hmac], save);
    await srv.waitFor(accepted(1), 15_000, from);
    const packet = readFileSync(save, 'utf8').trim();
    // Not in the same capture burst as the accept (its fsyncs can outlast the burst limit, and
    // server/capture.ts sheds the rest of a burst): resent a moment later, as an attacker would.
    await sleep(300);
    from = srv.lines.length;
    await sendRaw(packet);
    await srv.waitFor(rejected('fwknop.replay'), 15_000, from);
    // A packet fwknopd saw before the migration: its digest.cache line is imported at start.
    const seenByFwknopd = join(dir, 'fwknopd-saw.txt');
    fwknop(['-T', '-A', 'tcp/22', '-a', '127.0.0.1', '--key-base64-rijndael', k.sha256.key, '--key-base64-hmac', k.sha256.hmac], seenByFwknopd);
    const old = readFileSync(seenByFwknopd, 'utf8').trim();
    mkdirSync(join(dir, 'run'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'run/digest.cache'), `${replayDigestOf(new Uint8Array(Buffer.from(old, 'latin1')))} 17 127.0.0.1 40000 127.0.0.1 ${PORT} ${Math.floor(Date.now() / 1000)}\n`, { mode: 0o600 });
    await srv.stop('SIGKILL');
    srv = await startServer(['run', '--config', conf]);
    from = srv.lines.length;
    await sendRaw(packet);
    await srv.waitFor(rejected('fwknop.replay'), 15_000, from);
    expect(srv.lines.find((l) => l['msg'] === 'fwknop stanzas loaded')).toMatchObject({ importedFromDigestFile: 1 });
    await sleep(300);
    from = srv.lines.length;
    await sendRaw(old);
    await srv.waitFor(rejected('fwknop.replay'), 15_000, from);
  }, 60_000);

  it('SIGHUP reads access.conf again: a new key works, the old one no longer does', async () => {
    const fresh = keyGen();
    const text = readFileSync(access, 'utf8').replace(`KEY_BASE64 ${k.ctr.key}\nHMAC_KEY_BASE64 ${k.ctr.hmac}`, `KEY_BASE64 ${fresh.key}\nHMAC_KEY_BASE64 ${fresh.hmac}`);
    writeFileSync(access, text, { mode: 0o600 });
    let from = srv.lines.length;
    srv.child.kill('SIGHUP');
    await srv.waitFor(srv.msg('reloaded'), 10_000, from);
    from = srv.lines.length;
    fwknop(['-A', 'udp/2240', '-a', '127.0.0.1', '-M', 'ctr', '--key-base64-rijndael', fresh.key, '--key-base64-hmac', fresh.hmac]);
    await srv.waitFor(accepted(4), 15_000, from);
    await until(() => existsSync(opened('s4-127.0.0.1-17-2240-30')), 10_000, 'new key open');
    from = srv.lines.length;
    fwknop(['-A', 'udp/2241', '-a', '127.0.0.1', '-M', 'ctr', '--key-base64-rijndael', k.ctr.key, '--key-base64-hmac', k.ctr.hmac]);
    await srv.waitFor(rejected('fwknop.hmac'), 15_000, from);
  }, 60_000);

  it('check refuses a stanza without an HMAC key, with FILE:LINE and why', async () => {
    const bad = join(dir, 'bad-access.conf');
    const badConf = join(dir, 'bad-fwknopd.conf');
    writeFileSync(bad, `SOURCE ANY\nKEY_BASE64 ${k.other.key}\nREQUIRE_SOURCE_ADDRESS Y\n`, { mode: 0o600 });
    writeFileSync(badConf, `PCAP_INTF lo;\nACCESS_FILE ${bad};\nSPA_STATE_DIR ${dir}/state2;\n`, { mode: 0o600 });
    const r = await runCli('spa-server', ['check', '--config', badConf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`spa-server: ${bad}:1: SOURCE: stanza has no HMAC_KEY or HMAC_KEY_BASE64: unauthenticated CBC is malleable; add an HMAC key (fwknop --key-gen), or SPA_ALLOW_NO_HMAC Y\nspa-server: 1 problem found\n`);
  });
});

describeNeeding('spa.conf: an SPA door, a sequence door and a fwknop_access door on one port', { root: true, tools: ['fwknop'] }, 'libpcap capture on lo and Debian\'s fwknop client', () => {
  const SPA_PORT = 28721;
  const SEQ = [28731, 28732, 28733];
  let dir: string;
  let srv: ServerProcess;
  let keys: Awaited<ReturnType<typeof makeKeys>>;
  let fk: Keys;
  let effects: string;
  let conf: string;

  beforeAll(async () => {
    fk = keyGen();
    keys = await makeKeys(['alice']);
    dir = mkdtempSync(join(tmpdir(), 'spa-fwknop-mixed-'));
    chmodSync(dir, 0o700);
    effects = join(dir, 'effects');
    const access = join(dir, 'access.conf');
    writeFileSync(access, `SOURCE ANY\nKEY_BASE64 ${fk.key}\nHMAC_KEY_BASE64 ${fk.hmac}\nREQUIRE_SOURCE_ADDRESS Y\nFW_ACCESS_TIMEOUT 60\n`, { mode: 0o600 });
    conf = join(dir, 'spa.conf');
    writeFileSync(conf, `[options]
        Interface = lo
        SPAPort   = ${SPA_PORT}
        ServerKey = ${keys.serverKey}
        StateDir  = ${dir}/state

[ssh]
        spa_keys      = ${keys.authorized('ssh', ['alice'])}
        access        = tcp/22
        start_command = echo open ssh %ID% %IP% %PROTO%/%PORT% >> ${effects}

[fwknop-users]
        fwknop_access = ${access}
        access        = tcp/22, tcp/443
        start_command = echo open fwknop %IP% %PROTO%/%PORT% >> ${effects}

[legacy]
        sequence      = ${SEQ.join(',')}
        start_command = echo open sequence %IP% >> ${effects}
`, { mode: 0o600 });
    const c = await runCli('spa-server', ['check', '--config', conf]);
    expect(c.stdout).toBe(`${conf}: OK: 3 doors (ssh: spa, fwknop-users: spa, legacy: sequence), 1 authorized key, 1 fwknop stanza from ${access}\n`);
    srv = await startServer(['run', '--config', conf]);
  }, 60_000);

  afterAll(async () => {
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  it('a v1 knock, a real fwknop knock and a sequence all open their doors', async () => {
    const r = await runCli('spa-knock', ['127.0.0.1', '--key', 'alice', '--server-key', keys.serverPub, '--port', String(SPA_PORT)], { env: { SPA_KNOCK_HOME: keys.clientHome } });
    expect(r.code, r.stderr).toBe(0);
    execFileSync('fwknop', ['--no-rc-file', '--no-save-args', '-D', '127.0.0.1', '-p', String(SPA_PORT), '-A', 'tcp/443', '-a', '127.0.0.1', '--key-base64-rijndael', fk.key, '--key-base64-hmac', fk.hmac], { stdio: 'ignore' });
    const s = await runCli('spa-knock', ['127.0.0.1', '--sequence', SEQ.join(',')]);
    expect(s.code, s.stderr).toBe(0);
    await until(() => fileLines(effects).length === 3, 15_000, 'three start commands');
    expect(fileLines(effects).sort()).toEqual(['open fwknop 127.0.0.1 tcp/443', 'open sequence 127.0.0.1', 'open ssh alice 127.0.0.1 tcp/22']);
  });

  it("a fwknop request outside the door's access is refused", async () => {
    const from = srv.lines.length;
    execFileSync('fwknop', ['--no-rc-file', '--no-save-args', '-D', '127.0.0.1', '-p', String(SPA_PORT), '-A', 'tcp/8080', '-a', '127.0.0.1', '--key-base64-rijndael', fk.key, '--key-base64-hmac', fk.hmac], { stdio: 'ignore' });
    await srv.waitFor((l) => l['msg'] === 'rejected' && l['reason'] === 'fwknop.ports', 15_000, from);
  });

  // Beside spa keys, fwknop packets have a capture handle of their own; with the spa and
  // sequence doors gone, the other handle's filter would match nothing, which libpcap refuses,
  // and every failed replacement kept a ring mapped: the reload must reopen the capture instead.
  it('a reload down to the fwknop door alone reopens the capture; fwknop knocks still open', async () => {
    const text = readFileSync(conf, 'utf8');
    // First without the sequence door (its ports leave the filter), then without the spa door.
    writeFileSync(conf, text.slice(0, text.indexOf('[legacy]')), { mode: 0o600 });
    const first = srv.lines.length;
    srv.child.kill('SIGHUP');
    await srv.waitFor(srv.msg('reloaded'), 10_000, first);
    const from = srv.lines.length;
    writeFileSync(conf, text.slice(0, text.indexOf('[ssh]')) + text.slice(text.indexOf('[fwknop-users]'), text.indexOf('[legacy]')), { mode: 0o600 });
    writeFileSync(effects, '');
    srv.child.kill('SIGHUP');
    await srv.waitFor(srv.msg('reloaded'), 10_000, from);
    expect(srv.lines.slice(from).some((l) => l['msg'] === 'capture reopened')).toBe(true);
    execFileSync('fwknop', ['--no-rc-file', '--no-save-args', '-D', '127.0.0.1', '-p', String(SPA_PORT), '-A', 'tcp/22', '-a', '127.0.0.1', '--key-base64-rijndael', fk.key, '--key-base64-hmac', fk.hmac], { stdio: 'ignore' });
    await until(() => fileLines(effects).includes('open fwknop 127.0.0.1 tcp/22'), 15_000, 'the fwknop door opens');
    // Past a tick (5 s), when the kernel filter is refreshed.
    await new Promise((r) => setTimeout(r, 6000));
    const warnings = srv.lines.slice(from).filter((l) => Number(l['level']) >= 40);
    expect(warnings.map((l) => l['msg']), JSON.stringify(warnings)).toEqual([]);
  }, 60_000);
});
