// The exact argv every firewall backend returns, IPv4 and IPv6, and the checks that keep
// anything unvalidated out of argv and out of the shell. Also runArgv/applyAll on real
// harmless commands (sh, true, false): no mocks.
import { describe, expect, it } from 'vitest';
import { parseAddress, type Address } from '../../src/net/address.js';
import {
  checkOpening,
  commandBackend,
  firewalldBackend,
  iptablesBackend,
  makeBackend,
  nftablesBackend,
  substituteCommand,
  ufwBackend,
  type DoorCommands,
  type DoorRules,
  type Opening,
} from '../../server/firewall/index.js';
import { applyAll, argvText, runArgv } from '../../server/firewall/run.js';

function addr(s: string): Address {
  const a = parseAddress(s);
  if (!a) throw new Error(s);
  return a;
}

const o4: Opening = { door: 'ssh', id: 'alice@laptop', addr: addr('192.0.2.7'), access: { proto: 'tcp', port: 22 }, timeoutSec: 30 };
const o6: Opening = { door: 'dns', id: 'bob', addr: addr('2001:DB8:0:0:0:0:0:9'), access: { proto: 'udp', port: 53 }, timeoutSec: 45 };
const doors: DoorRules[] = [
  { door: 'ssh', protect: true, access: [{ proto: 'tcp', port: 22 }, { proto: 'udp', port: 53 }] },
  { door: 'web', protect: true, access: [{ proto: 'tcp', port: 443 }, { proto: 'tcp', port: 22 }] },
  { door: 'open', protect: false, access: [{ proto: 'tcp', port: 8080 }] },
];
const argvs = (steps: { argv: readonly string[] }[]): (readonly string[])[] => steps.map((s) => s.argv);

describe('nftables', () => {
  const b = nftablesBackend();
  it('setup: table, timeout sets, chain before filter, conntrack, set lookups, drops of protected ports', () => {
    expect(argvs(b.setup(doors))).toEqual([
      [
        'nft',
        'add table inet spa; ' +
          'add set inet spa allow4 { type ipv4_addr . inet_proto . inet_service ; flags timeout ; }; ' +
          'add set inet spa allow6 { type ipv6_addr . inet_proto . inet_service ; flags timeout ; }; ' +
          'add chain inet spa input { type filter hook input priority -10 ; policy accept ; }; ' +
          'flush chain inet spa input; ' +
          'add rule inet spa input ct state established,related accept; ' +
          'add rule inet spa input ip saddr . meta l4proto . th dport @allow4 accept; ' +
          'add rule inet spa input ip6 saddr . meta l4proto . th dport @allow6 accept; ' +
          'add rule inet spa input tcp dport { 22, 443 } drop; ' +
          'add rule inet spa input udp dport { 53 } drop',
      ],
    ]);
  });
  it('setup without protect drops nothing', () => {
    const [only] = argvs(b.setup([{ door: 'x', protect: false, access: [{ proto: 'tcp', port: 22 }] }]));
    expect(only?.[1]).not.toMatch(/drop|ct state/);
    expect(only?.[1]).toMatch(/@allow4 accept; add rule inet spa input ip6 saddr . meta l4proto . th dport @allow6 accept$/);
  });
  it('open and extend set the element with the kernel timeout, in one transaction', () => {
    const v4 = [
      'nft',
      'add element inet spa allow4 { 192.0.2.7 . tcp . 22 timeout 1s }; ' +
        'delete element inet spa allow4 { 192.0.2.7 . tcp . 22 }; ' +
        'add element inet spa allow4 { 192.0.2.7 . tcp . 22 timeout 30s }',
    ];
    expect(argvs(b.open(o4))).toEqual([v4]);
    expect(argvs(b.extend(o4))).toEqual([v4]);
    expect(argvs(b.open(o6))).toEqual([
      [
        'nft',
        'add element inet spa allow6 { 2001:db8::9 . udp . 53 timeout 1s }; ' +
          'delete element inet spa allow6 { 2001:db8::9 . udp . 53 }; ' +
          'add element inet spa allow6 { 2001:db8::9 . udp . 53 timeout 45s }',
      ],
    ]);
  });
  it('close deletes the element, also when it has already expired or the table is gone', () => {
    expect(argvs(b.close(o4))).toEqual([
      ['nft', 'add table inet spa; add set inet spa allow4 { type ipv4_addr . inet_proto . inet_service ; flags timeout ; }; add element inet spa allow4 { 192.0.2.7 . tcp . 22 timeout 1s }; delete element inet spa allow4 { 192.0.2.7 . tcp . 22 }'],
    ]);
    expect(argvs(b.close(o6))).toEqual([
      ['nft', 'add table inet spa; add set inet spa allow6 { type ipv6_addr . inet_proto . inet_service ; flags timeout ; }; add element inet spa allow6 { 2001:db8::9 . udp . 53 timeout 1s }; delete element inet spa allow6 { 2001:db8::9 . udp . 53 }'],
    ]);
  });
  it('teardown deletes only its own table, even when it is not there', () => {
    expect(argvs(b.teardown(doors))).toEqual([['nft', 'add table inet spa; delete table inet spa']]);
  });
  it('takes another binary, table and priority; refuses names that are not plain', () => {
    const c = nftablesBackend({ bin: '/usr/sbin/nft', table: 'spa_test', priority: -5 });
    expect(argvs(c.teardown([]))).toEqual([['/usr/sbin/nft', 'add table inet spa_test; delete table inet spa_test']]);
    expect(c.setup([])[0]?.argv[1]).toContain('priority -5 ;');
    expect(() => nftablesBackend({ table: 'spa; flush ruleset' })).toThrow(RangeError);
    expect(() => nftablesBackend({ priority: 1.5 })).toThrow(RangeError);
  });
});

