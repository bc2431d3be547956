// spa-knock proxy: ssh's ProxyCommand. Knock, connect as soon as the door opens, then relay
// stdin -> socket and socket -> stdout until either side closes. Nothing but relayed bytes
// ever goes to stdout. Shell.
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { SystemError } from '../src/errors.js';

/**
 * Relays until the connection closes. End of input half-closes the socket (the server may
 * still answer); the server closing its side ends the relay. Resolves when the socket is
 * closed; rejects with a SystemError if the connection breaks.
 */
export function relay(label: string, socket: Socket, input: Readable, output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let broken: Error | undefined;
    const onOutputError = (): void => {
      // The reader went away (ssh exited): nothing left to relay to.
      socket.destroy();
    };
    output.on('error', onOutputError);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      broken = new SystemError('net', `${label}: connection lost (${e.code ?? e.message})`, { cause: e });
    });
    socket.pipe(output, { end: false });
    input.pipe(socket);
    socket.once('close', () => {
      input.unpipe(socket);
      socket.unpipe(output);
      output.off('error', onOutputError);
      // stdin may stay open (ssh holds the pipe): stop reading so the process can exit.
      input.pause();
      input.destroy();
      if (broken) reject(broken);
      else resolve();
    });
  });
}
