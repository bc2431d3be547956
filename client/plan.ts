// What one spa-knock run does for HOST: command-line flags over the host's profile over the
// defaults, giving an SPA knock or a classic sequence (explicit, or the fallback when no key
// is set up for the host but a Sequence is). Pure.
import { join, basename } from 'node:path';
import type { KnockPort } from '../src/config/types.js';
import type { Access } from '../src/net/access.js';
import { parseAddress, type Address, type Family } from '../src/net/address.js';
import { UserError } from '../src/errors.js';
import { DEFAULT_PORT } from '../src/protocol/constants.js';
import { checkKeyId } from '../keys/format.js';
import type { Profile } from './profile.js';
import { DEFAULT_STUN_SERVERS, type StunServer } from './stun-servers.js';

/** Flags as given; undefined / empty: not given. */
export interface KnockFlags {
  readonly key?: string;
  readonly keyDir?: string;
  readonly serverKey?: string;
  readonly port?: number;
  readonly access: readonly Access[];
  /** An address, `auto` or `source`, as given. */
  readonly allowIp?: string;
  /** --stun: servers in order, or none (the word). */
  readonly stun?: readonly StunServer[] | 'none';
  readonly family?: Family;
  readonly sequence?: readonly KnockPort[];
  readonly delayMs?: number;
}

export interface PlanContext {
  /** The client home: where ID.key files are when no --key-dir is given. */
  readonly home: string;
  /** Access asked for when neither flags nor profile say (tcp/22; proxy: tcp/PORT). */
  readonly defaultAccess: readonly Access[];
}

interface Common {
  /** As typed on the command line. */
  readonly host: string;
  /** What to resolve and knock: the profile's HostName, else host. */
  readonly target: string;
  readonly family: Family | undefined;
  /** SPA: what to ask for. Sequence: only for --wait (the first tcp item is waited for). */
  readonly access: readonly Access[];
}

export interface SpaPlan extends Common {
  readonly kind: 'spa';
  /** For messages: the key id, or the key file's name without `.key`. */
  readonly keyId: string;
  readonly keyFile: string;
  /** True when the key was named by id (a missing file then gets the keygen hint). */
  readonly keyById: boolean;
  readonly serverKey: string;
  readonly port: number;
  readonly allow: AllowSpec;
  /** Where `auto` asks for the public address, and who said so (for -v). */
  readonly stun: StunChoice;
}

/**
 * What the knock asks the door to open for. auto: the kernel's source address toward the
 * server, or, behind a NAT, the public address STUN reports (client/scope.ts says when);
 * source: whatever address the datagram arrives from (the door must allow it); address: as given.
 */
export type AllowSpec =
  | { readonly kind: 'auto' }
  | { readonly kind: 'source' }
  | { readonly kind: 'address'; readonly address: Address; readonly from: '--allow-ip' | 'AllowIP' };

export interface StunChoice {
  /** Empty with from 'none': discovery is off. */
  readonly servers: readonly StunServer[];
  readonly from: '--stun' | 'StunServer' | 'built-in' | 'none';
}

export interface SequencePlan extends Common {
  readonly kind: 'sequence';
  readonly sequence: readonly KnockPort[];
  readonly delayMs: number;
  /** 'flag': --sequence; 'fallback': no SPA key for the host, the profile's Sequence. */
  readonly why: 'flag' | 'fallback';
}

export type KnockPlan = SpaPlan | SequencePlan;

/** knock(1)'s default: no pause between the knocks of a sequence. */
export const DEFAULT_DELAY_MS = 0;

export function planKnock(host: string, flags: KnockFlags, profile: Profile, ctx: PlanContext): KnockPlan {
  const family = flags.family ?? (profile.addressFamily === 'inet' ? 4 : profile.addressFamily === 'inet6' ? 6 : undefined);
  const common: Common = {
    host,
    target: profile.hostName ?? host,
    family,
    access: flags.access.length > 0 ? flags.access : (profile.access ?? ctx.defaultAccess),
  };
  const delayMs = flags.delayMs ?? profile.delayMs ?? DEFAULT_DELAY_MS;
  if (flags.sequence !== undefined) return { ...common, kind: 'sequence', sequence: flags.sequence, delayMs, why: 'flag' };

  let key: { id: string; file: string; byId: boolean } | undefined;
  if (flags.key !== undefined) {
    const bad = checkKeyId(flags.key);
    if (bad) throw new UserError('usage', `--key: ${bad}`);
    key = { id: flags.key, file: join(flags.keyDir ?? ctx.home, `${flags.key}.key`), byId: true };
  } else if (profile.key?.kind === 'id') {
    key = { id: profile.key.id, file: join(flags.keyDir ?? ctx.home, `${profile.key.id}.key`), byId: true };
  } else if (profile.key?.kind === 'file') {
    key = { id: basename(profile.key.file).replace(/\.key$/, ''), file: profile.key.file, byId: false };
  }
  if (key === undefined) {
    if (profile.sequence !== undefined) return { ...common, kind: 'sequence', sequence: profile.sequence, delayMs, why: 'fallback' };
    throw new UserError('usage', `no key for ${host}: use --key ID, or Key (or Sequence) in its profile (see spa-knock keygen --help)`);
  }
  const serverKey = flags.serverKey ?? profile.serverKey;
  if (serverKey === undefined) throw new UserError('usage', `no server key for ${host}: use --server-key KEY_OR_FILE`);
  return {
    ...common,
    kind: 'spa',
    keyId: key.id,
    keyFile: key.file,
    keyById: key.byId,
    serverKey,
    port: flags.port ?? profile.port ?? DEFAULT_PORT,
    allow: allowOf(flags.allowIp, profile.allowIp),
    stun: stunOf(flags.stun, profile.stunServers),
  };
}

function allowOf(flag: string | undefined, profile: Profile['allowIp']): AllowSpec {
  if (flag !== undefined) {
    const w = flag.toLowerCase();
    if (w === 'auto' || w === 'source') return { kind: w };
    const address = parseAddress(flag);
    if (!address) throw new UserError('address.parse', `--allow-ip: expected an IPv4 or IPv6 address, auto or source, got ${JSON.stringify(flag)}`);
    return { kind: 'address', address, from: '--allow-ip' };
  }
  if (profile === undefined || profile === 'auto') return { kind: 'auto' };
  if (profile === 'source') return { kind: 'source' };
  return { kind: 'address', address: profile, from: 'AllowIP' };
}

function stunOf(flag: KnockFlags['stun'], profile: Profile['stunServers']): StunChoice {
  const given = flag ?? profile;
  if (given === 'none') return { servers: [], from: 'none' };
  if (given !== undefined && given.length > 0) return { servers: given, from: flag !== undefined ? '--stun' : 'StunServer' };
  return { servers: DEFAULT_STUN_SERVERS, from: 'built-in' };
}

/** The access --wait waits for: the first tcp item. */
export function firstTcp(access: readonly Access[]): Access | undefined {
  return access.find((a) => a.proto === 'tcp');
}
