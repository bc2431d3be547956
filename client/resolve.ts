// Name resolution and the allow address: which address to knock and which address
// the server should open for. Shell (DNS, sockets), but sends nothing anywhere.
import { createSocket, type Socket } from 'node:dgram';
import { UserError } from '../src/errors.js';
import { isIPv4, isIPv6, parseAddress, type Address, type Family } from '../src/net/address.js';

export async function resolveHost(host: string, family: Family | undefined): Promise<Address> {
  const literal = parseAddress(host.replace(/^\[(.*)\]$/, '$1'));
  if (literal) {
    if (family !== undefined && literal.family !== family) {
      throw new UserError('host.resolve', `${host}: is an IPv${literal.family} address but -${family} was given`);
    }
    return literal;
  }
  // Node prints DEP0118 (three lines) for lookup(''): refuse it here, in one line.
  if (host.trim() === '') throw new UserError('host.resolve', 'empty host name: give a host name or an address');
  try {
    // Loaded only for a name: node:dns costs start-up an address does not need.
    const { lookup } = await import('node:dns/promises');
    const r = await lookup(host, { family: family ?? 0, verbatim: true });
    const a = parseAddress(r.address);
    if (!a) throw new Error(`unusable address ${r.address}`);
    return a;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UserError('host.resolve', `${host}: cannot resolve host name (${code})`);
  }
}

/**
 * The local address the kernel would use to reach `target`: connect() on a UDP socket
 * picks a route and a source address without sending any packet.
 */
export async function localAddressFor(target: Address, port: number): Promise<Address> {
  const sock = udpSocket(target);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(port, target.text, () => resolve());
    });
    const a = parseAddress(sock.address().address);
    if (!a) throw new Error('no local address');
    return a;
  } catch (e) {
    throw new UserError('host.resolve', `${target.text}: no route to host, cannot choose an allow address (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give --allow-ip`);
  } finally {
    sock.close();
  }
}

/**
 * A UDP socket toward an address (never a name). Its lookup passes addresses through: dgram's
 * default, dns.lookup, would load node:dns for nothing.
 */
function udpSocket(target: Address): Socket {
  return createSocket({ type: target.family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
}

function literalLookup(host: string, _family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  if (isIPv4(host)) callback(null, host, 4);
  else if (isIPv6(host)) callback(null, host, 6);
  else callback(Object.assign(new Error(`${host}: not an address`), { code: 'EINVAL' }), '', 0);
}

export async function sendDatagram(target: Address, port: number, datagram: Uint8Array): Promise<void> {
  const sock = udpSocket(target);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.send(datagram, port, target.text, (err) => (err ? reject(err) : resolve()));
    });
  } finally {
    sock.close();
  }
}
