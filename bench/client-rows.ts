// Only issue 13's two client rows (npm run bench:client): spa-knock's whole-process time against
// `node -e 0` (median of 20 interleaved runs, as bench/footprint.ts measures it) and spa-knock
// proxy's relay rate (1 GiB, median of 3). Needs no root and no namespace: the knocks go to
// 127.0.0.1 port 9, where nothing listens. Prints the figures; writes nothing. Shell.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBenchKeys, writeKeyFiles } from './bench-keys.js';
import { knockStartup, proxyRate } from './footprint.js';
import { installCleanup, killAllTracked } from './procs.js';
import { median } from './util.js';

const log = (s: string): void => void process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), 'spa-client-rows-'));
  try {
    const files = writeKeyFiles(join(dir, 'keys'), makeBenchKeys(1));
    log(`load average at the start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const st = await knockStartup(files);
    log(`spa-knock start-up, median of 20 interleaved: node -e 0 ${st.baseMs.toFixed(1)} ms, spa-knock ${st.knockMs.toFixed(1)} ms: ${(st.knockMs / st.baseMs).toFixed(2)}x (CPU ${st.baseCpuMs.toFixed(1)} vs ${st.knockCpuMs.toFixed(1)} ms: ${(st.knockCpuMs / st.baseCpuMs).toFixed(2)}x)`);
    const rates: number[] = [];
    for (let i = 0; i < 3; i++) rates.push(await proxyRate(files));
    log(`spa-knock proxy relay, 1 GiB stdin -> TCP on lo: median ${median(rates).toFixed(0)} MB/s (${rates.map((r) => r.toFixed(0)).join(', ')})`);
    log(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await killAllTracked();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:client: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