describe('iptables', () => {
  const b = iptablesBackend();
  const rule4 = ['-s', '192.0.2.7', '-p', 'tcp', '--dport', '22', '-m', 'comment', '--comment', 'spa:ssh:alice@laptop', '-j', 'ACCEPT'];
  const rule6 = ['-s', '2001:db8::9', '-p', 'udp', '--dport', '53', '-m', 'comment', '--comment', 'spa:dns:bob', '-j', 'ACCEPT'];
  it('setup: chain SPA, an atomic rebuild of SPA-PROTECT, jumps guarded by -C, both families', () => {
    const restore = (bin: string) => ({
      argv: [`${bin}-restore`, '-w', '5', '--noflush'],
      stdin:
        '*filter\n:SPA-PROTECT - [0:0]\n' +
        '-A SPA-PROTECT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n' +
        '-A SPA-PROTECT -p tcp -m tcp --dport 22 -j DROP\n' +
        '-A SPA-PROTECT -p udp -m udp --dport 53 -j DROP\n' +
        '-A SPA-PROTECT -p tcp -m tcp --dport 443 -j DROP\n' +
        'COMMIT\n',
    });
    const family = (bin: string) => [
      { argv: [bin, '-w', '5', '-N', 'SPA'], when: { probe: { argv: [bin, '-w', '5', '-n', '-L', 'SPA'], absentCodes: [1] }, is: 'absent' } },
      restore(bin),
      {
        argv: [bin, '-w', '5', '-A', 'SPA', '-j', 'SPA-PROTECT'],
        when: { probe: { argv: [bin, '-w', '5', '-C', 'SPA', '-j', 'SPA-PROTECT'], absentCodes: [1] }, is: 'absent' },
      },
      {
        argv: [bin, '-w', '5', '-I', 'INPUT', '1', '-j', 'SPA'],
        when: { probe: { argv: [bin, '-w', '5', '-C', 'INPUT', '-j', 'SPA'], absentCodes: [1] }, is: 'absent' },
      },
    ];
    expect(b.setup(doors)).toEqual([...family('iptables'), ...family('ip6tables')]);
  });
  it('setup without protect leaves SPA-PROTECT empty', () => {
    expect(b.setup([])[1]?.stdin).toBe('*filter\n:SPA-PROTECT - [0:0]\nCOMMIT\n');
  });
  it('open and extend insert one commented ACCEPT at the top of SPA unless it is there', () => {
    const v4 = [{ argv: ['iptables', '-w', '5', '-I', 'SPA', '1', ...rule4], when: { probe: { argv: ['iptables', '-w', '5', '-C', 'SPA', ...rule4], absentCodes: [1] }, is: 'absent' } }];
    expect(b.open(o4)).toEqual(v4);
    expect(b.extend(o4)).toEqual(v4);
    expect(b.open(o6)).toEqual([
      { argv: ['ip6tables', '-w', '5', '-I', 'SPA', '1', ...rule6], when: { probe: { argv: ['ip6tables', '-w', '5', '-C', 'SPA', ...rule6], absentCodes: [1] }, is: 'absent' } },
    ]);
  });
  it('close deletes the rule if it is there', () => {
    expect(b.close(o4)).toEqual([
      { argv: ['iptables', '-w', '5', '-D', 'SPA', ...rule4], when: { probe: { argv: ['iptables', '-w', '5', '-C', 'SPA', ...rule4], absentCodes: [1] }, is: 'present' } },
    ]);
    expect(b.close(o6)).toEqual([
      { argv: ['ip6tables', '-w', '5', '-D', 'SPA', ...rule6], when: { probe: { argv: ['ip6tables', '-w', '5', '-C', 'SPA', ...rule6], absentCodes: [1] }, is: 'present' } },
    ]);
  });
  it('teardown removes the jump and its two chains, each only if there', () => {
    const family = (bin: string) => {
      const exists = (c: string) => ({ argv: [bin, '-w', '5', '-n', '-L', c], absentCodes: [1] });
      return [
        { argv: [bin, '-w', '5', '-D', 'INPUT', '-j', 'SPA'], when: { probe: { argv: [bin, '-w', '5', '-C', 'INPUT', '-j', 'SPA'], absentCodes: [1, 2] }, is: 'present' } },
        { argv: [bin, '-w', '5', '-F', 'SPA'], when: { probe: exists('SPA'), is: 'present' } },
        { argv: [bin, '-w', '5', '-X', 'SPA'], when: { probe: exists('SPA'), is: 'present' } },
        { argv: [bin, '-w', '5', '-F', 'SPA-PROTECT'], when: { probe: exists('SPA-PROTECT'), is: 'present' } },
        { argv: [bin, '-w', '5', '-X', 'SPA-PROTECT'], when: { probe: exists('SPA-PROTECT'), is: 'present' } },
      ];
    };
    expect(b.teardown(doors)).toEqual([...family('iptables'), ...family('ip6tables')]);
  });
  it('takes legacy binaries and another chain; refuses odd names', () => {
    const c = iptablesBackend({ bin4: 'iptables-legacy', bin6: 'ip6tables-legacy', chain: 'KNOCK', waitSec: 2 });
    expect(c.setup([])[1]?.argv).toEqual(['iptables-legacy-restore', '-w', '2', '--noflush']);
    expect(c.open(o6)[0]?.argv.slice(0, 6)).toEqual(['ip6tables-legacy', '-w', '2', '-I', 'KNOCK', '1']);
    expect(() => iptablesBackend({ chain: '-F' })).toThrow(RangeError);
    expect(() => iptablesBackend({ waitSec: 0 })).toThrow(RangeError);
  });
});

