// The parsed server configuration (spa.conf / knockd.conf): types, defaults and limits. Pure.
// One file in knockd's format: an [options] section and one section per door. A door is an SPA
// door (spa_keys) or a sequence door (sequence / one_time_sequences), never both.
import type { Access, Proto } from '../net/access.js';
import type { Address } from '../net/address.js';

/** One problem found in a config file, reported GNU style as `FILE:LINE: message`. */
export interface ConfigError {
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** Lowercase, no final period, starts with the directive name when there is one. */
  readonly message: string;
}

/** One knock of a sequence: a packet to `port` over `proto` (knockd's `7000` or `8000:udp`). */
export interface KnockPort {
  readonly proto: Proto;
  /** 1..65535 (knockd also takes 0, which `atoi` makes of any typo; we refuse it). */
  readonly port: number;
}

/** TCP flag bits as they are on the wire (RFC 9293 §3.1, low byte of the flags field). */
export const TCP_FLAG = { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20 } as const;
export type TcpFlagName = keyof typeof TCP_FLAG;

/**
 * knockd's `tcpflags`: a TCP packet counts for the door only if every bit of `set` is set and
 * every bit of `clear` is clear (`syn,!ack` -> set = SYN, clear = ACK). No tcpflags: both 0,
 * every TCP packet matches.
 */
export interface TcpFlagRule {
  readonly set: number;
  readonly clear: number;
}

export type FirewallName = 'nftables' | 'iptables' | 'ufw' | 'firewalld' | 'command';
export const FIREWALL_NAMES: readonly FirewallName[] = ['nftables', 'iptables', 'ufw', 'firewalld', 'command'];

/** Names a variable may have in a command line (`%IP%` ...). */
export type CommandVar = 'IP' | 'PROTO' | 'PORT' | 'ID' | 'DOOR';
/** Variables an SPA door's commands may use; one command runs per access item. */
export const SPA_COMMAND_VARS: readonly CommandVar[] = ['IP', 'PROTO', 'PORT', 'ID', 'DOOR'];
/** knockd 0.8 substitutes only %IP% (parse_cmd in knockd.c); so do we for sequence doors. */
export const SEQUENCE_COMMAND_VARS: readonly CommandVar[] = ['IP'];

export const DEFAULTS = {
  spaPort: 62201,
  stateDir: '/var/lib/spa',
  udpSocket: false,
  windowSec: 120,
  /** PROTOCOL.md §5.3: DEFAULT_REPLAY_PER_CLIENT, DEFAULT_REPLAY_TOTAL */
  replayPerClient: 1024,
  replayTotal: 1_000_000,
  closeOnExit: true,
  pcapBufferMb: 2,
  /**
   * PcapBufferMB's default when fwknop clients are served: their packets (base64 text, no
   * tag) cannot be checked in the kernel, so a flood of fwknop-shaped garbage reaches the ring.
   */
  pcapBufferMbFwknop: 64,
  /** UDP socket mode's receive buffer (capped by net.core.rmem_max). */
  udpBufferMb: 8,
  /** knockd.c SEQ_TIMEOUT */
  seqTimeoutSec: 25,
  /** knockd.c CMD_TIMEOUT */
  cmdTimeoutSec: 10,
} as const;

export const LIMITS = {
  /** knockd.c SEQ_MAX */
  sequencePorts: 32,
  windowSec: { min: 1, max: 86_400 },
  replayPerClient: { min: 16, max: 1_000_000 },
  replayTotal: { min: 1024, max: 100_000_000 },
  pcapBufferMb: { min: 1, max: 4096 },
  timeoutSec: { min: 0, max: 31_536_000 },
} as const;

/**
 * Where each directive was set (1-based line), keyed by the directive's canonical name as in
 * docs/CONFIGURATION.md (`SPAPort`, `seq_timeout`, `start_command` ...). An alias used in the
 * file (`command`, `timeout`) is recorded under the canonical name. Absent: not set (default).
 * `spa-server check` uses these to report problems found later (a missing key file) as FILE:LINE.
 */
export type DirectiveLines = Readonly<Record<string, number>>;

