// After `nft flush ruleset` the protected port must not stay exposed until a restart: the
// daemon checks its base rules periodically and reinstalls them (issue 12, item 10). Real
// nftables in a network namespace this test makes (and removes, by PID).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRun } from '../helpers/require.js';
import { NetnsLab, nsExec, nsRun } from '../helpers/netns.js';
import { startDaemonIn } from '../helpers/netns-spa.js';
import { makeKeys, type Keys } from '../helpers/server.js';

const enabled = canRun({ root: true, tools: ['ip', 'nft'] });

describe.runIf(enabled)('firewall base rules are checked and reinstalled', () => {
  let keys: Keys;
  let work: string;
  const lab = new NetnsLab();

  beforeAll(async () => {
    keys = await makeKeys(['alice']);
    work = mkdtempSync(join(tmpdir(), 'spa-recheck-'));
  });
  afterAll(async () => {
    await lab.cleanup();
    rmSync(work, { recursive: true, force: true });
    rmSync(keys.dir, { recursive: true, force: true });
  });

  it('nft flush ruleset: the protect rule is back within the check interval, with a log line', async () => {
    const ns = await lab.makeNetns();
    const conf = join(work, 'spa.conf');
    writeFileSync(
      conf,
      `[options]
Interface = lo
SPAPort = 62381
ServerKey = ${keys.serverKey}
StateDir = ${join(work, 'state')}

[ssh]
spa_keys = ${keys.authorized('ssh', ['alice'])}
access = tcp/22
firewall = nftables
protect = yes
`,
    );
    const d = await startDaemonIn(lab, ns, conf);
    const chain = async (): Promise<string> => (await nsExec(ns, ['nft', 'list', 'chain', 'inet', 'spa', 'input'])).stdout;
    expect(await chain()).toMatch(/tcp dport 22 drop/);
    await nsRun(ns, ['nft', 'flush', 'ruleset']);
    expect(await chain()).toBe('');
    const mark = d.lines.length;
    await d.waitFor(d.msg('firewall rules gone (flushed?); reinstalling'), 40_000, mark);
    await d.waitFor(d.msg('firewall rules reinstalled'), 20_000, mark);
    expect(await chain()).toMatch(/tcp dport 22 drop/);
    expect((await d.stop()).code).toBe(0);
  }, 90_000);
});
