/**
 * The bridge daemon's core: pulls requests from Mongrel2 through a handler
 * Connection, hands each to a Backend, and writes the answer back. It owns
 * what every adapter shares: the in-flight limit (503), error pages
 * (400/502/503/504), request bodies, response framing, and aborting backend
 * work when the client disconnects.
 */
import { STATUS_CODES } from 'node:http';
import type { Connection, Request } from '../handler/connection.js';
import type { Logger } from '../handler/logger.js';
import { UploadError } from '../handler/uploads.js';
import type { HttpRequest, WebSocketHandshake } from '../protocol/request.js';
import type { Readable } from 'node:stream';
import { BackendError, type Backend, type BackendRequest, type BackendResponse, type CancelHook, type RequestCancel } from './backend.js';
import { openRequestBody, StreamingUploads, type RequestBody } from './request-body.js';
import { writeResponse, type WriteOptions, type WriteOutcome } from './response-writer.js';
import { handshakeAsRequest, WebSocketTunnel, type TunnelOptions } from './websocket-tunnel.js';

export interface BridgeOptions {
  connection: Connection;
  /** One backend, or a router choosing one per request (undefined → 404). */
  backend: Backend | ((req: HttpRequest) => Backend | undefined);
  /** Requests in flight before new ones get 503 (default 1024). */
  maxInflight?: number;
  logger: Logger;
  /**
   * Every backend the router may return (with a router): each is told of
   * disconnects and closed by drain(). A single backend needs no list.
   */
  backends?: readonly Backend[];
  /** Websocket tunnel limits: client bytes queued for a backend (1008 past it), handshake and close timeouts. */
  websocket?: Pick<TunnelOptions, 'maxBuffered' | 'closeTimeoutMs' | 'handshakeTimeoutMs'>;
}

export class Bridge {
  readonly #conn: Connection;
  readonly #route: (req: HttpRequest) => Backend | undefined;
  readonly #backends: Backend[];
  readonly #maxInflight: number;
  readonly #log: Logger;
  readonly #websocket: BridgeOptions['websocket'];
  readonly #uploads: StreamingUploads;
  /** In-flight requests and tunnels by connection id (a chain through `next`), to abort them on disconnect. */
  readonly #inflight = new Map<number, Abortable>();
  /** Open websocket tunnels by connection id. */
  readonly #tunnels = new Map<number, WebSocketTunnel>();
  #count = 0;
  #idle: (() => void) | undefined;
  #running: Promise<void> | undefined;

