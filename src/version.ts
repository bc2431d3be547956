// The package version for --version, read from package.json next to dist/.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// dist/src/version.js -> ../../package.json; src/version.ts (vitest) -> ../package.json
function load(): string {
  for (const p of ['../../package.json', '../package.json']) {
    try {
      const pkg = require(p) as { name?: string; version?: string };
      if (pkg.name === 'spa' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const VERSION_TEXT = load();
