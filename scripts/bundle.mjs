// Bundles spa-knock into one CommonJS file, dist/client/spa-knock.cjs (package.json "bin"), so a
// knock loads one file instead of ~30 modules and commander's. Node's ES module loader resolves,
// reads (asynchronously) and links each file on its own, and loads its own modules to do so: that
// was most of spa-knock's start-up beyond `node -e 0` (docs/BENCHMARKS.md, "spa-knock start-up").
// tsc still builds every file (types, the server, dist/client/bin.js for `node dist/client/bin.js`).
import { build } from 'esbuild';

await build({
  stdin: {
    // client/bin.ts without its top-level await, which CommonJS does not have.
    contents: "import { main, processIo } from './client/cli.ts';\nvoid main(process.argv.slice(2), processIo()).then((code) => { process.exitCode = code; });\n",
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
  // src/version.ts finds package.json from import.meta.url; the bundle sits at the same depth.
  define: { 'import.meta.url': '__spaModuleUrl' },
  banner: { js: "#!/usr/bin/env node\nconst __spaModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
});
