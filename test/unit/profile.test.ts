// The profile file: ssh_config's syntax and Host matching, each keyword's values, FILE:LINE errors.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeKey } from '../../keys/format.js';
import { hostForMatching, lookupProfile, matchHost, matchPattern, parseProfileConfig, splitArgs, type ProfileConfig } from '../../client/profile.js';

const FILE = '/home/u/.config/spa-knock/config';
const HOME = '/home/u';

function parse(text: string): ProfileConfig {
  const r = parseProfileConfig(text, FILE, { homedir: HOME });
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.message}`).join('\n'));
  return r.config;
}

function errorsOf(text: string): string[] {
  const r = parseProfileConfig(text, FILE, { homedir: HOME });
  return r.ok ? [] : r.errors.map((e) => `${e.file === FILE ? 'F' : e.file}:${e.line}: ${e.message}`);
}

const SERVER_PUB = encodeKey('server-public', new Uint8Array(32).fill(7));

describe('matchPattern', () => {
  it.each([
    ['*', '', true],
    ['*', 'web1', true],
    ['web?', 'web1', true],
    ['web?', 'web12', false],
    ['*.example.org', 'a.example.org', true],
    ['*.example.org', 'example.org', false],
    ['w*b*1', 'wxxbyy1', true],
    ['w*b*1', 'wxxbyy2', false],
    ['10.0.0.*', '10.0.0.7', true],
    ['a*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
    ['', '', true],
    ['', 'x', false],
  ])('%s ~ %s -> %s', (p, s, want) => {
    expect(matchPattern(p, s)).toBe(want);
  });

  it('agrees with an anchored regular expression on random inputs', () => {
    const alpha = fc.constantFrom('a', 'b', '.', '*', '?');
    fc.assert(
      fc.property(fc.array(alpha, { maxLength: 8 }), fc.array(fc.constantFrom('a', 'b', '.'), { maxLength: 10 }), (p, s) => {
        const pat = p.join('');
        const re = new RegExp(`^${pat.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
        expect(matchPattern(pat, s.join(''))).toBe(re.test(s.join('')));
      }),
    );
  });
});

describe('matchHost (ssh_config Host rules)', () => {
  it('one plain pattern must match and no negated one', () => {
    expect(matchHost(['web*', '!web3'], 'web1')).toBe(true);
    expect(matchHost(['web*', '!web3'], 'web3')).toBe(false);
    expect(matchHost(['!web3', 'web*'], 'web3')).toBe(false);
    expect(matchHost(['!web3'], 'db1')).toBe(false); // negations alone never match
    expect(matchHost(['db1', 'web1'], 'web1')).toBe(true);
  });
  it('is case-insensitive, as ssh lower-cases both sides', () => {
    expect(matchHost(['Web1.Example.ORG'], 'web1.example.org')).toBe(true);
    expect(matchHost(['web1'], 'WEB1')).toBe(true);
  });
  it('matches IPv6 literals without their brackets', () => {
    expect(hostForMatching('[2001:db8::1]')).toBe('2001:db8::1');
    expect(lookupProfile(parse('Host 2001:db8::*\n  Port 1000\n'), '[2001:db8::1]').port).toBe(1000);
  });
});

describe('splitArgs', () => {
  it('splits on blanks, groups double quotes, stops at an unquoted #', () => {
    expect(splitArgs('a  b\tc')).toEqual(['a', 'b', 'c']);
    expect(splitArgs('"/path with space/k.pub" x')).toEqual(['/path with space/k.pub', 'x']);
    expect(splitArgs('tcp/22 # the ssh port')).toEqual(['tcp/22']);
    expect(splitArgs('"a#b"')).toEqual(['a#b']);
    expect(splitArgs('"open')).toBe('unclosed double quote');
  });
});

