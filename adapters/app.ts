/**
 * The in-process app backend: an Express app, a Koa app, a plain `(req, res)`
 * listener or an http.Server, served by Node's own HTTP machinery over an
 * in-memory socket per request (bridge-anchors.md §1C, §4). The app gets real
 * IncomingMessage/ServerResponse objects, so everything a framework does with
 * them (body parsing, `req.ip`, `req.protocol`, streaming, `flushHeaders`,
 * backpressure, 'close' on disconnect) behaves as behind a TCP socket.
 *
 *     const handler = await loadApp('./server.js');
 *     const backend = new AppBackend({ handler, logger });
 *
 * Where does a disconnect abort the app? Here: the bridge's AbortSignal
 * destroys the request's socket, which Node reports to the app as 'close' on
 * req and res.
 *
 * Websockets: upgrade() hands the upgrade request, parsed by Node, to the
 * app's 'upgrade' listeners with an in-memory socket, as a listening server
 * would (so `wss.handleUpgrade(req, socket, head, cb)` and
 * `new WebSocketServer({ server })` work). The listeners are those of the
 * exported http.Server, read per upgrade, plus the `onUpgrade` option; an app
 * with none answers 501.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../src/handler/logger.js';
import { BackendError, type Backend, type BackendRequest, type BackendResponse, type BackendUpgradeRequest } from '../src/bridge/backend.js';
import { handshakeAsRequest } from '../src/bridge/websocket-tunnel.js';
import type { HttpRequest } from '../src/protocol/request.js';
import { Exchange } from './app/exchange.js';
import { buildRequestHead, RequestHeadError, type RequestHead } from './app/request-head.js';
import { clientAddressing, MemorySocket, sameAddressing, type SocketPeer } from './app/memory-socket.js';
import { UpgradeLink } from './app/upgrade-link.js';

/** Kept-alive sockets at most (one per Mongrel2 connection id between its requests). */
const MAX_KEPT = 4096;
/** A kept socket idle this long (up to twice) is ended. */
const KEPT_IDLE_MS = 30_000;

export type AppKind = 'express' | 'koa' | 'listener' | 'server';

/** The app as one request listener, and what it was (for logs); for an http.Server, the server (its 'upgrade' listeners). */
export type AppHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { readonly kind: AppKind; readonly server?: net.Server };

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A server's 'upgrade' listener. */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

/** A module that exports no app we know how to serve. */
export class AppLoadError extends Error {
  override readonly name = 'AppLoadError';
}

function handlerOf(kind: AppKind, fn: Listener, server?: net.Server): AppHandler {
  return Object.assign((req: IncomingMessage, res: ServerResponse) => fn(req, res) as void, server ? { kind, server } : { kind });
}

/**
 * What a value is as an app, or undefined. The order matters: a Koa app also
 * has listen() (but is no net.Server), an Express app is itself a
 * `(req, res, next)` function, and any other function taking two or three
 * arguments is taken as a listener. A function taking none (a factory, or
 * `(...args)`) is refused rather than guessed at.
 */
export function detectApp(value: unknown): AppHandler | undefined {
  if (value instanceof net.Server) {
    const server = value;
    // A websocket-only server (ws's `new WebSocketServer({ server })` on a bare http.Server) is an app too.
    if (server.listeners('request').length === 0 && server.listeners('upgrade').length === 0) return undefined;
    // The listeners as a real server calls them, read per request (a listener added later counts).
    return handlerOf('server', (req, res) => {
      if (server.listeners('request').length === 0) {
        // Where a real server would leave the request hanging.
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 Not Found: this server only takes websocket upgrades\n');
        return undefined;
      }
      const pending: Array<PromiseLike<unknown>> = [];
      for (const listener of server.listeners('request')) {
        const r = (listener as Listener).call(server, req, res);
        if (isThenable(r)) pending.push(r);
      }
      // Every async listener's rejection is observed, not only the first.
      return pending.length === 0 ? undefined : Promise.all(pending);
    }, server);
  }
  if (isKoa(value)) return handlerOf('koa', (value as { callback(): Listener }).callback());
  if (typeof value === 'function') {
    const fn = value as Listener & { handle?: unknown; use?: unknown };
    if (typeof fn.handle === 'function' && typeof fn.use === 'function') return handlerOf('express', (req, res) => fn(req, res));
    if (fn.length === 2 || fn.length === 3) return handlerOf('listener', (req, res) => fn(req, res));
  }
  return undefined;
}

