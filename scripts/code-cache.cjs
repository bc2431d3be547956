// Writes FILE.v8cache for scripts/spa-knock-launcher.cjs: compiles FILE as the launcher does,
// runs it with the arguments given (a --dry-run knock, so that the functions a knock calls are
// compiled too), and at a clean exit writes FILE's first line (`// build SHA256`) and V8's
// cached data.
// Usage: node scripts/code-cache.cjs FILE ARGS...
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, resolve } = require('node:path');
const { Script } = require('node:vm');

const file = resolve(process.argv[2]);
const source = readFileSync(file, 'utf8');
const build = source.slice(0, source.indexOf('\n') + 1);
if (!build.startsWith('// build ')) throw new Error(`${file}: no build line`);
const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
const script = new Script(wrapped, { filename: file });
process.argv = [process.argv[0], file, ...process.argv.slice(3)];
process.on('exit', (code) => {
  if (code === 0) writeFileSync(`${file}.v8cache`, Buffer.concat([Buffer.from(build, 'latin1'), script.createCachedData()]));
});
const m = { exports: {} };
script.runInThisContext()(m.exports, createRequire(file), m, file, dirname(file));
