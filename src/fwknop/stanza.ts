// An access.conf stanza as the verifier uses it, and the global settings of fwknopd.conf
// that change a packet's fate (CONFIG.md §1.3, §2). Types only. Pure.
import type { Access } from '../net/access.js';
import type { DigestName, EncryptionMode } from './crypto.js';
import type { Net4 } from './ipv4.js';

export interface CmdCycle {
  /** CMD_CYCLE_OPEN, split on whitespace into argv; `$VAR`s are substituted per word. */
  readonly open: readonly string[];
  /** CMD_CYCLE_CLOSE; undefined for `NONE`. */
  readonly close: readonly string[] | undefined;
  /** CMD_CYCLE_TIMER seconds (required unless the close is NONE). */
  readonly timerSec: number | undefined;
}

export interface FwknopStanza {
  /** Where it starts (the SOURCE line), for logs and messages. */
  readonly file: string;
  readonly line: number;
  readonly sources: 'any' | readonly Net4[];
  readonly destinations: 'any' | readonly Net4[];
  /** KEY bytes, or KEY_BASE64 decoded: 1..32 bytes. */
  readonly key: Uint8Array;
  /** HMAC_KEY(_BASE64) bytes; undefined only with FWKNOP_ALLOW_NO_HMAC Y. */
  readonly hmacKey: Uint8Array | undefined;
  readonly hmacType: DigestName;
  readonly mode: EncryptionMode;
  /** OPEN_PORTS: every requested item must be listed; undefined = any. */
  readonly openPorts: readonly Access[] | undefined;
  /** RESTRICT_PORTS: no requested item may be listed. */
  readonly restrictPorts: readonly Access[];
  /** FW_ACCESS_TIMEOUT, default 30. */
  readonly accessTimeoutSec: number;
  /** MAX_FW_TIMEOUT, default 300: caps a client's timeout (message type 3). */
  readonly maxTimeoutSec: number;
  /** REQUIRE_SOURCE_ADDRESS: refuse allow IP 0.0.0.0 (`fwknop -s`). */
  readonly requireSourceAddress: boolean;
  /** REQUIRE_USERNAME: exact match. */
  readonly requireUsername: string | undefined;
  /** ACCESS_EXPIRE(_EPOCH): the stanza is ignored from this Unix second on. */
  readonly expireSec: number | undefined;
  readonly cmdCycle: CmdCycle | undefined;
}

export interface FwknopGlobals {
  /** ENABLE_SPA_PACKET_AGING, default Y. */
  readonly agingEnabled: boolean;
  /** MAX_SPA_PACKET_AGE, default 120: |now − timestamp| must not exceed it. */
  readonly maxAgeSec: number;
}

export const FWKNOP_DEFAULTS = {
  accessTimeoutSec: 30,
  maxTimeoutSec: 300,
  maxAgeSec: 120,
  port: 62201,
  hmacType: 'sha256',
} as const;
