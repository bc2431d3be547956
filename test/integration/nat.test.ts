// Issue 15 end to end: knocking from behind a NAT. A client namespace (192.168.77.2) behind
// a router namespace that masquerades with nftables, a server namespace with the built
// spa-server (libpcap on its veth) guarding a TCP service with an nftables door
// (protect = yes), and Debian's coturn (turnserver --stun-only) on the server's side.
// Needs root, iproute2, nft, turnserver and tcpdump; under CI=true a missing one fails.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, type TestContext } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { startCoturnIn, type Coturn } from '../helpers/coturn.js';
import { makeNatTopology, NAT, startTcpdump, type NatTopology } from '../helpers/nat-lab.js';
import { NetnsLab, nsExec, sweepStaleNetns, type Netns } from '../helpers/netns.js';
import { startDaemonIn, startTcpProber, type TcpProber } from '../helpers/netns-spa.js';
import { describeNeeding } from '../helpers/requirements.js';
import { makeKeys, type Keys, type ServerProcess } from '../helpers/server.js';

const PORT = 2222;
const SPA_PORT = 62201;
/** How long a connection attempt must stay unanswered to count as dropped (veth RTT is µs). */
const DROPPED_MS = 500;
const TOOLS = ['ip', 'nft', 'turnserver', 'tcpdump'];

let keys: Keys;

interface Setup {
  readonly lab: NetnsLab;
  readonly t: NatTopology;
  readonly work: string;
  readonly coturn: Coturn;
  /** --stun value for the coturn on the server's side. */
  readonly stun: string;
  readonly daemon: ServerProcess;
  readonly prober: TcpProber;
  /** spa-knock ARGS inside ns (default: the client), with the test's keys. */
  knock(args: readonly string[], ns?: Netns): Promise<{ code: number; stdout: string; stderr: string }>;
}

