// Where the client keeps its keys and config: $SPA_KNOCK_HOME, else
// $XDG_CONFIG_HOME/spa-knock, else ~/.config/spa-knock. Pure. Env in, path out.
import { join } from 'node:path';

export function clientHome(env: NodeJS.ProcessEnv, homedir: string): string {
  if (env['SPA_KNOCK_HOME']) return env['SPA_KNOCK_HOME'];
  const xdg = env['XDG_CONFIG_HOME'];
  // XDG Base Directory spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
  if (xdg && xdg.startsWith('/')) return join(xdg, 'spa-knock');
  return join(homedir, '.config', 'spa-knock');
}
