// What the daemon trusts on disk, as OpenSSH's StrictModes: a file or directory it reads
// or writes (config, keys, spa_keys, one-time files, StateDir) and every directory above
// it must be owned by root or by the daemon's own user, and writable by no one else. A
// sticky directory (/tmp) is a safe parent for an entry its owner owns. Shell (lstat).
import { lstatSync, realpathSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

export type TrustKind = 'file' | 'dir';

/** Owners the daemon trusts: root and itself. */
export function trustedUids(): ReadonlySet<number> {
  const me = process.getuid?.() ?? 0;
  return new Set([0, me]);
}

function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** What is wrong with one path's own status (type, owner, mode), or undefined. */
function checkEntry(path: string, st: Stats, want: TrustKind | 'parent', uids: ReadonlySet<number>): string | undefined {
  if (want === 'file' && !st.isFile()) return `${path}: not a regular file`;
  if (want !== 'file' && !st.isDirectory()) return `${path}: not a directory`;
  if (!uids.has(st.uid)) return `${path}: owned by uid ${st.uid}, not by root${uids.size > 1 ? ` or uid ${[...uids].find((u) => u !== 0)}` : ''}`;
  const sticky = (st.mode & 0o1000) !== 0;
  // A sticky directory lets others add entries but not rename or remove ours: safe as a parent.
  if ((st.mode & 0o022) !== 0 && !(want === 'parent' && sticky)) {
    const who = [(st.mode & 0o020) !== 0 ? 'group' : '', (st.mode & 0o002) !== 0 ? 'others' : ''].filter(Boolean).join(' and ');
    return `${path}: writable by ${who} (mode ${modeText(st.mode)}); run: chmod go-w ${path}`;
  }
  return undefined;
}

/**
 * Why `path` cannot be trusted, as one message naming the path and what is wrong, or
 * undefined when it can (or does not exist: the caller reports a missing file its own way,
 * and a missing StateDir is created). The path itself must not be a symbolic link when
 * `noLink` (StateDir); otherwise a link is followed and both the link's directory and the
 * target's chain are checked.
 */
export function checkTrustedPath(path: string, kind: TrustKind, opts: { noLink?: boolean; uids?: ReadonlySet<number> } = {}): string | undefined {
  const uids = opts.uids ?? trustedUids();
  const abs = resolve(path);
  let own: Stats;
  try {
    own = lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return checkParents(dirname(abs), uids);
    return `${path}: cannot stat: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (own.isSymbolicLink()) {
    if (opts.noLink) return `${path}: is a symbolic link; give the real path`;
    const linkDir = checkParents(dirname(abs), uids);
    if (linkDir) return linkDir;
    let real: string;
    try {
      real = realpathSync(abs);
    } catch (e) {
      return `${path}: cannot resolve: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    const target = checkTrustedPath(real, kind, { noLink: false, uids });
    return target === undefined ? undefined : `${path} -> ${target}`;
  }
  return checkEntry(path, own, kind, uids) ?? checkParents(dirname(abs), uids);
}

/** Every directory from `dir` up to /, each checked as a parent (symlinked ancestors resolved). */
function checkParents(dir: string, uids: ReadonlySet<number>): string | undefined {
  if (!isAbsolute(dir)) return undefined;
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A missing ancestor: check what exists above it (the daemon creates the rest 0700).
    if (code === 'ENOENT' && dir !== dirname(dir)) return checkParents(dirname(dir), uids);
    return `${dir}: cannot resolve: ${code ?? (e as Error).message}`;
  }
  for (let d = real; ; d = dirname(d)) {
    let st: Stats;
    try {
      st = lstatSync(d);
    } catch (e) {
      return `${d}: cannot stat: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    const wrong = checkEntry(d, st, 'parent', uids);
    if (wrong) return wrong;
    if (d === dirname(d)) return undefined;
  }
}
