// Bundles spa-knock into one CommonJS file, dist/client/spa-knock.cjs (package.json "bin"), so a
// knock loads one file instead of ~30 modules and commander's. Node's ES module loader resolves,
// reads (asynchronously) and links each file on its own, and loads its own modules to do so: that
// was most of spa-knock's start-up beyond `node -e 0` (docs/BENCHMARKS.md, "spa-knock start-up").
// tsc still builds every file (types, the server, dist/client/bin.js for `node dist/client/bin.js`).
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

// src/version.ts reads package.json at start-up; in the bundle the version is a constant.
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const versionConstant = {
  name: 'version-constant',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION_TEXT = ${JSON.stringify(version)};\n`, loader: 'ts' }));
  },
};

await build({
  stdin: {
    // client/bin.ts without its top-level await, which CommonJS does not have; like it, exit at
    // once (a STUN server's name lookup given up on must not hold the process).
    contents: "import { main, processIo } from './client/cli.ts';\nvoid main(process.argv.slice(2), processIo()).then((code) => process.exit(code));\n",
    resolveDir: process.cwd(),
    sourcefile: 'spa-knock.ts',
    loader: 'ts',
  },
  outfile: 'dist/client/spa-knock.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Smaller to read and parse; names are kept so that a bug's stack trace still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [versionConstant],
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'warning',
});
