// Asking STUN servers for the address a NAT gives us: two at a time, the first valid answer
// wins, everything within one time budget. Shell (name lookups, UDP sockets, timers); the
// bytes are client/stun.ts's, the servers client/stun-servers.ts's.
import { lookup } from 'node:dns/promises';
import { createSocket, type Socket } from 'node:dgram';
import { parseAddress, type Address, type Family } from '../src/net/address.js';
import { decodeBindingResponse, encodeBindingRequest, MAX_MESSAGE_BYTES, TRANSACTION_ID_BYTES, type StunMapped } from './stun.js';
import { stunServerText, STUN_PARALLEL, type StunServer } from './stun-servers.js';
import { unusableReflexive } from './scope.js';

export interface DiscoverOptions {
  readonly servers: readonly StunServer[];
  /** The knock's family: the STUN request goes out over the same one. */
  readonly family: Family;
  readonly budgetMs: number;
  random(n: number): Uint8Array;
  nowMs(): number;
  /** A line for -v (without the program name), or nothing. */
  note?(line: string): void;
}

export interface Discovered {
  readonly ok: true;
  readonly server: StunServer;
  /** The address the server's name resolved to, which the request went to. */
  readonly serverAddress: Address;
  readonly mapped: StunMapped;
  readonly elapsedMs: number;
}

export interface NotDiscovered {
  readonly ok: false;
  /** Every server asked, in order: `HOST:PORT (what went wrong)`, `no answer` if nothing came. */
  readonly asked: readonly string[];
}

/** Sends the request again at these times (ms after the first), same transaction (RFC 8489 §6.2.1). */
const RESEND_AT_MS = [250, 600];
/** While no server has answered, the next one in the list joins after this long, and again. */
const STAGGER_MS = 400;

export function discoverPublicAddress(o: DiscoverOptions): Promise<Discovered | NotDiscovered> {
  const start = o.nowMs();
  const queue = [...o.servers];
  const asked: { name: string; why: string }[] = [];
  const report = (): NotDiscovered => ({ ok: false, asked: asked.map((a) => `${a.name} (${a.why})`) });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let running = 0;
  let done = false;

  return new Promise((resolve) => {
    const finish = (r: Discovered | NotDiscovered): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.close();
      sockets.clear();
      resolve(r);
    };
    const later = (ms: number, f: () => void): void => {
      const t = setTimeout(() => {
        timers.delete(t);
        f();
      }, ms);
      timers.add(t);
    };
    const laneEnded = (): void => {
      running--;
      if (done) return;
      if (queue.length > 0) startNext();
      else if (running === 0) finish(report());
    };
    const startNext = (): void => {
      const server = queue.shift();
      if (server === undefined || done) return;
      running++;
      asked.push({ name: stunServerText(server), why: 'no answer' });
      void ask(server).then(laneEnded);
    };
    // While nobody answers, one more server joins every STAGGER_MS: a silent server (a
    // firewall that drops STUN) must not hold its place until the budget is spent.
    const stagger = (): void =>
      later(STAGGER_MS, () => {
        if (queue.length === 0) return;
        startNext();
        stagger();
      });

    /** One server: resolves when it has failed (a success finishes everything instead). */
    const ask = async (server: StunServer): Promise<void> => {
      const name = stunServerText(server);
      const fail = (why: string): void => {
        const entry = asked.find((a) => a.name === name);
        if (entry) entry.why = why;
        o.note?.(`stun: ${name}: ${why}`);
      };
      let address: Address | undefined = parseAddress(server.host);
      if (address === undefined) {
        try {
          const r = await lookup(server.host, { family: o.family });
          address = parseAddress(r.address);
        } catch (e) {
          return fail(`cannot resolve: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
      if (done) return;
      if (address === undefined || address.family !== o.family) return fail(`no IPv${o.family} address`);
      const to = address;
      const txid = o.random(TRANSACTION_ID_BYTES);
      const request = encodeBindingRequest(txid);
      const sock = createSocket(o.family === 4 ? 'udp4' : 'udp6');
      sockets.add(sock);
      let ignored = 0;
      await new Promise<void>((laneDone) => {
        const end = (why: string): void => {
          if (sockets.delete(sock)) sock.close();
          if (!done) fail(why);
          laneDone();
        };
        sock.on('error', (e: NodeJS.ErrnoException) => end(e.code ?? e.message));
        sock.on('close', () => laneDone());
        sock.on('message', (msg) => {
          if (done) return;
          const a = msg.length > MAX_MESSAGE_BYTES ? { ok: false as const, reason: 'length' as const } : decodeBindingResponse(msg, txid);
          if (!a.ok) {
            // Garbage or a stale answer might be followed by the real one; an error answer is final.
            if (a.reason === 'error-response') return end(`answered with an error: ${a.detail ?? ''}`);
            // Said once: a server sending garbage in a loop must not fill the terminal.
            if (ignored++ === 0) o.note?.(`stun: ${name}: ignored an answer (${a.reason}${a.detail ? ` ${a.detail}` : ''})`);
            return;
          }
          if (a.address.family !== o.family) return end(`answered an IPv${a.address.family} address to an IPv${o.family} request`);
          const bad = unusableReflexive(a.address);
          if (bad) return end(`answered ${a.address.text}, which is ${bad}`);
          finish({ ok: true, server, serverAddress: to, mapped: a, elapsedMs: o.nowMs() - start });
        });
        const send = (): void => {
          if (!done && sockets.has(sock)) sock.send(request);
        };
        // connect(): the kernel then delivers only datagrams from this server, and an ICMP
        // "port unreachable" comes back as ECONNREFUSED instead of a silent wait.
        sock.connect(server.port, to.text, () => {
          send();
          for (const ms of RESEND_AT_MS) later(ms, send);
        });
      });
    };

    later(Math.max(0, o.budgetMs), () => finish(report()));
    if (queue.length === 0) return finish(report());
    for (let i = 0; i < STUN_PARALLEL; i++) if (queue.length > 0) startNext();
    stagger();
  });
}
