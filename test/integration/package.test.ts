// The npm package: `npm pack`, then `npm install -g` of the tarball into a temporary prefix,
// as an administrator would; both commands work from there, the cap addon was built at
// install, and the man pages are installed where `man` finds them.
//
// The pack uses --ignore-scripts: `prepare` (npm run build) would rebuild dist/ in this
// checkout while other test files run its CLIs; `npm test` has just built it (pretest). The
// install runs scripts as usual (cap's node-gyp build; root's npm config has nodedir=/usr);
// a tarball's own `prepare` is not run at install, which is why dist/ is in the package.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { canRun } from '../helpers/require.js';

const execFileP = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const MAN_PAGES = [
  ['1', 'spa-knock'],
  ['8', 'spa-server'],
  ['5', 'spa.conf'],
] as const;

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? x.message };
  }
}

describe.runIf(canRun({ tools: ['npm', 'tar'] }))('npm pack + npm install -g into a temporary prefix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spa-pkg-'));
  const prefix = join(dir, 'prefix');
  const installed = join(prefix, 'lib', 'node_modules', pkg.name);
  let tarball = '';
  let files: string[] = [];

  beforeAll(async () => {
    const p = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir]);
    expect(p.code, p.stderr).toBe(0);
    tarball = join(dir, p.stdout.trim().split('\n').pop()!);
    files = (await run('tar', ['tzf', tarball])).stdout.split('\n').filter(Boolean);
    const i = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { timeoutMs: 240_000 });
    expect(i.code, `npm install -g failed:\n${i.stderr}`).toBe(0);
  }, 300_000);

  it('the tarball has the built CLIs, the man pages, docs and examples, and no tests', () => {
    for (const f of ['dist/client/spa-knock.cjs', 'dist/client/spa-knock-main.cjs', 'dist/client/spa-knock-main.cjs.v8cache', 'dist/client/spa-knock-cli.cjs', 'dist/server/bin.js', 'README.md', 'examples/spa-server.service', 'docs/CONFIGURATION.md', ...MAN_PAGES.map(([s, n]) => `man/${n}.${s}`)]) {
      expect(files, f).toContain(`package/${f}`);
    }
    expect(files.filter((f) => f.startsWith('package/test/') || f.startsWith('package/node_modules/'))).toEqual([]);
  });

  it('spa-knock --version and spa-server --version work from the prefix', async () => {
    for (const bin of ['spa-knock', 'spa-server']) {
      const r = await run(join(prefix, 'bin', bin), ['--version']);
      expect([r.code, r.stdout, r.stderr], bin).toEqual([0, `${pkg.version}\n`, '']);
    }
  });

  it('the installed commands do their job: keys, and a dry-run knock', async () => {
    const k = await run(join(prefix, 'bin', 'spa-server'), ['keygen', '--dir', join(dir, 'srv')]);
    expect(k.code, k.stderr).toBe(0);
    const c = await run(join(prefix, 'bin', 'spa-knock'), ['keygen', '--id', 'alice', '--dir', join(dir, 'client')]);
    expect(c.code, c.stderr).toBe(0);
    const d = await run(join(prefix, 'bin', 'spa-knock'), ['127.0.0.1', '--key', 'alice', '--key-dir', join(dir, 'client'), '--server-key', join(dir, 'srv', 'server.pub'), '--dry-run']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^knock 127\.0\.0\.1 \(127\.0\.0\.1\) udp\/62201 as alice: allow 127\.0\.0\.1 tcp\/22, \d+ bytes \(dry run, not sent\)\n[0-9a-f]+\n$/);
  });

  it("spa-knock's code cache belongs to its bundle and this node's V8 takes it", async () => {
    // As scripts/spa-knock-launcher.cjs reads it: the bundle's first line (its build), then V8's data.
    const main = join(installed, 'dist', 'client', 'spa-knock-main.cjs');
    const check = `const fs = require('fs'), vm = require('vm');
      const f = ${JSON.stringify(main)}, s = fs.readFileSync(f, 'utf8'), cache = fs.readFileSync(f + '.v8cache');
      const build = s.slice(0, s.indexOf('\\n') + 1);
      if (!/^\\/\\/ build [0-9a-f]{64}\\n$/.test(build) || cache.toString('latin1', 0, build.length) !== build) process.exit(3);
      const w = '(function (exports, require, module, __filename, __dirname) {' + s + '\\n})';
      process.exit(new vm.Script(w, { filename: f, cachedData: cache.subarray(build.length) }).cachedDataRejected ? 4 : 0);`;
    const r = await run(process.execPath, ['-e', check]);
    expect([r.code, r.stderr]).toEqual([0, '']);
  });

  it('the cap addon was built at install and loads', async () => {
    expect(existsSync(join(installed, 'node_modules', 'cap', 'build', 'Release', 'cap.node'))).toBe(true);
    const r = await run(process.execPath, ['-e', `const c = require(${JSON.stringify(join(installed, 'node_modules', 'cap'))}); if (typeof c.Cap !== 'function') process.exit(3)`]);
    expect([r.code, r.stderr]).toEqual([0, '']);
  });

  it('the man pages are installed under PREFIX/share/man (package.json "man"), and man finds them', async () => {
    for (const [sec, name] of MAN_PAGES) {
      const f = join(prefix, 'share', 'man', `man${sec}`, `${name}.${sec}`);
      expect(existsSync(f), `${f}: package.json needs "man": ["./man/spa-knock.1", "./man/spa-server.8", "./man/spa.conf.5"]`).toBe(true);
    }
    if (!canRun({ tools: ['man'] })) return;
    for (const [sec, name] of MAN_PAGES) {
      const r = await run('man', [sec, name], { env: { MANPATH: join(prefix, 'share', 'man'), MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`${name.toUpperCase()}(${sec})`);
    }
  });
});

