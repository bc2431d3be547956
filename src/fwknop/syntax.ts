// The line syntax shared by fwknopd.conf and access.conf (CONFIG.md §1.1): `NAME value`, the
// value running to the first ';' or the end of the line, trailing blanks removed; '#' or ';'
// in column 1 (we also take an indented '#') starts a comment; a trailing ':' on the name is
// dropped. Pure.

export interface FwknopLine {
  /** 1-based. */
  readonly line: number;
  readonly name: string;
  /** '' when the line has a name only. */
  readonly value: string;
}

export function lexFwknopLines(text: string): FwknopLine[] {
  const out: FwknopLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).replace(/\r$/, '');
    const first = raw[0];
    if (first === undefined || first === '#' || first === ';' || /^\s*(#.*)?$/.test(raw)) continue;
    const m = /^\s*(\S+)\s*([^;\r\n]*)/.exec(raw);
    if (m === null) continue;
    out.push({ line: i + 1, name: (m[1] as string).replace(/:$/, ''), value: (m[2] as string).replace(/\s+$/, '') });
  }
  return out;
}

/** fwknop's booleans: a value starting with Y or y is yes (strncasecmp(val, "Y", 1)). */
export function parseYesNo(value: string): boolean | undefined {
  if (/^(y|yes)$/i.test(value)) return true;
  if (/^(n|no)$/i.test(value)) return false;
  return undefined;
}

/** A decimal count in [min, max]; undefined otherwise. */
export function parseCount(value: string, min: number, max: number): number | undefined {
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}
