// spa-knock --named-config NAME knocks the REAL fwknopd 2.6.10 (Debian's fwknop-server),
// run in the foreground in a network namespace this test makes (-f -i lo, absolute paths,
// 0600 configs), with stanzas that open through CMD_CYCLE_OPEN (a command that leaves a
// file), from a ~/.fwknoprc whose keys come from the real `fwknop --key-gen`.
// Needs root (namespaces, libpcap), fwknop and fwknopd.
import { keyGen, type FwknopKeys as Keys } from '../helpers/fwknop.js';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parseDigestCache } from '../../src/fwknop/replay.js';
import { replayDigestOf } from '../../src/fwknop/verify.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { NetnsLab, nsExec, sweepStaleNetns, type Netns } from '../helpers/netns.js';
import { describeNeeding } from '../helpers/requirements.js';
import { until } from '../helpers/server.js';


describeNeeding('spa-knock --named-config against the real fwknopd', { root: true, tools: ['fwknop', 'fwknopd', 'ip'] }, 'network namespaces and Debian\'s fwknop-server', () => {
  const lab = new NetnsLab();
  let ns: Netns;
  let dir: string;
  let fwknopd: ChildProcess;
  let log = '';
  let k: Record<'a' | 'b' | 'c' | 'wrong', Keys>;
  const opened = (name: string): boolean => existsSync(join(dir, `open-${name}`));

  beforeAll(async () => {
    await sweepStaleNetns();
    k = { a: keyGen(), b: keyGen(['--hmac-digest-type', 'sha512']), c: keyGen(), wrong: keyGen() };
    dir = mkdtempSync(join(tmpdir(), 'spa-fwknopd-'));
    chmodSync(dir, 0o700);
    mkdirSync(join(dir, 'run'), { mode: 0o700 });
    const cycle = (s: string): string[] => [`CMD_CYCLE_OPEN /usr/bin/touch ${dir}/open-${s}-$IP-$PROTO-$PORT-$CLIENT_TIMEOUT`, 'CMD_CYCLE_CLOSE NONE'];
    writeFileSync(join(dir, 'access.conf'), [
      'SOURCE ANY', `KEY_BASE64 ${k.a.key}`, `HMAC_KEY_BASE64 ${k.a.hmac}`, 'REQUIRE_SOURCE_ADDRESS Y', ...cycle('a'), '',
      'SOURCE ANY', `KEY_BASE64 ${k.b.key}`, `HMAC_KEY_BASE64 ${k.b.hmac}`, 'HMAC_DIGEST_TYPE sha512', 'MAX_FW_TIMEOUT 900', ...cycle('b'), '',
      'SOURCE ANY', 'KEY correct horse', `HMAC_KEY_BASE64 ${k.c.hmac}`, 'ENCRYPTION_MODE CTR', ...cycle('c'), '',
    ].join('\n'), { mode: 0o600 });
    writeFileSync(join(dir, 'fwknopd.conf'), 'PCAP_INTF lo;\nPCAP_FILTER udp port 62201;\n', { mode: 0o600 });
    // KEY passphrases cannot hold a blank in an rc file (CONFIG.md §3): stanza c uses KEY_BASE64 of it.
    writeFileSync(join(dir, 'fwknoprc'), [
      '[default]', 'SPA_SERVER 127.0.0.1', 'USE_HMAC Y', '',
      '[a]', 'ACCESS tcp/22', 'ALLOW_IP 127.0.0.1', `KEY_BASE64 ${k.a.key}`, `HMAC_KEY_BASE64 ${k.a.hmac}`, '',
      '[b]', 'ACCESS tcp/22,udp/53', 'ALLOW_IP source', `KEY_BASE64 ${k.b.key}`, `HMAC_KEY_BASE64 ${k.b.hmac}`, 'HMAC_DIGEST_TYPE sha512', 'FW_TIMEOUT 600', 'DIGEST_TYPE sha512', '',
      '[c]', 'ACCESS udp/1194', 'ALLOW_IP 127.0.0.1', `KEY_BASE64 ${Buffer.from('correct horse').toString('base64')}`, `HMAC_KEY_BASE64 ${k.c.hmac}`, 'ENCRYPTION_MODE CTR', '',
      '[wrong]', 'ACCESS tcp/22', 'ALLOW_IP 127.0.0.1', `KEY_BASE64 ${k.wrong.key}`, `HMAC_KEY_BASE64 ${k.wrong.hmac}`, '',
      '[nosource]', 'ACCESS tcp/2222', 'ALLOW_IP source', `KEY_BASE64 ${k.a.key}`, `HMAC_KEY_BASE64 ${k.a.hmac}`, '',
    ].join('\n'), { mode: 0o600 });
    ns = await lab.makeNetns();
    fwknopd = lab.spawn(ns, ['fwknopd', '-f', '-i', 'lo', '-c', join(dir, 'fwknopd.conf'), '-a', join(dir, 'access.conf'), '-d', join(dir, 'run/digest.cache'), '-p', join(dir, 'run/fwknopd.pid'), '-r', join(dir, 'run')]);
    fwknopd.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    fwknopd.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => log.includes('Starting fwknopd main event loop'), 15_000, `fwknopd to start; log: ${log}`);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const knock = (name: string, ...extra: string[]) => nsExec(ns, [process.execPath, BIN['spa-knock'], '--named-config', name, '--rc-file', join(dir, 'fwknoprc'), ...extra]);

  it('the default stanza (sha256 HMAC, CBC) opens', async () => {
    expect(await knock('a')).toMatchObject({ ok: true });
    await until(() => opened('a-127.0.0.1-6-22-0'), 15_000, `fwknopd to accept; log: ${log}`);
  });

  it('sha512 HMAC and digest, ALLOW_IP source, FW_TIMEOUT (message type 3), two ports', async () => {
    expect(await knock('b')).toMatchObject({ ok: true });
    await until(() => opened('b-127.0.0.1-6-22-600'), 15_000, `fwknopd to accept; log: ${log}`);
  });

  it('CTR mode with a passphrase key, and -A / -f flags over the stanza', async () => {
    expect(await knock('c', '-A', 'udp/1195', '-f', '45')).toMatchObject({ ok: true });
    await until(() => opened('c-127.0.0.1-17-1195-45'), 15_000, `fwknopd to accept; log: ${log}`);
  });

  it('fwknopd refuses a wrong key and -s where REQUIRE_SOURCE_ADDRESS is Y', async () => {
    const before = log.length;
    expect(await knock('wrong', '-A', 'tcp/2223')).toMatchObject({ ok: true });
    expect(await knock('nosource')).toMatchObject({ ok: true });
    await until(() => log.slice(before).includes('Got 0.0.0.0 when valid source IP was required'), 15_000, `fwknopd to refuse -s; log: ${log}`);
    expect(log.slice(before)).toMatch(/HMAC/);
    expect(opened('a-127.0.0.1-6-2223-0')).toBe(false);
  });

  it("fwknopd's digest.cache holds our replay digest of the packet it accepted (so the cache imports as is)", async () => {
    const t = await knock('a', '-T', '-A', 'tcp/2230');
    const wire = t.stdout.trim().split('\n')[1] as string;
    const send = `const s=require('dgram').createSocket('udp4');s.send(Buffer.from(process.argv[1]),62201,'127.0.0.1',()=>s.close());`;
    expect(await nsExec(ns, [process.execPath, '-e', send, wire])).toMatchObject({ ok: true });
    await until(() => opened('a-127.0.0.1-6-2230-0'), 15_000, `fwknopd to accept; log: ${log}`);
    const digest = replayDigestOf(new Uint8Array(Buffer.from(wire, 'latin1')));
    await until(() => existsSync(join(dir, 'run/digest.cache')) && readFileSync(join(dir, 'run/digest.cache'), 'utf8').includes(digest), 10_000, 'the digest in digest.cache');
    expect(parseDigestCache(readFileSync(join(dir, 'run/digest.cache'), 'utf8'), 120).map((e) => e.digest)).toContain(digest);
  });

  it('-T prints the packet and sends nothing; a missing stanza is one line, exit 2', async () => {
    const t = await knock('a', '-T');
    expect(t.stdout).toMatch(/^fwknop knock \[a\] 127\.0\.0\.1 \(127\.0\.0\.1\) udp\/62201: allow 127\.0\.0\.1 tcp\/22, HMAC sha256, \d+ bytes \(test, not sent\)\n[89+/][A-Za-z0-9+/]+\n$/);
    const m = await knock('nope');
    expect(m).toMatchObject({ ok: false, code: 2 });
    expect(m.stderr).toBe(`spa-knock: ${join(dir, 'fwknoprc')}: no stanza [nope] (stanzas: a, b, c, wrong, nosource)\n`);
  });
});
