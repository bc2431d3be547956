// Runs server/capture.ts (built, from dist/) in its own process for the capture tests.
// Usage: node --expose-gc capture-child.mjs '{"port":62201,"datagramBytes":120,"version":1,
//   "runMs":4000,"dropCapture":false,"gcEveryMs":10,"tickMs":100,"busyUsPerFrame":0,"maxBurstMs":100,"maxStallMs":1000}'
// Prints {"ready":true} once the capture is open, then after runMs one JSON line with the counts,
// and exits 0. A crash (the bug DESIGN.md describes) shows as a signal or a non-zero exit.
import { Capture } from '../../dist/server/capture.js';
import { buildFilter } from '../../dist/server/bpf.js';

const o = JSON.parse(process.argv[2] ?? '{}');
const runMs = Math.min(Number(o.runMs ?? 4000), 30_000);
const tickMs = Number(o.tickMs ?? 100);
const gcEveryMs = Number(o.gcEveryMs ?? 0);
const busyUs = Number(o.busyUsPerFrame ?? 0);
if (gcEveryMs > 0 && typeof globalThis.gc !== 'function') {
  console.error('capture-child: gcEveryMs needs node --expose-gc');
  process.exit(2);
}

function start() {
  // Everything lives inside this function: once it returns, only the Capture's own references
  // keep its Buffer alive, which is what the GC regression test is about.
  const capture = new Capture();
  let frames = 0;
  let payloadOk = 0;
  capture.onFrame((f) => {
    frames++;
    if (f.payload.length === o.datagramBytes && f.payload[0] === o.version) payloadOk++;
    if (busyUs > 0) {
      const end = performance.now() + busyUs / 1000;
      while (performance.now() < end);
    }
  });
  capture.open({
    iface: 'lo',
    filter: buildFilter({ spaPort: o.port, datagramBytes: o.datagramBytes, version: o.version, tcpPorts: [], udpPorts: [] }),
    // These tests flood user space on purpose (no tag clause): a ring of 1,023 of lo's 64 KiB
    // slots, the old default, so that the process, not the ring, is what a flood overruns.
    kernelBufferBytes: Number(o.kernelBufferBytes ?? 64 * 1024 * 1024),
    // null turns a limit off; absent means the Capture's default.
    ...(o.maxBurstMs === undefined ? {} : { maxBurstMs: o.maxBurstMs === null ? Infinity : Number(o.maxBurstMs) }),
    ...(o.maxStallMs === undefined ? {} : { maxStallMs: o.maxStallMs === null ? Infinity : Number(o.maxStallMs) }),
  });
  return { capture, counts: () => ({ frames, payloadOk }) };
}

let { capture, counts } = start();
// dropCapture: keep no reference to the Capture at all while it runs, so only what the Capture
// and cap hold themselves keeps the Buffer alive.
let finalStats = () => capture.stats();
if (o.dropCapture) {
  capture = undefined;
  finalStats = () => undefined;
}
let ticks = 0;
let maxGapMs = 0;
let last = performance.now();
const tick = setInterval(() => {
  ticks++;
  const now = performance.now();
  maxGapMs = Math.max(maxGapMs, now - last);
  last = now;
}, tickMs);
const collector = gcEveryMs > 0 ? setInterval(() => globalThis.gc(), gcEveryMs) : undefined;
console.log(JSON.stringify({ ready: true }));
const t0 = performance.now();
setTimeout(() => {
  clearInterval(tick);
  if (collector) clearInterval(collector);
  const elapsedMs = performance.now() - t0;
  const stats = finalStats();
  capture?.close();
  console.log(JSON.stringify({ ...counts(), stats, ticks, expectedTicks: Math.floor(elapsedMs / tickMs), maxGapMs: Math.round(maxGapMs), elapsedMs: Math.round(elapsedMs) }));
  capture = undefined;
  counts = undefined;
  // A dropped Capture is still open; exit instead of waiting for a handle nobody can close.
  if (o.dropCapture) process.exit(0);
}, runMs);
