/**
 * The in-memory "TCP connection" an in-process app is served over. Node's own
 * HTTP server reads the request bytes from it and writes the response bytes
 * into it, exactly as it would with a net.Socket (bridge-anchors.md §1C, §4).
 *
 * What it has to look like for Node's server and for frameworks:
 * - a Duplex that never ends its readable side by itself: Node's server
 *   answers a readable EOF with `socket.end()` (httpAllowHalfOpen is false),
 *   and on-finished (Express body parsing) treats a request whose socket is
 *   not readable as finished;
 * - remoteAddress/remotePort/remoteFamily and localAddress/localPort, read by
 *   Express `req.ip` and Koa `ctx.ip`;
 * - `encrypted: true` for https, as on a TLSSocket: Express `req.protocol` /
 *   `req.secure` and Koa `ctx.protocol` read it;
 * - setTimeout (a real idle timer, so `req.setTimeout()` works), setNoDelay,
 *   setKeepAlive, ref/unref and address(), which apps and Node call.
 */
import { Duplex } from 'node:stream';
import { headerValue, type Headers } from '../../src/protocol/request.js';

/** The other end of the socket: whoever feeds the request and takes the response. */
export interface SocketPeer {
  /** Node wants request bytes: call `socket.push()` until it returns false. */
  read(socket: MemorySocket): void;
  /** Response bytes from Node; call `done` when ready for more (this is the backpressure). */
  write(chunk: Buffer, done: (err?: Error | null) => void): void;
  /** Node ended its side of the connection (`socket.end()`, e.g. after a `Connection: close` response). */
  end(): void;
  /** The socket was destroyed; a held `done` must be released now. */
  destroyed(err: Error | null): void;
}

export interface MemorySocketOptions {
  peer: SocketPeer;
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
  /** Set `encrypted = true` (an https request). */
  encrypted?: boolean;
  /** Both directions (default 64 KiB); a ServerResponse uses the writable one as its own. */
  highWaterMark?: number;
}

/** What the client's connection looked like, from Mongrel2's URL_SCHEME and REMOTE_ADDR. */
export function clientAddressing(headers: Headers): Pick<MemorySocketOptions, 'remoteAddress' | 'encrypted' | 'localPort'> {
  const https = isHttps(headers);
  return { remoteAddress: headerValue(headers, 'REMOTE_ADDR'), encrypted: https, localPort: https ? 443 : 80 };
}

/** Whether `socket` was made for this client addressing (checked per request on a kept socket, so no object is built). */
export function sameAddressing(socket: MemorySocket, headers: Headers): boolean {
  return socket.remoteAddress === headerValue(headers, 'REMOTE_ADDR') && (socket.encrypted === true) === isHttps(headers);
}

function isHttps(headers: Headers): boolean {
  const scheme = headerValue(headers, 'URL_SCHEME');
  return scheme !== undefined && scheme.length === 5 && scheme.toLowerCase() === 'https';
}

export class MemorySocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: 'IPv4' | 'IPv6' | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /** Present (and true) only for https, as on a TLSSocket. */
  declare readonly encrypted?: true;
  readonly connecting = false;
  bytesRead = 0;
  bytesWritten = 0;
  #peer: SocketPeer;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MemorySocketOptions) {
    const hwm = options.highWaterMark ?? 64 * 1024;
    super({ allowHalfOpen: true, readableHighWaterMark: hwm, writableHighWaterMark: hwm, decodeStrings: true });
    this.#peer = options.peer;
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
    this.remoteFamily = options.remoteAddress === undefined ? undefined : options.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.localAddress = options.localAddress;
    this.localPort = options.localPort;
    if (options.encrypted) Object.defineProperty(this, 'encrypted', { value: true, enumerable: true });
  }

  /**
   * Hands the socket to another peer: the next request of the same Mongrel2
   * connection, or an idle keeper between requests (Node's server keeps the
   * connection alive, as with a real client).
   */
  attach(peer: SocketPeer): void {
    this.#peer = peer;
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (Buffer.isBuffer(chunk)) this.bytesRead += chunk.length;
    this.#activity();
    return super.push(chunk, encoding);
  }

  override _read(): void {
    this.#peer.read(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    this.#activity();
    this.#peer.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#peer.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#peer.destroyed(err);
    callback(err);
  }

  /** Emits 'timeout' after `ms` without traffic, like net.Socket; 0 disables. */
  setTimeout(ms: number, callback?: () => void): this {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timeoutMs = ms;
    if (callback) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    if (ms > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.emit('timeout');
      }, ms);
      // Not unref'd as a net.Socket's is: no handle keeps the loop alive for this socket, and the timer ends with it.
    }
    return this;
  }

  get timeout(): number | undefined {
    return this.#timeoutMs === 0 ? undefined : this.#timeoutMs;
  }

  #activity(): void {
    this.#timer?.refresh();
  }

  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined || this.localPort === undefined) return {};
    return { address: this.localAddress, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4', port: this.localPort };
  }
}