describe('ufw', () => {
  const b = ufwBackend();
  it('open and extend prepend an allow with a comment', () => {
    const v4 = [['ufw', 'prepend', 'allow', 'proto', 'tcp', 'from', '192.0.2.7', 'to', 'any', 'port', '22', 'comment', 'spa:ssh:alice@laptop']];
    expect(argvs(b.open(o4))).toEqual(v4);
    expect(argvs(b.extend(o4))).toEqual(v4);
    expect(argvs(b.open(o6))).toEqual([['ufw', 'prepend', 'allow', 'proto', 'udp', 'from', '2001:db8::9', 'to', 'any', 'port', '53', 'comment', 'spa:dns:bob']]);
  });
  it('close deletes the allow', () => {
    expect(argvs(b.close(o4))).toEqual([['ufw', 'delete', 'allow', 'proto', 'tcp', 'from', '192.0.2.7', 'to', 'any', 'port', '22']]);
    expect(argvs(b.close(o6))).toEqual([['ufw', 'delete', 'allow', 'proto', 'udp', 'from', '2001:db8::9', 'to', 'any', 'port', '53']]);
  });
  it('setup denies each protected port once, teardown deletes those denies', () => {
    expect(argvs(b.setup(doors))).toEqual([
      ['ufw', 'deny', 'proto', 'tcp', 'to', 'any', 'port', '22', 'comment', 'spa:protect'],
      ['ufw', 'deny', 'proto', 'udp', 'to', 'any', 'port', '53', 'comment', 'spa:protect'],
      ['ufw', 'deny', 'proto', 'tcp', 'to', 'any', 'port', '443', 'comment', 'spa:protect'],
    ]);
    expect(argvs(b.teardown(doors))).toEqual([
      ['ufw', 'delete', 'deny', 'proto', 'tcp', 'to', 'any', 'port', '22'],
      ['ufw', 'delete', 'deny', 'proto', 'udp', 'to', 'any', 'port', '53'],
      ['ufw', 'delete', 'deny', 'proto', 'tcp', 'to', 'any', 'port', '443'],
    ]);
    expect(b.setup([{ door: 'x', protect: false, access: [{ proto: 'tcp', port: 22 }] }])).toEqual([]);
  });
});

