// The firewall backends by name, and what a daemon needs from them. Pure. run.ts is the shell.
import { commandBackend, type CommandOptions } from './command.js';
import { firewalldBackend, type FirewalldOptions } from './firewalld.js';
import { iptablesBackend, type IptablesOptions } from './iptables.js';
import { nftablesBackend, type NftablesOptions } from './nftables.js';
import type { Backend } from './types.js';
import { ufwBackend, type UfwOptions } from './ufw.js';

export type BackendConfig =
  | { readonly name: 'nftables'; readonly options?: NftablesOptions }
  | { readonly name: 'iptables'; readonly options?: IptablesOptions }
  | { readonly name: 'ufw'; readonly options?: UfwOptions }
  | { readonly name: 'firewalld'; readonly options?: FirewalldOptions }
  | { readonly name: 'command'; readonly options: CommandOptions };

/** Builds a backend; throws RangeError on options no backend could use. */
export function makeBackend(config: BackendConfig): Backend {
  switch (config.name) {
    case 'nftables':
      return nftablesBackend(config.options);
    case 'iptables':
      return iptablesBackend(config.options);
    case 'ufw':
      return ufwBackend(config.options);
    case 'firewalld':
      return firewalldBackend(config.options);
    case 'command':
      return commandBackend(config.options);
  }
}

export { commandBackend, commandValues, substituteCommand, type CommandOptions, type DoorCommands } from './command.js';
export { firewalldBackend, type FirewalldOptions } from './firewalld.js';
export { iptablesBackend, type IptablesOptions } from './iptables.js';
export { nftablesBackend, type NftablesOptions } from './nftables.js';
export { ufwBackend, UFW_PROTECT_COMMENT, type UfwOptions } from './ufw.js';
export * from './types.js';
