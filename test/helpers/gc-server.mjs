// Runs the built spa-server with gc() forced every 10 ms, for the regression test of cap's
// buffer (DESIGN.md: cap keeps only a raw pointer to it). Start with: node --expose-gc gc-server.mjs run ...
if (typeof globalThis.gc !== 'function') {
  console.error('gc-server: run with node --expose-gc');
  process.exit(2);
}
setInterval(() => globalThis.gc(), 10).unref();
await import(new URL('../../dist/server/bin.js', import.meta.url).href);
