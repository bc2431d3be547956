// Choosing the allow address of a knock: as given, `source`, or auto — the kernel's source
// address toward the server, or behind a NAT the address STUN servers see (spa-knock(1),
// "KNOCKING FROM BEHIND NAT"). Shell: a socket to ask the kernel, STUN over UDP.
import { UserError } from '../src/errors.js';
import { neverAClient, type Address } from '../src/net/address.js';
import { autoNote, type AllowChoice } from './nat-advice.js';
import type { SpaPlan } from './plan.js';
import { localAddressFor } from './resolve.js';
import { autoDecision } from './scope.js';
import { stunServerText, STUN_BUDGET_MS } from './stun-servers.js';

export interface AllowIo {
  stderr(s: string): void;
  nowMs(): number;
  random(n: number): Uint8Array;
}

export async function chooseAllow(plan: SpaPlan, target: Address, verbose: boolean, io: AllowIo): Promise<AllowChoice> {
  const a = plan.allow;
  if (a.kind === 'address') {
    const never = neverAClient(a.address);
    if (never) throw new UserError('address.parse', `${a.from}: ${a.address.text} is ${never}, which is never a client's address`);
    return { how: 'given', address: a.address, from: a.from };
  }
  if (a.kind === 'source') return { how: 'source' };

  const source = await localAddressFor(target, plan.port);
  const decision = autoDecision(source, target);
  const stunOff = plan.stun.from === 'none';
  const names = plan.stun.servers.map(stunServerText);
  const note = (line: string): void => {
    if (verbose) io.stderr(`spa-knock: ${line}\n`);
  };
  // Said only where a NAT is plausible: a global or loopback source needs no explaining.
  if (decision.stun || decision.why === 'same-range') note(autoNote(decision, source, target, stunOff, names));
  if (!decision.stun || stunOff) return { how: 'kernel', address: source, decision, stunOff };

  // STUN (and node:dns for the servers' names) is loaded only behind a NAT.
  const { discoverPublicAddress } = await import('./discover.js');
  const r = await discoverPublicAddress({ servers: plan.stun.servers, family: target.family, budgetMs: STUN_BUDGET_MS, random: io.random, nowMs: io.nowMs, note });
  if (!r.ok) {
    throw new UserError(
      'address.discover',
      `${plan.host}: ${source.text} is ${decision.range.name} and no STUN server told its public address within ${STUN_BUDGET_MS / 1000} s (asked ${r.asked.join(', ')}); nothing sent: pass --allow-ip ADDRESS or --allow-ip source`,
    );
  }
  const server = stunServerText(r.server);
  const via = r.serverAddress.text === r.server.host ? '' : ` (${r.serverAddress.text})`;
  const m = r.mapped;
  note(`stun: ${server}${via} answered in ${r.elapsedMs} ms: ${m.address.text} port ${m.port} (${m.from.toUpperCase()}${m.software ? `, software "${m.software}"` : ''})`);
  return { how: 'stun', address: m.address, source, server };
}