describe('firewalld', () => {
  const b = firewalldBackend();
  const accept4 = 'rule priority="-10" family="ipv4" source address="192.0.2.7" port port="22" protocol="tcp" accept';
  const accept6 = 'rule priority="-10" family="ipv6" source address="2001:db8::9" port port="53" protocol="udp" accept';
  it('open adds a runtime rich rule with firewalld\'s own timeout', () => {
    expect(argvs(b.open(o4))).toEqual([['firewall-cmd', `--add-rich-rule=${accept4}`, '--timeout=30s']]);
    expect(argvs(b.open(o6))).toEqual([['firewall-cmd', `--add-rich-rule=${accept6}`, '--timeout=45s']]);
  });
  it('extend removes and adds again (an add keeps the old timeout)', () => {
    expect(argvs(b.extend(o4))).toEqual([
      ['firewall-cmd', `--remove-rich-rule=${accept4}`],
      ['firewall-cmd', `--add-rich-rule=${accept4}`, '--timeout=30s'],
    ]);
  });
  it('close removes the rich rule', () => {
    expect(argvs(b.close(o6))).toEqual([['firewall-cmd', `--remove-rich-rule=${accept6}`]]);
  });
  it('setup drops protected ports in both families just after the accepts; teardown removes them', () => {
    const drop = (f: string, proto: string, port: number) => `rule priority="-9" family="${f}" port port="${port}" protocol="${proto}" drop`;
    const rules = [drop('ipv4', 'tcp', 22), drop('ipv6', 'tcp', 22), drop('ipv4', 'udp', 53), drop('ipv6', 'udp', 53), drop('ipv4', 'tcp', 443), drop('ipv6', 'tcp', 443)];
    expect(argvs(b.setup(doors))).toEqual(rules.map((r) => ['firewall-cmd', `--add-rich-rule=${r}`]));
    expect(argvs(b.teardown(doors))).toEqual(rules.map((r) => ['firewall-cmd', `--remove-rich-rule=${r}`]));
  });
  it('takes a zone and a priority; refuses odd ones', () => {
    const c = firewalldBackend({ zone: 'drop', priority: -100 });
    expect(argvs(c.close(o4))).toEqual([['firewall-cmd', '--zone=drop', `--remove-rich-rule=${accept4.replace('-10', '-100')}`]]);
    expect(() => firewalldBackend({ zone: 'a b' })).toThrow(RangeError);
    expect(() => firewalldBackend({ priority: 0 })).toThrow(RangeError);
  });
});

