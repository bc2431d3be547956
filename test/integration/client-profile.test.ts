// spa-knock HOST with a profile file, as a process: the knock reaches the profile's HostName
// and Port with its key and access (real UDP on 127.0.0.1, decoded with the server's key);
// flags override the file; a broken file is one FILE:LINE line and exit 2.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyDatagram } from '../../src/protocol/datagram.js';
import { authorizeClient, clientPublicKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { parseKey } from '../../keys/format.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'spa-profile-'));
const srvDir = join(dir, 'srv');
const home = join(dir, 'home');
const env = { SPA_KNOCK_HOME: home };
const knock = (...args: string[]) => runCli('spa-knock', args, { env });

interface Catcher {
  readonly port: number;
  next(timeoutMs?: number): Promise<Buffer>;
  close(): void;
}

async function udpCatcher(): Promise<Catcher> {
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const queue: Buffer[] = [];
  const waiting: ((b: Buffer) => void)[] = [];
  sock.on('message', (m) => {
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return {
    port: sock.address().port,
    next(timeoutMs = 5000) {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no datagram')), timeoutMs);
        waiting.push((b) => {
          clearTimeout(t);
          resolve(b);
        });
      });
    },
    close: () => sock.close(),
  };
}

function verify(d: Buffer) {
  const now = Math.floor(Date.now() / 1000);
  const server = serverSecretKey(parseKey(readFileSync(join(srvDir, 'server.key'), 'utf8').split('\n')[1] ?? '', 'server-secret'));
  const tags = new TagTable(120);
  const clients = ['alice', 'bob'].map((id) => {
    const [pubText = ''] = readFileSync(join(home, `${id}.pub`), 'utf8').trim().split(' ');
    return authorizeClient(server, id, clientPublicKey(parseKey(pubText, 'client-public')))!;
  });
  tags.setClients(clients, now);
  return verifyDatagram({ server, tags, replay: new ReplayGuard(120, 100), windowSec: 120 }, new Uint8Array(d), now);
}

let udp: Catcher;

beforeAll(async () => {
  expect((await runCli('spa-server', ['keygen', '--dir', srvDir])).code).toBe(0);
  expect((await knock('keygen', '--id', 'alice')).code).toBe(0);
  expect((await knock('keygen', '--id', 'bob')).code).toBe(0);
  udp = await udpCatcher();
  mkdirSync(join(home, 'servers'), { recursive: true });
  writeFileSync(join(home, 'servers', 'lab.pub'), readFileSync(join(srvDir, 'server.pub')));
  writeFileSync(
    join(home, 'config'),
    `# spa-knock profiles
Host web1 !web9
    HostName 127.0.0.1
    Key alice
    Access tcp/22
    Access tcp/443,udp/60001
    AllowIP 203.0.113.7

Host web*
    ServerKey servers/lab.pub
    Port ${udp.port}

Host old1
    HostName 127.0.0.1
    Sequence ${udp.port}:udp,${udp.port}:udp
    Delay 10

Host *
    Key bob
    Access tcp/2222
`,
  );
});
afterAll(() => udp?.close());

describe('spa-knock HOST with a profile', () => {
  it("knocks the profile's HostName and Port with its key, access and allow address", async () => {
    const r = await knock('web1', '-v');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `spa-knock: web1: profile from ${join(home, 'config')} (Host on line 2, Host on line 9, Host on line 18)\n` +
        `spa-knock: sent knock web1 (127.0.0.1) udp/${udp.port} as alice: allow 203.0.113.7 tcp/22,tcp/443,udp/60001, 185 bytes\n`,
    );
    const v = verify(await udp.next());
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.client.id).toBe('alice');
      expect(v.allow.text).toBe('203.0.113.7');
      expect(v.access).toEqual([
        { proto: 'tcp', port: 22 },
        { proto: 'tcp', port: 443 },
        { proto: 'udp', port: 60001 },
      ]);
    }
  });

  it('flags win over the file: --key, -A, --allow-ip auto', async () => {
    const r = await knock('web1', '--key', 'bob', '-A', 'tcp/8443', '--allow-ip', 'auto');
    expect(r.code).toBe(0);
    const v = verify(await udp.next());
    expect(v.ok && [v.client.id, v.allow.text, v.access]).toEqual(['bob', '127.0.0.1', [{ proto: 'tcp', port: 8443 }]]);
  });

  it('a negated pattern excludes a host; Host * still applies', async () => {
    // web9: not "Host web1 !web9"; "Host web*" and "Host *" apply, and there is no HostName.
    const r = await knock('web9', '--dry-run', '-4');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('spa-knock: web9: cannot resolve host name (ENOTFOUND)\n');
    const ok = await knock('127.0.0.1', '--dry-run', '--server-key', join(srvDir, 'server.pub'));
    expect(ok.code).toBe(0);
    expect(ok.stdout.split('\n')[0]).toBe('knock 127.0.0.1 (127.0.0.1) udp/62201 as bob: allow 127.0.0.1 tcp/2222, 185 bytes (dry run, not sent)');
  });

  it('-F FILE reads another file; -F none reads none', async () => {
    const other = join(dir, 'other.conf');
    writeFileSync(other, `Host x\n  HostName 127.0.0.1\n  Key alice\n  ServerKey ${join(srvDir, 'server.pub')}\n  Port ${udp.port}\n`);
    const r = await knock('x', '-F', other);
    expect(r.code).toBe(0);
    const v = verify(await udp.next());
    expect(v.ok && v.client.id).toBe('alice');
    const n = await knock('web1', '-F', 'none');
    expect(n.code).toBe(2);
    expect(n.stderr).toBe('spa-knock: no key for web1: use --key ID, or Key (or Sequence) in its profile (see spa-knock keygen --help)\n');
    const missing = await knock('x', '-F', join(dir, 'nope.conf'));
    expect(missing.stderr).toBe(`spa-knock: ${join(dir, 'nope.conf')}: no such file\n`);
    expect(missing.code).toBe(2);
  });

  it('no key for the host but a Sequence: knocks the sequence, and says so with -v', async () => {
    // In the main file Host * gives old1 a Key, so old1 knocks SPA there (--dry-run shows it).
    const spa = await knock('old1', '--dry-run', '--server-key', join(srvDir, 'server.pub'));
    expect(spa.stdout).toMatch(/^knock old1 \(127\.0\.0\.1\) udp\/62201 as bob: /);
    const conf = join(dir, 'seq.conf');
    writeFileSync(conf, `Host old1\n  HostName 127.0.0.1\n  Sequence ${udp.port}:udp,${udp.port}:udp\n  Delay 10\n`);
    const f = await knock('old1', '-v', '-F', conf);
    expect(f.code).toBe(0);
    expect(f.stderr).toBe(
      `spa-knock: old1: profile from ${conf} (Host on line 1)\n` +
        `spa-knock: old1: no SPA key for this host; knocking its Sequence instead\n` +
        `spa-knock: sent knock old1 (127.0.0.1) sequence ${udp.port}:udp,${udp.port}:udp, 10 ms apart\n`,
    );
    expect([...(await udp.next())]).toEqual([0]);
    expect([...(await udp.next())]).toEqual([0]);
  });

  it('a mistake in the file is FILE:LINE: message, exit 2, one line', async () => {
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'Host a\n  Port 1\n  Acess tcp/22\n  Delay x\n');
    const r = await knock('a', '-F', bad);
    expect(r.stderr).toBe(`spa-knock: ${bad}:3: Acess: unknown keyword (did you mean Access?) (and 1 more problem in this file)\n`);
    expect(r.code).toBe(2);
    // The default file too, also for `proxy`.
    const badHome = join(dir, 'badhome');
    mkdirSync(badHome);
    writeFileSync(join(badHome, 'config'), 'Host *\n  AddressFamily ipv5\n');
    const p = await runCli('spa-knock', ['proxy', 'a', '22'], { env: { SPA_KNOCK_HOME: badHome } });
    expect(p.stderr).toBe(`spa-knock: ${join(badHome, 'config')}:2: AddressFamily: expected any, inet or inet6, got "ipv5"\n`);
    expect(p.code).toBe(2);
    expect(p.stdout).toBe('');
  });

  it('AddressFamily inet6 in the profile is overridden by -4', async () => {
    const conf = join(dir, 'af.conf');
    writeFileSync(conf, `Host lh\n  HostName localhost\n  AddressFamily inet6\n  Key alice\n  ServerKey ${join(srvDir, 'server.pub')}\n`);
    // Some /etc/hosts give localhost ::1 as well, some only 127.0.0.1: either IPv6 or nothing.
    const six = await knock('lh', '-F', conf, '--dry-run');
    if (six.code === 0) expect(six.stdout).toMatch(/^knock lh \(::1\) udp\/62201 as alice: allow ::1 tcp\/22/);
    else expect([six.code, six.stderr]).toEqual([2, expect.stringMatching(/^spa-knock: localhost: cannot resolve host name \([A-Z_]+\)\n$/)]);
    const four = await knock('lh', '-F', conf, '--dry-run', '-4');
    expect(four.stdout).toMatch(/^knock lh \(127\.0\.0\.1\) udp\/62201 as alice: allow 127\.0\.0\.1 tcp\/22/);
  });
});
