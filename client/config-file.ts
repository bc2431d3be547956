// Reads the client's profile file (HOME/config, or -F FILE) and parses it. Shell (reads a file).
// A missing default file is an empty config; a missing -F file is an error.
import { FILE_LIMITS, FileReadError, readRegularFile } from '../keys/read-file.js';
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
    text = readRegularFile(file, FILE_LIMITS.config);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    if (e.failure === 'missing' && given === undefined) return emptyProfileConfig(file);
    if (e.failure === 'io') throw new SystemError('io', `${file}: ${e.message}`, { cause: e });
    throw new UserError('file.missing', e.message, { file });
  }
  const r = parseProfileConfig(text, file, { homedir });
  if (r.ok) return r.config;
  const [first, ...rest] = r.errors;
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'} in this file)` : '';
  throw new UserError('config', `${first!.message}${more}`, { file: first!.file, line: first!.line });
}