// An install with no compiler: cap is an optional dependency. --omit=optional installs what a
// machine without libpcap's headers or g++ ends up with (cap's node-gyp build failing there is
// what makes npm skip it); the rest must work, and libpcap mode must say what is missing.
// npm 11 ignores --omit for -g installs, so this one installs into a prefix without -g.
describe.runIf(canRun({ tools: ['npm', 'tar'] }))('npm install of the tarball into a prefix without optional dependencies (no cap)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spa-nocap-'));
  const prefix = join(dir, 'prefix');
  const installed = join(prefix, 'node_modules', pkg.name);
  const bin = (name: string): string => join(prefix, 'node_modules', '.bin', name);
  const server = bin('spa-server');
  const conf = join(dir, 'spa.conf');
  const port = 40000 + Math.floor(Math.random() * 10000);
  const CAP_MISSING =
    'spa-server: libpcap capture needs the optional package cap, which is not installed: it builds at install with ' +
    "libpcap's headers and a C++ compiler (apt-get install libpcap-dev g++ make python3, then npm install cap), " +
    'or set UDPSocket = yes (or run --udp) to bind the port instead\n';

  beforeAll(async () => {
    const p = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir]);
    expect(p.code, p.stderr).toBe(0);
    const tarball = join(dir, p.stdout.trim().split('\n').pop()!);
    const i = await run('npm', ['install', '--prefix', prefix, '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund', tarball], { timeoutMs: 240_000 });
    expect(i.code, `npm install --omit=optional failed:\n${i.stderr}`).toBe(0);
    const k = await run(server, ['keygen', '--dir', join(dir, 'srv')]);
    expect(k.code, k.stderr).toBe(0);
    const c = await run(bin('spa-knock'), ['keygen', '--id', 'alice', '--dir', join(dir, 'client')]);
    expect(c.code, c.stderr).toBe(0);
    writeFileSync(
      conf,
      `[options]\nInterface = lo\nSPAPort = ${port}\nServerKey = ${join(dir, 'srv', 'server.key')}\nStateDir = ${join(dir, 'state')}\n\n` +
        `[ssh]\nspa_keys = ${join(dir, 'client', 'alice.pub')}\naccess = tcp/22\nstart_command = true\nstop_command = true\n`,
    );
  }, 300_000);

  it('installs without cap', () => {
    expect(existsSync(join(prefix, 'node_modules', 'cap'))).toBe(false);
    expect(existsSync(join(installed, 'dist', 'server', 'bin.js'))).toBe(true);
  });

  it('run in libpcap mode and check refuse in one line that says what to install or to use UDPSocket', async () => {
    expect(await run(server, ['run', '--config', conf])).toEqual({ code: 1, stdout: '', stderr: CAP_MISSING });
    expect(await run(server, ['check', '--config', conf])).toEqual({ code: 1, stdout: '', stderr: CAP_MISSING });
  });

  it('run --udp works, and a knock opens the door', async () => {
    const child = spawn(server, ['run', '--config', conf, '--udp'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('"started"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"capture":"udp-socket"');
      const k = await run(bin('spa-knock'), ['127.0.0.1', '--key', 'alice', '--key-dir', join(dir, 'client'), '--server-key', join(dir, 'srv', 'server.pub'), '--port', String(port)]);
      expect(k.code, k.stderr).toBe(0);
      while (!out.includes('"accepted"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('"msg":"accepted"');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
