#!/usr/bin/env node
// spa-knock (package.json "bin"): runs spa-knock-main.cjs, the bundled knock, compiled from the
// V8 code cache that `npm run build` wrote beside it (scripts/code-cache.cjs). Node 20 has no
// compile cache of its own (module.enableCompileCache is Node 22's); without one, V8 compiles
// the bundle's code at every run, ~5% of a knock's whole time. A cache that does not belong to
// this file (another build) or to this node (another V8) is not used: the code compiles as usual.
'use strict';
const { readFileSync } = require('node:fs');
const { Script } = require('node:vm');
const { createHash } = require('node:crypto');

const file = `${__dirname}/spa-knock-main.cjs`;
const source = readFileSync(file, 'utf8');
// The bundle's first line names its build (`// build SHA256` of the rest, scripts/bundle.mjs);
// the cache starts with the same line. V8 itself checks the V8 version and flags, but of the
// source only its length: the hash is checked here (~0.1 ms), so an edited bundle never runs
// the code of the cache.
const build = source.slice(0, source.indexOf('\n') + 1);
let cachedData;
try {
  const cache = readFileSync(`${file}.v8cache`);
  const own = `// build ${createHash('sha256').update(source.slice(build.length)).digest('hex')}\n`;
  if (build === own && cache.toString('latin1', 0, build.length) === build) cachedData = cache.subarray(build.length);
} catch {
  // No cache: compile as usual.
}
// Keep in step with scripts/code-cache.cjs: the cache is for this exact text.
const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
new Script(wrapped, { filename: file, cachedData }).runInThisContext()(module.exports, require, module, file, __dirname);