async function setup(ctx: TestContext, door: { allowSource?: boolean } = {}): Promise<Setup> {
  const lab = new NetnsLab();
  const work = mkdtempSync(join(tmpdir(), 'spa-nat-'));
  ctx.onTestFinished(async () => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  });
  const t = await makeNatTopology(lab);
  await lab.startEchoServer(t.server, PORT);
  const coturn = await startCoturnIn(lab, t.server, [NAT.stunAddr], work);
  const conf = join(work, 'spa.conf');
  writeFileSync(
    conf,
    `[options]
Interface = ${t.serverIf}
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/${PORT}
cmd_timeout = 30
protect = yes
firewall = nftables
${door.allowSource === undefined ? '' : `spa_allow_source = ${door.allowSource ? 'yes' : 'no'}\n`}`,
  );
  const daemon = await startDaemonIn(lab, t.server, conf);
  const prober = await startTcpProber(lab, t.client);
  return {
    lab,
    t,
    work,
    coturn,
    stun: `${NAT.stunAddr}:${coturn.port}`,
    daemon,
    prober,
    async knock(args, ns = t.client) {
      const r = await nsExec(ns, [process.execPath, BIN['spa-knock'], ...args, '--key', 'alice', '--key-dir', keys.clientHome, '--server-key', keys.serverPub, '-F', 'none'], 20_000);
      return { code: r.ok ? 0 : r.code, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

const to = (host: string, from: string): { host: string; port: number; from: string } => ({ host, port: PORT, from });

describeNeeding('knocking from behind a NAT, in network namespaces', { root: true, tools: TOOLS }, 'root (namespaces, libpcap, nftables) and iproute2, nftables, coturn, tcpdump', () => {
  beforeAll(async () => {
    for (const bin of Object.values(BIN)) if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
    await sweepStaleNetns();
    keys = await makeKeys(['alice']);
  });
  afterAll(() => {
    if (keys) rmSync(keys.dir, { recursive: true, force: true });
  });

  it('the default knock asks STUN, opens the door for the router\'s address, and a connection through the NAT gets in', async (ctx) => {
    const s = await setup(ctx);
    expect(await s.prober.probe(to(NAT.serverAddr, NAT.clientAddr), DROPPED_MS)).toBe('timeout');

    const r = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--stun', s.stun, '--wait', '-v']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`spa-knock: ${NAT.clientAddr}, the source address toward ${NAT.serverAddr}, is private (RFC 1918): asking STUN for the address a NAT gives it (${s.stun})`);
    expect(lines[1]).toMatch(new RegExp(`^spa-knock: stun: ${s.stun} answered in \\d+ ms: ${NAT.routerOutside} port \\d+ \\(XOR-MAPPED-ADDRESS, software "Coturn-[^"]*"\\)$`));
    expect(lines[2]).toBe(`spa-knock: sent knock ${NAT.serverAddr} (${NAT.serverAddr}) udp/${SPA_PORT} as alice: allow ${NAT.routerOutside} tcp/${PORT}, 185 bytes`);
    expect(lines[3]).toMatch(new RegExp(`^spa-knock: ${NAT.serverAddr} \\(${NAT.serverAddr}\\) tcp/${PORT} answered after \\d+ ms$`));

    const accepted = await s.daemon.waitFor(s.daemon.msg('accepted'));
    expect(accepted).toMatchObject({ door: 'ssh', id: 'alice', src: NAT.routerOutside, allow: NAT.routerOutside, access: [`tcp/${PORT}`] });
    const held = await s.lab.holdTcp(s.t.client, to(NAT.serverAddr, NAT.clientAddr));
    expect(await held.exchange('through the NAT')).toBe('through the NAT');
    held.close();
    // The router's other address was not opened.
    expect(await s.prober.probe(to(NAT.serverPublic, NAT.clientAddr), DROPPED_MS)).toBe('timeout');
  });

  it('proxy takes StunServer from the profile and relays through the NAT', async (ctx) => {
    const s = await setup(ctx);
    const conf = join(s.work, 'client.conf');
    writeFileSync(conf, `Host nat-server\n  HostName ${NAT.serverAddr}\n  Key alice\n  ServerKey ${keys.serverPub}\n  StunServer ${s.stun}\n`);
    const r = await nsExec(s.t.client, ['sh', '-c', `printf 'hello\\n' | ${process.execPath} ${BIN['spa-knock']} proxy nat-server ${PORT} --key-dir ${keys.clientHome} -F ${conf}`], 20_000);
    expect([r.ok, r.stdout, r.stderr]).toEqual([true, 'hello\n', '']);
    expect(await s.daemon.waitFor(s.daemon.msg('accepted'))).toMatchObject({ src: NAT.routerOutside, allow: NAT.routerOutside });
  });

  it('STUN unreachable: one line, exit 2, and nothing goes to the server', async (ctx) => {
    const s = await setup(ctx);
    const dump = await startTcpdump(s.lab, s.t.server, s.t.serverIf, `udp dst port ${SPA_PORT}`);
    // A closed port (ICMP port unreachable back through the NAT) and an address nobody has.
    const closed = `${NAT.stunAddr}:${s.coturn.port + 1}`;
    const r = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--stun', closed, '--stun', '10.203.0.9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `spa-knock: ${NAT.serverAddr}: ${NAT.clientAddr} is private (RFC 1918) and no STUN server told its public address within 1 s (asked ${closed} (ECONNREFUSED), 10.203.0.9:3478 (no answer)); nothing sent: pass --allow-ip ADDRESS or --allow-ip source\n`,
    );
    expect(await dump.stop()).toEqual([]);
    expect(s.daemon.lines.filter((l) => l['msg'] === 'rejected' || l['msg'] === 'accepted')).toEqual([]);
  });

  it('StunServer none signs the private address: refused (policy.address), and --wait and proxy end with the NAT hint; a given private address warns', async (ctx) => {
    const s = await setup(ctx);
    const r = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--stun', 'none', '--wait', '--timeout', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `spa-knock: ${NAT.serverAddr}: ${NAT.serverAddr} port ${PORT}: no connection within 1 s (no answer)\n` +
        `spa-knock: hint: the knock asked to open for ${NAT.clientAddr}, the source address (STUN off); if a NAT changes it on the way (the usual cause), use --allow-ip source or --allow-ip ADDRESS (the public one); else see the server's log\n`,
    );
    expect(await s.daemon.waitFor(s.daemon.msg('rejected'))).toMatchObject({ reason: 'policy.address', src: NAT.routerOutside, id: 'alice' });

    // proxy says the same (its stdout stays empty: ssh reads it).
    const p = await s.knock(['proxy', NAT.serverAddr, String(PORT), '--stun', 'none', '--timeout', '1']);
    expect([p.code, p.stdout]).toEqual([1, '']);
    expect(p.stderr.split('\n')[1]).toMatch(/^spa-knock: hint: the knock asked to open for 192\.168\.77\.2, the source address \(STUN off\); /);

    const w = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--allow-ip', NAT.clientAddr, '--dry-run']);
    expect(w.code).toBe(0);
    expect(w.stderr).toBe(
      `spa-knock: warning: --allow-ip ${NAT.clientAddr} is private (RFC 1918) and ${NAT.serverAddr} is not on that network: through a NAT the server sees another address and refuses; use auto (the default) or source\n`,
    );
  });

  it('--allow-ip source opens for the router\'s address with spa_allow_source = yes, asking no STUN', async (ctx) => {
    const s = await setup(ctx, { allowSource: true });
    const dump = await startTcpdump(s.lab, s.t.client, 'veth-c', `udp and not dst port ${SPA_PORT}`);
    const r = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--allow-ip', 'source', '--stun', s.stun, '--wait', '-v']);
    expect(await dump.stop()).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n')[0]).toBe(`spa-knock: sent knock ${NAT.serverAddr} (${NAT.serverAddr}) udp/${SPA_PORT} as alice: allow source tcp/${PORT}, 185 bytes`);
    expect(await s.daemon.waitFor(s.daemon.msg('accepted'))).toMatchObject({ door: 'ssh', src: NAT.routerOutside, allow: NAT.routerOutside });
    expect(await s.prober.probe(to(NAT.serverAddr, NAT.clientAddr), DROPPED_MS)).toBe('connected');
  });

  it('--allow-ip source is refused (policy.source) by a door without spa_allow_source, and --wait says what the door needs', async (ctx) => {
    const s = await setup(ctx);
    const r = await s.knock([NAT.serverAddr, '-A', `tcp/${PORT}`, '--allow-ip', 'source', '--wait', '--timeout', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `spa-knock: ${NAT.serverAddr}: ${NAT.serverAddr} port ${PORT}: no connection within 1 s (no answer)\n` +
        `spa-knock: hint: --allow-ip source needs spa_allow_source = yes in the server's door; else see the server's log (key, clock, access)\n`,
    );
    expect(await s.daemon.waitFor(s.daemon.msg('rejected'))).toMatchObject({ reason: 'policy.source', src: NAT.routerOutside, id: 'alice' });
  });

  it('a client with a public address (no NAT) sends no STUN request at all', async (ctx) => {
    const s = await setup(ctx);
    // The router itself knocks the server's "public" address from its own public one.
    const dump = await startTcpdump(s.lab, s.t.router, 'any', `udp and not dst port ${SPA_PORT}`);
    const r = await s.knock([NAT.serverPublic, '-A', `tcp/${PORT}`, '--stun', s.stun, '--wait', '-v'], s.t.router);
    expect(await dump.stop()).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/stun/i);
    expect(await s.daemon.waitFor(s.daemon.msg('accepted'))).toMatchObject({ src: NAT.routerPublic, allow: NAT.routerPublic });
  });
});
