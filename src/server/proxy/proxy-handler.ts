/**
 * The Proxy target of the server core (server-core.md §7, with Mongrel2's
 * proxy bugs fixed): forwards one parsed client request to addr:port over a
 * pooled keep-alive connection and hands back the backend's response to relay.
 *
 * API (the caller is client.ts; it owns the client socket):
 *
 *   const proxy = new ProxyHandler(target, { forwardedHeaders: true, logger });
 *   const res = await proxy.forward({ head, remoteAddr, scheme: 'http',
 *     body, bodyLength, signal });          // never rejects
 *   client.write(res.head);                 // status line + headers (or our 502/504)
 *   if (res.upgrade) { client.write(res.upgrade.head); pipe client <-> res.upgrade.socket both ways }
 *   else res.body?.pipe(client-ish)         // flat memory: the backend is paused while the client is
 *   on body 'end': log res.status, res.bytes; close the client if res.close, else next request.
 *   on body 'error': close the client (the backend broke mid-body; the client sees a short body).
 *   client gone: abort `signal` (or res.body.destroy()) → the backend socket is destroyed.
 *   await proxy.close() on server shutdown.
 *
 * `body` is the request body already de-framed by the caller (Content-Length
 * or chunked from the client) or null; `bodyLength` its length, or undefined
 * when unknown (then it goes to the backend chunked).
 *
 * Response rules: 1xx other than 101 are skipped; HEAD, 204 and 304 have no
 * body; Transfer-Encoding chunked is relayed as it comes (scanned to find its
 * end); Content-Length; otherwise read until the backend closes, and the client
 * closes too. The head is relayed byte for byte, except that `Connection:
 * close` replaces the backend's Connection / Keep-Alive lines when the client
 * connection must close and the head does not say so already.
 * Failures: connect error, reset or garbage before the response → 502; no
 * response head within responseTimeoutMs of the end of the request body, a
 * request body that stalls that long, or connect timeout → 504 (both
 * with close); broken body → body 'error'. A pooled socket that fails before
 * any response byte is retried once on a fresh connection for GET/HEAD
 * without a body.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ProxyTarget } from '../../config/types.js';
import type { Logger } from '../../handler/logger.js';
import { headerTokens } from '../../http/hop-by-hop.js';
import { keepAlive } from '../http/body.js';
import type { RequestHead } from '../http/request-parser.js';
import { fixedResponse } from '../http/responses.js';
import { ChunkedScanner } from './chunked-scanner.js';
import { ConnectError, ConnectionPool } from './pool.js';
import { backendHeadText, asksForWebSocket } from './request-head.js';
import {
  backendPersists,
  DEFAULT_MAX_RESPONSE_HEAD,
  parseResponseHead,
  responseFraming,
  type ResponseFraming,
  type ResponseHead,
} from './response-head.js';

export interface ProxyOptions {
  /** Set X-Forwarded-For / -Proto / -Host (http/forwarded-headers.ts). Off = the head as the client sent it, minus hop-by-hop headers (closest to Mongrel2). */
  readonly forwardedHeaders: boolean;
  /** proxy.trust_forwarded: keep the client's forwarded headers (a trusted proxy is in front). Default false: they are replaced. */
  readonly trustForwarded?: boolean;
  /** Default 5000. Timing out gives 504. */
  readonly connectTimeoutMs?: number;
  /**
   * From the end of the request body to the complete response head; default
   * 60000. While the body is being sent it bounds instead the time between two
   * body chunks taken by the backend (an upload may take longer as a whole).
   */
  readonly responseTimeoutMs?: number;
  /** How long an unused backend connection is kept; default 4000 (below Node's 5 s keepAliveTimeout). */
  readonly idleTimeoutMs?: number;
  /** Idle connections kept for this target; default 16. */
  readonly maxIdlePerTarget?: number;
  /** Largest backend response head; default 64 KiB. */
  readonly maxResponseHeadBytes?: number;
  readonly logger?: Logger;
}

