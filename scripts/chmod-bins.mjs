// Makes the built bin files executable, so `npm link` and a checkout's
// node_modules/.bin entries run them directly.
import { chmodSync, existsSync } from 'node:fs';
for (const f of ['dist/client/spa-knock.cjs', 'dist/client/bin.js', 'dist/server/bin.js']) {
  if (existsSync(f)) chmodSync(f, 0o755);
}