describe('command', () => {
  const cmds = (c: Partial<DoorCommands>): DoorCommands => ({ startCommand: undefined, startCommand6: undefined, stopCommand: undefined, stopCommand6: undefined, ...c });
  it('substitutes validated values into the door\'s lines, run by /bin/sh -c', () => {
    const b = commandBackend({
      commands: cmds({ startCommand: 'iptables -I INPUT -s %IP% -p %PROTO% --dport %PORT% -j ACCEPT # %ID% %DOOR%', stopCommand: 'logger closed %IP% %ID%' }),
    });
    expect(argvs(b.open(o4))).toEqual([['/bin/sh', '-c', 'iptables -I INPUT -s 192.0.2.7 -p tcp --dport 22 -j ACCEPT # alice@laptop ssh']]);
    expect(argvs(b.close(o6))).toEqual([['/bin/sh', '-c', 'logger closed 2001:db8::9 bob']]);
    expect(b.extend(o4)).toEqual([]);
    expect(b.setup(doors)).toEqual([]);
    expect(b.teardown(doors)).toEqual([]);
  });
  it('uses the *_6 lines for IPv6, with knockd\'s fallback and its empty value meaning nothing', () => {
    const b = commandBackend({ commands: cmds({ startCommand: 'open4 %IP%', startCommand6: 'open6 %IP%', stopCommand: 'close %IP%' }) });
    expect(argvs(b.open(o6))).toEqual([['/bin/sh', '-c', 'open6 2001:db8::9']]);
    expect(argvs(b.close(o6))).toEqual([['/bin/sh', '-c', 'close 2001:db8::9']]);
    const none6 = commandBackend({ commands: cmds({ startCommand: 'open4 %IP%', startCommand6: '', stopCommand: 'close %IP%' }) });
    expect(none6.open(o6)).toEqual([]);
    expect(none6.close(o6)).toEqual([]);
    expect(argvs(none6.open(o4))).toEqual([['/bin/sh', '-c', 'open4 192.0.2.7']]);
  });
  it('has nothing to close without a stop command; other percent signs pass through', () => {
    const b = commandBackend({ commands: cmds({ startCommand: 'date +%Y%m%d; echo %IP%' }) });
    expect(b.close(o4)).toEqual([]);
    expect(argvs(b.open(o4))).toEqual([['/bin/sh', '-c', 'date +%Y%m%d; echo 192.0.2.7']]);
  });
  it('takes any door name (knockd sections are free text) but never puts an unsafe one in the line', () => {
    const b = commandBackend({ commands: cmds({ startCommand: 'open %IP%', stopCommand: 'close %DOOR%' }) });
    const spaced = { ...o4, door: 'open SSH; now' };
    expect(argvs(b.open(spaced))).toEqual([['/bin/sh', '-c', 'open 192.0.2.7']]);
    expect(() => b.close(spaced)).toThrow(/no value for %DOOR%/);
    expect(substituteCommand('x %DOOR%', { ...o4, door: 'web-1.a' })).toBe('x web-1.a');
  });
});

