// The control socket (StateDir/control.sock, mode 0600): `spa-server status`, `close`
// and `reload` ask the running daemon; with no daemon status and close work from the
// journal. One JSON request line, one JSON reply line. Shell.
import { createConnection, createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { accessText } from '../src/net/access.js';
import { parseAddress } from '../src/net/address.js';
import type { Grant } from './core/grants.js';

export const CONTROL_SOCKET = 'control.sock';

export interface GrantView {
  readonly door: string;
  readonly id: string;
  readonly addr: string;
  readonly access: string | undefined;
  readonly expires: string;
}

export type ControlRequest = { readonly cmd: 'status' } | { readonly cmd: 'close'; readonly addr?: string; readonly all?: boolean };
export type ControlReply = { readonly ok: true; readonly grants: GrantView[] } | { readonly ok: false; readonly error: string };

/**
 * What a reload did (SIGHUP and `spa-server reload` share it). Refused: the configuration's
 * problems (FILE:LINE: message each); the daemon runs on as before. Applied: what now runs,
 * and the steps after the switch that failed (firewall setup, sequence ports), if any.
 */
export type ReloadResult =
  | { readonly ok: true; readonly config: string; readonly doors: readonly string[]; readonly keys: number; readonly errors: readonly string[] }
  | { readonly ok: false; readonly config: string; readonly problems: readonly string[] };
export type ReloadReply = ReloadResult | { readonly ok: false; readonly error: string };

export function viewOf(g: Grant): GrantView {
  return { door: g.door, id: g.id, addr: g.addr.text, access: g.access ? accessText(g.access) : undefined, expires: new Date(g.untilMs).toISOString() };
}

export interface ControlHandlers {
  status(): GrantView[];
  /** Closes matching grants and returns what it closed. */
  close(addr: string | undefined): Promise<GrantView[]>;
  /** Reloads the configuration and keys and resolves once that is done. */
  reload(): Promise<ReloadResult>;
}

export function serveControl(stateDir: string, h: ControlHandlers): Server {
  const path = join(stateDir, CONTROL_SOCKET);
  rmSync(path, { force: true }); // a socket left by a killed daemon
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    const onData = (d: string): void => {
      buf += d;
      if (buf.length > 4096) return void conn.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      // One request per connection: later bytes are ignored.
      conn.off('data', onData);
      void answer(buf.slice(0, nl)).then((reply) => conn.end(`${JSON.stringify(reply)}\n`));
    };
    conn.on('data', onData);
    conn.on('error', () => undefined);
  });
  const answer = async (line: string): Promise<ControlReply | ReloadReply> => {
    try {
      const req = JSON.parse(line) as ControlRequest | { readonly cmd: 'reload' };
      if (req.cmd === 'reload') return await h.reload();
      if (req.cmd === 'status') return { ok: true, grants: h.status() };
      if (req.cmd === 'close') {
        // Closing everything must be asked for by name; an address must be one.
        if (req.all === true) return { ok: true, grants: await h.close(undefined) };
        const addr = typeof req.addr === 'string' ? parseAddress(req.addr) : undefined;
        if (!addr) return { ok: false, error: 'close: give a valid address or all' };
        return { ok: true, grants: await h.close(addr.text) };
      }
      return { ok: false, error: 'unknown request' };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  };
  const oldMask = process.umask(0o177);
  server.listen(path);
  process.umask(oldMask);
  return server;
}

/** Asks the daemon; undefined when no daemon listens (then the caller uses the journal). */
export function askDaemon(stateDir: string, req: ControlRequest, timeoutMs = 15_000): Promise<ControlReply | undefined> {
  return ask<ControlReply>(stateDir, req, timeoutMs);
}

/**
 * Asks the daemon to reload and waits for it (the firewall setup after a reload may take a
 * while on a busy machine); undefined when no daemon listens.
 */
export function askReload(stateDir: string, timeoutMs = 60_000): Promise<ReloadReply | undefined> {
  return ask<ReloadReply>(stateDir, { cmd: 'reload' }, timeoutMs);
}

function ask<R extends { readonly ok: boolean }>(stateDir: string, req: object, timeoutMs: number): Promise<R | { ok: false; error: string } | undefined> {
  return new Promise((resolve) => {
    const conn = createConnection(join(stateDir, CONTROL_SOCKET));
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      resolve({ ok: false, error: 'the daemon did not answer in time' });
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (d: string) => (buf += d));
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as R);
      } catch {
        resolve({ ok: false, error: 'bad reply from the daemon' });
      }
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? undefined : { ok: false, error: e.message });
    });
  });
}