describe('lookupProfile', () => {
  const conf = parse(`# a comment
Port 62000

Host web1 web2
    HostName %h.example.org
    Key alice
    Access tcp/22
    Access tcp/443, udp/60001

Host web*
    Port 62001
    Key bob
    Access tcp/8080
    ServerKey keys/web.pub

Host old1
    HostName 192.0.2.10
    Sequence 7000, 8000:udp 9000
    Delay 150
    AddressFamily inet

Host *
    ServerKey = ${SERVER_PUB}
    AllowIP auto
    Access tcp/22
`);

  it('takes the first value of each keyword in file order, from every matching entry', () => {
    const p = lookupProfile(conf, 'web1');
    expect(p.hostName).toBe('web1.example.org');
    expect(p.key).toEqual({ kind: 'id', id: 'alice' });
    // The lines before the first Host apply to every host, and come first.
    expect(p.port).toBe(62000);
    expect(p.serverKey).toBe('/home/u/.config/spa-knock/keys/web.pub');
    expect(p.allowIp).toBe('auto');
    expect(p.matchedLines).toEqual([0, 4, 10, 22]);
  });

  it('Access lines add up within the first entry that has any; later entries add nothing', () => {
    expect(lookupProfile(conf, 'web1').access).toEqual([
      { proto: 'tcp', port: 22 },
      { proto: 'tcp', port: 443 },
      { proto: 'udp', port: 60001 },
    ]);
    expect(lookupProfile(conf, 'web3').access).toEqual([{ proto: 'tcp', port: 8080 }]);
    expect(lookupProfile(conf, 'db9').access).toEqual([{ proto: 'tcp', port: 22 }]);
  });

  it('a host only Host * matches gets the defaults, and HostName stays unset', () => {
    const p = lookupProfile(conf, 'db9');
    expect(p.hostName).toBeUndefined();
    expect(p.key).toBeUndefined();
    expect(p.serverKey).toBe(SERVER_PUB);
    expect(p.port).toBe(62000);
  });

  it('Sequence accepts commas and blanks, Delay and AddressFamily are read', () => {
    const p = lookupProfile(conf, 'OLD1');
    expect(p.sequence).toEqual([
      { proto: 'tcp', port: 7000 },
      { proto: 'udp', port: 8000 },
      { proto: 'tcp', port: 9000 },
    ]);
    expect(p.delayMs).toBe(150);
    expect(p.addressFamily).toBe('inet');
    expect(p.hostName).toBe('192.0.2.10');
  });

  it('an empty file gives an empty profile', () => {
    expect(lookupProfile(parse(''), 'x')).toEqual({ matchedLines: [] });
  });

  it('Key with a / is a file: ~ is the home directory, relative paths are relative to the file', () => {
    const c = parse('Host a\n Key ~/keys/a.key\nHost b\n Key sub/b.key\nHost c\n Key /etc/k.key\n');
    expect(lookupProfile(c, 'a').key).toEqual({ kind: 'file', file: '/home/u/keys/a.key' });
    expect(lookupProfile(c, 'b').key).toEqual({ kind: 'file', file: '/home/u/.config/spa-knock/sub/b.key' });
    expect(lookupProfile(c, 'c').key).toEqual({ kind: 'file', file: '/etc/k.key' });
  });

  it('keywords are case-insensitive and take = as in ssh_config; CRLF and a BOM are fine', () => {
    const c = parse('\uFEFFhost x\r\n  PORT=1234\r\n  hostname = 192.0.2.1\r\n  allowip 203.0.113.5\r\n  addressfamily INET6\r\n');
    const p = lookupProfile(c, 'x');
    expect(p.port).toBe(1234);
    expect(p.hostName).toBe('192.0.2.1');
    expect(p.allowIp).toMatchObject({ text: '203.0.113.5' });
    expect(p.addressFamily).toBe('inet6');
  });

  it('StunServer lines add up within the first entry that has any; none stands for no discovery; AllowIP source', () => {
    const c = parse(`Host home
  StunServer none
  AllowIP source
Host web*
  StunServer stun.example.org, [2001:db8::3]:3479
  StunServer 192.0.2.9:5000 2001:db8::4
Host *
  StunServer stun.other.example
`);
    expect(lookupProfile(c, 'web1').stunServers).toEqual([
      { host: 'stun.example.org', port: 3478 },
      { host: '2001:db8::3', port: 3479 },
      { host: '192.0.2.9', port: 5000 },
      { host: '2001:db8::4', port: 3478 },
    ]);
    expect(lookupProfile(c, 'home')).toMatchObject({ stunServers: 'none', allowIp: 'source' });
    expect(lookupProfile(c, 'db1').stunServers).toEqual([{ host: 'stun.other.example', port: 3478 }]);
  });

  it('%% in HostName is a percent sign; %h the host as typed', () => {
    expect(lookupProfile(parse('Host *\n HostName %h-%%h\n'), 'a').hostName).toBe('a-%h');
  });
});