describe('validation: nothing unchecked reaches argv or a shell', () => {
  const hostile: [string, Opening][] = [
    ['door with a space', { ...o4, door: 'ssh; reboot' }],
    ['door that looks like an option', { ...o4, door: '-F' }],
    ['door too long', { ...o4, door: 'd'.repeat(65) }],
    ['id with a $', { ...o4, id: '$(reboot)' }],
    ['id empty', { ...o4, id: '' }],
    ['address not canonical', { ...o4, addr: { family: 6, bytes: new Uint8Array(16), text: '0:0::0' } }],
    ['address text that is not an address', { ...o4, addr: { family: 4, bytes: new Uint8Array(4), text: '1.2.3.4; reboot' } }],
    ['family that lies', { ...o4, addr: { ...addr('10.0.0.1'), family: 6 } }],
    ['proto', { ...o4, access: { proto: 'icmp' as 'tcp', port: 22 } }],
    ['port 0', { ...o4, access: { proto: 'tcp', port: 0 } }],
    ['port too big', { ...o4, access: { proto: 'tcp', port: 65536 } }],
    ['port not whole', { ...o4, access: { proto: 'tcp', port: 22.5 } }],
    ['timeout 0', { ...o4, timeoutSec: 0 }],
    ['timeout not whole', { ...o4, timeoutSec: 1.5 }],
    ['timeout too long', { ...o4, timeoutSec: 31_536_001 }],
  ];
  const backends = [
    nftablesBackend(),
    iptablesBackend(),
    ufwBackend(),
    firewalldBackend(),
    commandBackend({ commands: { startCommand: 'echo %IP%', startCommand6: undefined, stopCommand: 'echo %IP%', stopCommand6: undefined } }),
  ];
  it.each(hostile)('%s: every backend throws RangeError on open, extend, close', (name, bad) => {
    expect(checkOpening(bad)).toBeTypeOf('string');
    // The command backend takes any door name: it substitutes it only when shell-safe (above).
    for (const b of name.startsWith('door') ? backends.slice(0, 4) : backends) {
      expect(() => b.open(bad), b.name).toThrow(RangeError);
      expect(() => b.extend(bad), b.name).toThrow(RangeError);
      expect(() => b.close(bad), b.name).toThrow(RangeError);
    }
  });
  it('accepts the good openings', () => {
    expect(checkOpening(o4)).toBeUndefined();
    expect(checkOpening(o6)).toBeUndefined();
  });
  it('refuses a bad door or port in setup and teardown', () => {
    for (const b of backends.slice(0, 4)) {
      expect(() => b.setup([{ door: 'a b', protect: true, access: [] }])).toThrow(RangeError);
      expect(() => b.teardown([{ door: 'ok', protect: true, access: [{ proto: 'tcp', port: 0 }] }])).toThrow(RangeError);
    }
  });
});

describe('makeBackend', () => {
  it('builds each backend by name', () => {
    expect(makeBackend({ name: 'nftables' }).name).toBe('nftables');
    expect(makeBackend({ name: 'iptables' }).name).toBe('iptables');
    expect(makeBackend({ name: 'ufw' }).name).toBe('ufw');
    expect(makeBackend({ name: 'firewalld', options: { zone: 'public' } }).name).toBe('firewalld');
    expect(makeBackend({ name: 'command', options: { commands: { startCommand: 'true', startCommand6: undefined, stopCommand: undefined, stopCommand6: undefined } } }).name).toBe('command');
  });
});