/** The [options] section (all of them merged when there are several). */
export interface Options {
  /** knockd: log through syslog. The daemon logs with pino; kept so that `check` can say so. */
  readonly useSyslog: boolean;
  /** knockd: log file path; undefined = not set. */
  readonly logFile: string | undefined;
  /** knockd: pid file path (knockd's default /var/run/knockd.pid applies only with -d). */
  readonly pidFile: string | undefined;
  /** Interface to capture on (knockd's default is eth0; the command line may override). */
  readonly interface: string | undefined;
  /** UDP port of SPA datagrams (sniffed, never bound unless udpSocket). Default 62201. */
  readonly spaPort: number;
  /** Path of the server's secret key file. Required when there is an SPA door. */
  readonly serverKey: string | undefined;
  /** Directory of the replay guard and the open-rule journal. Default /var/lib/spa. */
  readonly stateDir: string;
  /** Bind a UDP socket instead of capturing with libpcap. Default false. */
  readonly udpSocket: boolean;
  /** The address the UDP socket binds (UDPSocket = yes or --udp); undefined = every address. */
  readonly udpListen: Address | undefined;
  /** Freshness window, seconds each way. Default 120. */
  readonly windowSec: number;
  /** Replay guard capacity per client (PROTOCOL.md §5.3). Default 1024. */
  readonly replayPerClient: number;
  /** Replay guard capacity in all (PROTOCOL.md §5.3). Default 1,000,000. */
  readonly replayTotal: number;
  /** Default firewall backend for SPA doors that name none and have no start_command. */
  readonly firewall: FirewallName | undefined;
  /** Close open rules on SIGTERM. Default true. */
  readonly closeOnExit: boolean;
  /** libpcap buffer size in MiB. Default 64 (see DESIGN.md: 10 MB dropped under flood). */
  readonly pcapBufferMb: number;
  /** UDP socket mode: receive buffer size in MiB. Default 8 (the kernel caps it at net.core.rmem_max). */
  readonly udpBufferMb: number;
  /** Prometheus text file for node_exporter's textfile collector, rewritten every 10 s; undefined = none. */
  readonly metricsFile: string | undefined;
  readonly lines: DirectiveLines;
}

interface DoorBase {
  /** The section name, exactly as between the brackets. Unique in the file. */
  readonly name: string;
  /** Line of the `[name]` header. */
  readonly line: number;
  /** Shell command line run on open (knockd's start_command / command). May hold %VAR%s. */
  readonly startCommand: string | undefined;
  /**
   * For IPv6 knockers: knockd's start_command_6 / command_6. undefined = fall back to
   * startCommand; '' = run nothing for IPv6 (knockd: "use empty value to force doing nothing").
   */
  readonly startCommand6: string | undefined;
  /** Run cmdTimeoutSec after the start command; undefined = none. */
  readonly stopCommand: string | undefined;
  /** IPv6 stop command; undefined = fall back to stopCommand; '' = nothing. */
  readonly stopCommand6: string | undefined;
  /** Seconds between start and stop command. Default 10 (knockd). */
  readonly cmdTimeoutSec: number;
  readonly lines: DirectiveLines;
}

/** A door opened by one SPA datagram from a key listed in spaKeys. */
export interface SpaDoor extends DoorBase {
  readonly kind: 'spa';
  /** Path of the authorized-keys file (`<public key> <id>` lines); undefined: fwknop stanzas only. */
  readonly spaKeys: string | undefined;
  /** fwknop_access: an access.conf whose stanzas this door also serves (issue 14); undefined: none. */
  readonly fwknopAccess: string | undefined;
  /** What a knock may ask to open; never empty, no duplicates, in file order. */
  readonly access: readonly Access[];
  /** Accept an allow address other than the packet's source address. Default false. */
  readonly allowNat: boolean;
  /**
   * Accept a knock that asks to open for "the address this datagram arrives from" (the body's
   * family 0, `spa-knock --allow-ip source`). Default false: an on-path attacker who copies such
   * a knock to the server first, from his own address, gets the door opened for himself.
   */
  readonly allowSource: boolean;
  /**
   * Backend that opens and closes: the door's `firewall`, else `command` when the door has a
   * start_command, else [options] Firewall, else `command`. `command` means run the commands.
   */
  readonly firewall: FirewallName;
  /** Ask the backend to install the drop rule for `access` itself. Default false. */
  readonly protect: boolean;
}

/** A classic knockd door: a sequence of TCP/UDP port hits from one source address. */
export interface SequenceDoor extends DoorBase {
  readonly kind: 'sequence';
  /** The fixed sequence (`sequence =`); undefined when oneTimeSequences is used. */
  readonly sequence: readonly KnockPort[] | undefined;
  /** Path of the one-time sequences file (`one_time_sequences =`); undefined when fixed. */
  readonly oneTimeSequences: string | undefined;
  /** Seconds from the first knock within which the last one must come. Default 25. */
  readonly seqTimeoutSec: number;
  readonly tcpFlags: TcpFlagRule;
  /** knockd's `target`: match knocks sent to this address instead of the host's own ones. */
  readonly target: Address | undefined;
  /**
   * Ours, opt-in (default false): a repeat of the packet that matched the previous step
   * (a retransmitted SYN) is ignored instead of breaking the attempt (knock PR #90).
   */
  readonly ignoreDuplicates: boolean;
}

export type Door = SpaDoor | SequenceDoor;

export interface Config {
  /** The file name given to the parser, used in every message. */
  readonly file: string;
  readonly options: Options;
  /** In file order. */
  readonly doors: readonly Door[];
}

export type ParseResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly errors: readonly ConfigError[] };
