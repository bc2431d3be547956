// spa-knock and spa-server keygen as processes: files, modes, messages, exit codes,
// and a real knock over UDP on 127.0.0.1 decoded with the server's key.
import { mkdtempSync, readFileSync, statSync, chmodSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../src/bytes.js';
import { verifyDatagram } from '../../src/protocol/datagram.js';
import { encodeKey } from '../../keys/format.js';
import { authorizeClient, clientPublicKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { parseKey } from '../../keys/format.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'spa-cli-'));
const srvDir = join(dir, 'srv');
const home = join(dir, 'home');
const env = { SPA_KNOCK_HOME: home };
const knock = (...args: string[]) => runCli('spa-knock', args, { env });

beforeAll(async () => {
  expect((await runCli('spa-server', ['keygen', '--dir', srvDir])).code).toBe(0);
  expect((await knock('keygen', '--id', 'alice')).code).toBe(0);
});

function serverContext(nowSec: number) {
  const server = serverSecretKey(parseKey(readFileSync(join(srvDir, 'server.key'), 'utf8').split('\n')[1] ?? '', 'server-secret'));
  const [pubText = '', id = ''] = readFileSync(join(home, 'alice.pub'), 'utf8').trim().split(' ');
  const tags = new TagTable(120);
  tags.setClients([authorizeClient(server, id, clientPublicKey(parseKey(pubText, 'client-public')))!], nowSec);
  return { server, tags, replay: new ReplayGuard(120, 100), windowSec: 120 };
}

describe('keygen', () => {
  it('writes 0600 secret and 0644 public files and prints the public line', async () => {
    expect(statSync(join(srvDir, 'server.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(srvDir, 'server.pub')).mode & 0o777).toBe(0o644);
    expect(statSync(join(home, 'alice.key')).mode & 0o777).toBe(0o600);
    const line = readFileSync(join(home, 'alice.pub'), 'utf8');
    expect(line).toMatch(/^spa1-client-pub:[A-Za-z0-9_-]+ alice\n$/);
    const r = await knock('keygen', '--id', 'bob', '--dir', join(dir, 'other'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(dir, 'other', 'bob.pub'), 'utf8'));
  });

  it('never overwrites without --force', async () => {
    const before = readFileSync(join(home, 'alice.key'), 'utf8');
    const r = await knock('keygen', '--id', 'alice');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`spa-knock: ${join(home, 'alice.key')}: already exists; not overwriting a key without --force\n`);
    expect(readFileSync(join(home, 'alice.key'), 'utf8')).toBe(before);
    const s = await runCli('spa-server', ['keygen', '--dir', srvDir]);
    expect(s.code).toBe(2);
    const f = await knock('keygen', '--id', 'tmp1', '--dir', join(dir, 'forced'));
    expect(f.code).toBe(0);
    const g = await knock('keygen', '--id', 'tmp1', '--dir', join(dir, 'forced'), '--force');
    expect(g.code).toBe(0);
    expect(g.stdout).not.toBe(f.stdout);
  });

  it('--force does not write a key through a symbolic link', async () => {
    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'untouched\n');
    symlinkSync(target, join(home, 'linked.key'));
    const r = await knock('keygen', '--id', 'linked', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`spa-knock: ${join(home, 'linked.key')}: is a symbolic link; not writing a key through it\n`);
    expect(readFileSync(target, 'utf8')).toBe('untouched\n');
  });

  it('refuses a bad id', async () => {
    const r = await knock('keygen', '--id', '../x');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^spa-knock: --id: key id must be/);
  });
});

describe('spa-knock', () => {
  it('sends one datagram that the server key decodes (real UDP on 127.0.0.1)', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const port = sock.address().port;
    const got = new Promise<Buffer>((r) => sock.once('message', (m) => r(m)));
    const res = await knock('127.0.0.1', '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--port', String(port), '-A', 'tcp/22', '-A', 'udp/53', '-v');
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/^spa-knock: sent knock 127\.0\.0\.1 \(127\.0\.0\.1\) udp\/\d+ as alice: allow 127\.0\.0\.1 tcp\/22,udp\/53, 185 bytes\n$/);
    const d = await got;
    sock.close();
    const now = Math.floor(Date.now() / 1000);
    const v = verifyDatagram(serverContext(now), new Uint8Array(d), now);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.client.id).toBe('alice');
      expect(v.allow.text).toBe('127.0.0.1');
      expect(v.access).toEqual([
        { proto: 'tcp', port: 22 },
        { proto: 'udp', port: 53 },
      ]);
    }
  });

  it('knocks IPv6 literals, bracketed too, with the kernel-chosen allow address', async () => {
    const sock = createSocket('udp6');
    await new Promise<void>((r) => sock.bind(0, '::1', r));
    const port = sock.address().port;
    const got = new Promise<Buffer>((r) => sock.once('message', (m) => r(m)));
    const res = await knock('[::1]', '--key', 'alice', '--server-key', readFileSync(join(srvDir, 'server.pub'), 'utf8').trim(), '--port', String(port));
    expect(res.code).toBe(0);
    const d = await got;
    sock.close();
    const now = Math.floor(Date.now() / 1000);
    const v = verifyDatagram(serverContext(now), new Uint8Array(d), now);
    expect(v.ok && v.allow.text).toBe('::1');
    expect(v.ok && v.access).toEqual([{ proto: 'tcp', port: 22 }]);
  });

  it('--dry-run prints a summary and the datagram and sends nothing', async () => {
    const r = await knock('localhost', '-4', '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--allow-ip', '203.0.113.9', '--dry-run');
    expect(r.code).toBe(0);
    const [summary, hex] = r.stdout.trimEnd().split('\n');
    expect(summary).toBe('knock localhost (127.0.0.1) udp/62201 as alice: allow 203.0.113.9 tcp/22, 185 bytes (dry run, not sent)');
    const now = Math.floor(Date.now() / 1000);
    const v = verifyDatagram(serverContext(now), fromHex(hex ?? ''), now);
    expect(v.ok && v.allow.text).toBe('203.0.113.9');
  });

  it('--allow-ip source: the datagram carries the source family, and no address', async () => {
    const r = await knock('127.0.0.1', '--key', 'alice', '--server-key', join(srvDir, 'server.pub'), '--allow-ip', 'source', '--dry-run');
    expect(r.code).toBe(0);
    const [summary, hex] = r.stdout.trimEnd().split('\n');
    expect(summary).toBe('knock 127.0.0.1 (127.0.0.1) udp/62201 as alice: allow source tcp/22, 185 bytes (dry run, not sent)');
    const now = Math.floor(Date.now() / 1000);
    const v = verifyDatagram(serverContext(now), fromHex(hex ?? ''), now);
    expect(v.ok && v.allow).toBe('source');
  });

  it.each([
    [['127.0.0.1', '--key', 'carol', '--server-key', 'SRV'], /^spa-knock: unknown key id "carol": no .*carol\.key \(make one with: spa-knock keygen --id carol\)\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'ALICEPUB'], /^spa-knock: .*alice\.pub:1: expected a server public key \(spa1-server-pub:\.\.\.\), got a client public key\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'spa1-server-pub:AAAA'], /^spa-knock: a server public key: truncated \(3 bytes, expected 36\)\n$/],
    // u = 1, a low-order X25519 point: 0.1.0 exited 70 with a stack trace.
    [['127.0.0.1', '--key', 'alice', '--server-key', encodeKey('server-public', Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)))], /^spa-knock: a server public key: refused: its X25519 key is a low-order point\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'SRV', '--allow-ip', '224.0.0.1'], /^spa-knock: --allow-ip: 224\.0\.0\.1 is a multicast address, which is never a client's address\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'SRV', '-A', '22/tpc'], /^spa-knock: option '-A, --access <proto\/port>' argument '22\/tpc' is invalid\. expected PROTO\/PORT such as tcp\/22 or udp\/53, got "22\/tpc"\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'SRV', '-A', 'tcp/70000'], /argument 'tcp\/70000' is invalid\. port must be 1-65535/],
    [['no-such-host.invalid', '--key', 'alice', '--server-key', 'SRV'], /^spa-knock: no-such-host\.invalid: cannot resolve host name \(ENOTFOUND\)\n$/],
    // Node's lookup('') printed a DEP0118 warning (three more lines) before the error.
    [['', '--key', 'alice', '--server-key', 'SRV'], /^spa-knock: empty host name: give a host name or an address\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'SRV', '--allow-ip', '1.2.3'], /^spa-knock: --allow-ip: expected an IPv4 or IPv6 address, auto or source, got "1\.2\.3"\n$/],
    [['127.0.0.1', '-6', '--key', 'alice', '--server-key', 'SRV'], /^spa-knock: 127\.0\.0\.1: is an IPv4 address but -6 was given\n$/],
    [['127.0.0.1', '--key', 'alice'], /^spa-knock: no server key for 127\.0\.0\.1: use --server-key KEY_OR_FILE\n$/],
    [['127.0.0.1', '--key', 'alice', '--server-key', 'SRV', '--port', '0'], /argument '0' is invalid\. expected a port 1-65535, got "0"/],
    [['127.0.0.1', '--bogus'], /^spa-knock: unknown option '--bogus'\n$/],
  ])('%j exits 2 with one line', async (args, re) => {
    const real = args.map((a) => (a === 'SRV' ? join(srvDir, 'server.pub') : a === 'ALICEPUB' ? join(home, 'alice.pub') : a));
    const r = await knock(...real);
    expect(r.stderr).toMatch(re);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.code).toBe(2);
  });

  it('refuses a secret key readable by others, naming file and mode', async () => {
    await knock('keygen', '--id', 'loose');
    chmodSync(join(home, 'loose.key'), 0o644);
    const r = await knock('127.0.0.1', '--key', 'loose', '--server-key', join(srvDir, 'server.pub'), '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`spa-knock: ${join(home, 'loose.key')}: secret key is accessible by group or others (mode 0644); run: chmod 600 ${join(home, 'loose.key')}\n`);
  });

  it('refuses a damaged secret key file with file and line', async () => {
    writeFileSync(join(home, 'bad.key'), '# comment\nspa1-client-secret:AAAA\n', { mode: 0o600 });
    const r = await knock('127.0.0.1', '--key', 'bad', '--server-key', join(srvDir, 'server.pub'), '--dry-run');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`spa-knock: ${join(home, 'bad.key')}:2: a client secret key: truncated (3 bytes, expected 68)\n`);
  });

  it('--help documents every option and exits 0', async () => {
    const r = await knock('--help');
    expect(r.code).toBe(0);
    for (const o of ['--key', '--key-dir', '--server-key', '--port', '--access', '--allow-ip', '-4', '-6', '--dry-run', '--verbose', 'Exit status']) expect(r.stdout).toContain(o);
  });
});