export interface ProxyRequest {
  readonly head: RequestHead;
  /** The client's address (X-Forwarded-For). */
  readonly remoteAddr: string;
  readonly scheme: 'http' | 'https';
  /** The de-framed request body, or null for none. */
  readonly body: Readable | null;
  /** Byte length of `body` if known; undefined = unknown (sent chunked). */
  readonly bodyLength: number | undefined;
  /** Aborted when the client goes away: the backend connection is destroyed. */
  readonly signal?: AbortSignal;
  /** The same as `signal` without an event listener per exchange (the core's client keeps one per connection). */
  readonly cancel?: ProxyCancel;
}

/**
 * A client-gone switch the caller owns: cancel() runs the hook of the
 * exchange in progress (set and cleared by the exchange, a plain field, no
 * listener to add and remove per request) and stays cancelled.
 */
export class ProxyCancel {
  aborted = false;
  hook: CancelHook | undefined = undefined;
  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const hook = this.hook;
    this.hook = undefined;
    hook?.cancelled();
  }
}

/** What a ProxyCancel tells: an object, so an exchange needs no closure for it. */
export interface CancelHook {
  cancelled(): void;
}

export interface ProxyUpgrade {
  /** The backend connection, paused, ours no more: the caller pipes it both ways and destroys it. */
  readonly socket: Socket;
  /** Bytes the backend sent after the 101 head (already websocket frames): write them to the client first. */
  readonly head: Buffer;
}

export interface ProxyResponse {
  /** The backend's status, or 502/504 when we answered ourselves. */
  readonly status: number;
  /** Bytes to write to the client first: the response head (or a whole fixed response). */
  readonly head: Buffer;
  /** The response body to stream after `head` (may emit 'error': then close the client), or null. */
  readonly body: Readable | null;
  /**
   * Set when the whole body came with the head (body is null then): head and
   * body bytes in one Buffer, to write instead of `head` (one write, no stream).
   */
  readonly whole?: Buffer;
  /** Close the client connection once the body is written. */
  readonly close: boolean;
  /** Body bytes relayed so far (final once `body` ended): the access log size. */
  readonly bytes: number;
  /** Set for a 101 answer to a websocket upgrade. */
  readonly upgrade: ProxyUpgrade | undefined;
  /** Why we answered 502/504 ourselves (for the error log). */
  readonly error: string | undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

const isAborted = (req: ProxyRequest): boolean => req.signal?.aborted === true || req.cancel?.aborted === true;

const EMPTY = Buffer.alloc(0);

function failure(status: 502 | 504, error: string): ProxyResponse {
  return { status, head: fixedResponse(status), body: null, close: true, bytes: 0, upgrade: undefined, error };
}

export class ProxyHandler {
  private readonly pool: ConnectionPool;
  readonly settings: Required<Omit<ProxyOptions, 'logger'>>;
  readonly log: Logger | undefined;

  constructor(
    readonly target: ProxyTarget,
    options: ProxyOptions,
  ) {
    this.settings = {
      forwardedHeaders: options.forwardedHeaders,
      trustForwarded: options.trustForwarded ?? false,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      responseTimeoutMs: options.responseTimeoutMs ?? 60_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 4000,
      maxIdlePerTarget: options.maxIdlePerTarget ?? 16,
      maxResponseHeadBytes: options.maxResponseHeadBytes ?? DEFAULT_MAX_RESPONSE_HEAD,
    };
    this.log = options.logger;
    const { connectTimeoutMs, idleTimeoutMs, maxIdlePerTarget } = this.settings;
    this.pool = new ConnectionPool(target.addr, target.port, { connectTimeoutMs, idleTimeoutMs, maxIdle: maxIdlePerTarget });
  }

  /** Idle backend connections (tests, status). */
  get idleConnections(): number {
    return this.pool.idleCount;
  }

  /** Never rejects: failures come back as our 502/504. */
  forward(req: ProxyRequest): Promise<ProxyResponse> {
    return new Promise((resolve) => this.send(req, resolve));
  }

