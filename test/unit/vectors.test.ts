// The v1 test vectors, both ways: each datagram is rebuilt from its case's inputs and must be
// the stored bytes, and each is verified (checks 1-11, then the policy) to the stated result.
// Key strings and authorized-keys files are checked to their stated reasons too.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { concat, fromHex, toHex } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { parseAccess } from '../../src/net/access.js';
import { allowText } from '../../src/protocol/body.js';
import { VERSION } from '../../src/protocol/constants.js';
import { REASONS } from '../../src/protocol/reasons.js';
import { sealDatagram, verifyDatagram } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, clientSharedKeys, serverSecretKey } from '../../src/protocol/keys.js';
import { sealBox } from '../../src/protocol/primitives.js';
import { ReplayGuard } from '../../src/protocol/replay.js';
import { computeTag, TagTable } from '../../src/protocol/tag.js';
import { chooseDoor } from '../../server/core/policy.js';
import { checkKeyString } from '../../keys/format.js';
import { parseAuthorizedKeys } from '../../keys/authorized.js';
import { generateVectors, type Mutation, type VectorCase, type VectorFile } from '../vectors/generate.js';

const FILE = new URL('../vectors/v1.json', import.meta.url);
const latin1 = (hex: string): string => Buffer.from(hex, 'hex').toString('latin1');

/** The datagram of a case, made from its inputs alone (§2, §4). */
export function buildCase(c: VectorCase): Uint8Array {
  const server = serverSecretKey(fromHex(c.server_secret));
  const client = clientSecretKey(fromHex(c.client_secret));
  const signer = clientSecretKey(fromHex(c.signer_secret));
  const shared = clientSharedKeys(client, server)!;
  const tag = computeTag(shared.tagKey, c.tag_epoch);
  const nonce = fromHex(c.nonce);
  const body = fromHex(c.body);
  const d = c.signature
    ? concat(Uint8Array.of(VERSION), tag, nonce, sealBox(concat(fromHex(c.signature), body), nonce, shared.boxKey))
    : sealDatagram({ signKey: signer.signKey, boxKey: shared.boxKey, fingerprint: server.fingerprint, tag, nonce, body });
  return mutate(d, c.mutation);
}

function mutate(d: Uint8Array, m: Mutation | undefined): Uint8Array {
  if (!m) return d;
  if (m.op === 'truncate') return d.subarray(0, m.length);
  if (m.op === 'append') return concat(d, fromHex(m.hex));
  const out = Uint8Array.from(d);
  fromHex(m.hex).forEach((x, i) => (out[m.offset + i]! ^= x));
  return out;
}

/** Verifies a case's datagram as a receiver holding alice's key and the case's guard and door. */
export function verifyCase(c: VectorCase): { result: string; openFor?: string } {
  const server = serverSecretKey(fromHex(c.server_secret));
  const alice = authorizeClient(server, 'alice', clientSecretKey(fromHex(c.client_secret)))!;
  const tags = new TagTable(c.window);
  tags.setClients([alice], c.now);
  const replay = new ReplayGuard(c.window);
  for (const e of c.guard.entries) replay.add(latin1(e.client), latin1(e.nonce), e.time);
  for (const w of c.guard.watermarks) replay.raiseWatermark(latin1(w.client), w.time);
  const v = verifyDatagram({ server, tags, replay, windowSec: c.window }, fromHex(c.datagram), c.now);
  if (!v.ok) return { result: v.reason };
  const door = { name: 'door', keyIds: new Set(c.door.keys), access: c.door.access.map((a) => parseAccess(a)), allowNat: c.door.allow_nat, allowSource: c.door.allow_source };
  expect(allowText(v.allow)).toBe(c.allow);
  expect(v.access.map((a) => `${a.proto}/${a.port}`)).toEqual(c.access);
  expect(v.timeSec).toBe(c.time);
  const p = chooseDoor([door], v.client.id, v.access, v.allow, parseAddress(c.src) as Address);
  return p.ok ? { result: 'ok', openFor: p.addr.text } : { result: p.reason };
}

describe('test vectors v1', () => {
  const generated = generateVectors();
  if (process.env['UPDATE_VECTORS'] === '1') writeFileSync(FILE, `${JSON.stringify(generated, null, 2)}\n`);
  const stored = JSON.parse(readFileSync(FILE, 'utf8')) as VectorFile;

  it('the stored file is exactly what the generator makes', () => {
    expect(stored).toEqual(generated);
  });

  it('covers every rejection reason of §5 and of the policy', () => {
    const expected = new Set(stored.cases.map((c) => c.expect));
    for (const r of Object.keys(REASONS).filter((r) => r !== 'replay.full')) expect(expected, r).toContain(r);
  });

  it.each(stored.cases.map((c) => [c.name, c] as const))('%s: rebuilt from its inputs', (_name, c) => {
    expect(toHex(buildCase(c))).toBe(c.datagram);
  });

  it.each(stored.cases.map((c) => [c.name, c] as const))('%s: verified', (_name, c) => {
    const r = verifyCase(c);
    expect(r.result).toBe(c.expect);
    if (c.expect === 'ok') expect(r.openFor).toBe(c.open_for);
  });

  it.each(stored.key_cases.map((k) => [k.name, k] as const))('key string %s', (_name, k) => {
    const r = checkKeyString(k.text, k.type);
    expect('reason' in r ? r.reason : 'ok').toBe(k.expect);
  });

  it.each(stored.keys_file_cases.map((k) => [k.name, k] as const))('authorized-keys file %s', (_name, k) => {
    const r = parseAuthorizedKeys(k.text, 'keys');
    expect(r.problems.map((p) => ({ line: p.line, reason: p.reason }))).toEqual(k.refused);
  });
});
