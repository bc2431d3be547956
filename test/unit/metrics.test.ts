// MetricsFile (issue 13, item 7): the Prometheus text server/metrics.ts produces, and how
// its writer treats the file (atomic, 0644, never through a symlink, failures logged once).
import { PassThrough } from 'node:stream';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Metrics, MetricsWriter, type MetricsSample } from '../../server/metrics.js';
import { createLogger } from '../../server/log.js';
import { REASONS } from '../../src/protocol/reasons.js';
import type { PacketSource } from '../../server/udp-source.js';

type Stats = NonNullable<ReturnType<PacketSource['stats']>>;

/** A capture's counters as the daemon reads them (the real sources are tested elsewhere). */
function source(stats: Stats): PacketSource & { stats: () => Stats; set: (s: Partial<Stats>) => void } {
  let now = stats;
  return { stats: () => now, close: () => undefined, set: (s) => (now = { ...now, ...s }) };
}

const counts = { received: 0, frames: 0, rejected: 0, shed: 0, reopens: 0 };

function sample(o: Partial<MetricsSample> = {}): MetricsSample {
  return { source: undefined, filterMode: undefined, openRules: [], replayEntries: 0, replayCapacity: 1000, fwknopRejected: undefined, ...o };
}

/** The value of one series line (`name{labels} value`), or undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function logger(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out = new PassThrough();
  let buf = '';
  out.on('data', (d: Buffer) => (buf += d.toString()));
  return { log: createLogger({ pretty: false, destination: out }), lines: () => buf.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('Metrics: the text', () => {
  it('counts knocks accepted per door and rejections per reason, every series present from the start', async () => {
    const m = new Metrics(['ssh', 'web']);
    let text = await m.text();
    expect(value(text, 'spa_knocks_accepted_total{door="ssh"}')).toBe(0);
    expect(value(text, 'spa_knocks_accepted_total{door="web"}')).toBe(0);
    for (const r of Object.keys(REASONS)) expect(value(text, `spa_knocks_rejected_total{reason="${r}"}`), r).toBe(0);
    m.accepted('ssh');
    m.accepted('ssh');
    m.rejected('tag.unknown');
    m.rejected('time.stale');
    m.rejected('time.stale');
    text = await m.text();
    expect(value(text, 'spa_knocks_accepted_total{door="ssh"}')).toBe(2);
    expect(value(text, 'spa_knocks_accepted_total{door="web"}')).toBe(0);
    expect(value(text, 'spa_knocks_rejected_total{reason="tag.unknown"}')).toBe(1);
    expect(value(text, 'spa_knocks_rejected_total{reason="time.stale"}')).toBe(2);
    expect(value(text, 'spa_knocks_rejected_total{reason="box.bad"}')).toBe(0);
    expect(text).toContain('# TYPE spa_knocks_accepted_total counter');
    expect(text).toContain('# HELP spa_knocks_rejected_total ');
  });

  it('a door name that needs escaping stays one valid label', async () => {
    const m = new Metrics(['a "quoted" \\ door']);
    m.accepted('a "quoted" \\ door');
    expect(value(await m.text(), 'spa_knocks_accepted_total{door="a \\"quoted\\" \\\\ door"}')).toBe(1);
  });

  it('open rules per door, the kernel-filter mode and the replay guard are read at each update', async () => {
    const m = new Metrics(['ssh', 'web']);
    m.update(sample({ openRules: ['ssh', 'ssh', 'web'], filterMode: 'tags', replayEntries: 17, replayCapacity: 5000 }));
    let text = await m.text();
    expect(value(text, 'spa_open_rules{door="ssh"}')).toBe(2);
    expect(value(text, 'spa_open_rules{door="web"}')).toBe(1);
    expect(value(text, 'spa_kernel_filter_mode{mode="tags"}')).toBe(1);
    expect(value(text, 'spa_kernel_filter_mode{mode="fallback"}')).toBe(0);
    expect(value(text, 'spa_replay_guard_entries')).toBe(17);
    expect(value(text, 'spa_replay_guard_capacity')).toBe(5000);
    expect(text).toContain('# TYPE spa_open_rules gauge');

    m.update(sample({ openRules: [], filterMode: 'fallback', replayEntries: 3 }));
    text = await m.text();
    expect(value(text, 'spa_open_rules{door="ssh"}')).toBe(0);
    expect(value(text, 'spa_open_rules{door="web"}')).toBe(0);
    expect(value(text, 'spa_kernel_filter_mode{mode="tags"}')).toBe(0);
    expect(value(text, 'spa_kernel_filter_mode{mode="fallback"}')).toBe(1);
    expect(value(text, 'spa_replay_guard_entries')).toBe(3);

    m.update(sample()); // UDP socket mode: no kernel filter, no series
    expect(await m.text()).not.toContain('spa_kernel_filter_mode{');
  });

  it('capture counters follow the source, and a reopened source (counting from zero) adds on', async () => {
    const m = new Metrics([]);
    const a = source({ ...counts, received: 10, frames: 9, rejected: 1, shed: 0, reopens: 0, filterSwaps: 2, duplicates: 0 });
    m.update(sample({ source: a }));
    a.set({ received: 25, frames: 20, shed: 4 });
    m.update(sample({ source: a }));
    let text = await m.text();
    expect(value(text, 'spa_capture_frames_received_total')).toBe(25);
    expect(value(text, 'spa_capture_frames_decoded_total')).toBe(20);
    expect(value(text, 'spa_capture_frames_malformed_total')).toBe(1);
    expect(value(text, 'spa_capture_frames_shed_total')).toBe(4);
    expect(value(text, 'spa_capture_filter_swaps_total')).toBe(2);
    expect(text).not.toContain('spa_capture_kernel_drops_total'); // not reported by this source: absent, not 0
    const b = source({ ...counts, received: 3, frames: 3, kernelDrops: 7 });
    m.update(sample({ source: b }));
    text = await m.text();
    expect(value(text, 'spa_capture_frames_received_total')).toBe(28);
    expect(value(text, 'spa_capture_frames_decoded_total')).toBe(23);
    expect(value(text, 'spa_capture_kernel_drops_total')).toBe(7);
    expect(value(text, 'spa_capture_filter_swaps_total')).toBe(2); // kept from the first source
  });

  it('fwknop rejections follow the handler’s running total', async () => {
    const m = new Metrics([]);
    m.update(sample({ fwknopRejected: 4 }));
    m.update(sample({ fwknopRejected: 6 }));
    expect(value(await m.text(), 'spa_fwknop_rejected_total')).toBe(6);
  });

  it('uses a registry of its own: no default process metrics, nothing in the global registry', async () => {
    const text = await new Metrics(['ssh']).text();
    expect(text).not.toContain('process_cpu');
    expect(text).not.toContain('nodejs_');
    const { register } = await import('prom-client');
    expect(await register.metrics()).not.toContain('spa_');
  });
});

describe('MetricsWriter: the file', () => {
  it('writes the text atomically, 0644, with no tmp file left; stop writes the last counts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spa-metrics-'));
    const file = join(dir, 'spa.prom');
    const m = new Metrics(['ssh']);
    const w = new MetricsWriter(m, file, () => sample({ openRules: ['ssh'] }), logger().log);
    await w.write();
    expect(value(readFileSync(file, 'utf8'), 'spa_open_rules{door="ssh"}')).toBe(1);
    expect(lstatSync(file).mode & 0o7777).toBe(0o644);
    m.accepted('ssh');
    await w.stop();
    expect(value(readFileSync(file, 'utf8'), 'spa_knocks_accepted_total{door="ssh"}')).toBe(1);
    expect(readdirSync(dir)).toEqual(['spa.prom']);
    m.accepted('ssh');
    await w.write(); // after stop: nothing more
    expect(value(readFileSync(file, 'utf8'), 'spa_knocks_accepted_total{door="ssh"}')).toBe(1);
  });

  it('never writes through a symlink at the path; says so once, and again when it works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spa-metrics-'));
    const target = join(dir, 'victim');
    writeFileSync(target, 'keep\n');
    const file = join(dir, 'spa.prom');
    symlinkSync(target, file);
    const { log, lines } = logger();
    const w = new MetricsWriter(new Metrics([]), file, () => sample(), log);
    await w.write();
    await w.write();
    expect(readFileSync(target, 'utf8')).toBe('keep\n');
    expect(lstatSync(file).isSymbolicLink()).toBe(true);
    await new Promise((r) => setImmediate(r));
    const warned = lines().filter((l) => l['msg'] === 'metrics file not written');
    expect(warned).toHaveLength(1);
    expect(String(warned[0]?.['error'])).toContain('symbolic link');
    w.reconfigure(join(dir, 'other.prom'), []);
    await w.write();
    await new Promise((r) => setImmediate(r));
    expect(lines().map((l) => l['msg'])).toContain('metrics file written again');
    expect(value(readFileSync(join(dir, 'other.prom'), 'utf8'), 'spa_replay_guard_capacity')).toBe(1000);
  });
});