  /** forward() without a promise: `done` runs once, never synchronously with a backend answer pending. */
  send(req: ProxyRequest, done: (res: ProxyResponse) => void): void {
    const hasBody = req.body !== null && req.bodyLength !== 0;
    const retryable = SAFE_METHODS.has(req.head.method) && !hasBody;
    const socket = this.pool.take();
    if (socket) this.exchange(socket, req, hasBody, retryable, done);
    else this.dial(req, hasBody, false, done);
  }

  private dial(req: ProxyRequest, hasBody: boolean, retryable: boolean, done: (res: ProxyResponse) => void): void {
    if (isAborted(req)) return done(failure(502, 'client went away'));
    this.pool.connect(req.signal, req.cancel).then(
      (socket) => this.exchange(socket, req, hasBody, retryable, done),
      (err: unknown) => {
        const e = err as ConnectError;
        this.log?.error({ backend: `${this.target.addr}:${this.target.port}`, err: e.message }, 'proxy connect failed');
        done(failure(e.timedOut ? 504 : 502, e.message));
      },
    );
  }

  /** One exchange on `socket`; `retryable`: a pooled socket whose failure before any byte gets one retry on a fresh one. */
  private exchange(socket: Socket, req: ProxyRequest, hasBody: boolean, retryable: boolean, done: (res: ProxyResponse) => void): void {
    if (isAborted(req)) {
      socket.destroy();
      return done(failure(502, 'client went away'));
    }
    new Exchange(socket, req, hasBody, retryable, this, this.pool, done).run();
  }

  /** An exchange failed before any response: retry on a fresh connection, or answer 502/504. */
  retryOrFail(req: ProxyRequest, hasBody: boolean, retryable: boolean, done: (res: ProxyResponse) => void, o: Failed): void {
    if (o.retry && retryable) {
      this.log?.debug({ backend: `${this.target.addr}:${this.target.port}`, err: o.error }, 'pooled backend connection failed; retrying on a fresh one');
      return this.dial(req, hasBody, false, done);
    }
    this.log?.error({ backend: `${this.target.addr}:${this.target.port}`, err: o.error }, 'proxy request failed');
    done(failure(o.status, o.error));
  }

  /** Destroys every backend connection (idle or in use; not upgraded ones). */
  async close(): Promise<void> {
    this.pool.close();
  }
}

type Failed = { kind: 'failed'; status: 502 | 504; error: string; retry: boolean };
type Outcome = { kind: 'response'; response: ProxyResponse } | Failed;

/**
 * The listeners of one backend socket, added once for its life: they call
 * the exchange in progress on it, if any (no listeners or closures per
 * request).
 */
class Link {
  exchange: Exchange | undefined = undefined;
  /**
   * The exchange's timeout, one per socket, re-armed (refresh) rather than
   * made per request; unref'd while no exchange runs. Firing checks that
   * the exchange in progress is the one that armed it (`armedBy`).
   */
  private timer: NodeJS.Timeout | undefined;
  private armedBy: Exchange | undefined;
  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.exchange?.onData(chunk));
    socket.on('end', () => this.exchange?.onGone('backend closed the connection'));
    socket.on('error', (err: Error) => this.exchange?.onGone(`backend connection error: ${err.message}`));
    socket.on('close', () => {
      this.disarm();
      if (this.timer) clearTimeout(this.timer);
      this.exchange?.onGone('backend connection closed');
    });
  }

  arm(by: Exchange, ms: number): void {
    this.armedBy = by;
    if (this.timer) this.timer.ref().refresh();
    else this.timer = setTimeout(() => this.fire(), ms);
  }

  /** Pushes the deadline back (the request body made progress). */
  refresh(): void {
    if (this.armedBy) this.timer?.refresh();
  }

  disarm(): void {
    if (!this.armedBy) return;
    this.armedBy = undefined;
    this.timer?.unref();
  }

  private fire(): void {
    const by = this.armedBy;
    this.armedBy = undefined;
    this.timer?.unref();
    if (by && by === this.exchange) by.onTimeout();
  }
}

const links = new WeakMap<Socket, Link>();