function isKoa(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { callback?: unknown }).callback === 'function' && typeof (value as { use?: unknown }).use === 'function';
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'function') return `a function ${value.name ? `"${value.name}" ` : ''}taking ${value.length} argument${value.length === 1 ? '' : 's'}`;
  if (value instanceof net.Server) return `a ${value.constructor.name} with no 'request' listener (nor an 'upgrade' one)`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor?.name;
    const keys = Object.keys(value).slice(0, 5);
    return `an object${ctor && ctor !== 'Object' ? ` (${ctor})` : ''}${keys.length ? ` with keys ${keys.join(', ')}` : ''}`;
  }
  return `a ${typeof value}`;
}

/**
 * Imports `file` (ESM or CommonJS) and returns its app as one request
 * listener. Looked at, in order: the default export, the named export `app`,
 * and for CommonJS `module.exports.default` / `module.exports.app`. Throws
 * AppLoadError naming the file and what it found when none is an Express
 * app, a Koa app, a `(req, res)` listener or an http.Server with 'request'
 * listeners.
 */
export async function loadApp(file: string): Promise<AppHandler> {
  const resolved = path.resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolved).href)) as Record<string, unknown>;
  } catch (err) {
    throw new AppLoadError(`could not import the app module ${resolved}: ${(err as Error).message}`, { cause: err });
  }
  const inner = typeof mod.default === 'object' && mod.default !== null ? (mod.default as Record<string, unknown>) : undefined;
  const candidates: Array<[string, unknown]> = [
    ['the default export', mod.default],
    ["the named export 'app'", mod.app],
  ];
  if (inner && !isKoa(inner) && !(inner instanceof net.Server)) {
    candidates.push(['module.exports.default', inner.default], ['module.exports.app', inner.app]);
  }
  for (const [, value] of candidates) {
    const handler = detectApp(value);
    if (handler) return handler;
  }
  const found = candidates.filter(([, v]) => v !== undefined).map(([where, v]) => `${where} is ${describe(v)}`);
  throw new AppLoadError(
    `${resolved}: no app to serve: ${found.length ? found.join('; ') : 'it has neither a default export nor a named export "app"'}. ` +
      'Expected an Express app, a Koa app, a (req, res) listener or an http.Server with a request listener, as the default export or a named export "app".',
  );
}

export interface AppBackendOptions {
  /** From loadApp(), or any `(req, res)` listener. */
  handler: AppHandler | ((req: IncomingMessage, res: ServerResponse) => void);
  logger: Logger;
  /** Answer 504 when the app has not started its response within this time (default: wait until the client leaves). */
  headTimeoutMs?: number;
  /** Largest request head Node's parser accepts (default 64 KiB; Mongrel2 enforces its own limits first). */
  maxHeaderSize?: number;
  /** Socket buffer in each direction, also the app's `res.write()` high-water mark (default 64 KiB). */
  highWaterMark?: number;
  /** An 'upgrade' listener for apps that are not an http.Server (e.g. `wss.handleUpgrade`). */
  onUpgrade?: UpgradeListener;
}

export class AppBackend implements Backend {
  readonly name = 'app';
  readonly kind: AppKind;
  readonly #handler: Listener;
  readonly #log: Logger;
  readonly #options: AppBackendOptions;
  /** Never listens: each request's socket is handed to it with emit('connection'). */
  readonly #server: http.Server;
  readonly #live = new Map<Duplex, Exchange>();
  /**
   * Sockets Node's server keeps alive, one per Mongrel2 connection id, each
   * idle until that connection's next request: a new socket per request
   * costs Node a whole connection setup. Dropped on the disconnect notice,
   * when Node ends the connection, after KEPT_IDLE_MS to 2×KEPT_IDLE_MS idle
   * (#sweep), and the oldest past MAX_KEPT.
   */
  readonly #kept = new Map<number, IdlePeer>();
  #sweeps = 0;
  #sweeper: NodeJS.Timeout | undefined;
  /** Parses upgrade requests only; kept apart so that a plain request with Upgrade headers still reaches the app's 'request' listener. */
  readonly #upgradeServer: http.Server;
  readonly #links = new Set<UpgradeLink>();
  #closed = false;

