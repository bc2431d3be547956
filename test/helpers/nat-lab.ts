// Test helpers for knocking through a NAT: a client namespace behind a router namespace that
// masquerades with nftables, a server namespace on the router's other side, and tcpdump in
// any of them to show what went on the wire. Built on NetnsLab (cleanup by PID and name).
//
// Addresses exist only inside these namespaces; nothing is routed to or from the machine's
// own namespace. 11.203.0.0/24 stands in for a globally routable network (it is one on the
// Internet, which is why spa-knock treats it as such); no packet to it leaves the namespaces.
import type { ChildProcess } from 'node:child_process';
import { addAddress, link, nsRun, type Netns, type NetnsLab } from './netns.js';

export interface NatTopology {
  /** 192.168.77.2/24 behind the router (default route via 192.168.77.1). */
  readonly client: Netns;
  /** 192.168.77.1 inside, 10.203.0.2 and 11.203.0.2 outside; masquerades 192.168.77.0/24. */
  readonly router: Netns;
  /** 10.203.0.1 (the SPA server), 10.203.0.3 (a STUN server's address), 11.203.0.1. */
  readonly server: Netns;
  /** The server's interface (for spa-server's Interface). */
  readonly serverIf: string;
}

export const NAT = {
  clientAddr: '192.168.77.2',
  routerInside: '192.168.77.1',
  routerOutside: '10.203.0.2',
  serverAddr: '10.203.0.1',
  stunAddr: '10.203.0.3',
  /** A "public" network between router and server: a source there needs no STUN. */
  routerPublic: '11.203.0.2',
  serverPublic: '11.203.0.1',
} as const;

export async function makeNatTopology(lab: NetnsLab): Promise<NatTopology> {
  const client = await lab.makeNetns();
  const router = await lab.makeNetns();
  const server = await lab.makeNetns();
  await link(client, 'veth-c', router, 'veth-rc');
  await link(router, 'veth-rs', server, 'veth-s');
  await addAddress(client, 'veth-c', `${NAT.clientAddr}/24`);
  await addAddress(router, 'veth-rc', `${NAT.routerInside}/24`);
  await addAddress(router, 'veth-rs', `${NAT.routerOutside}/24`);
  await addAddress(router, 'veth-rs', `${NAT.routerPublic}/24`);
  for (const a of [NAT.serverAddr, NAT.stunAddr, NAT.serverPublic]) await addAddress(server, 'veth-s', `${a}/24`);
  await nsRun(client, ['ip', 'route', 'add', 'default', 'via', NAT.routerInside]);
  await nsRun(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  // The home router: source NAT for the inside network, and nothing else.
  await nsRun(router, ['nft', 'add', 'table', 'ip', 'home']);
  await nsRun(router, ['nft', 'add', 'chain', 'ip', 'home', 'post', '{', 'type', 'nat', 'hook', 'postrouting', 'priority', 'srcnat', ';', 'policy', 'accept', ';', '}']);
  await nsRun(router, ['nft', 'add', 'rule', 'ip', 'home', 'post', 'ip', 'saddr', '192.168.77.0/24', 'oifname', 'veth-rs', 'masquerade']);
  return { client, router, server, serverIf: 'veth-s' };
}

export interface Tcpdump {
  /** Stops it (SIGINT, by PID) and returns one line per packet seen. */
  stop(): Promise<string[]>;
}

/** tcpdump on iface inside ns with a filter; resolves once it is listening. */
export async function startTcpdump(lab: NetnsLab, ns: Netns, iface: string, filter: string): Promise<Tcpdump> {
  const child: ChildProcess = lab.spawn(ns, ['tcpdump', '-i', iface, '-n', '-l', '--immediate-mode', filter]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${err}`));
    });
  });
  return {
    async stop() {
      // Let the last packets reach it before it stops.
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGINT');
      await exited;
      return out.split('\n').filter((l) => l.trim() !== '');
    },
  };
}
