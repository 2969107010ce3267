/**
 * Client sockets read into one shared buffer (net.Socket's `onread`), not
 * into a fresh 64 KiB allocation per read as Node does by default.
 *
 * Why: every default read is a new ArrayBuffer outside the V8 heap, freed only
 * when a scavenge finds it dead, and V8 waits for tens of MB of such memory
 * before it scavenges. A 1 GiB upload then peaks ~50 MB above the idle RSS;
 * with one shared buffer, the bytes a connection keeps are copied out exactly
 * (small ones into Node's pool) and a big body can go through a few reused
 * buffers (see upload-store.ts), so memory stays flat.
 *
 * Node offers `onread` only to sockets it creates from a handle, so an
 * accepted socket (the listener must use `pauseOnConnect`) is re-created on
 * its handle. That uses net.Socket's `_handle` / `_server` fields, stable
 * since Node 0.x; where they are missing, reads fall back to 'data' events
 * and everything still works (with Node's allocation per read).
 */
import * as net from 'node:net';

/** Receives a socket's bytes. `view` is valid only during the call: copy what you keep. */
export type ReadSink = (view: Buffer) => void;

const SCRATCH_BYTES = 64 * 1024;
/** Reads are synchronous with their callback, so every socket can share one buffer. */
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
const kSink = Symbol('m2bridge.readSink');

type Adopted = net.Socket & { [kSink]?: ReadSink };

/** The internal fields used to move an accepted socket's handle to a new Socket. */
interface SocketInternals {
  _handle?: { useUserBuffer?: unknown; readStart?: unknown } | null;
  _server?: net.Server | null;
  server?: net.Server | null;
}

/**
 * The accepted (paused) socket `raw` as a socket reading into the shared
 * buffer, or `raw` itself (resumed) where Node does not allow that. Either
 * way, call `onReads` to get its bytes. Throws (raw keeps its handle, to be
 * destroyed) if creating the new socket fails.
 */
export function adoptSocket(raw: net.Socket): net.Socket {
  const inner = raw as unknown as SocketInternals;
  const handle = inner._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || typeof handle.readStart !== 'function' || raw.destroyed) {
    raw.resume();
    return raw;
  }
  const server = inner._server ?? null;
  // Detach raw from the handle and the server's connection count, so only the new socket owns them.
  inner._handle = null;
  inner._server = null;
  inner.server = null;
  // `handle` and `onread` are real constructor options that @types/node does not declare there.
  const options: net.SocketConstructorOpts & { handle: unknown; onread: net.OnReadOpts } = {
    handle,
    allowHalfOpen: false,
    readable: true,
    writable: true,
    onread: {
      buffer: scratch,
      callback: (n: number, buf: Uint8Array): boolean => {
        socket[kSink]?.((buf as Buffer).subarray(0, n));
        return true;
      },
    },
  };
  let socket: Adopted;
  try {
    socket = new net.Socket(options);
  } catch (err) {
    // The handle may be half taken over: give it back to raw so the caller can destroy it.
    inner._handle = handle;
    inner._server = server;
    inner.server = server;
    throw new Error(`cannot read the accepted socket into the shared buffer: ${(err as Error).message}`, { cause: err });
  }
  const moved = socket as unknown as SocketInternals;
  moved._server = server;
  moved.server = server;
  socket[kSink] = undefined;
  return socket;
}

/** True when `socket` reads into the shared buffer (adoptSocket took it over). */
export function readsIntoSharedBuffer(socket: net.Socket): boolean {
  return kSink in socket;
}

/** Sends every read of `socket` to `sink`, as borrowed views for an adopted socket, else as 'data' chunks. */
export function onReads(socket: net.Socket, sink: ReadSink): void {
  if (readsIntoSharedBuffer(socket)) (socket as Adopted)[kSink] = sink;
  else socket.on('data', sink);
}