  constructor(options: AppBackendOptions) {
    this.#handler = options.handler as Listener;
    this.kind = (options.handler as Partial<AppHandler>).kind ?? 'listener';
    this.#log = options.logger;
    this.#options = options;
    const serverOptions = {
      // Mongrel2 already accepted the request; HTTP/1.1 without Host is its call.
      requireHostHeader: false,
      maxHeaderSize: options.maxHeaderSize ?? 64 * 1024,
    };
    this.#server = http.createServer(serverOptions);
    // Idle kept sockets are swept here (#sweep), cheaper than Node's timer re-armed on every response.
    this.#server.keepAliveTimeout = 0;
    this.#upgradeServer = http.createServer(serverOptions);
    this.#upgradeServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    // Node saw no upgrade (Mongrel2 checks the same headers, so this should not happen).
    this.#upgradeServer.on('request', (_req: IncomingMessage, res: ServerResponse) => res.writeHead(400, { Connection: 'close' }).end());
    this.#upgradeServer.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      this.#log.warn({ err, code: err.code }, "Node's HTTP parser refused the upgrade request");
      socket.destroy();
    });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      const exchange = this.#live.get(socket);
      this.#log.warn({ err, code: err.code }, "Node's HTTP parser refused the request");
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      if (exchange) exchange.fail(new BackendError(status, `Node refused the request: ${err.message}`, { cause: err }));
      else socket.destroy();
    });
  }

  /** Requests being served, and open upgraded connections. */
  get inflight(): number {
    return this.#live.size + this.#links.size;
  }

  handle(request: BackendRequest): Promise<BackendResponse> {
    try {
      return this.#handle(request);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Not async: the exchange's own promise is the answer. With the bridge's
   * cancel switch the exchange is its hook (no AbortSignal is made); other
   * callers' signals get a listener.
   */
  #handle(request: BackendRequest): Promise<BackendResponse> {
    const { req, body, bodyLength, cancel } = request;
    if (this.#closed) throw new BackendError(503, 'the app backend is closed');
    if (cancel ? cancel.aborted : request.signal.aborted) throw cancel ? cancel.reason : request.signal.reason;
    const head = requestHead(req, { present: body !== null, length: bodyLength });
    const kept = this.#takeKept(req);
    const exchange = new Exchange({
      req,
      head,
      body,
      bodyLength,
      logger: this.#log,
      headTimeoutMs: this.#options.headTimeoutMs,
      highWaterMark: this.#options.highWaterMark,
      socket: kept,
      onKeep: this.#keepSocket,
      onClosed: this.#exchangeClosed,
    });
    this.#live.set(exchange.socket, exchange);
    if (cancel) {
      exchange.cancel = cancel;
      cancel.hook = exchange;
    } else {
      const signal = request.signal;
      const onAbort = (): void => exchange.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void exchange.closed.then(() => signal.removeEventListener('abort', onAbort));
    }
    // Node's server takes a new socket as an accepted connection and starts parsing; a kept one reads on.
    if (kept) exchange.resume();
    else this.#server.emit('connection', exchange.socket);
    return exchange.response;
  }

  readonly #keepSocket = (socket: MemorySocket, connId: number): void => this.#keep(connId, socket);

  readonly #exchangeClosed = (exchange: Exchange): void => {
    const cancel = exchange.cancel;
    if (cancel?.hook === exchange) cancel.hook = undefined;
    if (this.#live.get(exchange.socket) === exchange) this.#live.delete(exchange.socket);
  };

  /** The client of Mongrel2 connection `connId` is gone: its kept socket closes (Node's server forgets it). */
  disconnected(connId: number): void {
    this.#kept.get(connId)?.socket.destroy();
    // A response whose body is sent but whose socket Node has not released yet.
    for (const exchange of this.#live.values()) if (exchange.connId === connId) exchange.noKeep();
  }

  /** The connection's kept socket, if it is still open and has the same client addressing. */
  #takeKept(req: HttpRequest): MemorySocket | undefined {
    const socket = this.#kept.get(req.connId)?.socket;
    if (!socket) return undefined;
    this.#kept.delete(req.connId);
    if (!socket.destroyed && sameAddressing(socket, req.headers)) return socket;
    socket.destroy();
    return undefined;
  }

  #keep(connId: number, socket: MemorySocket): void {
    if (this.#live.get(socket)) this.#live.delete(socket);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const kept = this.#kept;
    const peer = new IdlePeer(kept, connId, socket, this.#sweeps);
    socket.attach(peer);
    const previous = kept.get(connId)?.socket;
    if (previous !== undefined && previous !== socket) previous.destroy();
    kept.delete(connId);
    kept.set(connId, peer);
    if (kept.size > MAX_KEPT) kept.values().next().value?.socket.destroy();
    this.#sweeper ??= setInterval(() => this.#sweep(), KEPT_IDLE_MS).unref();
  }

  /** Ends the sockets kept since before the previous sweep. */
  #sweep(): void {
    for (const { socket, sweep } of [...this.#kept.values()]) if (sweep < this.#sweeps) socket.destroy();
    this.#sweeps++;
    if (this.#kept.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #checkOpen(signal: AbortSignal): void {
    if (this.#closed) throw new BackendError(503, 'the app backend is closed');
    if (signal.aborted) throw signal.reason;
  }

  /** The app's 'upgrade' listeners, read now (a listener added later counts). */
  #upgradeListeners(): UpgradeListener[] {
    const server = (this.#handler as Partial<AppHandler>).server;
    const listeners: UpgradeListener[] = server ? server.listeners('upgrade').map((l) => (req, socket, head) => (l as UpgradeListener).call(server, req, socket, head)) : [];
    if (this.#options.onUpgrade) listeners.push(this.#options.onUpgrade);
    return listeners;
  }

  /**
   * Writes the client's upgrade request into an in-memory socket that Node's
   * server parses; the app's 'upgrade' listeners then answer on it. Resolves
   * with the bridge's end of that socket.
   */
  async upgrade({ req, signal }: BackendUpgradeRequest): Promise<Duplex> {
    this.#checkOpen(signal);
    if (this.#upgradeListeners().length === 0) {
      throw new BackendError(501, `the ${this.kind} app has no 'upgrade' listener: export an http.Server with one (e.g. ws's handleUpgrade) or pass onUpgrade`);
    }
    const head = requestHead(handshakeAsRequest(req), { present: false, length: undefined });
    const link = new UpgradeLink({ head: head.bytes, ...clientAddressing(req.headers), highWaterMark: this.#options.highWaterMark });
    this.#links.add(link);
    const onAbort = (): void => void link.stream.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    link.stream.once('close', () => {
      signal.removeEventListener('abort', onAbort);
      this.#links.delete(link);
    });
    this.#upgradeServer.emit('connection', link.socket);
    return link.stream;
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const listeners = this.#upgradeListeners();
    if (listeners.length === 0) {
      // The listener went away since upgrade() checked.
      socket.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const failed = (err: unknown): void => {
      this.#log.error({ err, kind: this.kind, url: req.url }, `the app's 'upgrade' listener failed: ${(err as Error)?.message ?? String(err)}`);
      socket.destroy();
    };
    for (const listener of listeners) {
      try {
        const result = listener(req, socket, head);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (err) {
        failed(err);
      }
    }
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const exchange = req.socket instanceof MemorySocket ? this.#live.get(req.socket) : undefined;
    if (!exchange) {
      res.destroy();
      return;
    }
    exchange.started(req, res);
    const failed = (err: unknown, how: string): void => {
      this.#log.error({ err, kind: this.kind, method: req.method, url: req.url }, `the app ${how}: ${(err as Error)?.message ?? String(err)}`);
      exchange.appFailed(err);
    };
    let result: unknown;
    try {
      result = this.#handler(req, res);
    } catch (err) {
      failed(err, 'threw');
      return;
    }
    if (isThenable(result)) result.then(undefined, (err: unknown) => failed(err, 'rejected'));
  }

  /** Stops taking requests and ends those in flight (the bridge drains before it closes backends). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const { socket } of [...this.#kept.values()]) socket.destroy();
    const exchanges = [...this.#live.values()];
    for (const exchange of exchanges) exchange.abort(new Error('the app backend is closing'));
    const links = [...this.#links];
    for (const link of links) link.stream.destroy();
    await Promise.all(exchanges.map((e) => e.closed));
  }
}

/**
 * A kept socket's peer between two requests: Node writes nothing and asks
 * for bytes it gets with the next request. One object per kept socket, not
 * four closures; it is also the backend's record of the kept socket.
 */
class IdlePeer implements SocketPeer {
  constructor(
    private readonly kept: Map<number, IdlePeer>,
    private readonly connId: number,
    readonly socket: MemorySocket,
    /** The sweep it was kept in (see AppBackend.#sweep). */
    readonly sweep: number,
  ) {}

  read(): void {}

  write(_chunk: Buffer, done: (err?: Error | null) => void): void {
    done();
    this.socket.destroy();
  }

  end(): void {
    this.socket.destroy();
  }

  destroyed(): void {
    if (this.kept.get(this.connId)?.socket === this.socket) this.kept.delete(this.connId);
  }
}

/** The raw request head for Node's parser; a request it cannot express is a BackendError. */
function requestHead(req: HttpRequest, body: { present: boolean; length: number | undefined }): RequestHead {
  try {
    return buildRequestHead(req, body);
  } catch (err) {
    if (err instanceof RequestHeadError) throw new BackendError(err.status, err.message, { cause: err });
    throw err;
  }
}
