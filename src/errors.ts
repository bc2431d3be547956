// The project's error types and their stable codes (STYLE.md §4). Pure.
// UserError: a person's mistake (bad flag, config, key) -> one line, exit 2.
// SystemError: the world failed (I/O, a command) -> one line with context, exit 1.

export const EXIT_OK = 0;
export const EXIT_SYSTEM = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUG = 70;

export type UserErrorCode =
  | 'usage'
  | 'config'
  | 'key.parse'
  | 'key.type'
  | 'key.invalid'
  | 'key.mode'
  | 'key.missing'
  | 'key.exists'
  | 'access.parse'
  | 'address.parse'
  | 'address.discover'
  | 'host.resolve'
  | 'file.missing';

export type SystemErrorCode = 'io' | 'net' | 'command' | 'capture' | 'state';

export class UserError extends Error {
  readonly code: UserErrorCode;
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(code: UserErrorCode, message: string, where?: { file?: string; line?: number }) {
    super(message);
    this.name = 'UserError';
    this.code = code;
    this.file = where?.file;
    this.line = where?.line;
  }
  /** `FILE:LINE: message`, `FILE: message` or `message`. */
  format(): string {
    return formatWhere(this.file, this.line, this.message);
  }
}

export class SystemError extends Error {
  readonly code: SystemErrorCode;
  constructor(code: SystemErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SystemError';
    this.code = code;
  }
}

export function formatWhere(file: string | undefined, line: number | undefined, message: string): string {
  if (file === undefined) return message;
  if (line === undefined) return `${file}: ${message}`;
  return `${file}:${line}: ${message}`;
}

/** Exit code for anything thrown out of a command's main(). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return EXIT_USAGE;
  if (err instanceof SystemError) return EXIT_SYSTEM;
  return EXIT_BUG;
}

/** The one line a person sees for an error: `PROG: message` (no stack unless it is a bug). */
export function describeError(prog: string, err: unknown): string {
  if (err instanceof UserError) return `${prog}: ${err.format()}`;
  if (err instanceof SystemError) return `${prog}: ${err.message}`;
  const e = err instanceof Error ? err : new Error(String(err));
  return `${prog}: internal error (a bug, please report it):\n${e.stack ?? e.message}`;
}
