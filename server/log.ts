// The daemon's pino logger: JSON lines to stdout, or readable lines with --pretty or a TTY. Shell.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { pretty: boolean; level?: string; destination?: NodeJS.WritableStream }): Logger {
  const base = {
    level: opts.level ?? 'info',
    base: { svc: 'spa-server' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secret material never reaches a log call; these paths are a second line of defence.
    redact: { paths: ['secret', '*.secret', 'key.secret', 'payload'], censor: '[redacted]' },
  };
  if (opts.pretty) {
    return pino(base, prettyStream(opts.destination ?? process.stdout));
  }
  return pino(base, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 1, sync: true }));
}

/** A dependency-free human format: `TIME LEVEL msg key=value ...`. */
function prettyStream(out: NodeJS.WritableStream): pino.DestinationStream {
  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
  return {
    write(line: string): void {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { time, level, msg, svc: _svc, ...rest } = o;
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      out.write(`${String(time)} ${levels[level as number] ?? String(level)} ${String(msg)}${fields ? ` ${fields}` : ''}\n`);
    },
  };
}