describe('runArgv', () => {
  it('runs argv without a shell and reports success', async () => {
    expect(await runArgv(['true'])).toEqual({ ok: true, code: 0, stderr: '' });
    // No shell: the ; and $ are just bytes of one argument to printf.
    const r = await runArgv(['sh', '-c', 'printf %s "$1" >&2', 'sh', 'a; echo $HOME']);
    expect(r.stderr).toBe('a; echo $HOME');
  });
  it('reports an exit status with the command\'s stderr', async () => {
    expect(await runArgv(['sh', '-c', 'echo "no such chain" >&2; exit 3'])).toEqual({ ok: false, code: 3, stderr: 'no such chain', failure: 'exit' });
    expect(await runArgv(['false'])).toEqual({ ok: false, code: 1, stderr: 'false: exit status 1', failure: 'exit' });
  });
  it('a missing tool is a result, not a throw', async () => {
    expect(await runArgv(['nft-surely-not-installed', 'list', 'ruleset'])).toEqual({
      ok: false,
      code: null,
      stderr: 'nft-surely-not-installed: command not found',
      failure: 'not-found',
    });
    expect(await runArgv([])).toMatchObject({ ok: false, failure: 'spawn' });
  });
  it('kills a command that outlives its deadline', async () => {
    const r = await runArgv(['sleep', '5'], { timeoutMs: 100 });
    expect(r).toEqual({ ok: false, code: null, stderr: 'sleep: timed out after 100 ms', failure: 'timeout' });
  });
  it('keeps a bounded amount of stderr and lets the command finish', async () => {
    const r = await runArgv(['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x >&2; exit 0'], { stderrLimitBytes: 10 });
    expect(r.ok).toBe(true);
    expect(r.stderr).toBe('xxxxxxxxxx\n[99990 more bytes of stderr not kept]');
  });
  it('feeds stdin', async () => {
    expect(await runArgv(['sh', '-c', 'cat >&2'], { stdin: '*filter\nCOMMIT\n' })).toMatchObject({ ok: true, stderr: '*filter\nCOMMIT' });
  });
});

describe('applyAll', () => {
  it('runs steps in order and stops at the first failure, saying which', async () => {
    const r = await applyAll([{ argv: ['true'] }, { argv: ['sh', '-c', 'echo refused >&2; exit 4'] }, { argv: ['sh', '-c', 'echo never >&2'] }]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failedIndex).toBe(1);
    expect(r.failedPart).toBe('step');
    expect(r.result).toMatchObject({ code: 4, stderr: 'refused' });
    expect(r.outcomes).toHaveLength(2);
    expect(r.message).toBe("sh -c 'echo refused >&2; exit 4': refused");
  });
  it('follows probes: absent runs a create, present runs a delete, and the reverse skips', async () => {
    const absent = { argv: ['false'], absentCodes: [1] };
    const present = { argv: ['true'], absentCodes: [1] };
    const r = await applyAll([
      { argv: ['true'], when: { probe: absent, is: 'absent' } },
      { argv: ['true'], when: { probe: present, is: 'absent' } },
      { argv: ['true'], when: { probe: present, is: 'present' } },
      { argv: ['true'], when: { probe: absent, is: 'present' } },
    ]);
    expect(r.ok).toBe(true);
    expect(r.outcomes.map((x) => x.ran)).toEqual([true, false, true, false]);
  });
  it('a probe that fails otherwise (a missing tool, another code) fails the step without running it', async () => {
    const r = await applyAll([{ argv: ['true'], when: { probe: { argv: ['sh', '-c', 'exit 2'], absentCodes: [1] }, is: 'absent' } }]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failedPart).toBe('probe');
      expect(r.outcomes).toEqual([]);
    }
    const m = await applyAll([{ argv: ['true'], when: { probe: { argv: ['iptables-surely-missing', '-C'], absentCodes: [1] }, is: 'present' } }]);
    expect(m.ok).toBe(false);
    if (!m.ok) expect(m.message).toBe('iptables-surely-missing -C: iptables-surely-missing: command not found');
  });
  it('runs a command line only as the words it was given', async () => {
    // The command backend's line goes to sh -c as one argument; the values in it are validated.
    const [s] = commandBackend({ commands: { startCommand: 'printf "%s|" %IP% %ID% >&2', startCommand6: undefined, stopCommand: undefined, stopCommand6: undefined } }).open(o6);
    const r = await applyAll([s!]);
    expect(r.ok).toBe(true);
    expect(r.outcomes[0]?.result?.stderr).toBe('2001:db8::9|bob|');
  });
  it('argvText quotes what a shell would split', () => {
    expect(argvText(['nft', 'add table inet spa', "it's"])).toBe(`nft 'add table inet spa' 'it'\\''s'`);
  });
});
