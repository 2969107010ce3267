/**
 * The upstream HTTP backend (`m2bridge --http URL`): each Mongrel2 request
 * goes to an HTTP/1.1 origin over an undici Pool of kept-alive connections,
 * body streamed both ways with backpressure; websocket handshakes get a raw
 * connection to the origin (upgrade()).
 *
 *     const backend = new HttpBackend({ url: 'http://127.0.0.1:3000/api', logger });
 *
 * Where does a disconnect abort the upstream request? Here: the bridge's
 * AbortSignal goes to undici, which destroys the upstream socket (the origin
 * sees 'close'/'aborted'), before or after the response head.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Logger } from '../src/handler/logger.js';
import { BackendError, type Backend, type BackendRequest, type BackendResponse, type BackendUpgradeRequest } from '../src/bridge/backend.js';
import { upstreamError } from './http/errors.js';
import { UpstreamExchange, type UpstreamHead } from './http/exchange.js';
import { forwardHeaders, responseHeaders } from './http/headers.js';
import { parseUpstreamUrl, upstreamPath, type UpstreamTarget } from './http/target.js';
import { buildUpgradeRequest, UpgradeRequestError } from './http/upgrade-request.js';

export interface HttpBackendOptions {
  /** `http://host:port[/base-path]` (or https). */
  url: string;
  logger: Logger;
  /** Most connections to the origin at once (default 128); more requests wait in the pool's queue. */
  connections?: number;
  /** Time from sending the request to the end of the response head (default 60 s, like nginx proxy_read_timeout); 0 = none. */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks from the origin (default 60 s); 0 = none. */
  bodyTimeoutMs?: number;
  /** TCP (and TLS) connect timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** Append to the client's X-Forwarded-For and keep its X-Forwarded-Proto/-Host (only behind a trusted proxy). */
  trustForwarded?: boolean;
}

const NO_BODY_STATUS = new Set([204, 304]);

export class HttpBackend implements Backend {
  readonly name = 'http';
  readonly target: UpstreamTarget;
  readonly #pool: Pool;
  readonly #log: Logger;
  readonly #trustForwarded: boolean;
  readonly #connectTimeoutMs: number;
  /** Websocket tunnels, closed by close(). */
  readonly #sockets = new Set<Duplex>();
  #closed = false;

  /** Throws UpstreamUrlError for a URL that is not http(s)://host[:port][/path]. */
  constructor(options: HttpBackendOptions) {
    this.target = parseUpstreamUrl(options.url);
    this.#log = options.logger;
    this.#trustForwarded = options.trustForwarded ?? false;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#pool = new Pool(this.target.origin, {
      connections: options.connections ?? 128,
      headersTimeout: options.headersTimeoutMs ?? 60_000,
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      connectTimeout: this.#connectTimeoutMs,
    });
  }

  async handle({ req, body, bodyLength, signal }: BackendRequest): Promise<BackendResponse> {
    if (this.#closed) throw new BackendError(503, 'the HTTP backend is closed');
    if (signal.aborted) throw signal.reason;
    const path = upstreamPath(this.target, req.headers, req.path);
    if (path === undefined) throw new BackendError(400, `request path ${JSON.stringify(req.path)} is not origin-form`);
    if (req.method === 'CONNECT') throw new BackendError(501, 'CONNECT is not proxied');
    const headers = forwardHeaders(req.headers, { trustForwarded: this.#trustForwarded });
    // Known length → Content-Length; unknown (a streaming upload without one) → undici chunks it.
    if (body !== null && bodyLength !== undefined) headers.push(['content-length', String(bodyLength)]);

    const exchange = new UpstreamExchange(signal);
    this.#pool.dispatch({ path, method: req.method as Dispatcher.HttpMethod, headers: headers.flat(), body }, exchange);
    let head: UpstreamHead;
    try {
      head = await exchange.head;
    } catch (err) {
      body?.destroy();
      if (signal.aborted) throw signal.reason;
      throw upstreamError(err, this.target.origin);
    }
    const { headers: outHeaders, noBuffering } = responseHeaders(head.rawHeaders);
    const response: { -readonly [K in keyof BackendResponse]: BackendResponse[K] } = { status: head.status, headers: outHeaders, body: head.body };
    if (head.reason !== undefined) response.reason = head.reason;
    if (noBuffering) response.noBuffering = true;
    // No body follows (undici knows it too): nothing to read or to destroy.
    if (req.method === 'HEAD' || NO_BODY_STATUS.has(head.status)) response.body = null;
    return response;
  }

  async upgrade({ req, signal }: BackendUpgradeRequest): Promise<Duplex> {
    if (this.#closed) throw new BackendError(503, 'the HTTP backend is closed');
    if (signal.aborted) throw signal.reason;
    const { hostname, port, protocol, origin } = this.target;
    const path = upstreamPath(this.target, req.headers, req.path);
    if (path === undefined) throw new BackendError(400, `websocket path ${JSON.stringify(req.path)} is not origin-form`);
    let head: Buffer;
    try {
      head = buildUpgradeRequest(req, path, new URL(origin).host, { trustForwarded: this.#trustForwarded });
    } catch (err) {
      if (err instanceof UpgradeRequestError) throw new BackendError(400, `websocket handshake not forwarded: ${err.message}`, { cause: err });
      throw err;
    }
    const socket =
      protocol === 'https:'
        ? tls.connect({ host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname, ALPNProtocols: ['http/1.1'] })
        : net.connect({ host: hostname, port });
    // One guard so a failure nobody listens for yet cannot crash the process.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = this.#connectTimeoutMs > 0 ? setTimeout(() => fail(new BackendError(504, `websocket: connecting to ${origin} timed out after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs) : undefined;
      const done = (): void => {
        clearTimeout(timer);
        socket.off(protocol === 'https:' ? 'secureConnect' : 'connect', onConnect);
        socket.off('error', onError);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (err: unknown): void => {
        done();
        socket.destroy();
        reject(err);
      };
      const onConnect = (): void => {
        done();
        resolve();
      };
      const onError = (err: Error): void => fail(upstreamError(err, origin));
      const onAbort = (): void => fail(signal.reason);
      socket.once(protocol === 'https:' ? 'secureConnect' : 'connect', onConnect);
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    socket.setNoDelay(true);
    socket.write(head);
    const onAbort = (): void => void socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#sockets.add(socket);
    socket.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      this.#sockets.delete(socket);
    });
    this.#log.debug({ connId: req.connId, upstream: origin, path }, 'websocket tunnel connected');
    return socket;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    await this.#pool.destroy();
  }
}
