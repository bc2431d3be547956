// spa-knock proxy: ssh's ProxyCommand. Knock, connect as soon as the door opens, then relay
// stdin -> socket and socket -> stdout until either side closes. Nothing but relayed bytes
// ever goes to stdout. Shell.
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { SystemError } from '../src/errors.js';

/**
 * What the relay reads: a stream, or a file descriptor (stdin) read directly when it is a pipe
 * or a socket, as it is under ssh; otherwise (a terminal, a file) the stream from `fallback`.
 */
export type RelayInput = Readable | { readonly fd: number; fallback(): Readable };

/** Stops reading (stdin may stay open, ssh holds the pipe) so that the process can exit. */
interface Reading {
  stop(): void;
}

const READ_BYTES = 64 * 1024;

/**
 * Relays until the connection closes. End of input half-closes the socket (the server may
 * still answer); the server closing its side ends the relay. Resolves when the socket is
 * closed; rejects with a SystemError if the connection breaks.
 */
export function relay(label: string, socket: Socket, input: RelayInput, output: Writable): Promise<void> {
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
    const reading = 'fd' in input ? (readFd(input.fd, socket) ?? pipeStream(input.fallback(), socket)) : pipeStream(input, socket);
    socket.once('close', () => {
      reading.stop();
      socket.unpipe(output);
      output.off('error', onOutputError);
      if (broken) reject(broken);
      else resolve();
    });
  });
}

function pipeStream(input: Readable, socket: Socket): Reading {
  input.pipe(socket);
  return {
    stop() {
      input.unpipe(socket);
      input.pause();
      input.destroy();
    },
  };
}

/**
 * Reads a pipe or socket descriptor into one buffer, used again for every read: a stream's
 * pipe() allocates a buffer per read, and with a writer of small chunks (ssh, `head -c`) that
 * garbage and its collection cost the relay 20-30% of its CPU (docs/BENCHMARKS.md).
 * The socket takes each read at once (the kernel copies it) or reading waits until it has.
 * undefined when fd is neither (a terminal, a file).
 */
function readFd(fd: number, socket: Socket): Reading | undefined {
  const buf = Buffer.allocUnsafe(READ_BYTES);
  let waiting = false;
  let reader: Socket | undefined;
  const written = (): void => {
    if (waiting) {
      waiting = false;
      reader?.resume();
    }
  };
  // The constructor reads `onread` as socket.connect() does (node's lib/net.js); @types/node
  // lists it for connect() only, hence the options in a variable of their own.
  const options = {
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: buf,
      callback: (n: number): boolean => {
        if (!socket.writable) {
          reader?.pause();
          return false;
        }
        socket.write(buf.subarray(0, n), written);
        if (socket.writableLength === 0) return true;
        waiting = true;
        reader?.pause();
        return false;
      },
    },
  };
  try {
    reader = new Socket(options);
  } catch {
    return undefined;
  }
  const r = reader;
  const endInput = (): void => {
    if (socket.writable) socket.end();
  };
  r.on('end', endInput);
  r.on('error', endInput);
  return {
    stop() {
      r.destroy();
    },
  };
}
