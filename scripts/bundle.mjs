// Bundles spa-knock into CommonJS files, dist/client/spa-knock.cjs (package.json "bin"), so a
// knock loads one file instead of ~30 modules and commander's. Node's ES module loader resolves,
// reads (asynchronously) and links each file on its own, and loads its own modules to do so: that
// was most of spa-knock's start-up beyond `node -e 0` (docs/BENCHMARKS.md, "What a knock loads").
// tsc still builds every file (types, the server, dist/client/bin.js for `node dist/client/bin.js`).
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

// src/version.ts reads package.json at start-up; in the bundle the version is a constant.
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const versionConstant = {
  name: 'version-constant',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, () => ({ contents: `export const VERSION_TEXT = ${JSON.stringify(version)};\n`, loader: 'ts' }));
  },
};

// Three files. spa-knock.cjs is a launcher (scripts/spa-knock-launcher.cjs) that runs
// spa-knock-main.cjs from its V8 code cache, written below. spa-knock-main.cjs is client/main.ts:
// the common `spa-knock HOST [flags]` and nothing it does not need. Anything else (subcommands,
// --help, a mistake on the command line) loads spa-knock-cli.cjs, commander's program: V8
// compiles only the file a run loads.
const cliBundle = {
  name: 'cli-bundle',
  setup(b) {
    b.onResolve({ filter: /^\.\/cli\.js$/ }, (args) => (/[\\/]client[\\/]main\.ts$/.test(args.importer) ? { path: './spa-knock-cli.cjs', external: true } : undefined));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Smaller to read and parse; names are kept so that a bug's stack trace still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
};

await build({
  ...common,
  stdin: {
    // client/bin.ts without its top-level await, which CommonJS does not have.
    contents: "import { runAndExit } from './client/main.ts';\nvoid runAndExit();\n",
    resolveDir: process.cwd(),
    sourcefile: 'spa-knock.ts',
    loader: 'ts',
  },
  outfile: 'dist/client/spa-knock-main.cjs',
  plugins: [cliBundle],
  // import() of the commander bundle (and of node:dns) as require(): no ES module loader.
  supported: { 'dynamic-import': false },
});

await build({
  ...common,
  entryPoints: ['client/cli.ts'],
  outfile: 'dist/client/spa-knock-cli.cjs',
  plugins: [versionConstant],
});

// The first line names this build: the launcher uses a code cache only if it starts with the same.
const main = readFileSync('dist/client/spa-knock-main.cjs', 'utf8');
writeFileSync('dist/client/spa-knock-main.cjs', `// build ${createHash('sha256').update(main).digest('hex')}\n${main}`);
copyFileSync('scripts/spa-knock-launcher.cjs', 'dist/client/spa-knock.cjs');

// The code cache: a --dry-run knock to 127.0.0.1 (nothing is sent) with throwaway keys compiles
// what a knock runs. Without it (any failure here) spa-knock still works, compiling as usual.
const { writeClientKey, writeServerKey } = await import('../dist/keys/keygen-command.js');
const tmp = mkdtempSync(join(tmpdir(), 'spa-build-'));
try {
  rmSync('dist/client/spa-knock-main.cjs.v8cache', { force: true });
  writeClientKey(tmp, 'build', false);
  const server = writeServerKey(tmp, false);
  const knock = ['127.0.0.1', '--key', 'build', '--key-dir', tmp, '-F', 'none', '--server-key', server.publicFile, '--dry-run'];
  const r = spawnSync(process.execPath, ['scripts/code-cache.cjs', 'dist/client/spa-knock-main.cjs', ...knock], { encoding: 'utf8', env: { ...process.env, SPA_KNOCK_HOME: tmp } });
  if (r.status !== 0) console.warn(`bundle: no code cache for spa-knock (the dry-run knock exited ${r.status}: ${r.stderr.trim()})`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
