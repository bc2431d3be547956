// bench/RESULTS.md's fwknop section (issue 14 item 4), between markers so that
// `npm run bench -- --only fwknop` replaces it alone. One table per measure, a row per run.
// Pure (data in, text out).
import { MIXED_WITHIN_MS, THROUGH_WITHIN_MS, type FwknopBenchResult } from './fwknop-bench.js';
import { fmtInt, fmtMs, summarize } from './util.js';

export const FWKNOP_BEGIN = '<!-- fwknop:begin -->';
export const FWKNOP_END = '<!-- fwknop:end -->';

export interface FwknopReportInput {
  readonly runs: readonly FwknopBenchResult[];
  readonly startedAt: string;
  readonly durationSec: number;
  readonly loadAtStart: string;
  readonly loadAtEnd: string;
  readonly cpus: number;
  readonly fwknopd: string | undefined;
  readonly netns: string | undefined;
  readonly errors: readonly string[];
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

const latencyText = (xs: readonly number[]): string => {
  if (xs.length === 0) return '—';
  const s = summarize(xs);
  return `${fmtMs(s.median)} / ${fmtMs(s.p95)}`;
};

export function renderFwknop(r: FwknopReportInput): string {
  const first = r.runs[0];
  const out: string[] = [
    FWKNOP_BEGIN,
    '## fwknop (issue 14): the same real-client packets through fwknopd and spa-server',
    '',
    `Written by \`npm run bench -- --only fwknop${r.runs.length > 1 ? ` --runs=${r.runs.length}` : ''}\` (bench/fwknop-bench.ts) on ${r.startedAt}, ${r.runs.length} run(s) back to back in ${Math.round(r.durationSec)} s, ` +
      `${r.netns ? `in a network namespace of its own (\`${r.netns}\`)` : 'on the host namespace\'s lo'}. ` +
      `Load average ${r.loadAtStart} at the start, ${r.loadAtEnd} at the end, on ${r.cpus} cores shared with other helpers' test runs: absolute times are inflated and vary between runs; compare the daemons within a run.`,
    '',
    `Method. Keys from \`fwknop --key-gen\` (AES, HMAC SHA-256); packets from the real client (\`fwknop -T -B\`: built and saved, sent in-process from 127.0.0.1), packet i asking for tcp/(20000 + i), so each opens a rule of its own and runs the open command. ` +
      `The daemons: ${r.fwknopd ?? 'fwknopd'} (\`-f -i lo\`, Debian's defaults otherwise) and spa-server reading the same fwknopd.conf and access.conf, with the client's stanza last of 1 or 100 (the other 99 have other keys, so each packet costs an HMAC per stanza before it); ` +
      'the open command (CMD_CYCLE_OPEN) is `stamp FILE` (bench/stamp.c), run by both without a shell. Latency: the send to the command\'s time stamp. ' +
      `Floods: \`bench/flood.c\` (sendmmsg) from 127.0.0.2, unpaced, ${first?.floodWhat ?? '204 random base64 characters'}, for a bounded time; a fresh daemon per row; after 1 s of flood, ${first?.trials ?? 'n'} knocks one at a time, each counted *through* if its command ran within ${THROUGH_WITHIN_MS} ms. ` +
      `The last table is spa-server with one spa.conf serving a spa door, a door with 100 fwknop stanzas (\`fwknop_access\`) and a knockd sequence door (three UDP ports) on one port, under the same flood: per round a spa knock, then the sequence, then a real-client fwknop knock, each sent after the previous one's command ran (or ${THROUGH_WITHIN_MS} ms passed), each door's command stamping a file of its own.`,
    '',
    `### Idle: send to command (median / p95 of ${first?.idleKnocks ?? 'n'} knocks)`,
    '',
  ];
  const subjects = [...new Set(r.runs.flatMap((x) => [...x.idle.map((i) => i.subject), ...x.floods.map((f) => f.subject)]))];
  const idleRows: string[][] = [];
  for (const s of subjects) {
    r.runs.forEach((run, i) => {
      const row = run.idle.find((x) => x.subject === s);
      if (row) idleRows.push([s, String(i + 1), `${row.knocks - row.lost} of ${row.knocks}`, fmtMs(row.latency.median), fmtMs(row.latency.p95), fmtMs(row.latency.max), row.decision ? `${fmtMs(row.decision.median)} / ${fmtMs(row.decision.p95)}` : 'n/a']);
    });
  }
  out.push(table(['daemon', 'run', 'knocks opened', 'median', 'p95', 'max', 'to decision (median / p95)'], idleRows), '');
  out.push(
    'fwknopd reads what libpcap holds and then sleeps PCAP_LOOP_SLEEP (100 ms, Debian\'s default) between reads: its latency is spread over 0-100 ms plus its work, whatever the stanza count. spa-server is woken by the capture at once; 100 stanzas cost it 99 HMACs (SHA-256) more per packet. *To decision* is the send to spa-server\'s `accepted` log line (whole milliseconds: verify, the replay digest made durable, then the log line); the rest to the command is spawning it.',
    '',
    `### Under an unpaced flood of fwknop-shaped garbage: real fwknop knocks through (within ${THROUGH_WITHIN_MS} ms)`,
    '',
  );
  const floodRows: string[][] = [];
  for (const s of subjects) {
    r.runs.forEach((run, i) => {
      const f = run.floods.find((x) => x.subject === s);
      if (f) floodRows.push([s, String(i + 1), `${fmtInt(f.sentPerSec)}/s`, `${f.through} of ${f.trials}`, latencyText(f.latencies), f.cpuPct === undefined ? 'n/a' : `${f.cpuPct.toFixed(0)}%`, f.aliveAfter ? 'yes' : '**no**']);
    });
  }
  out.push(table(['daemon', 'run', 'flood sent', 'knocks through', 'their latency (median / p95)', 'daemon CPU', 'alive after'], floodRows), '');
  out.push(
    `### spa-server, one port for all three kinds (100 fwknop stanzas), same flood: accepted within ${MIXED_WITHIN_MS} ms`,
    '',
  );
  const mixedRows: string[][] = [];
  r.runs.forEach((run, i) => {
    const m = run.mixed;
    if (!m) return;
    for (const k of m.rows) {
      const got = k.latencies.filter((x): x is number => x !== undefined);
      const dec = k.decisions.filter((x): x is number => x !== undefined);
      const within = (xs: readonly number[]): string => `${xs.filter((x) => x <= MIXED_WITHIN_MS).length} of ${k.trials}`;
      mixedRows.push([String(i + 1), `${fmtInt(m.sentPerSec)}/s`, k.kind, `${within(dec)} / ${within(got)}`, `${got.length} of ${k.trials}`, latencyText(dec), latencyText(got), got.length ? fmtMs(Math.max(...got)) : '—', m.cpuPct === undefined ? 'n/a' : `${m.cpuPct.toFixed(0)}%`]);
    }
  });
  out.push(
    table(['run', 'flood sent', 'knock', `within ${MIXED_WITHIN_MS} ms: decided / command ran`, `command within ${THROUGH_WITHIN_MS} ms`, 'to decision (median / p95)', 'to command (median / p95)', 'max to command', 'daemon CPU'], mixedRows),
    '',
    "*Decided*: the send (of the sequence's last datagram) to the daemon's `accepted` / `sequence accepted` log line (whole milliseconds); *command*: to the door's command's time stamp, which adds spawning it (`/bin/sh -c stamp FILE`).",
    '',
  );
  if (r.errors.length > 0) out.push('Rows that failed:', '', ...r.errors.map((e) => `- ${e.split('\n')[0]}`), '');
  out.push(FWKNOP_END, '');
  return out.join('\n');
}

/** Replaces the fwknop section of a RESULTS.md text (or puts it before the footprint section, or at the end). */
export function spliceFwknop(md: string, section: string): string {
  const re = new RegExp(`${FWKNOP_BEGIN}[\\s\\S]*?${FWKNOP_END}\\n?`);
  if (re.test(md)) return md.replace(re, section);
  const foot = md.indexOf('<!-- footprint:begin -->');
  if (foot >= 0) return `${md.slice(0, foot)}${section}\n${md.slice(foot)}`;
  return `${md.trimEnd()}\n\n${section}`;
}

/** The fwknop section of a RESULTS.md text, if it has one. */
export function fwknopSectionOf(md: string): string | undefined {
  return new RegExp(`${FWKNOP_BEGIN}[\\s\\S]*?${FWKNOP_END}\\n?`).exec(md)?.[0];
}
