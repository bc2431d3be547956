// one_time_sequences files: reading them and planning the update after a use, as knockd 0.8
// does it (knockd.c get_next_one_time_sequence, disable_used_one_time_sequence). Pure. Text in,
// text out; server/one-time-store.ts does the reading and the crash-safe writing.
import { parseSequence, sameSequence } from '../../src/config/sequence.js';
import type { KnockPort } from '../../src/config/types.js';

/** One usable sequence of the file, with its 1-based line. */
export interface OneTimeEntry {
  readonly line: number;
  readonly sequence: readonly KnockPort[];
}

/** A line knockd would skip because it does not parse (reported by `check`, skipped when running). */
export interface OneTimeProblem {
  readonly line: number;
  readonly message: string;
}

export interface OneTimeFile {
  /** Unused sequences in file order; the first is the door's current sequence. */
  readonly entries: readonly OneTimeEntry[];
  readonly problems: readonly OneTimeProblem[];
}

export type OneTimePlan =
  | {
      readonly ok: true;
      /** The whole new file text: the used line with its first character replaced by `#`. */
      readonly text: string;
      /** 1-based line that was commented out. */
      readonly line: number;
      /** The sequence now current (first unused after the update); undefined: none left. */
      readonly next: readonly KnockPort[] | undefined;
      readonly remaining: number;
    }
  | { readonly ok: false; readonly reason: 'not-found' };

/**
 * Reads the file as knockd does: one sequence per line in the `sequence` directive's syntax;
 * lines that are blank or start with `#` after trimming are skipped. knockd also skips a line
 * that does not parse; we skip it too and say so in `problems`. (Stricter than knockd, which
 * reads `x` or an empty item as port 0: such a line is a problem here, not a sequence.)
 */
export function parseOneTimeFile(text: string): OneTimeFile {
  const entries: OneTimeEntry[] = [];
  const problems: OneTimeProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const seq = parseSequence(line);
    if (typeof seq === 'string') problems.push({ line: i + 1, message: `sequence: ${seq}` });
    else entries.push({ line: i + 1, sequence: seq });
  });
  return { entries, problems };
}

/**
 * Plans the file after `used` opened the door: the first usable line equal to `used` gets `#`
 * written over its first character, exactly the byte knockd overwrites (so the man page's
 * advice of a leading space keeps the numbers readable). Nothing else changes, so knockd
 * itself reads the result the same way.
 *
 * Where knockd differs: after a line it cannot parse, knockd's remembered position still
 * points at that bad line, so it writes the `#` there and accepts the same sequence once more;
 * and it compares only the first `seqcount` bytes of the port arrays. Here the used line
 * itself is always the one disabled.
 */
export function planOneTimeUse(text: string, used: readonly KnockPort[]): OneTimePlan {
  const { entries } = parseOneTimeFile(text);
  const at = entries.findIndex((e) => sameSequence(e.sequence, used));
  const hit = entries[at];
  if (!hit) return { ok: false, reason: 'not-found' };
  const lines = text.split('\n');
  const raw = lines[hit.line - 1] ?? '';
  lines[hit.line - 1] = `#${raw.slice(1)}`;
  const rest = entries.filter((_, i) => i !== at);
  return { ok: true, text: lines.join('\n'), line: hit.line, next: rest[0]?.sequence, remaining: rest.length };
}
