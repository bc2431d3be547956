// spa-knock --named-config NAME: a fwknop 2.6 packet from a stanza of ~/.fwknoprc, sent to
// fwknopd (or to spa-server reading fwknopd.conf). The stanza gives SPA_SERVER,
// SPA_SERVER_PORT, ACCESS, ALLOW_IP (an address or `source`), KEY(_BASE64),
// HMAC_KEY(_BASE64), HMAC_DIGEST_TYPE, DIGEST_TYPE, ENCRYPTION_MODE, FW_TIMEOUT, SPOOF_USER;
// flags override it as fwknop's do. Shell.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { SystemError, UserError } from '../src/errors.js';
import { accessText, checkAccessSpec, type Access } from '../src/net/access.js';
import { encodeFwknop, randValueFrom } from '../src/fwknop/encode.js';
import { parseIPv4 } from '../src/fwknop/ipv4.js';
import { isValidUsername, MSG } from '../src/fwknop/message.js';
import { parseFwknoprc } from '../src/fwknop/rc.js';
import { checkSecretMode } from '../keys/files.js';
import { resolveHost, sendDatagram } from './resolve.js';
import type { ClientIo } from './io.js';
import { runProgram } from '../src/cli.js';

/** libfko's protocol version for fwknop 2.6.x clients (FKO_PROTOCOL_VERSION). */
const FKO_PROTOCOL_VERSION = '3.0.0';
/** fwknop's CLI cuts a username to 29 characters (MAX_USERNAME_LEN 30). */
const MAX_USERNAME_CHARS = 29;

export const NAMED_CONFIG_FLAG = '--named-config';

function accessList(s: string): Access[] {
  return s.split(',').map((item) => {
    const a = checkAccessSpec(item);
    if (typeof a === 'string') throw new InvalidArgumentError(a);
    return a;
  });
}

function port(s: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new InvalidArgumentError(`expected a port 1-65535, got ${JSON.stringify(s)}`);
  return Number(s);
}

function seconds(s: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65_536) throw new InvalidArgumentError(`expected seconds 0-65536, got ${JSON.stringify(s)}`);
  return Number(s);
}

function usernameOf(io: ClientIo, rc: string | undefined): string {
  const candidates = [rc, io.env['SPOOF_USER'], io.env['LOGNAME'], io.env['USER']];
  for (const c of candidates) {
    const u = c?.slice(0, MAX_USERNAME_CHARS);
    if (u !== undefined && isValidUsername(u)) return u;
  }
  return 'NO_USER';
}

interface Flags {
  namedConfig: string;
  rcFile?: string;
  destination?: string;
  serverPort?: number;
  access?: Access[];
  allowIp?: string;
  sourceIp?: boolean;
  fwTimeout?: number;
  test?: boolean;
  verbose?: boolean;
}

async function knock(o: Flags, io: ClientIo): Promise<void> {
  const file = o.rcFile ?? join(io.homedir, '.fwknoprc');
  checkSecretMode(file);
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError('file.missing', code === 'ENOENT' ? 'no such file' : `cannot read: ${code ?? (e as Error).message}`, { file });
  }
  const r = parseFwknoprc(file, text, o.namedConfig);
  if (!r.ok) {
    const [first, ...rest] = r.errors;
    for (const p of rest) io.stderr(`spa-knock: ${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}\n`);
    throw new UserError('config', first?.message ?? 'bad stanza', { file, line: first?.line });
  }
  const st = r.stanza;
  const access = o.access ?? st.access;
  const allowText = o.sourceIp ? 'source' : (o.allowIp ?? st.allowIp);
  if (allowText !== 'source' && parseIPv4(allowText) === undefined) throw new UserError('usage', `-a: expected an IPv4 address (fwknop is IPv4-only), got ${JSON.stringify(allowText)}`);
  const allow = allowText === 'source' ? '0.0.0.0' : allowText;
  const host = o.destination ?? st.server;
  const dstPort = o.serverPort ?? st.port;
  const timeout = o.fwTimeout ?? st.clientTimeoutSec;
  const target = await resolveHost(host, 4);
  const wire = encodeFwknop(
    {
      rand: randValueFrom(io.random(16)),
      username: usernameOf(io, st.username),
      timestamp: Math.floor(io.nowMs() / 1000),
      version: FKO_PROTOCOL_VERSION,
      messageType: timeout > 0 ? MSG.clientTimeoutAccess : MSG.access,
      message: `${allow},${access.map(accessText).join(',')}`,
      clientTimeoutSec: timeout,
      digest: st.digestType,
    },
    { key: st.key, hmacKey: st.hmacKey, hmacType: st.hmacType, mode: st.mode },
    io.random(8),
  );
  const summary = `fwknop knock [${st.name}] ${host} (${target.text}) udp/${dstPort}: allow ${allowText} ${access.map(accessText).join(',')}${timeout > 0 ? ` for ${timeout} s` : ''}, HMAC ${st.hmacType}, ${wire.length} bytes`;
  if (o.test) {
    io.stdout(`${summary} (test, not sent)\n${wire}\n`);
    return;
  }
  try {
    await sendDatagram(target, dstPort, Buffer.from(wire, 'latin1'));
  } catch (e) {
    throw new SystemError('net', `${host}: cannot send knock: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  if (o.verbose) io.stderr(`spa-knock: sent ${summary}\n`);
}

/** True when argv asks for a fwknoprc stanza (client/cli.ts routes it here). */

export function runFwknopKnock(argv: readonly string[], io: ClientIo): Promise<number> {
  const program = new Command('spa-knock')
    .description('send a fwknop 2.6 SPA packet made from a stanza of ~/.fwknoprc (for fwknopd, or spa-server reading fwknopd.conf)')
    .helpOption('-h, --help', 'show this help and exit')
    .requiredOption(`${NAMED_CONFIG_FLAG} <name>`, 'the stanza [NAME] of the rc file (fwknop -n NAME)')
    .option('--rc-file <file>', 'the rc file (default: ~/.fwknoprc); must not be readable by group or others')
    .option('-D, --destination <host>', "the server (default: the stanza's SPA_SERVER)")
    .option('-p, --server-port <n>', "UDP port (default: the stanza's SPA_SERVER_PORT, else 62201)", port)
    .option('-A, --access <list>', "proto/port,... to open (default: the stanza's ACCESS)", accessList)
    .option('-a, --allow-ip <ip>', "IPv4 address to open for (default: the stanza's ALLOW_IP)")
    .option('-s, --source-ip', 'let the server open for the address the packet comes from (allow IP 0.0.0.0)')
    .option('-f, --fw-timeout <seconds>', "ask for this long (capped by the server's MAX_FW_TIMEOUT; default: the stanza's FW_TIMEOUT)", seconds)
    .option('-T, --test', 'print the packet and send nothing')
    .option('-v, --verbose', 'say what was sent, on stderr')
    .action((o: Flags) => knock(o, io));
  return runProgram(program, argv, io, 'spa-knock');
}
