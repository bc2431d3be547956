// The v1 test vectors: regenerated and compared, then each case checked by the verifier.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/bytes.js';
import { parseAddress, type Address } from '../../src/net/address.js';
import { parseAccess } from '../../src/net/access.js';
import { REASONS } from '../../src/protocol/reasons.js';
import { encodeKnock, verifyDatagram } from '../../src/protocol/datagram.js';
import { authorizeClient, clientSecretKey, serverSecretKey } from '../../src/protocol/keys.js';
import { ReplayGuard, nonceKeyOf } from '../../src/protocol/replay.js';
import { TagTable } from '../../src/protocol/tag.js';
import { generateVectors, type VectorCase, type VectorFile } from '../vectors/generate.js';

const FILE = new URL('../vectors/v1.json', import.meta.url);

export function verifyCase(c: VectorCase): ReturnType<typeof verifyDatagram> {
  const server = serverSecretKey(fromHex(c.server_secret));
  const client = clientSecretKey(fromHex(c.client_secret));
  const authorized = authorizeClient(server, 'alice', client)!;
  const tags = new TagTable(c.window);
  tags.setClients([authorized], c.now);
  const replay = new ReplayGuard(c.window, 1000);
  for (const n of c.seen_nonces) replay.add(nonceKeyOf(fromHex(n), 0, 24), c.time);
  return verifyDatagram({ server, tags, replay, windowSec: c.window }, fromHex(c.datagram), c.now);
}

describe('test vectors v1', () => {
  const generated = generateVectors();
  if (process.env['UPDATE_VECTORS'] === '1') writeFileSync(FILE, `${JSON.stringify(generated, null, 2)}\n`);
  const stored = JSON.parse(readFileSync(FILE, 'utf8')) as VectorFile;

  it('the stored file is exactly what the generator makes', () => {
    expect(stored).toEqual(generated);
  });

  it('covers every pre-policy rejection reason', () => {
    const expected = new Set(stored.cases.map((c) => c.expect));
    const verifierReasons = Object.keys(REASONS).filter((r) => !r.startsWith('policy.') && r !== 'replay.full');
    for (const r of verifierReasons) expect(expected, r).toContain(r);
  });

  it.each(stored.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = verifyCase(c);
    if (c.expect === 'ok') {
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.allow.text).toBe(c.allow);
      expect(r.access.map((a) => `${a.proto}/${a.port}`)).toEqual(c.access);
      expect(r.timeSec).toBe(c.time);
      expect(r.client.id).toBe('alice');
      // Encoding the same inputs gives the same bytes: the vector pins the encoder too.
      const again = encodeKnock({
        client: clientSecretKey(fromHex(c.client_secret)),
        server: serverSecretKey(fromHex(c.server_secret)),
        allow: parseAddress(c.allow) as Address,
        access: c.access.map((a) => parseAccess(a)),
        timeSec: c.time,
        nonce: fromHex(c.nonce),
      });
      expect(toHex(again)).toBe(c.datagram);
    } else {
      expect(r).toMatchObject({ ok: false, reason: c.expect });
    }
  });
});
