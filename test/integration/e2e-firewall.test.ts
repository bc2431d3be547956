// Issue 6 end to end: the built spa-server runs inside a server namespace (libpcap on its
// veth), a door with `firewall = nftables|iptables` and `protect = yes` hides a real TCP
// service, and the built spa-knock knocks from a client namespace. Needs root, iproute2,
// nft and iptables; under CI=true a missing one fails the run (test/helpers/requirements.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, type TestContext } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { NetnsLab, nsExec, nsRun, sweepStaleNetns, type Target, type TwoHosts } from '../helpers/netns.js';
import { startDaemonIn, startTcpProber, type TcpProber } from '../helpers/netns-spa.js';
import { describeNeeding } from '../helpers/requirements.js';
import { makeKeys, until, type Keys, type ServerProcess } from '../helpers/server.js';

const PORT = 2222;
/** How long a connection attempt must stay unanswered to count as dropped (veth RTT is µs). */
const DROPPED_MS = 500;
/**
 * How long after the knock a connection may take to succeed. Issue 6 asked for 1 s; that is
 * the bench's to show (knock to command, ~5 ms). Here the bound is generous, so a machine with
 * both cores busy passes: ufw alone, a Python program, took over 1 s per command under load.
 */
const OPEN_DEADLINE_MS = 8000;
const TOOLS = ['ip', 'nft', 'iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'ufw'];

type Fw = 'nftables' | 'iptables' | 'ufw';
type Family = 4 | 6;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Knock-to-connect times, printed at the end (the numbers issue 6 asks about). */
const timings: string[] = [];

interface Setup {
  readonly lab: NetnsLab;
  readonly t: TwoHosts;
  readonly conf: string;
  readonly prober: TcpProber;
  /** By family: [0] the address the client's kernel uses towards the server (spa-knock's allow address), [1] the third address. */
  readonly addrs: Record<Family, readonly [string, string]>;
  to(from: string, family: Family): Target;
  start(env?: string[]): Promise<ServerProcess>;
  /** Runs spa-knock in the client namespace; resolves when it has sent (exit 0). */
  knock(family: Family): Promise<void>;
  /** Runs `spa-server ARGS --config CONF` in the server namespace. */
  server(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

let keys: Keys;

async function setup(ctx: TestContext, door: { firewall: Fw; cmdTimeoutSec: number; inOptions?: boolean; protect?: boolean }): Promise<Setup> {
  const lab = new NetnsLab();
  const work = mkdtempSync(join(tmpdir(), 'spa-e2e-fw-'));
  ctx.onTestFinished(async () => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  });
  const t = await lab.makeTwoHosts();
  await lab.startEchoServer(t.server, PORT);
  if (door.firewall === 'ufw') {
    // ufw, enabled in the server namespace only, on its own copy of /etc/ufw (bound over the
    // machine's by `ip netns exec` for every process started there, the daemon included).
    await lab.privateEtc(t.server, 'ufw');
    await nsRun(t.server, ['ufw', '--force', 'enable']);
  }
  const prober = await startTcpProber(lab, t.client);

  // spa-knock allows the source address the kernel picks towards the server, and the
  // server only accepts a knock whose source is that address: ask the kernel which it is.
  const addrs = {} as Record<Family, readonly [string, string]>;
  for (const f of [4, 6] as const) {
    const route = await nsRun(t.client, ['ip', `-${f}`, '-o', 'route', 'get', t.serverAddr[f]]);
    const src = / src (\S+)/.exec(route)?.[1];
    const [a, b] = t.clientAddrs[f];
    if (src !== a && src !== b) throw new Error(`unexpected source address in: ${route}`);
    addrs[f] = src === a ? [a, b] : [b, a];
  }

  const conf = join(work, 'spa.conf');
  writeFileSync(
    conf,
    `[options]
Interface = veth-s
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}
${door.inOptions ? `Firewall = ${door.firewall}\n` : ''}
[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/${PORT}
cmd_timeout = ${door.cmdTimeoutSec}
protect = ${door.protect === false ? 'no' : 'yes'}
${door.inOptions ? '' : `firewall = ${door.firewall}\n`}`,
  );
  return {
    lab,
    t,
    conf,
    prober,
    addrs,
    to: (from, f) => ({ host: t.serverAddr[f], port: PORT, from }),
    start: (env = []) => startDaemonIn(lab, t.server, conf, env),
    async knock(f) {
      const r = await nsExec(t.client, [process.execPath, BIN['spa-knock'], t.serverAddr[f], '--key', 'alice', '--key-dir', keys.clientHome, '--server-key', keys.serverPub, '-A', `tcp/${PORT}`]);
      if (!r.ok) throw new Error(`spa-knock: exit ${r.code}: ${r.stderr}`);
    },
    server: (args) => nsExec(t.server, [process.execPath, BIN['spa-server'], ...args, '--config', conf], 20_000),
  };
}

/** Knocks and waits for the first connection from the knocking address; records the time. */
async function knockAndConnect(s: Setup, f: Family, label: string): Promise<void> {
  const sent = Date.now();
  await s.knock(f);
  const knockMs = Date.now() - sent;
  const c = await s.prober.connectWithin(s.to(s.addrs[f][0], f), OPEN_DEADLINE_MS);
  timings.push(`${label}: spa-knock ran ${knockMs} ms; first connection ${c.ms} ms after it exited (${c.attempts} attempt${c.attempts === 1 ? '' : 's'})`);
  expect(c.result, `${label}: no connection within ${OPEN_DEADLINE_MS} ms of the knock`).toBe('connected');
}

function untilOf(line: Record<string, unknown>): number {
  const ms = Date.parse(String(line['until']));
  if (!Number.isFinite(ms)) throw new Error(`no until in ${JSON.stringify(line)}`);
  return ms;
}

describeNeeding('spa-server with real firewalls, end to end in network namespaces', { root: true, tools: TOOLS }, 'root (namespaces, libpcap, firewall rules) and iproute2, nftables, iptables', () => {
  beforeAll(async () => {
    for (const bin of Object.values(BIN)) if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
    await sweepStaleNetns();
    keys = await makeKeys(['alice']);
  });
  afterAll(() => {
    if (keys) rmSync(keys.dir, { recursive: true, force: true });
    if (timings.length > 0) process.stdout.write(`knock to connection:\n  ${timings.join('\n  ')}\n`);
  });

  const scenarios: [Fw, Family][] = [['nftables', 4], ['nftables', 6], ['iptables', 4], ['iptables', 6], ['ufw', 4]];
  for (const [fw, f] of scenarios) {
    it(`${fw}, IPv${f}: hidden, opened for the knocker only, closed after cmd_timeout; the held connection lives on`, async (ctx) => {
      // ufw's commands are slow under load: an opening long enough to be seen open before it closes.
      const s = await setup(ctx, { firewall: fw, cmdTimeoutSec: fw === 'ufw' ? 10 : 3 });
      const [knocker, third] = s.addrs[f];
      const daemon = await s.start();
      expect(await s.prober.probe(s.to(knocker, f), DROPPED_MS)).toBe('timeout');

      await knockAndConnect(s, f, `${fw} IPv${f}`);
      const accepted = await daemon.waitFor(daemon.msg('accepted'));
      expect(accepted).toMatchObject({ door: 'ssh', id: 'alice', src: knocker, allow: knocker, access: [`tcp/${PORT}`] });
      expect(await s.prober.probe(s.to(third, f), DROPPED_MS)).toBe('timeout');
      const held = await s.lab.holdTcp(s.t.client, s.to(knocker, f));
      expect(await held.exchange('while open')).toBe('while open');

      const untilMs = untilOf(accepted);
      const closed = await daemon.waitFor(daemon.msg('closed'), untilMs - Date.now() + 3000);
      expect(closed).toMatchObject({ door: 'ssh', id: 'alice', addr: knocker, access: `tcp/${PORT}` });
      expect(await s.prober.probe(s.to(knocker, f), DROPPED_MS)).toBe('timeout');
      expect(await held.exchange('after close')).toBe('after close');
      held.close();
      if (fw === 'ufw') expect((await nsRun(s.t.server, ['ufw', 'status'])).split('\n').filter((l) => l.includes('spa:ssh'))).toEqual([]);
      expect(errors(daemon)).toEqual([]);

      // A clean stop keeps protect's drop (fail closed: no window while spa restarts).
      expect((await daemon.stop()).code).toBe(0);
      expect(await s.prober.probe(s.to(third, f), DROPPED_MS)).toBe('timeout');
    }, 90_000);
  }

  for (const fw of ['nftables', 'iptables'] as const) {
    it(`${fw}: kill -9 while open (IPv4 and IPv6), restart after the timeout: the openings are gone`, async (ctx) => {
      const s = await setup(ctx, { firewall: fw, cmdTimeoutSec: 3 });
      const daemon = await s.start();
      await knockAndConnect(s, 4, `${fw} IPv4 (before kill -9)`);
      await knockAndConnect(s, 6, `${fw} IPv6 (before kill -9)`);
      await until(() => daemon.lines.filter((l) => l['msg'] === 'accepted').length === 2, 5000, 'two accepted knocks');
      const untilMs = Math.max(...daemon.lines.filter((l) => l['msg'] === 'accepted').map(untilOf));
      expect((await daemon.stop('SIGKILL')).signal).toBe('SIGKILL');

      const journal = await s.server(['status', '--json']);
      expect(journal.stderr).toBe('spa-server: no daemon running; showing the journal\n');
      expect(journal.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { addr: string }).addr).sort()).toEqual([s.addrs[4][0], s.addrs[6][0]].sort());

      await sleep(untilMs + 500 - Date.now());
      for (const f of [4, 6] as const) {
        // nftables: the kernel ended access with no daemon; iptables rules have no timeout.
        expect(await s.prober.probe(s.to(s.addrs[f][0], f), DROPPED_MS), `IPv${f} with the daemon dead`).toBe(fw === 'nftables' ? 'timeout' : 'connected');
      }

      const again = await s.start();
      expect(again.lines.filter((l) => l['msg'] === 'closing rule that expired while down').map((l) => l['addr']).sort()).toEqual([s.addrs[4][0], s.addrs[6][0]].sort());
      expect(again.lines.filter((l) => l['msg'] === 'closed')).toHaveLength(2);
      expect(again.lines.find((l) => l['msg'] === 'started')).toMatchObject({ reopened: 0 });
      for (const f of [4, 6] as const) expect(await s.prober.probe(s.to(s.addrs[f][0], f), DROPPED_MS), `IPv${f} after the restart`).toBe('timeout');
      expect(await s.server(['status'])).toMatchObject({ code: 0, stdout: 'no open rules\n', stderr: '' });
      expect(errors(again)).toEqual([]);
      expect((await again.stop()).code).toBe(0);
    });

    it(`${fw}: status and close ADDRESS, with the daemon running, after kill -9, and after a "reboot"`, async (ctx) => {
      // [options] Firewall as the door's default for one backend, the door's own for the other.
      const s = await setup(ctx, { firewall: fw, cmdTimeoutSec: 30, inOptions: fw === 'nftables' });
      const [knocker] = s.addrs[4];
      const daemon = await s.start();
      await knockAndConnect(s, 4, `${fw} IPv4 (status/close)`);
      const live = await s.server(['status']);
      expect(live).toMatchObject({ code: 0, stderr: '' });
      expect(live.stdout).toMatch(new RegExp(`^DOOR +ID +ADDRESS +ACCESS +EXPIRES\\nssh +alice +${escape(knocker)} +tcp/${PORT} +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`));
      expect(await s.server(['close', knocker])).toMatchObject({ code: 0, stdout: 'closed 1 rule\n', stderr: '' });
      expect(await s.prober.probe(s.to(knocker, 4), DROPPED_MS)).toBe('timeout');
      expect(await s.server(['status'])).toMatchObject({ code: 0, stdout: 'no open rules\n' });

      // Knock again, then the daemon dies: status and close work from the journal.
      await knockAndConnect(s, 4, `${fw} IPv4 (again, before kill -9)`);
      await daemon.stop('SIGKILL');
      const dead = await s.server(['status']);
      expect(dead.stderr).toBe('spa-server: no daemon running; showing the journal\n');
      expect(dead.stdout).toMatch(new RegExp(`\\nssh +alice +${escape(knocker)} +tcp/${PORT} `));
      expect(await s.prober.probe(s.to(knocker, 4), DROPPED_MS)).toBe('connected');
      expect(await s.server(['close', knocker])).toMatchObject({ code: 0, stdout: 'closed 1 rule (no daemon running; from the journal)\n', stderr: '' });
      expect(await s.prober.probe(s.to(knocker, 4), DROPPED_MS)).toBe('timeout');
      expect((await s.server(['status'])).stdout).toBe('no open rules\n');

      // A "reboot" while open: spa's rules are gone, its journal is not. close --all still
      // empties the journal, and the next start has nothing to reopen.
      const before = await s.start();
      await knockAndConnect(s, 6, `${fw} IPv6 (before the "reboot")`);
      await before.stop('SIGKILL');
      await removeSpaRules(s, fw);
      expect(await s.server(['close', '--all'])).toMatchObject({ code: 0, stdout: 'closed 1 rule (no daemon running; from the journal)\n', stderr: '' });
      const after = await s.start();
      expect(after.lines.find((l) => l['msg'] === 'started')).toMatchObject({ reopened: 0 });
      expect(await s.prober.probe(s.to(s.addrs[6][0], 6), DROPPED_MS)).toBe('timeout');
      expect(errors(after)).toEqual([]);
      expect((await after.stop()).code).toBe(0);
    });
  }

  it('SIGHUP applies a changed protect to the firewall at once (nftables)', async (ctx) => {
    const s = await setup(ctx, { firewall: 'nftables', cmdTimeoutSec: 30, protect: false });
    const [knocker] = s.addrs[4];
    const daemon = await s.start();
    // protect = no and no rule of the administrator's: the service answers everyone.
    expect(await s.prober.probe(s.to(knocker, 4), 2000)).toBe('connected');
    writeFileSync(s.conf, readFileSync(s.conf, 'utf8').replace('protect = no', 'protect = yes'));
    const mark = daemon.lines.length;
    daemon.child.kill('SIGHUP');
    expect(await daemon.waitFor(daemon.msg('firewall set up'), 10_000, mark)).toMatchObject({ backend: 'nftables', doors: ['ssh'], protect: [`tcp/${PORT}`] });
    expect(await s.prober.probe(s.to(knocker, 4), DROPPED_MS)).toBe('timeout');
    await knockAndConnect(s, 4, 'nftables IPv4 (after SIGHUP)');
    expect(errors(daemon)).toEqual([]);
    expect((await daemon.stop()).code).toBe(0);
  });

  it('nftables missing, protect = yes: run exits 1 with one line instead of running with the port exposed', async (ctx) => {
    const s = await setup(ctx, { firewall: 'nftables', cmdTimeoutSec: 30 });
    const child = s.lab.spawn(s.t.server, ['env', 'PATH=/nonexistent', process.execPath, BIN['spa-server'], 'run', '--config', s.conf]);
    const stderr: Buffer[] = [];
    child.stderr?.on('data', (d: Buffer) => stderr.push(d));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(Buffer.concat(stderr).toString()).toMatch(/^spa-server: firewall nftables: cannot install protect = yes for \[ssh\]: nft .*: nft: command not found\n$/);
  });

  it('nftables missing: setup and the open fail with the tool\'s message, nothing is journaled as open', async (ctx) => {
    const s = await setup(ctx, { firewall: 'nftables', cmdTimeoutSec: 30, protect: false });
    const daemon = await s.start(['PATH=/nonexistent']);
    expect(daemon.lines.find((l) => l['msg'] === 'firewall setup failed')).toMatchObject({ backend: 'nftables', error: expect.stringMatching(/^nft .*: nft: command not found$/) });
    await s.knock(4);
    expect(await daemon.waitFor(daemon.msg('open failed'))).toMatchObject({ addr: s.addrs[4][0], error: expect.stringMatching(/nft: command not found$/) });
    expect(await s.server(['status'])).toMatchObject({ code: 0, stdout: 'no open rules\n', stderr: '' });
    expect((await daemon.stop()).code).toBe(0);
    expect(await s.server(['status'])).toMatchObject({ code: 0, stdout: 'no open rules\n' });
  });
});

function escape(s: string): string {
  return s.replace(/[.]/g, '\\.');
}

/** Log lines at level error or above. */
function errors(p: ServerProcess): Record<string, unknown>[] {
  return p.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50);
}

/** What a reboot does to spa's rules (none of them is persistent). */
async function removeSpaRules(s: Setup, fw: Fw): Promise<void> {
  if (fw === 'nftables') {
    await nsRun(s.t.server, ['nft', 'delete table inet spa']);
    return;
  }
  for (const bin of ['iptables', 'ip6tables']) {
    await nsRun(s.t.server, [bin, '-D', 'INPUT', '-j', 'SPA']);
    for (const chain of ['SPA', 'SPA-PROTECT']) {
      await nsRun(s.t.server, [bin, '-F', chain]);
      await nsRun(s.t.server, [bin, '-X', chain]);
    }
  }
}