describe('errors: FILE:LINE: KEYWORD: message, every one, in line order', () => {
  it.each([
    ['Host web1\n  Prot 1\n', 'F:2: Prot: unknown keyword (did you mean Port?)'],
    ['Host web1\n  Port 70000\n', 'F:2: Port: expected a UDP port 1-65535, got "70000"'],
    ['Host web1\n  Access 22/tpc\n', 'F:2: Access: expected PROTO/PORT such as tcp/22 or udp/53, got "22/tpc"'],
    ['Host web1\n  Access tcp/22,\n', 'F:2: Access: empty item in "tcp/22,"'],
    ['Host web1\n  Sequence 7000,,8000\n', 'F:2: Sequence: expected PORT[:tcp|udp],... such as 7000,8000:udp,9000, got "7000,,8000"'],
    ['Host web1\n  Sequence 7000:icmp\n', 'F:2: Sequence: protocol must be tcp or udp, got "icmp"'],
    ['Host web1\n  Delay 1.5\n', 'F:2: Delay: expected milliseconds 0-60000, got "1.5"'],
    ['Host web1\n  AllowIP 1.2.3\n', 'F:2: AllowIP: expected an IPv4 or IPv6 address, auto or source, got "1.2.3"'],
    ['Host web1\n  StunServer stun.example.org:0\n', 'F:2: StunServer: expected a port 1-65535 after the host, got "stun.example.org:0"'],
    ['Host web1\n  StunServer bad_name\n', 'F:2: StunServer: expected HOST[:PORT] or [IPv6]:PORT, got "bad_name"'],
    ['Host web1\n  StunServer none, a.example\n', 'F:2: StunServer: none stands alone, got "none, a.example"'],
    ['Host web1\n  StunServer a.example\n  StunServer none\n', 'F:3: StunServer: none and a server cannot both be set in this Host entry (line 2)'],
    ['Host web1\n  AddressFamily ipv4\n', 'F:2: AddressFamily: expected any, inet or inet6, got "ipv4"'],
    ['Host web1\n  Key bad!id\n', 'F:2: Key: key id must be'],
    ['Host web1\n  Key a b\n', 'F:2: Key: expected one value, got 2'],
    ['Host web1\n  ServerKey spa1-server-pub:AAAA\n', 'F:2: ServerKey: a server public key: truncated (3 bytes, expected 36)'],
    ['Host web1\n  ServerKey spa1-client-pub:AAAA\n', 'F:2: ServerKey: expected a server public key (spa1-server-pub:...), got a client public key'],
    ['Host web1\n  HostName a b\n', 'F:2: HostName: expected one value, got 2'],
    ['Host web1\n  HostName %d.example\n', 'F:2: HostName: only %h (the host as typed) and %% may follow %, got "%d.example"'],
    ['Host web1\n  HostName\n', 'F:2: HostName: expected a value'],
    ['Host\n', 'F:1: Host: expected a value'],
    ['Host web1,web2\n', 'F:1: Host: patterns are separated by spaces, not commas, got "web1,web2"'],
    ['Host !\n', 'F:1: Host: empty pattern in "!"'],
    ['Match host web1\n', 'F:1: Match: not supported; use Host patterns (*, ?, !negation)'],
    ['Host a\n  Port 1\n  Port 2\n', 'F:3: Port: already set on line 2 in this Host entry'],
    ['Port 1\nPort 2\n', 'F:2: Port: already set on line 1 in this part (before any Host)'],
    ['Host a\n  Port "1\n', 'F:2: Port: unclosed double quote'],
    ['= x\n', 'F:1: expected KEYWORD VALUE, got "= x"'],
  ])('%j', (text, want) => {
    const got = errorsOf(text);
    expect(got).toHaveLength(1);
    expect(got[0]!.startsWith(want)).toBe(true);
  });

  it('reports every problem, not just the first', () => {
    expect(errorsOf('Host a\n Port x\n Bogus 1\n Delay -1\n')).toEqual([
      'F:2: Port: expected a UDP port 1-65535, got "x"',
      'F:3: Bogus: unknown keyword',
      'F:4: Delay: expected milliseconds 0-60000, got "-1"',
    ]);
  });

  it('the same keyword in two entries is not a duplicate (first match wins)', () => {
    expect(errorsOf('Host a\n Port 1\nHost *\n Port 2\n')).toEqual([]);
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (t) => {
        const r = parseProfileConfig(t, FILE, { homedir: HOME });
        if (r.ok) lookupProfile(r.config, 'web1');
        else for (const e of r.errors) expect(e.line).toBeGreaterThan(0);
      }),
    );
  });
});
