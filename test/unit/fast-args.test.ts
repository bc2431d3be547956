// client/fast-args.ts reads `spa-knock HOST [flags]` without commander. Wherever it accepts a
// line, commander's program (client/cli.ts) must read the same host and option values; where
// it is unsure it must decline (then commander reads the line, and reports any mistake).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCli, type ClientIo } from '../../client/cli.js';
import { fastKnockArgs } from '../../client/fast-args.js';

function io(): ClientIo {
  return { stdout: () => undefined, stderr: () => undefined, env: { SPA_KNOCK_HOME: '/nonexistent/spa-knock' }, homedir: '/nonexistent', nowMs: () => 0, random: (n) => new Uint8Array(n) };
}

/** What commander gives the knock action, or undefined when it does not get there. */
async function commanderReads(argv: readonly string[]): Promise<{ host: string; options: Record<string, unknown> } | undefined> {
  let got: { host: string; options: Record<string, unknown> } | undefined;
  await runCli(argv, io(), async (host, options) => {
    got = { host, options: { ...options } };
  });
  return got;
}

const strip = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

let accepted = 0;

async function agree(argv: readonly string[]): Promise<void> {
  const fast = fastKnockArgs(argv);
  if (fast === undefined) return;
  accepted++;
  const c = await commanderReads(argv);
  expect(c, `commander did not knock for ${JSON.stringify(argv)}`).toBeDefined();
  expect(fast.host).toBe(c!.host);
  expect(strip(fast.options)).toEqual(strip(c!.options));
}

describe('fastKnockArgs', () => {
  it.each([
    [['web1']],
    [['127.0.0.1', '--key', 'alice', '--server-key', '/k/server.pub', '--port', '9']],
    [['--key=alice', 'web1', '-p', '62201', '-A', 'tcp/22', '-A', 'udp/60001', '-A', 'tcp/22']],
    [['web1', '-4', '-v', '-w', '-t', '2.5', '--stun', 'stun.example.org:3478', '--stun', 'x.example']],
    [['web1', '--sequence', '7000,8000:udp', '-d', '100', '-n', '-F', 'none', '--key-dir', '/k', '-a', 'source']],
    [['web1', '--key', '--verbose']],
    [['web1', '--stun', 'none', '-6', '--allow-ip', '2001:db8::1', '-k', 'a', '-k', 'b']],
  ])('%j: accepted, as commander reads it', async (argv) => {
    expect(fastKnockArgs(argv)).toBeDefined();
    await agree(argv);
  });

  it.each([
    [[]],
    [['proxy', 'web1', '22']],
    [['keygen', '--id', 'a']],
    [['help']],
    [['--help']],
    [['web1', '-h']],
    [['-V']],
    [['web1', 'extra']],
    [['web1', '--bogus']],
    [['web1', '-vw']],
    [['web1', '-kalice']],
    [['web1', '--port', '0']],
    [['web1', '--port']],
    [['web1', '-4', '-6']],
    [['web1', '-n', '-w']],
    [['web1', '--allow-ip', '1.2.3']],
    [['web1', '--stun', 'none', '--stun', 'x.example']],
    [['web1', '--verbose=yes']],
    [['--', 'web1']],
    [['-5']],
    [['web1', '--named-config', 'x']],
  ])('%j: left to commander', (argv) => {
    expect(fastKnockArgs(argv)).toBeUndefined();
  });

  it('agrees with commander on lines made of its own words', async () => {
    const word = fc.constantFrom(
      'web1', '127.0.0.1', 'proxy', 'help', '--', '-', '',
      '--key', '-k', 'alice', '--key=bob', '--key-dir', '/k', '-s', '--server-key', 'spa1-server-pub:x',
      '-p', '--port', '9', '0', '70000', '--port=22', '-A', '--access', 'tcp/22', 'udp/1', 'bad', '-a', '--allow-ip', 'auto', 'source', '1.2.3.4',
      '--stun', 'none', 'stun.example.org', '-4', '-6', '--sequence', '7000,8000:udp', '-d', '--delay', '100', '-t', '--timeout', '1.5',
      '-v', '--verbose', '-w', '--wait', '-n', '--dry-run', '-F', '--config', '-h', '-V', '-vn', '-x',
    );
    accepted = 0;
    await fc.assert(fc.asyncProperty(fc.array(word, { maxLength: 8 }), agree), { numRuns: 1500 });
    // Enough of the lines are ones it takes for the comparison to mean something.
    expect(accepted).toBeGreaterThan(100);
  });
});
