// What `spa-knock HOST` and `spa-knock proxy HOST PORT` do once their flags are parsed, shared
// by commander's program (client/cli.ts) and the fast path that skips it (client/fast-args.ts).
// Imports only what a plain knock needs; a sequence, --wait and the proxy's connection load
// their modules when used. Shell.
import { SystemError, UserError } from '../src/errors.js';
import { accessText, dedupeAccess, type Access } from '../src/net/access.js';
import type { Address } from '../src/net/address.js';
import type { KnockPort } from '../src/config/types.js';
import { runKnock } from './knock.js';
import { loadProfileConfig } from './config-file.js';
import { lookupProfile } from './profile.js';
import { firstTcp, planKnock, type KnockFlags, type KnockPlan } from './plan.js';
import type { Connected } from './wait.js';
import { natHint, type AllowChoice } from './nat-advice.js';
import type { StunServer } from './stun-servers.js';
import type { ClientIo } from './io.js';

/** How long --wait and proxy try to connect after the knock, unless --timeout says. */
export const DEFAULT_WAIT_MS = 3000;

/** Option values by commander's attribute names (keyDir, serverKey, 4, dryRun...). */
export type KnockOptionValues = Record<string, unknown>;

function flagsOf(o: KnockOptionValues): KnockFlags {
  return {
    key: o['key'] as string | undefined,
    keyDir: o['keyDir'] as string | undefined,
    serverKey: o['serverKey'] as string | undefined,
    port: o['port'] as number | undefined,
    access: dedupeAccess((o['access'] as Access[] | undefined) ?? []),
    allowIp: o['allowIp'] as string | undefined,
    stun: o['stun'] as StunServer[] | 'none' | undefined,
    family: o['4'] ? 4 : o['6'] ? 6 : undefined,
    sequence: o['sequence'] as KnockPort[] | undefined,
    delayMs: o['delay'] as number | undefined,
  };
}

/** Knocks as planned (SPA or sequence); returns the address knocked and, for SPA, how the allow address was chosen. */
export async function knockPlan(plan: KnockPlan, dryRun: boolean, verbose: boolean, io: ClientIo): Promise<{ target: Address; allow?: AllowChoice }> {
  if (plan.kind === 'sequence') {
    const { runSequence } = await import('./sequence.js');
    return { target: (await runSequence(plan, { dryRun, verbose }, io)).target };
  }
  return runKnock({ plan, dryRun, verbose }, io);
}

/** connectWhenOpen, with the NAT hint on a second line when an SPA door stayed shut. */
export async function connectAfterKnock(host: string, k: { target: Address; allow?: AllowChoice }, port: number, timeoutMs: number, io: ClientIo): Promise<Connected> {
  const { connectWhenOpen } = await import('./wait.js');
  try {
    return await connectWhenOpen(host, k.target, port, timeoutMs, io.nowMs);
  } catch (e) {
    const hint = e instanceof SystemError && k.allow ? natHint(k.allow) : undefined;
    if (hint) throw new SystemError((e as SystemError).code, `${(e as SystemError).message}\nspa-knock: ${hint}`, { cause: e });
    throw e;
  }
}

export function timeoutMsOf(o: KnockOptionValues): number {
  return Math.round(((o['timeout'] as number | undefined) ?? DEFAULT_WAIT_MS / 1000) * 1000);
}

export function planFor(host: string, o: KnockOptionValues, io: ClientIo, home: string, defaultAccess: readonly Access[]): KnockPlan {
  const config = loadProfileConfig(o['config'] as string | undefined, home, io.homedir);
  const profile = lookupProfile(config, host);
  if (o['verbose'] && profile.matchedLines.length > 0) {
    const lines = profile.matchedLines.map((l) => (l === 0 ? 'the lines before any Host' : `Host on line ${l}`)).join(', ');
    io.stderr(`spa-knock: ${host}: profile from ${config.file} (${lines})\n`);
  }
  return planKnock(host, flagsOf(o), profile, { home, defaultAccess });
}

/** `spa-knock HOST [flags]`: knock, and with --wait connect to the first tcp access. */
export async function knockCommand(host: string, o: KnockOptionValues, io: ClientIo, home: string): Promise<void> {
  const plan = planFor(host, o, io, home, [{ proto: 'tcp', port: 22 }]);
  const verbose = Boolean(o['verbose']);
  let waitFor: Access | undefined;
  if (o['wait']) {
    waitFor = firstTcp(plan.access);
    if (!waitFor) throw new UserError('usage', `--wait: no tcp access to wait for (give -A tcp/PORT)`);
  }
  const k = await knockPlan(plan, Boolean(o['dryRun']), verbose, io);
  if (waitFor) {
    const c = await connectAfterKnock(host, k, waitFor.port, timeoutMsOf(o), io);
    c.socket.destroy();
    if (verbose) io.stderr(`spa-knock: ${host} (${k.target.text}) ${accessText(waitFor)} answered after ${c.elapsedMs} ms\n`);
  }
}
