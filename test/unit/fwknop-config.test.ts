// access.conf and fwknopd.conf parsing: FILE:LINE on every problem, refusals with a reason,
// includes through an in-memory reader.
import { describe, expect, it } from 'vitest';
import { parseAccessConf, type ConfReader } from '../../src/fwknop/access-conf.js';
import { looksLikeFwknopdConf, parseFwknopdConf, portOfPcapFilter } from '../../src/fwknop/fwknopd-conf.js';
import { parseFwknoprc } from '../../src/fwknop/rc.js';

const K = 'zGUkHjB4uXLmPUZTIiafdQBTg244u9Ovb3k0tBuPugI=';
const H = 'N+ctu54ZjBOZXyTHj85cY4qYX/NEJKrWlpUV0RXsvhZgncqPd4ovY4H4tL5YdZi5Izaal9gTBqZ4KCb5xHWdxA==';

function reader(files: Record<string, string>, dirs: Record<string, string[]> = {}): ConfReader {
  return {
    readText: (p) => (p in files ? { text: files[p] as string } : { error: 'no such file' }),
    listDir: (p) => (p in dirs ? { names: dirs[p] as string[] } : { error: 'no such directory' }),
  };
}
const parse = (text: string, extra: Record<string, string> = {}) => parseAccessConf('/etc/fwknop/access.conf', reader({ '/etc/fwknop/access.conf': text, ...extra }));
const msgs = (ps: readonly { file: string; line: number | undefined; message: string }[]): string[] => ps.map((p) => `${p.file}:${p.line}: ${p.message}`);

