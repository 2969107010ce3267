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
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../src/handler/logger.js';
import { BackendError, type Backend, type BackendRequest, type BackendResponse } from '../src/bridge/backend.js';
import { Exchange } from './app/exchange.js';
import { buildRequestHead, RequestHeadError } from './app/request-head.js';
import { MemorySocket } from './app/memory-socket.js';

export type AppKind = 'express' | 'koa' | 'listener' | 'server';

/** The app as one request listener, and what it was (for logs). */
export type AppHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { readonly kind: AppKind };

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

/** A module that exports no app we know how to serve. */
export class AppLoadError extends Error {
  override readonly name = 'AppLoadError';
}

function handlerOf(kind: AppKind, fn: Listener): AppHandler {
  return Object.assign((req: IncomingMessage, res: ServerResponse) => fn(req, res) as void, { kind });
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
    if (server.listeners('request').length === 0) return undefined;
    // The listeners as a real server calls them, read per request (a listener added later counts).
    return handlerOf('server', (req, res) => {
      const pending: Array<PromiseLike<unknown>> = [];
      for (const listener of server.listeners('request')) {
        const r = (listener as Listener).call(server, req, res);
        if (isThenable(r)) pending.push(r);
      }
      // Every async listener's rejection is observed, not only the first.
      return pending.length === 0 ? undefined : Promise.all(pending);
    });
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
  if (value instanceof net.Server) return `a ${value.constructor.name} with no 'request' listener`;
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
  #closed = false;

  constructor(options: AppBackendOptions) {
    this.#handler = options.handler as Listener;
    this.kind = (options.handler as Partial<AppHandler>).kind ?? 'listener';
    this.#log = options.logger;
    this.#options = options;
    this.#server = http.createServer({
      // Mongrel2 already accepted the request; HTTP/1.1 without Host is its call.
      requireHostHeader: false,
      maxHeaderSize: options.maxHeaderSize ?? 64 * 1024,
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

  /** Requests being served. */
  get inflight(): number {
    return this.#live.size;
  }

  async handle({ req, body, bodyLength, signal }: BackendRequest): Promise<BackendResponse> {
    if (this.#closed) throw new BackendError(503, 'the app backend is closed');
    if (signal.aborted) throw signal.reason;
    let head;
    try {
      head = buildRequestHead(req, { present: body !== null, length: bodyLength });
    } catch (err) {
      if (err instanceof RequestHeadError) throw new BackendError(err.status, err.message, { cause: err });
      throw err;
    }
    const exchange = new Exchange({
      req,
      head,
      body,
      bodyLength,
      logger: this.#log.child({ connId: req.connId }),
      headTimeoutMs: this.#options.headTimeoutMs,
      highWaterMark: this.#options.highWaterMark,
    });
    const socket = exchange.socket;
    this.#live.set(socket, exchange);
    const onAbort = (): void => exchange.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void exchange.closed.then(() => {
      signal.removeEventListener('abort', onAbort);
      this.#live.delete(socket);
    });
    // Node's server takes the socket as an accepted connection and starts parsing.
    this.#server.emit('connection', socket);
    return exchange.response;
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
    const exchanges = [...this.#live.values()];
    for (const exchange of exchanges) exchange.abort(new Error('the app backend is closing'));
    await Promise.all(exchanges.map((e) => e.closed));
  }
}
