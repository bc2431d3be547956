// fwknopd.conf end to end with a real firewall: spa-server runs in a server namespace from an
// unchanged fwknopd.conf + access.conf (SPA_FIREWALL left at its default, iptables), a real TCP
// service sits behind a DROP rule, and the REAL fwknop client knocks from a client namespace:
// the connection fails, the knock opens it for the knocking address only, and it closes after
// FW_ACCESS_TIMEOUT. Needs root, iproute2, iptables and fwknop.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetnsLab, nsExec, nsRun, sweepStaleNetns, type TwoHosts } from '../helpers/netns.js';
import { startDaemonIn, startTcpProber, type TcpProber } from '../helpers/netns-spa.js';
import { describeNeeding } from '../helpers/requirements.js';
import type { ServerProcess } from '../helpers/server.js';

const PORT = 2222;
const DROPPED_MS = 500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeNeeding('fwknopd.conf with iptables, the real fwknop client, in namespaces', { root: true, tools: ['ip', 'iptables', 'iptables-restore', 'fwknop'] }, 'root (namespaces, libpcap, firewall rules), iproute2, iptables and Debian\'s fwknop client', () => {
  const lab = new NetnsLab();
  let t: TwoHosts;
  let work: string;
  let prober: TcpProber;
  let srv: ServerProcess;
  let key: string;
  let hmac: string;
  let me: string;
  let other: string;

  beforeAll(async () => {
    await sweepStaleNetns();
    const out = execFileSync('fwknop', ['--key-gen', '--no-rc-file', '--no-save-args'], { encoding: 'utf8' });
    key = /KEY_BASE64:\s*(\S+)/.exec(out)?.[1] as string;
    hmac = /HMAC_KEY_BASE64:\s*(\S+)/.exec(out)?.[1] as string;
    work = mkdtempSync(join(tmpdir(), 'spa-fwknop-e2e-'));
    chmodSync(work, 0o700);
    t = await lab.makeTwoHosts();
    await lab.startEchoServer(t.server, PORT);
    prober = await startTcpProber(lab, t.client);
    const route = await nsRun(t.client, ['ip', '-4', '-o', 'route', 'get', t.serverAddr[4]]);
    me = / src (\S+)/.exec(route)?.[1] as string;
    other = t.clientAddrs[4].find((a) => a !== me) as string;
    writeFileSync(join(work, 'access.conf'), `SOURCE ANY\nKEY_BASE64 ${key}\nHMAC_KEY_BASE64 ${hmac}\nOPEN_PORTS tcp/${PORT}\nFW_ACCESS_TIMEOUT 3\nREQUIRE_SOURCE_ADDRESS Y\n`, { mode: 0o600 });
    writeFileSync(join(work, 'fwknopd.conf'), `PCAP_INTF veth-s;\nPCAP_FILTER udp port 62201;\nACCESS_FILE ${join(work, 'access.conf')};\nFWKNOP_RUN_DIR ${join(work, 'run')};\nSPA_STATE_DIR ${join(work, 'state')};\n`, { mode: 0o600 });
    srv = await startDaemonIn(lab, t.server, join(work, 'fwknopd.conf'));
    // The service is hidden by the administrator's own DROP, after the jump spa-server inserted.
    await nsRun(t.server, ['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(PORT), '-j', 'DROP']);
  }, 60_000);

  afterAll(async () => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('hidden; opened by a real fwknop knock for the knocker only; closed after FW_ACCESS_TIMEOUT', async () => {
    expect(await prober.probe({ host: t.serverAddr[4], port: PORT, from: me }, DROPPED_MS)).toBe('timeout');
    const from = srv.lines.length;
    const r = await nsExec(t.client, ['fwknop', '--no-rc-file', '--no-save-args', '-A', `tcp/${PORT}`, '-a', me, '-D', t.serverAddr[4], '--key-base64-rijndael', key, '--key-base64-hmac', hmac]);
    expect(r.ok, r.stderr).toBe(true);
    const c = await prober.connectWithin({ host: t.serverAddr[4], port: PORT, from: me }, 1000);
    expect(c.result).toBe('connected');
    expect(await srv.waitFor((l) => l['msg'] === 'accepted', 5000, from)).toMatchObject({ door: 'fwknop-1', src: me, allow: me, access: [`tcp/${PORT}`] });
    expect(await prober.probe({ host: t.serverAddr[4], port: PORT, from: other }, DROPPED_MS)).toBe('timeout');
    await srv.waitFor((l) => l['msg'] === 'closed', 10_000, from);
    await sleep(200);
    expect(await prober.probe({ host: t.serverAddr[4], port: PORT, from: me }, DROPPED_MS)).toBe('timeout');
  }, 60_000);
});