  constructor(options: BridgeOptions) {
    this.#conn = options.connection;
    const backend = options.backend;
    this.#route = typeof backend === 'function' ? backend : () => backend;
    this.#backends = typeof backend === 'function' ? [...(options.backends ?? [])] : [backend];
    this.#maxInflight = options.maxInflight ?? 1024;
    this.#log = options.logger;
    this.#websocket = options.websocket;
    this.#uploads = new StreamingUploads(this.#conn, this.#log);
    this.#conn.on('disconnect', (notice) => {
      this.#uploads.abort(notice.connId);
      const first = this.#inflight.get(notice.connId);
      if (first) abortChain(first, new Error(`client ${notice.connId} disconnected`));
      // A backend keeping per-connection state between requests (AppBackend's kept sockets) drops it.
      for (const b of this.#backends) b.disconnected?.(notice.connId);
    });
  }

  /** Requests currently being served. */
  get inflight(): number {
    return this.#count;
  }

  /** Serves requests until the connection stops receiving. */
  run(): Promise<void> {
    // A callback rather than `for await`: no promises per request.
    this.#running ??= this.#conn.onMessage((msg) => this.#dispatch(msg));
    return this.#running;
  }

  /**
   * Graceful stop: take no new requests, let in-flight ones finish (aborting
   * what is left after `timeoutMs`), then close the connection and backends.
   */
  async drain(timeoutMs = 30_000, backends: readonly Backend[] = this.#backends): Promise<void> {
    await this.#conn.stopReceiving();
    await this.#running;
    // Websockets have no natural end: close them now rather than at the timeout.
    for (const tunnel of this.#tunnels.values()) tunnel.shutdown();
    if (this.#count > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => (this.#idle = resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      for (const first of [...this.#inflight.values()]) abortChain(first, new Error('bridge shutting down'));
    }
    await this.#conn.shutdown();
    await Promise.all(backends.map((b) => b.close()));
  }

  #dispatch(msg: Request): void {
    switch (msg.kind) {
      case 'http':
        break;
      case 'upload-chunk':
        this.#uploads.push(msg);
        return;
      case 'websocket-handshake':
        void this.#tunnel(msg).catch((err: unknown) => this.#log.error({ err, connId: msg.connId }, 'websocket failed unexpectedly'));
        return;
      case 'websocket':
        this.#tunnels.get(msg.connId)?.push(msg);
        return;
      default:
        this.#log.debug({ kind: msg.kind, connId: msg.connId }, 'ignored a message the bridge does not serve');
        return;
    }
    // The temp-file upload is announced twice; serve it once it is complete.
    if (msg.upload?.mode === 'file' && msg.upload.phase === 'start') return;
    if (this.#count >= this.#maxInflight) {
      this.#log.warn({ connId: msg.connId, inflight: this.#count }, 'too many requests in flight: 503');
      void this.#errorPage(msg, 503);
      return;
    }
    // #serve catches and logs everything itself (no .catch promise per request).
    void this.#serve(msg);
  }

  /**
   * One HTTP request, start to end. Written for the usual request (no body,
   * a backend answering at once): no AbortController, listener or Set per
   * request, and awaits only where something really is pending (the
   * backend's answer, the reply going out).
   */
  async #serve(req: HttpRequest): Promise<void> {
    let job: InFlight | undefined;
    try {
      const backend = this.#route(req);
      if (!backend) {
        await this.#errorPage(req, 404);
        return;
      }
      job = new InFlight(req, backend.name, this.#log);
      this.#track(job);
      if (this.#log.isLevelEnabled('debug')) this.#log.debug({ connId: req.connId, method: req.method, path: req.path }, 'request started');
      let body: RequestBody;
      try {
        const opened = openRequestBody(this.#conn, req, this.#uploads);
        body = opened instanceof Promise ? await opened : opened;
      } catch (err) {
        if (err instanceof UploadError) {
          this.#log.warn({ connId: req.connId, reason: err.message }, 'refused upload headers');
          await this.#errorPage(req, 400);
        } else {
          this.#log.error({ err, connId: req.connId }, 'could not open the request body');
          await this.#errorPage(req, 500);
        }
        return;
      }
      job.opened = body;
      job.body = body.stream;
      job.bodyLength = body.length;
      if (job.aborted) return; // the client left while the body was being opened
      let res: BackendResponse;
      try {
        res = await backend.handle(job);
      } catch (err) {
        if (job.aborted) return; // the client left; nobody to answer
        const status = err instanceof BackendError ? err.status : 502;
        this.#log[status >= 500 ? 'error' : 'warn']({ err, connId: req.connId, backend: backend.name, status }, `backend failed: ${(err as Error).message}`);
        await this.#errorPage(req, status);
        return;
      }
      // However the backend streams, a client that leaves stops the body.
      job.resBody = res.body;
      let outcome: WriteOutcome;
      try {
        outcome = await writeResponse(this.#conn, req, res, job);
      } catch (err) {
        res.body?.destroy();
        this.#log.error({ err, connId: req.connId, backend: backend.name }, 'invalid response head: 502');
        await this.#errorPage(req, 502);
        return;
      }
      if (outcome === 'client-gone') job.abort(new Error('client gone'));
      if (this.#log.isLevelEnabled('debug')) this.#log.debug({ connId: req.connId, status: res.status, outcome }, 'served');
    } catch (err) {
      this.#log.error({ err, connId: req.connId }, 'request failed unexpectedly');
    } finally {
      if (job) {
        const body = job.opened;
        body?.stream?.destroy();
        if (body?.cleanup) await body.cleanup().catch((err: unknown) => this.#log.warn({ err }, 'could not remove the upload file'));
        this.#untrack(job);
      }
    }
  }

  /** A websocket upgrade: a tunnel to the backend for the life of the connection. */
  async #tunnel(req: WebSocketHandshake): Promise<void> {
    const backend = this.#route(handshakeAsRequest(req));
    const upgrade = backend?.upgrade?.bind(backend);
    if (!backend || !upgrade || this.#count >= this.#maxInflight) {
      // 501: this backend has no websocket support.
      await this.#errorPage(req, !backend ? 404 : !upgrade ? 501 : 503, true);
      return;
    }
    const job = new TunnelAbort(req.connId);
    this.#track(job);
    const tunnel = new WebSocketTunnel({ ...this.#websocket, connection: this.#conn, req, backend: { name: backend.name, upgrade }, signal: job.ac.signal, logger: this.#log });
    this.#tunnels.get(req.connId)?.shutdown();
    this.#tunnels.set(req.connId, tunnel);
    try {
      const status = await tunnel.run();
      if (status !== undefined) await this.#errorPage(req, status, true);
    } finally {
      if (this.#tunnels.get(req.connId) === tunnel) this.#tunnels.delete(req.connId);
      this.#untrack(job);
    }
  }

  async #errorPage(req: Request, status: number, close = false): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'text/plain' };
    if (status === 503) headers['Retry-After'] = '1';
    if (close) headers.Connection = 'close';
    const text = `${status} ${STATUS_CODES[status] ?? 'Error'}\n`;
    await this.#conn.replyHttp(req, text, { status, headers, close: close || undefined });
  }

  #track(job: Abortable): void {
    job.next = this.#inflight.get(job.connId);
    this.#inflight.set(job.connId, job);
    this.#count++;
  }

  #untrack(job: Abortable): void {
    const first = this.#inflight.get(job.connId);
    if (first === job) {
      if (job.next) this.#inflight.set(job.connId, job.next);
      else this.#inflight.delete(job.connId);
    } else {
      for (let j = first; j; j = j.next) {
        if (j.next === job) {
          j.next = job.next;
          break;
        }
      }
    }
    // `next` stays: an abortChain() walking through this job goes on past it.
    this.#count--;
    if (this.#count === 0) this.#idle?.();
  }
}

/** A request or websocket tunnel in flight, in its connection id's chain. */
interface Abortable {
  readonly connId: number;
  next: Abortable | undefined;
  abort(reason: Error): void;
}

function abortChain(first: Abortable, reason: Error): void {
  for (let j: Abortable | undefined = first; j; ) {
    const next: Abortable | undefined = j.next;
    j.abort(reason);
    j = next;
  }
}

class TunnelAbort implements Abortable {
  next: Abortable | undefined = undefined;
  readonly ac = new AbortController();
  constructor(readonly connId: number) {}
  abort(reason: Error): void {
    this.ac.abort(reason);
  }
}

/**
 * One HTTP request in flight: what its backend is handed (a BackendRequest
 * whose `signal` exists only once someone reads it), its cancel switch, and
 * the writer's options. One object instead of an AbortController, an
 * AbortSignal, a listener, a Set entry and two closures.
 */
class InFlight implements Abortable, BackendRequest, RequestCancel, WriteOptions {
  readonly connId: number;
  next: Abortable | undefined = undefined;
  body: Readable | null = null;
  bodyLength: number | undefined = undefined;
  /** What openRequestBody gave (released at the end). */
  opened: RequestBody | undefined = undefined;
  /** The response body being written: a client that leaves stops it. */
  resBody: Readable | null = null;
  aborted = false;
  reason: unknown = undefined;
  hook: CancelHook | undefined = undefined;
  #ac: AbortController | undefined;

  constructor(
    readonly req: HttpRequest,
    private readonly backendName: string,
    private readonly log: Logger,
  ) {
    this.connId = req.connId;
  }

  get cancel(): RequestCancel {
    return this;
  }

  get signal(): AbortSignal {
    if (!this.#ac) {
      this.#ac = new AbortController();
      if (this.aborted) this.#ac.abort(this.reason);
    }
    return this.#ac.signal;
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    // The order of the listeners this replaces: the backend's, then the response body's.
    this.#ac?.abort(reason);
    const hook = this.hook;
    this.hook = undefined;
    hook?.cancelled(reason);
    this.resBody?.destroy();
  }

  onBodyError(err: Error): void {
    this.log.error({ err, connId: this.connId, backend: this.backendName }, 'response body failed mid-stream; closing the client connection');
  }
}
