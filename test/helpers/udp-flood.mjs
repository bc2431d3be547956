// A bounded UDP flood to a loopback address, for capture tests and benchmarks. Runs as a process.
// Usage: node udp-flood.mjs '{"host":"127.0.0.1","port":62201,"count":100000,"durationMs":3000,
//   "payloadBytes":120,"firstByte":1,"ratePerSec":0,"fill":"base64","prefixHex":""}'   (ratePerSec 0 = as fast as it can;
//   fill base64: random base64 text after the first byte, different in every datagram;
//   prefixHex: the payload starts with these bytes, e.g. a captured knock's version and tag)
// Stops at whichever of count and durationMs comes first; prints {"sent":N,"ms":T} and exits 0.
import dgram from 'node:dgram';
import { isIP } from 'node:net';

const o = JSON.parse(process.argv[2] ?? '{}');
const host = String(o.host ?? '127.0.0.1');
// Loopback only: this script must never flood anything else.
if (!(host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)) || isIP(host) === 0) {
  console.error(`udp-flood: refusing non-loopback host ${host}`);
  process.exit(2);
}
const port = Number(o.port);
const count = Math.min(Number(o.count ?? 100_000), 1_000_000);
const durationMs = Math.min(Number(o.durationMs ?? 3000), 30_000);
const rate = Number(o.ratePerSec ?? 0);
const payload = Buffer.alloc(Number(o.payloadBytes ?? 64), 0xab);
payload[0] = Number(o.firstByte ?? 1);
Buffer.from(String(o.prefixHex ?? ''), 'hex').copy(payload, 0);
// "fill": "base64": every datagram different, base64 text after the first byte (fwknop-shaped
// garbage that no cache can remember).
const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const pool = Buffer.from(Array.from({ length: 65536 }, () => B64[Math.floor(Math.random() * 64)]));
let poolAt = 0;
function next() {
  if (o.fill !== 'base64') return payload;
  poolAt = (poolAt + 7) % (pool.length - payload.length);
  const p = Buffer.from(pool.subarray(poolAt, poolAt + payload.length));
  p[0] = payload[0];
  return p;
}

const sock = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
sock.on('error', () => {}); // ECONNREFUSED/ENOBUFS on loopback are expected under a flood
// "bind": a loopback source address (127.0.0.2: a flooder that is not the knocker).
if (o.bind !== undefined) {
  if (!/^127\.\d+\.\d+\.\d+$/.test(String(o.bind))) {
    console.error(`udp-flood: refusing non-loopback source ${o.bind}`);
    process.exit(2);
  }
  await new Promise((resolve) => sock.bind({ address: String(o.bind), port: 0 }, resolve));
}
const t0 = performance.now();
let sent = 0;
const BATCH = 128;

function sendBatch(n) {
  return new Promise((resolve) => {
    let left = n;
    for (let i = 0; i < n; i++) {
      sock.send(next(), port, host, () => {
        if (--left === 0) resolve();
      });
    }
    sent += n;
  });
}

while (sent < count && performance.now() - t0 < durationMs) {
  if (rate > 0) {
    // Paced: keep sent close to rate * elapsed, sleeping 1 ms between batches.
    const due = Math.min(count, Math.floor(((performance.now() - t0) * rate) / 1000));
    if (due > sent) await sendBatch(Math.min(BATCH, due - sent));
    else await new Promise((r) => setTimeout(r, 1));
  } else {
    await sendBatch(Math.min(BATCH, count - sent));
  }
}
sock.close();
console.log(JSON.stringify({ sent, ms: Math.round(performance.now() - t0) }));
