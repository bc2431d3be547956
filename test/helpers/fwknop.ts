// Test helper: fresh keys from the real fwknop client (`fwknop --key-gen`).
import { execFileSync } from 'node:child_process';

export interface FwknopKeys {
  /** KEY_BASE64. */
  key: string;
  /** HMAC_KEY_BASE64. */
  hmac: string;
}

export function keyGen(extra: string[] = []): FwknopKeys {
  const out = execFileSync('fwknop', ['--key-gen', '--no-rc-file', '--no-save-args', ...extra], { encoding: 'utf8' });
  return { key: /KEY_BASE64:\s*(\S+)/.exec(out)?.[1] as string, hmac: /HMAC_KEY_BASE64:\s*(\S+)/.exec(out)?.[1] as string };
}
