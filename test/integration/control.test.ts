// The control socket: one request per connection, close needs an address or all.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { askDaemon, askReload, CONTROL_SOCKET, serveControl } from '../../server/control.js';

const servers: { close(): void }[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));

function serve() {
  const dir = mkdtempSync(join(tmpdir(), 'spa-control-'));
  const calls: (string | undefined)[] = [];
  servers.push(
    serveControl(dir, {
      status: () => [],
      close: async (addr) => (calls.push(addr), []),
      reload: async () => (calls.push('reload'), { ok: false, config: '/x.conf', problems: ['/x.conf:3: bad'] }),
    }),
  );
  return { dir, calls };
}

function raw(dir: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection(join(dir, CONTROL_SOCKET));
    let out = '';
    c.on('connect', () => c.write(text));
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });
}

describe('control socket', () => {
  it('is mode 0600', async () => {
    const { dir } = serve();
    await new Promise((r) => setTimeout(r, 50));
    expect(statSync(join(dir, CONTROL_SOCKET)).mode & 0o777).toBe(0o600);
  });

  it('refuses a close that names neither an address nor all, and canonicalizes addresses', async () => {
    const { dir, calls } = serve();
    expect(await askDaemon(dir, { cmd: 'close' })).toEqual({ ok: false, error: 'close: give a valid address or all' });
    expect(await askDaemon(dir, { cmd: 'close', addr: '1.2.3' })).toEqual({ ok: false, error: 'close: give a valid address or all' });
    expect(await askDaemon(dir, { cmd: 'close', addr: '2001:DB8::0:1' })).toEqual({ ok: true, grants: [] });
    expect(await askDaemon(dir, { cmd: 'close', all: true })).toEqual({ ok: true, grants: [] });
    expect(calls).toEqual(['2001:db8::1', undefined]);
  });

  it('reload: answers with the daemon\'s result once it is done', async () => {
    const { dir, calls } = serve();
    expect(await askReload(dir)).toEqual({ ok: false, config: '/x.conf', problems: ['/x.conf:3: bad'] });
    expect(calls).toEqual(['reload']);
  });

  it('answers one request per connection', async () => {
    const { dir, calls } = serve();
    const out = await raw(dir, '{"cmd":"close","all":true}\n{"cmd":"close","all":true}\n');
    expect(out.trim().split('\n')).toHaveLength(1);
    expect(calls).toEqual([undefined]);
  });

  it('with no daemon, askDaemon says so (undefined) instead of failing', async () => {
    expect(await askDaemon(mkdtempSync(join(tmpdir(), 'spa-control-')), { cmd: 'status' })).toBeUndefined();
    expect(await askReload(mkdtempSync(join(tmpdir(), 'spa-control-')))).toBeUndefined();
  });
});
