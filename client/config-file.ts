// Reads the client's profile file (HOME/config, or -F FILE) and parses it. Shell (reads a file).
// A missing default file is an empty config; a missing -F file is an error.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SystemError, UserError } from '../src/errors.js';
import { emptyProfileConfig, parseProfileConfig, type ProfileConfig } from './profile.js';

export const CONFIG_NAME = 'config';

export function defaultConfigFile(home: string): string {
  return join(home, CONFIG_NAME);
}

/**
 * `given`: the -F value (undefined: the default file, `none`: no file). The first problem is
 * the error (`FILE:LINE: message`, exit 2), with the number of others if there are more.
 */
export function loadProfileConfig(given: string | undefined, home: string, homedir: string): ProfileConfig {
  if (given === 'none') return emptyProfileConfig('none');
  const file = given ?? defaultConfigFile(home);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && given === undefined) return emptyProfileConfig(file);
    if (code === 'ENOENT') throw new UserError('file.missing', 'no such file', { file });
    if (code === 'EACCES') throw new UserError('file.missing', 'permission denied', { file });
    if (code === 'EISDIR') throw new UserError('file.missing', 'is a directory', { file });
    throw new SystemError('io', `${file}: ${(e as Error).message}`, { cause: e });
  }
  const r = parseProfileConfig(text, file, { homedir });
  if (r.ok) return r.config;
  const [first, ...rest] = r.errors;
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'} in this file)` : '';
  throw new UserError('config', `${first!.message}${more}`, { file: first!.file, line: first!.line });
}