function linkOf(socket: Socket): Link {
  let link = links.get(socket);
  if (!link) links.set(socket, (link = new Link(socket)));
  return link;
}

/** Response body bytes on their way to the client; reading pulls from the backend socket. */
class BodyRelay extends Readable {
  bytes = 0;
  constructor(
    private readonly pull: () => void,
    private readonly gone: () => void,
  ) {
    super({ highWaterMark: 64 * 1024 });
    // The body can break before the caller has had a chance to listen: that must not crash the process.
    this.on('error', () => undefined);
  }
  override _read(): void {
    this.pull();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.gone();
    cb(err);
  }
  feed(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return this.push(chunk);
  }
}

/** One request/response on one backend socket. */
class Exchange implements CancelHook {
  private buf: Buffer = EMPTY;
  private gotBytes = false;
  private requestDone = false;
  private state: 'head' | 'body' | 'done' = 'head';
  private framing: ResponseFraming = { kind: 'none' };
  private remaining = 0;
  private scanner: ChunkedScanner | undefined;
  private relay: BodyRelay | undefined;
  /** False once anything makes the socket unfit for another request. */
  private reusable = true;
  private settled = false;
  /** What the armed timer bounds. */
  private timerPhase: 'body' | 'response' = 'response';
  private readonly link: Link;
  /** Only made when the caller passed an AbortSignal. */
  private onAbort: (() => void) | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly req: ProxyRequest,
    private readonly hasBody: boolean,
    private readonly retryable: boolean,
    private readonly proxy: ProxyHandler,
    private readonly pool: ConnectionPool,
    private readonly done: (res: ProxyResponse) => void,
  ) {
    this.link = linkOf(socket);
  }

  run(): void {
    this.link.exchange = this;
    const { signal, cancel } = this.req;
    if (signal) signal.addEventListener('abort', (this.onAbort = () => this.cancelled()), { once: true });
    if (cancel) cancel.hook = this;
    this.send();
  }

  private settle(o: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    if (o.kind === 'response') this.done(o.response);
    else this.proxy.retryOrFail(this.req, this.hasBody, this.retryable, this.done, o);
  }

  private detach(): void {
    if (this.link.exchange === this) this.link.exchange = undefined;
    if (this.onAbort) this.req.signal?.removeEventListener('abort', this.onAbort);
    if (this.req.cancel?.hook === this) this.req.cancel.hook = undefined;
    this.link.disarm();
  }

  // ---- request

  private send(): void {
    const { req, proxy } = this;
    const { forwardedHeaders, trustForwarded } = proxy.settings;
    const forwarded = forwardedHeaders ? { peer: req.remoteAddr, proto: req.scheme, trust: trustForwarded } : undefined;
    this.socket.write(backendHeadText(req.head, { bodyLength: req.bodyLength, hasBody: this.hasBody, forwarded }), 'latin1');
    const body = req.body;
    if (!body || !this.hasBody) return this.requestSent();
    // Until the body is sent, the timer bounds the time between two chunks taken by the backend.
    this.startTimer('body');
    const chunked = req.bodyLength === undefined;
    let sent = 0;
    const onData = (chunk: Buffer): void => {
      if (this.state === 'done' || chunk.length === 0) return;
      sent += chunk.length;
      if (!chunked && sent > (req.bodyLength as number)) return this.stopBody('request body is longer than its length');
      let ok: boolean;
      if (chunked) {
        this.socket.cork();
        this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        this.socket.write(chunk);
        ok = this.socket.write('\r\n', 'latin1');
        this.socket.uncork();
      } else ok = this.socket.write(chunk);
      this.link.refresh();
      if (!ok) {
        body.pause();
        this.socket.once('drain', () => {
          this.link.refresh();
          body.resume();
        });
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (!chunked && sent !== req.bodyLength) return this.stopBody(`request body ended after ${sent} of ${String(req.bodyLength)} bytes`);
      if (chunked && this.state !== 'done') this.socket.write('0\r\n\r\n', 'latin1');
      this.requestSent();
    };
    const onError = (err: Error): void => {
      cleanup();
      this.stopBody(`request body failed: ${err.message}`);
    };
    const cleanup = (): void => {
      body.off('data', onData).off('end', onEnd).off('error', onError);
    };
    body.on('data', onData).once('end', onEnd).once('error', onError);
    this.stopBodyReading = () => {
      cleanup();
      body.resume();
    };
  }

  /** The whole request is written: from now on the backend has responseTimeoutMs to answer. */
  private requestSent(): void {
    this.requestDone = true;
    if (this.state === 'head') this.startTimer('response');
  }

  private startTimer(phase: 'body' | 'response'): void {
    this.timerPhase = phase;
    this.link.arm(this, this.proxy.settings.responseTimeoutMs);
  }

  /** Stops consuming the request body (exchange over). */
  private stopReading(): void {
    this.stopBodyReading?.();
  }

  /** Set while the request body is being sent. */
  private stopBodyReading: (() => void) | undefined;

  /** The request body broke: the backend must not take a truncated request as complete. */
  private stopBody(why: string): void {
    this.stopReading();
    this.fail(502, why, false);
  }

  // ---- response

  onData(chunk: Buffer): void {
    this.gotBytes = true;
    if (this.state === 'body') return this.feedBody(chunk);
    if (this.state !== 'head') return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const r = parseResponseHead(this.buf, 0, this.proxy.settings.maxResponseHeadBytes);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'error') return this.fail(502, `bad response head from the backend at byte ${r.offset}: ${r.reason}`, false);
      const { head } = r;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        this.buf = this.buf.subarray(r.end); // interim response: not relayed
        if (this.buf.length === 0) return;
        continue;
      }
      if (head.status === 101) return this.upgraded(head, r.end);
      return this.respond(head, r.end);
    }
  }

  private upgraded(head: ResponseHead, end: number): void {
    if (!asksForWebSocket(this.req.head)) return this.fail(502, 'backend sent 101 Switching Protocols to a request without an upgrade', false);
    this.detach();
    this.state = 'done';
    this.stopReading();
    this.socket.pause();
    this.pool.disown(this.socket);
    const upgrade: ProxyUpgrade = { socket: this.socket, head: Buffer.from(this.buf.subarray(end)) };
    this.settle({ kind: 'response', response: { status: head.status, head: Buffer.from(this.buf.subarray(0, end)), body: null, close: true, bytes: 0, upgrade, error: undefined } });
  }

  private respond(head: ResponseHead, end: number): void {
    const framing = responseFraming(this.req.head.method, head);
    if (framing.kind === 'invalid') return this.fail(502, `backend response framing: ${framing.reason}`, false);
    this.link.disarm();
    this.framing = framing;
    this.state = 'body';
    const connection = headerTokens(head.headers, 'connection');
    if (!backendPersists(head, connection) || framing.kind === 'close') this.reusable = false;
    const close = !keepAlive(this.req.head) || !this.reusable || !this.requestDone;
    const length = framing.kind === 'none' ? 0 : framing.kind === 'length' ? framing.length : -1;
    const raw = this.buf;
    if (length >= 0 && raw.length - end >= length && !(close && !connection.includes('close'))) return this.respondWhole(head.status, raw, end, length, close);
    const relay = new BodyRelay(
      () => {
        if (this.state === 'body') this.socket.resume();
      },
      () => this.abandon(),
    );
    this.relay = relay;
    const rest = this.buf.subarray(end);
    const headBytes = clientHead(this.buf.subarray(0, end), close && !connection.includes('close'));
    this.buf = EMPTY;
    const response: ProxyResponse = {
      status: head.status,
      head: headBytes,
      body: relay,
      close,
      get bytes() {
        return relay.bytes;
      },
      upgrade: undefined,
      error: undefined,
    };
    this.settle({ kind: 'response', response });
    if (framing.kind === 'length') this.remaining = framing.length;
    if (framing.kind === 'chunked') this.scanner = new ChunkedScanner();
    if (framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0)) {
      if (rest.length > 0) this.reusable = false;
      return this.finish();
    }
    if (rest.length > 0) this.feedBody(rest);
  }

  /** The whole response is in `raw` and its head needs no rewrite: no stream, the socket goes back at once. */
  private respondWhole(status: number, raw: Buffer, end: number, length: number, close: boolean): void {
    const total = end + length;
    if (raw.length > total) this.reusable = false; // bytes nobody asked for
    this.buf = EMPTY;
    this.finish();
    this.settle({ kind: 'response', response: { status, head: raw.subarray(0, end), body: null, whole: raw.subarray(0, total), close, bytes: length, upgrade: undefined, error: undefined } });
  }

  private feedBody(chunk: Buffer): void {
    const relay = this.relay as BodyRelay;
    let take = chunk.length;
    let complete = false;
    switch (this.framing.kind) {
      case 'length':
        take = Math.min(this.remaining, chunk.length);
        this.remaining -= take;
        complete = this.remaining === 0;
        break;
      case 'chunked': {
        const scanner = this.scanner as ChunkedScanner;
        try {
          take = scanner.scan(chunk);
        } catch (err) {
          return this.brokenBody(`garbage in the backend's chunked body: ${(err as Error).message}`);
        }
        complete = scanner.done;
        break;
      }
      case 'none':
        take = 0;
        complete = true;
        break;
      case 'close':
        break;
    }
    if (take > 0 && !relay.feed(take === chunk.length ? chunk : chunk.subarray(0, take))) this.socket.pause();
    if (complete) {
      if (take < chunk.length) this.reusable = false; // bytes nobody asked for
      this.finish();
    }
  }

  /** The response body is complete. */
  private finish(): void {
    this.state = 'done';
    this.detach();
    this.relay?.push(null);
    if (this.reusable && this.requestDone) this.pool.release(this.socket);
    else this.socket.destroy();
  }

  onGone(why: string): void {
    if (this.state === 'head') return this.fail(502, why, !this.gotBytes);
    if (this.state !== 'body') return;
    if (this.framing.kind === 'close' && why === 'backend closed the connection') return this.finish();
    this.brokenBody(`${why} before the end of the response body`);
  }

  private brokenBody(why: string): void {
    this.state = 'done';
    this.detach();
    this.stopReading();
    this.socket.destroy();
    this.proxy.log?.warn({ backend: `${this.proxy.target.addr}:${this.proxy.target.port}`, err: why }, 'proxy response broken; closing the client');
    this.relay?.destroy(new Error(why));
  }

  /** The client went away or stopped reading the body: the backend connection is useless now. */
  private abandon(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.detach();
    this.stopReading();
    this.socket.destroy();
  }

  /** The client went away (ProxyCancel or the AbortSignal). */
  cancelled(): void {
    if (this.state === 'head') return this.fail(502, 'client went away', false);
    this.relay?.destroy();
    this.abandon();
  }

  onTimeout(): void {
    const phase = this.timerPhase;
    if (this.state !== 'head') return;
    const ms = this.proxy.settings.responseTimeoutMs;
    this.fail(504, phase === 'body' ? `the request body made no progress for ${ms} ms` : `no response head within ${ms} ms of the end of the request`, false);
  }

  private fail(status: 502 | 504, error: string, retry: boolean): void {
    if (this.state === 'done') return;
    if (this.state === 'body') return this.brokenBody(error);
    this.state = 'done';
    this.detach();
    this.stopReading();
    this.socket.destroy();
    this.settle({ kind: 'failed', status, error, retry });
  }
}

/** The backend's head as sent, or (addClose: the client must close and the head does not say so) with `Connection: close` in place of its Connection/Keep-Alive lines. */
function clientHead(raw: Buffer, addClose: boolean): Buffer {
  if (!addClose) return Buffer.from(raw);
  const lines = raw
    .toString('latin1')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const kept = lines.filter((l, i) => i === 0 || !/^(connection|keep-alive)[ \t]*:/i.test(l)).filter((l) => l !== '');
  return Buffer.from(kept.join('\r\n') + '\r\nConnection: close\r\n\r\n', 'latin1');
}