describe('access.conf', () => {
  it('reads a production stanza as fwknop --key-gen and the tutorial write it', () => {
    const r = parse(`# comment\nSOURCE                 ANY\nKEY_BASE64             ${K}\nHMAC_KEY_BASE64        ${H}\nOPEN_PORTS             tcp/22, udp/53\nFW_ACCESS_TIMEOUT      30\nREQUIRE_SOURCE_ADDRESS Y;\n`);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.stanzas).toHaveLength(1);
    expect(r.stanzas[0]).toMatchObject({ line: 2, sources: 'any', hmacType: 'sha256', mode: 'cbc', accessTimeoutSec: 30, maxTimeoutSec: 300, requireSourceAddress: true, openPorts: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }] });
    expect(r.stanzas[0]?.key).toHaveLength(32);
    expect(r.stanzas[0]?.hmacKey).toHaveLength(64);
  });

  it('keeps the spaces of a KEY passphrase, stops at ";", warns about passphrase keys', () => {
    const r = parse('SOURCE: 127.0.0.1/8, 10.0.0.0/255.0.0.0\nKEY correct horse ; comment\nHMAC_KEY battery staple\nREQUIRE_SOURCE Y\n');
    expect(r.errors).toEqual([]);
    expect(Buffer.from(r.stanzas[0]?.key ?? []).toString()).toBe('correct horse');
    expect(msgs(r.warnings)).toEqual([
      expect.stringMatching(/^\/etc\/fwknop\/access.conf:2: KEY: a passphrase key/),
      expect.stringMatching(/^\/etc\/fwknop\/access.conf:3: HMAC_KEY: a passphrase key/),
    ]);
  });

  it('refuses what issue 14 item 3 names, each with FILE:LINE and a reason', () => {
    const r = parse([
      'SOURCE ANY', `KEY_BASE64 ${K}`, '', // 1: no HMAC
      'SOURCE ANY', 'KEY legacykey', 'ENCRYPTION_MODE legacy', // 4: legacy
      'SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'HMAC_DIGEST_TYPE md5', // 7: weak HMAC
      'SOURCE ANY', 'GPG_REMOTE_ID 1234ABCD', // 11: GPG
      'SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'ENABLE_CMD_EXEC Y', // 13: commands
      'SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'FORCE_NAT 192.168.1.2 22', // 17: NAT
      'SOURCE ANY', 'KEY_BASE64 __CHANGEME__', 'HMAC_KEY_BASE64 __CHANGEME__', // 21: Debian placeholder
    ].join('\n'));
    expect(r.stanzas).toEqual([]);
    const m = msgs(r.errors);
    expect(m).toContain('/etc/fwknop/access.conf:1: SOURCE: stanza has no HMAC_KEY or HMAC_KEY_BASE64: unauthenticated CBC is malleable; add an HMAC key (fwknop --key-gen), or SPA_ALLOW_NO_HMAC Y');
    expect(m).toContain('/etc/fwknop/access.conf:6: ENCRYPTION_MODE: legacy mode (pre-2.5 clients: key cut to 16 bytes, no HMAC) is refused; add SPA_ALLOW_LEGACY Y to accept it');
    expect(m).toContain('/etc/fwknop/access.conf:10: HMAC_DIGEST_TYPE: md5 HMACs are refused; use sha256 or better, or add SPA_ALLOW_WEAK_HMAC Y');
    expect(m).toContain('/etc/fwknop/access.conf:12: GPG_REMOTE_ID: GPG stanzas are not supported (symmetric keys with an HMAC only)');
    expect(m).toContain('/etc/fwknop/access.conf:16: ENABLE_CMD_EXEC: command messages (ENABLE_CMD_EXEC) are not supported: they run client-chosen commands as root');
    expect(m).toContain('/etc/fwknop/access.conf:20: FORCE_NAT: NAT access is not supported (spa opens the allow address on this host only)');
    expect(m).toContain('/etc/fwknop/access.conf:22: KEY_BASE64: still the placeholder __CHANGEME__ (run: fwknop --key-gen)');
    // Line order.
    const lines = r.errors.map((e) => e.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('accepts the weak options when a spa-only directive says so, with a warning', () => {
    const r = parse(['SOURCE ANY', `KEY_BASE64 ${K}`, 'SPA_ALLOW_NO_HMAC Y', 'REQUIRE_SOURCE_ADDRESS Y', 'SOURCE ANY', 'KEY legacykey', 'ENCRYPTION_MODE legacy', 'SPA_ALLOW_LEGACY Y', 'REQUIRE_SOURCE_ADDRESS Y',
      'SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'HMAC_DIGEST_TYPE sha1', 'SPA_ALLOW_WEAK_HMAC Y', 'REQUIRE_SOURCE_ADDRESS Y'].join('\n'));
    expect(r.errors).toEqual([]);
    expect(r.stanzas.map((s) => s.mode)).toEqual(['cbc', 'legacy', 'cbc']);
    expect(msgs(r.warnings).join('\n')).toMatch(/:1: SOURCE: stanza without an HMAC accepted by SPA_ALLOW_NO_HMAC[\s\S]*:7: ENCRYPTION_MODE: legacy accepted[\s\S]*:13: HMAC_DIGEST_TYPE: sha1 accepted/);
  });

  it('names unknown and misplaced variables, bad values, and warns without REQUIRE_SOURCE_ADDRESS', () => {
    const r = parse(['OPEN_PORTS tcp/22', 'SOURCE 10.0.0.300', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'OPEN_PORTS tcp/0', 'REQUIRE_SOURCE_ADDRES Y', 'FW_ACCESS_TIMEOUT soon', 'HMAC_DIGEST_TYPE sha999', 'ACCESS_EXPIRE 13/01/2030'].join('\n'));
    expect(msgs(r.errors)).toEqual([
      '/etc/fwknop/access.conf:1: OPEN_PORTS: before the first SOURCE line (fwknopd ignores it; a stanza starts with SOURCE)',
      '/etc/fwknop/access.conf:2: SOURCE: expected an IPv4 address, a.b.c.d/NN or a.b.c.d/m.m.m.m, got "10.0.0.300"',
      '/etc/fwknop/access.conf:5: OPEN_PORTS: port must be 1-65535 without leading zeros, got "tcp/0"',
      '/etc/fwknop/access.conf:6: REQUIRE_SOURCE_ADDRES: unknown access.conf variable (did you mean REQUIRE_SOURCE_ADDRESS?)',
      '/etc/fwknop/access.conf:7: FW_ACCESS_TIMEOUT: expected seconds 1-31536000, got "soon"',
      '/etc/fwknop/access.conf:8: HMAC_DIGEST_TYPE: expected one of md5, sha1, sha256, sha384, sha512, sha3_256, sha3_512, got "sha999"',
      '/etc/fwknop/access.conf:9: ACCESS_EXPIRE: expected MM/DD/YYYY, got "13/01/2030"',
    ]);
    expect(msgs(parse(`SOURCE ANY\nKEY_BASE64 ${K}\nHMAC_KEY_BASE64 ${H}\n`).warnings)).toEqual([
      '/etc/fwknop/access.conf:1: SOURCE: REQUIRE_SOURCE_ADDRESS is not Y: a packet made with -s (allow IP 0.0.0.0) can be resent first from another address',
    ]);
  });

  it('refuses equal encryption and HMAC keys, and keys of bad length', () => {
    const r = parse(['SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${K}`, 'SOURCE ANY', `KEY ${'x'.repeat(33)}`, 'HMAC_KEY y'].join('\n'));
    expect(msgs(r.errors)).toEqual([
      '/etc/fwknop/access.conf:3: HMAC_KEY_BASE64: must differ from the encryption key',
      '/etc/fwknop/access.conf:5: KEY: must be 1-32 bytes, got 33',
    ]);
  });

  it('CMD_CYCLE: argv split on whitespace, known $VARs only, CLOSE and TIMER required', () => {
    const ok = parse(['SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'REQUIRE_SOURCE_ADDRESS Y', 'CMD_CYCLE_OPEN /usr/sbin/ipset add fwknop $IP,$PROTO:$PORT timeout $CLIENT_TIMEOUT', 'CMD_CYCLE_CLOSE NONE'].join('\n'));
    expect(ok.errors).toEqual([]);
    expect(ok.stanzas[0]?.cmdCycle).toEqual({ open: ['/usr/sbin/ipset', 'add', 'fwknop', '$IP,$PROTO:$PORT', 'timeout', '$CLIENT_TIMEOUT'], close: undefined, timerSec: undefined });
    const bad = parse(['SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'CMD_CYCLE_OPEN /bin/echo $HOME', 'SOURCE ANY', `KEY_BASE64 ${K}`, `HMAC_KEY_BASE64 ${H}`, 'CMD_CYCLE_OPEN /bin/true', 'CMD_CYCLE_CLOSE /bin/false'].join('\n'));
    expect(msgs(bad.errors)).toEqual([
      '/etc/fwknop/access.conf:4: CMD_CYCLE_OPEN: unknown variable $HOME (known: $IP $SRC $PKT_SRC $DST $PORT $PROTO $TIMEOUT $CLIENT_TIMEOUT)',
      '/etc/fwknop/access.conf:4: CMD_CYCLE_OPEN: needs CMD_CYCLE_CLOSE (a command, or NONE)',
      '/etc/fwknop/access.conf:8: CMD_CYCLE_OPEN: needs CMD_CYCLE_TIMER (seconds) unless CMD_CYCLE_CLOSE is NONE',
    ]);
  });

  it('%include, %include_folder (*.conf, sorted) and %include_keys (key variables only), with depth 3', () => {
    const files = {
      '/etc/fwknop/access.conf': '%include more.conf\n%include_folder /etc/fwknop/access.d\n',
      '/etc/fwknop/more.conf': 'SOURCE 10.0.0.1\n%include_keys /etc/fwknop/keys/alice\nREQUIRE_SOURCE_ADDRESS Y\n',
      '/etc/fwknop/keys/alice': `KEY_BASE64 ${K}\nHMAC_KEY_BASE64 ${H}\nOPEN_PORTS tcp/22\n`,
      '/etc/fwknop/access.d/b.conf': `SOURCE 10.0.0.3\nKEY_BASE64 ${K}\nHMAC_KEY_BASE64 ${H}\nREQUIRE_SOURCE_ADDRESS Y\n`,
      '/etc/fwknop/access.d/a.conf': `SOURCE 10.0.0.2\nKEY_BASE64 ${K}\nHMAC_KEY_BASE64 ${H}\nREQUIRE_SOURCE_ADDRESS Y\n`,
    };
    const r = parseAccessConf('/etc/fwknop/access.conf', reader(files, { '/etc/fwknop/access.d': ['b.conf', 'a.conf', 'README'] }));
    expect(r.errors).toEqual([]);
    expect(r.stanzas.map((s) => `${s.file}:${s.line}`)).toEqual(['/etc/fwknop/more.conf:1', '/etc/fwknop/access.d/a.conf:1', '/etc/fwknop/access.d/b.conf:1']);
    expect(msgs(r.warnings)).toEqual(['/etc/fwknop/keys/alice:3: OPEN_PORTS: ignored in an %include_keys file (only KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64 are read there, as in fwknopd)']);
    const loop = parseAccessConf('/a.conf', reader({ '/a.conf': '%include /a.conf\n' }));
    expect(msgs(loop.errors)).toEqual(['/a.conf:1: %include: nested deeper than 3 files (fwknopd\'s limit)']);
    const missing = parse('%include /nowhere.conf\n');
    expect(msgs(missing.errors)).toEqual(['/etc/fwknop/access.conf:1: %include: /nowhere.conf: no such file']);
  });
});

describe('fwknopd.conf', () => {
  it('is recognised by its format, Debian\'s all-commented file included', () => {
    expect(looksLikeFwknopdConf('#PCAP_INTF                   eth0;\n#ENABLE_UDP_SERVER N;\n')).toBe(true);
    expect(looksLikeFwknopdConf('[options]\n  logfile = /var/log/knockd.log\n')).toBe(false);
    expect(looksLikeFwknopdConf('SOURCE ANY\n')).toBe(false);
  });

  it('takes the defaults of fwknopd 2.6.10', () => {
    const r = parseFwknopdConf('/etc/fwknop/fwknopd.conf', '# nothing set\n');
    expect(r).toMatchObject({ ok: true, conf: { interface: 'eth0', port: 62201, udpServer: false, agingEnabled: true, maxAgeSec: 120, access: '/etc/fwknop/access.conf', accessIsFolder: false, digestFile: '/var/run/fwknop/digest.cache', firewall: 'iptables' } });
  });

  it('reads PCAP_INTF, the port of PCAP_FILTER, UDP server mode, $VARs, ACCESS_FOLDER', () => {
    const r = parseFwknopdConf('/f', 'PCAP_INTF lo;\nPCAP_FILTER udp port 40001;\nFWKNOP_RUN_DIR /run/fw;\nACCESS_FOLDER /etc/fwknop/access.d\nMAX_SPA_PACKET_AGE 60\n');
    expect(r).toMatchObject({ ok: true, conf: { interface: 'lo', port: 40001, digestFile: '/run/fw/digest.cache', access: '/etc/fwknop/access.d', accessIsFolder: true, maxAgeSec: 60 } });
    expect(parseFwknopdConf('/f', 'ENABLE_UDP_SERVER Y\nUDPSERV_PORT 40002\n')).toMatchObject({ ok: true, conf: { udpServer: true, port: 40002 } });
    expect(portOfPcapFilter('udp dst port 62201')).toBe(62201);
    expect(portOfPcapFilter('udp port 62201 or udp port 62202')).toBeUndefined();
  });

  it('names what it ignores and why, and refuses HTTP, NAT, odd filters and unknown names', () => {
    const r = parseFwknopdConf('/f', 'FIREWALL_EXE /sbin/iptables;\nENABLE_SPA_OVER_HTTP Y;\nPCAP_FILTER udp port 62201 and src host 1.2.3.4;\nENABLE_IPT_FORWARDING Y;\nPCAP_INTFF eth1\n');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(msgs(r.errors)).toEqual([
      '/f:2: ENABLE_SPA_OVER_HTTP: SPA over HTTP (fwknop -P http) is not supported: spa-server sniffs UDP',
      '/f:4: ENABLE_IPT_FORWARDING: NAT access messages are not supported',
      '/f:5: PCAP_INTFF: unknown fwknopd.conf variable (did you mean PCAP_INTF?)',
      '/f:3: PCAP_FILTER: only "udp port N" is understood (spa-server builds its own kernel filter), got "udp port 62201 and src host 1.2.3.4"',
    ]);
    expect(msgs(r.warnings)).toEqual(['/f:1: FIREWALL_EXE: ignored: spa opens through its own backend (SPA_FIREWALL) with its own rules']);
  });
});

describe('~/.fwknoprc', () => {
  it('reads a stanza over [default]; values end at a blank, ";" or "#"', () => {
    const r = parseFwknoprc('/root/.fwknoprc', `[default]\nHMAC_DIGEST_TYPE sha512\nFW_TIMEOUT 60\n\n[spaserver]\nALLOW_IP source\nACCESS tcp/22,udp/53\nSPA_SERVER 127.0.0.1 # the box\nSPA_SERVER_PORT 40001\nKEY_BASE64 ${K}\nHMAC_KEY_BASE64 ${H}\nUSE_HMAC Y\n`, 'spaserver');
    expect(r).toMatchObject({ ok: true, stanza: { server: '127.0.0.1', port: 40001, allowIp: 'source', access: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }], hmacType: 'sha512', clientTimeoutSec: 60, mode: 'cbc' } });
  });

  it('says which stanza is missing and which key is wrong', () => {
    expect(parseFwknoprc('/rc', '[a]\nSPA_SERVER x\n', 'b')).toMatchObject({ ok: false, errors: [{ file: '/rc', message: 'no stanza [b] (stanzas: a)' }] });
    const r = parseFwknoprc('/rc', `[a]\nSPA_SERVER h\nACCESS tcp/22\nALLOW_IP source\nKEY_BASE64 ${K}\nUSE_HMAC N\n`, 'a');
    expect(r).toMatchObject({ ok: false, errors: [{ line: 1, message: '[a]: no HMAC key (HMAC_KEY or HMAC_KEY_BASE64): spa-knock always sends an HMAC' }] });
  });
});
