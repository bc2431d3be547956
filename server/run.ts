// `spa-server run`: the daemon in the foreground with its signals. Shell.
import { Daemon } from './daemon.js';
import { createLogger } from './log.js';

export interface RunOptions {
  readonly configFile: string;
  readonly iface: string | undefined;
  readonly udp: boolean;
  readonly pretty: boolean;
  readonly debug: boolean;
}

/** Starts the daemon and resolves once a SIGTERM or SIGINT has shut it down cleanly. */
export async function runDaemon(o: RunOptions): Promise<void> {
  const log = createLogger({ pretty: o.pretty, level: o.debug ? 'debug' : 'info' });
  const daemon = new Daemon({ configFile: o.configFile, iface: o.iface, udp: o.udp, log });
  // The handlers go in before start(): a SIGTERM that arrives once `started` is logged (a
  // supervisor that stops at once) must shut down cleanly, not kill the process by default.
  let started = false;
  let stopAsked: string | undefined;
  let stop: (signal: string) => void = (signal) => {
    stopAsked ??= signal;
  };
  // SIGHUP and `spa-server reload` share Daemon.reload; it logs its own outcome.
  const hup = (): void => {
    if (started) void daemon.reload().catch((e: unknown) => log.error({ error: (e as Error).message }, 'reload failed'));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', hup);
  try {
    await daemon.start();
  } catch (e) {
    process.off('SIGHUP', hup);
    throw e;
  }
  started = true;
  await new Promise<void>((resolve) => {
    stop = (signal: string): void => {
      log.info({ signal }, 'stopping');
      process.off('SIGHUP', hup);
      void daemon.shutdown().then(resolve, (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        resolve();
      });
    };
    if (stopAsked !== undefined) stop(stopAsked);
  });
}
