/**
 * One client connection of the core: reads and parses requests, routes them
 * and either answers itself (fixed errors, Dir) or hands them to a handler,
 * then writes whatever the handler replies.
 *
 * Ordering (server-core.md §8.2 says Mongrel2 forwards pipelined requests at
 * once and can reorder answers): here a connection has at most ONE request in
 * progress. The next buffered request is parsed only after the previous
 * response is complete (ResponseTracker for handler bytes, end of stream for
 * Dir). While a request is in progress the socket is paused once
 * `limits.buffer_size` bytes are buffered, so memory per connection stays
 * bounded by buffer_size + limits.content_length + the reply byte limit.
 */
import { nowSeconds } from './clock.js';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { HandlerTarget, HostConfig, ProxyTarget, Target } from '../config/types.js';
import type { Logger } from '../handler/logger.js';
import { parseHead, type RequestHead } from './http/request-parser.js';
import { bodyFraming, expectation, keepAlive } from './http/body.js';
import { CONTINUE_100, fixedResponse } from './http/responses.js';
import type { Route } from './routing/route-map.js';
import type { DirResponse } from './dir/index.js';
import { ProxyCancel, type ProxyHandler, type ProxyResponse } from './proxy/index.js';
import { BodyStream, type StreamedFraming } from './request-body.js';
import { HeaderTable } from './header-table.js';
import { encodeCredits, encodeHttpRequest, encodeStreamChunk } from './handler-message.js';
import { tempFileWriter, UploadBuffers, type TempFile } from './upload-store.js';
import { ResponseTracker } from './response-tracker.js';
import type { ServerSettings } from './settings.js';
import type { AccessLogEntry, ClientInfo } from './types.js';
import { handshakeAccept, isWebSocketUpgrade } from './websocket/handshake.js';
import { WebSocketMessages } from './websocket/messages.js';
import { WebSocketSession } from './websocket/session.js';
import { encodeSocketMessage, isSocketPing, POLICY_RESPONSE, socketReplyBytes, type SocketMessage } from './socket-messages.js';
import type { HandlerMessage, RequestFacts } from './handler-message.js';
import type { EventName, FilterChain, FilterConnection, FilterRequest } from './filters/chain.js';
import { filterResponse } from './filters/response.js';
import { onReads } from './socket-reads.js';

/** What a client needs from its server. */
export interface ClientHost {
  readonly settings: ServerSettings;
  readonly log: Logger;
  readonly urlScheme: 'http' | 'https';
  /** The server's filters; undefined when it has none. */
  readonly filters: FilterChain | undefined;
  resolve(hostName: string | undefined, path: string): { host: HostConfig; route: Route<Target> | undefined };
  /** Queues a message for a handler; false when it cannot be queued (→ 502). */
  toHandler(target: HandlerTarget, message: HandlerMessage): boolean;
  disconnected(target: HandlerTarget, connId: number): void;
  serveDir(target: Extract<Target, { type: 'dir' }>, prefix: string, head: RequestHead): Promise<DirResponse | undefined>;
  /** A fresh upload.temp_store file (rejects when none can be made). */
  createUploadFile(): Promise<TempFile>;
  /** The one ProxyHandler (backend connection pool) of a Proxy target. */
  proxy(target: ProxyTarget): ProxyHandler;
  accessLog(entry: AccessLogEntry): void;
  released(client: Client): void;
}

type FixedStatus = Parameters<typeof fixedResponse>[0];

/** What a request to a handler needs to be encoded. */
interface HandlerRequest {
  readonly head: RequestHead;
  readonly host: HostConfig;
  readonly route: Route<Target>;
  readonly target: HandlerTarget;
}

const EMPTY = Buffer.alloc(0);
/** What to do after filters that only observe: made once, not per request. */
const NOTHING = (): void => undefined;
/** Mongrel2's MAX_CREDITS (connection.c): the DOWNLOAD_CREDITS value and the byte bound on queued replies. */
export const MAX_CREDITS = 102400;
/**
 * head: parsing; body: waiting for a small body; stream: feeding a big body to `body`; busy: response in progress;
 * tunnel: bytes piped to a backend; websocket: frames go to `ws`.
 */
type Phase = 'head' | 'body' | 'stream' | 'busy' | 'tunnel' | 'websocket' | 'closed';

const now = nowSeconds;

export class Client {
  readonly info: ClientInfo;
  private buf: Buffer = EMPTY;
  private phase: Phase = 'head';
  private tracker: ResponseTracker | undefined;
  /** The last handler that received a request here: where the disconnect notice goes. */
  private handler: HandlerTarget | undefined;
  /** True once the core or the handler ended the connection (no disconnect notice then). */
  private quiet = false;
  /** The body being streamed (phase 'stream'). */
  private body: BodyStream | undefined;
  /** Runs once the streamed body is complete (its bytes are all fed). */
  private bodyFed: (() => void) | undefined;
  /** Where client bytes go in phase 'tunnel'. */
  private tunnel: Socket | undefined;
  /** Set while a temp-file or streaming upload is in progress: stops it (and unlinks its temp file). */
  private uploadAbort: ((why: string) => void) | undefined;
  /** Set while a streaming upload waits for credits. */
  private uploadCredits: ((n: number) => void) | undefined;
  /** Set while a sendfile streams: replies that came after it, in order. */
  private waiting: Array<() => void> | undefined;
  /** DOWNLOAD_CREDITS goes once per connection (download.flow_control). */
  private creditsAnnounced = false;
  /** After a websocket upgrade: every later client byte is frames. */
  private ws: WebSocketSession | undefined;
  /** The last request was a JSON/XML socket message: replies go out as socket replies (base64 unless raw_payload). */
  private msgMode = false;
  /** Requests and socket messages seen (an upgrade is only taken as the first). */
  private requests = 0;
  /** Filter transitions still running: nothing more is parsed meanwhile. */
  private pendingFilters = 0;
  /** What filters see of the request being handled. */
  private filterRequest: FilterRequest | undefined;
  /** Run when the client connection closes, whatever the reason (cleared when a response is done). */
  private onGone: (() => void) | undefined;
  /** Cancels the proxy exchange in progress when the client goes away (one per connection: requests never overlap). */
  private proxyCancel: ProxyCancel | undefined;
  private readonly cancelProxy = (): void => this.proxyCancel?.cancel();
  /** The proxied request in progress (fields, not closures, on the hot path). */
  private proxyHost: HostConfig | undefined;
  private proxyHead: RequestHead | undefined;
  private readonly proxied = (res: ProxyResponse): void => {
    // Called from the backend socket's events: a throw here must not escape into them.
    try {
      this.sendProxied(this.proxyHost as HostConfig, this.proxyHead as RequestHead, res);
    } catch (err) {
      this.fail(502, `proxy failed: ${(err as Error).message}`);
    }
  };
  /** Set while a buffered request body is still arriving (awaitBody). */
  private bodyWait: (() => void) | undefined;
  private headerTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  readonly remoteAddr: string;
  readonly remotePort: number;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly host: ClientHost,
  ) {
    this.info = { id, type: 1, lastPing: now(), lastRead: 0, lastWrite: 0, bytesRead: 0, bytesWritten: 0 };
    this.remoteAddr = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.remotePort = socket.remotePort ?? 0;
    const { minPing } = host.settings;
    if (minPing > 0) this.idleTimer = setTimeout(() => this.expire('idle', minPing), minPing * 1000).unref();
    this.armHeaderTimer();
    socket.setNoDelay(true);
    if (host.settings.tcpKeepalive) socket.setKeepAlive(true);
    onReads(socket, (view) => this.onData(view));
    socket.on('error', (err) => host.log.debug({ conn: id, err: err.message }, 'client socket error'));
    socket.on('close', () => this.onClose());
    this.filtered('OPEN', NOTHING);
  }

  // ---- filters (Mongrel2's Connection_task: the chain runs before the core acts on each event)

  /** Runs the filters hooked on `event`, then `go` if they all passed it on; any other event closes the connection. */
  private filtered(event: EventName, go: () => void): void {
    const chain = this.host.filters;
    if (chain === undefined || !chain.hooks(event)) return go();
    const next = chain.run(event, this.filterView());
    if (typeof next === 'string') return this.afterFilters(event, next, go);
    this.pendingFilters++;
    this.flowControl();
    next
      .catch((): EventName => 'CLOSE')
      .then((n) => {
        this.pendingFilters--;
        if (this.phase === 'closed') return;
        this.afterFilters(event, n, go);
        if (this.phase === 'head') this.pump();
        else this.flowControl();
      });
  }

  private afterFilters(event: EventName, next: EventName, go: () => void): void {
    if (next === event) return go();
    // Whatever the filter sent with respond() is already queued; it goes out before the close.
    this.host.log.info({ conn: this.id, event, next }, 'a filter ended the connection');
    this.endNotify();
  }

  private filterView(): FilterConnection {
    return {
      id: this.id,
      remoteAddr: this.remoteAddr,
      remotePort: this.remotePort,
      request: this.filterRequest,
      respond: (status, body) => void this.write(filterResponse(status, body)),
    };
  }

  private ping(): void {
    this.info.lastPing = now();
    this.idleTimer?.refresh();
  }

  /** `ctl keep-alive`: refresh the idle timer. */
  keepAlive(): void {
    this.ping();
  }

  private armHeaderTimer(): void {
    const s = this.host.settings.headerTimeout;
    if (s <= 0) return;
    if (this.headerTimer) this.headerTimer.refresh();
    else this.headerTimer = setTimeout(() => this.expire('header', s), s * 1000).unref();
  }

  private disarmHeaderTimer(): void {
    if (this.headerTimer) clearTimeout(this.headerTimer);
    this.headerTimer = undefined;
  }

  private expire(which: 'idle' | 'header', seconds: number): void {
    if (this.phase === 'closed') return;
    this.host.log.info({ conn: this.id, seconds }, which === 'idle' ? 'closing idle connection (limits.min_ping)' : 'request head not complete in time (limits.header_timeout)');
    this.kill();
  }

  /** Bytes from the client. `view` may be the shared read buffer (socket-reads.ts): whatever is kept is copied. */
  private onData(view: Buffer): void {
    this.info.bytesRead += view.length;
    this.info.lastRead = now();
    this.ping();
    if (this.phase === 'closed') return;
    // The body stream copies what it keeps (into reused buffers for a temp-file upload).
    if (this.phase === 'stream' && this.body && !this.ws) return this.feedBody(view);
    const chunk = Buffer.from(view);
    if (this.ws) return this.ws.receive(chunk);
    if (this.phase === 'tunnel' && this.tunnel) {
      if (!this.tunnel.write(chunk)) this.socket.pause();
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
    const wait = this.bodyWait;
    this.bodyWait = undefined;
    wait?.();
  }

  /** Handles every complete request in the buffer, one at a time. */
  private pump(): void {
    while (this.phase === 'head' && this.buf.length > 0 && this.pendingFilters === 0) {
      const { settings } = this.host;
      let r: ReturnType<typeof parseHead>;
      try {
        r = parseHead(this.buf, 0, { relaxed: settings.relaxed, maxHeadBytes: settings.bufferSize, maxHeaderCount: settings.headerCount });
      } catch (err) {
        r = { kind: 'error', offset: 0, reason: `parser failure: ${(err as Error).message}` };
      }
      if (r.kind === 'incomplete') {
        if (this.buf.length >= settings.bufferSize) this.fail(400, `request head larger than limits.buffer_size (${settings.bufferSize} bytes)`);
        break;
      }
      if (r.kind === 'error') {
        this.fail(400, `bad request at byte ${r.offset}: ${r.reason}`);
        break;
      }
      this.disarmHeaderTimer();
      if (r.kind === 'policy') {
        this.filterRequest = socketView('XML', '<policy-file-request');
        // Mongrel2 answers the Flash policy request itself, then closes.
        this.filtered('REQ_RECV', () => this.filtered('SOCKET_REQ', () => {
          this.write(POLICY_RESPONSE);
          this.endNotify();
        }));
        break;
      }
      if (r.kind === 'json' || r.kind === 'xml') {
        this.consume(r.end);
        const msg: SocketMessage = r;
        this.filterRequest = socketView(r.kind === 'json' ? 'JSON' : 'XML', r.path);
        this.filtered('REQ_RECV', () => this.filtered('MSG_REQ', () => this.socketMessage(msg)));
        continue;
      }
      const { head, end } = r;
      // Mongrel2 logs the header lines it drops past limits.header_count.
      if (r.dropped > 0) this.host.log.warn({ conn: this.id, dropped: r.dropped, limit: settings.headerCount }, 'request header lines over limits.header_count were dropped');
      // No filters: no views or closures on the hot path.
      if (this.host.filters === undefined) {
        this.request(head, end);
        continue;
      }
      this.filterRequest = requestView(head);
      this.filtered('REQ_RECV', () => this.filtered(isWebSocketUpgrade(head) ? 'WS_REQ' : 'HTTP_REQ', () => this.request(head, end)));
    }
    this.flowControl();
  }

  /** Bounded memory: stop reading while a request is in progress and a head's worth is buffered. */
  private flowControl(): void {
    if (this.phase === 'closed' || this.phase === 'stream' || this.phase === 'tunnel' || this.phase === 'websocket') return;
    const full = (this.phase === 'busy' || this.pendingFilters > 0) && this.buf.length >= this.host.settings.bufferSize;
    if (full && !this.socket.isPaused()) this.socket.pause();
    else if (!full && this.socket.isPaused()) this.socket.resume();
  }

  private request(head: RequestHead, end: number): void {
    const hostHeader = head.headers.find(([k]) => k.length === 4 && k.toLowerCase() === 'host')?.[1];
    const colon = hostHeader?.indexOf(':') ?? -1;
    const hostName = hostHeader === undefined ? undefined : colon > 0 ? hostHeader.slice(0, colon) : hostHeader;
    this.requests++;
    this.msgMode = false;
    const { host, route } = this.host.resolve(hostName, head.path);
    if (!route) return this.fail(404, `no route for ${head.path}`);
    const target = route.value;
    // Mongrel2's state machine has no upgrade to a Dir, nor after an earlier request: an error, closed with no answer.
    if (isWebSocketUpgrade(head) && (target.type === 'dir' || (target.type === 'handler' && this.requests > 1))) {
      this.host.log.info({ conn: this.id, path: head.path, request: this.requests }, 'websocket upgrade refused (Dir route or not the first request); closing');
      return this.drop();
    }
    switch (target.type) {
      // No filters: no closure on the hot path.
      case 'handler':
        return this.host.filters === undefined ? this.toHandler(head, end, host, route, target) : this.filtered('HANDLER', () => this.toHandler(head, end, host, route, target));
      case 'dir':
        return this.filtered('DIRECTORY', () => this.toDir(head, end, host, route.prefix, target));
      case 'proxy':
        return this.host.filters === undefined ? this.toProxy(head, end, host, target) : this.filtered('PROXY', () => this.toProxy(head, end, host, target));
    }
  }

  private toHandler(head: RequestHead, end: number, host: HostConfig, route: Route<Target>, target: HandlerTarget): void {
    if (isWebSocketUpgrade(head)) return this.openWebSocket(head, end, host, route, target);
    const framing = bodyFraming(head);
    if (framing.kind === 'invalid') return this.fail(400, `bad body framing: ${framing.reason}`);
    const expect = expectation(head);
    if (expect === 'fail') return this.fail(417, 'unsupported Expect value');
    const { settings } = this.host;
    const length = framing.kind === 'length' ? framing.length : 0;
    // Chunked bodies and bodies over limits.content_length take Mongrel2's upload path.
    const upload = framing.kind === 'chunked' || (framing.kind === 'length' && length > settings.contentLength);
    if (upload && !settings.uploadStream && settings.uploadTempStore === undefined) {
      return this.fail(413, framing.kind === 'chunked' ? 'chunked body and no upload.temp_store / upload.stream' : `body of ${length} bytes is over limits.content_length (${settings.contentLength}) and no upload.temp_store / upload.stream`);
    }
    if (expect === 'continue') this.write(CONTINUE_100);
    const req: HandlerRequest = { head, host, route, target };
    if (upload) {
      const big = framing as StreamedFraming;
      return settings.uploadStream ? this.uploadStream(req, end, big) : this.uploadFile(req, end, big);
    }
    this.phase = 'body';
    // A body already here (or none): no closure.
    if (this.buf.length >= end + length) this.sendBuffered(req, end, length);
    else this.awaitBody(end + length, () => this.sendBuffered(req, end, length));
  }

  /** Sends a request whose body (`length` bytes after the head's `end`) is buffered. */
  private sendBuffered(req: HandlerRequest, end: number, length: number): void {
    const body = length === 0 ? EMPTY : Buffer.from(this.buf.subarray(end, end + length));
    this.consume(end + length);
    if (!this.sendRequest(req, this.handlerTable(req.head), body)) return;
    this.phase = 'busy';
    this.log(req.host, req.head, 200, length);
  }

  /** The request's header table: client headers (minus x-mongrel2-*), X-Forwarded-For, DOWNLOAD_CREDITS once. */
  private handlerTable(head: RequestHead): HeaderTable {
    const table = new HeaderTable(this.host.settings.headerCount);
    for (const [k, v] of head.headers) {
      // Trusted x-mongrel2-* headers are the server's to set: a client cannot forge them.
      if (isServerHeader(k)) continue;
      table.add(k, v);
    }
    if (table.dropped.length > 0) this.host.log.warn({ conn: this.id, dropped: table.dropped }, 'request headers over limits.header_count / 5 values were dropped');
    if (!this.host.settings.noClobberXff) table.replace('x-forwarded-for', this.remoteAddr);
    if (this.host.settings.downloadFlowControl && !this.creditsAnnounced) table.replace('DOWNLOAD_CREDITS', String(MAX_CREDITS));
    return table;
  }

  private facts(head: RequestHead, route: Route<Target>): RequestFacts {
    return { method: head.method, version: head.version, uri: head.uri, path: head.path, query: head.query, fragment: head.fragment, pattern: route.path, urlScheme: this.host.urlScheme, remoteAddr: this.remoteAddr };
  }

  /**
   * A websocket upgrade to a handler: WEBSOCKET_HANDSHAKE goes to the handler
   * (which writes the 101), and from now on every client byte is frames,
   * whatever the handler answers (as in Mongrel2). The upgrade's body is
   * ignored, as Mongrel2 does. With download.flow_control the table keeps
   * DOWNLOAD_CREDITS, so it repeats in every frame message, as there.
   */
  private openWebSocket(head: RequestHead, end: number, host: HostConfig, route: Route<Target>, target: HandlerTarget): void {
    this.consume(end);
    const table = this.handlerTable(head);
    const messages = new WebSocketMessages(target, this.id, this.facts(head, route), table);
    const ws = new WebSocketSession(
      { writeToClient: (b) => this.write(b), sendToHandler: (m) => this.host.toHandler(target, m), close: () => this.endNotify(), log: this.host.log },
      messages,
      { maxMessage: this.host.settings.websocketMaxMessage, connId: this.id },
    );
    let started: boolean;
    try {
      started = ws.start(handshakeAccept(head));
    } catch (err) {
      return this.fail(400, `websocket handshake cannot be encoded for the handler: ${(err as Error).message}`);
    }
    if (!started) return this.fail(502, `handler queue for ${target.sendSpec} is full (limits.handler_queue)`);
    if (table.has('DOWNLOAD_CREDITS')) this.creditsAnnounced = true;
    this.ws = ws;
    this.handler = target;
    this.info.type = 3;
    this.phase = 'websocket';
    this.disarmHeaderTimer();
    this.log(host, head, 200, 0);
    const rest = this.buf;
    this.buf = EMPTY;
    if (this.socket.isPaused()) this.socket.resume();
    if (rest.length > 0) ws.receive(rest);
    this.requestSent();
  }

  /** REQ_SENT: the request is with the handler; a filter may still end the connection. */
  private requestSent(): void {
    this.filtered('REQ_SENT', NOTHING);
  }

  /**
   * A JSSocket (`@route {json}\0`) or XML socket message: routed by its
   * path on the default host, sent to a handler as METHOD JSON / XML.
   * Pings are swallowed (the read already refreshed the idle timer).
   */
  private socketMessage(msg: SocketMessage): void {
    this.requests++;
    this.info.type = 2;
    this.msgMode = true;
    if (isSocketPing(msg)) return;
    const { route } = this.host.resolve(undefined, msg.path);
    if (!route) return this.fail(404, `no route for socket message ${msg.path}`);
    const target = route.value;
    if (target.type !== 'handler') {
      this.host.log.info({ conn: this.id, path: msg.path, type: target.type }, 'socket message routed to a non-handler; closing');
      return this.drop();
    }
    this.filtered('HANDLER', () => this.messageToHandler(msg, route, target));
  }

  private messageToHandler(msg: SocketMessage, route: Route<Target>, target: HandlerTarget): void {
    let message: HandlerMessage;
    try {
      message = encodeSocketMessage(target, this.id, msg, { pattern: route.path, urlScheme: this.host.urlScheme, remoteAddr: this.remoteAddr });
    } catch (err) {
      return this.fail(400, `socket message cannot be encoded for the handler: ${(err as Error).message}`);
    }
    if (!this.host.toHandler(target, message)) return this.fail(502, `handler queue for ${target.sendSpec} is full (limits.handler_queue)`);
    this.handler = target;
    this.requestSent();
  }

  /** Encodes and queues a request message; on failure answers 400/502 and returns false. */
  private sendRequest(req: HandlerRequest, table: HeaderTable, body: Buffer): boolean {
    const { head, route, target } = req;
    const facts = this.facts(head, route);
    let message: HandlerMessage;
    try {
      message = encodeHttpRequest(target, this.id, facts, table, body);
    } catch (err) {
      this.fail(400, `request cannot be encoded for the handler: ${(err as Error).message}`);
      return false;
    }
    if (!this.host.toHandler(target, message)) {
      this.fail(502, `handler queue for ${target.sendSpec} is full (limits.handler_queue)`);
      return false;
    }
    if (table.has('DOWNLOAD_CREDITS')) this.creditsAnnounced = true;
    this.handler = target;
    this.tracker ??= new ResponseTracker(head.method === 'HEAD');
    this.requestSent();
    // A REQ_SENT filter may have ended the connection.
    return this.phase !== 'closed';
  }

  /**
   * `upload.temp_store`: start message (x-mongrel2-upload-start), the body
   * de-chunked into a fresh temp file, then the done message (start + done).
   * The handler's close message, ctl cancel or a client disconnect before
   * the done message aborts and unlinks the file.
   */
  private uploadFile(req: HandlerRequest, end: number, framing: StreamedFraming): void {
    const buffers = new UploadBuffers();
    const body = this.streamBody(framing, end, undefined, (piece) => buffers.copy(piece));
    let file: TempFile | undefined;
    let out: Writable | undefined;
    let aborted = false;
    const abort = (why: string): void => {
      if (aborted) return;
      aborted = true;
      this.uploadAbort = undefined;
      body.destroy();
      out?.destroy();
      this.host.log.info({ conn: this.id, file: file?.disk, why }, 'upload aborted; temp file removed');
      if (file) {
        const f = file;
        void (out ? Promise.resolve() : f.handle.close()).catch(() => undefined).then(() => unlink(f.disk)).catch(() => undefined);
      }
    };
    this.uploadAbort = abort;
    const run = async (): Promise<void> => {
      file = await this.host.createUploadFile();
      // The connection may have been answered (a bad chunk → 400) and closed while the file was made.
      if (aborted || this.phase === 'closed') {
        abort('connection ended while the temp file was created');
        await file.handle.close().catch(() => undefined);
        await unlink(file.disk).catch(() => undefined);
        return;
      }
      const table = this.handlerTable(req.head);
      table.replace('x-mongrel2-upload-start', file.announced);
      if (!this.sendRequest(req, table, EMPTY)) return abort('start message not sent');
      out = tempFileWriter(file, buffers);
      await pipeline(body, out);
      if (aborted) return;
      this.uploadAbort = undefined;
      table.replace('x-mongrel2-upload-done', file.announced);
      if (!this.sendRequest(req, table, EMPTY)) return;
      this.log(req.host, req.head, 200, body.received);
      if (this.phase === 'busy' && this.tracker?.status === 'done') this.responseDone();
    };
    run().catch((err: unknown) => {
      if (aborted || this.phase === 'closed') return abort(`upload failed: ${(err as Error).message}`);
      abort(`upload failed: ${(err as Error).message}`);
      this.fail(500, `upload failed: ${(err as Error).message}`);
    });
  }

  /**
   * `upload.stream=1`: the first message carries the headers with
   * UPLOAD_STREAM "0" and the body bytes already here; the rest goes in
   * pieces of at most min(credits, limits.content_length) bytes as the
   * handler grants credits (ctl), each with only UPLOAD_STREAM (offset) and
   * UPLOAD_STREAM_DONE on the last.
   */
  private uploadStream(req: HandlerRequest, end: number, framing: StreamedFraming): void {
    const cap = Math.max(1, this.host.settings.contentLength);
    const total = framing.kind === 'length' ? framing.length : undefined;
    const first = total === undefined ? EMPTY : Buffer.from(this.buf.subarray(end, end + Math.min(this.buf.length - end, total, cap)));
    const complete = total !== undefined && first.length === total;
    const table = this.handlerTable(req.head);
    table.replace('UPLOAD_STREAM', '0');
    if (complete) table.replace('UPLOAD_STREAM_DONE', '1');
    if (!this.sendRequest(req, table, first)) return;
    this.log(req.host, req.head, 200, total ?? -1);
    if (complete) {
      this.consume(end + first.length);
      this.phase = 'busy';
      return;
    }
    const body = this.streamBody(total === undefined ? framing : { kind: 'length', length: total - first.length }, end + first.length);
    let offset = first.length;
    let credits = 0;
    const chunk = (piece: Buffer, last: boolean): void => {
      const alt = new HeaderTable(2);
      alt.replace('UPLOAD_STREAM', String(offset));
      if (last) alt.replace('UPLOAD_STREAM_DONE', '1');
      offset += piece.length;
      if (last) {
        this.uploadCredits = undefined;
        this.uploadAbort = undefined;
      }
      if (!this.host.toHandler(req.target, encodeStreamChunk(req.target, this.id, req.head.path, alt, piece))) this.fail(502, `handler queue for ${req.target.sendSpec} is full (limits.handler_queue)`);
    };
    const pump = (): void => {
      while (credits > 0 && this.uploadCredits) {
        const want = Math.min(credits, cap, total === undefined ? cap : total - offset);
        let piece = body.read(total === undefined ? undefined : Math.min(want, body.readableLength || want)) as Buffer | null;
        if (piece === null) break;
        if (piece.length > want) {
          body.unshift(piece.subarray(want));
          piece = piece.subarray(0, want);
        }
        credits -= piece.length;
        chunk(piece, total !== undefined && offset + piece.length === total);
      }
    };
    body.on('readable', pump);
    // A chunked body's end (its last chunk) is a message of its own, as in Mongrel2.
    body.once('end', () => {
      if (total === undefined && this.uploadCredits) chunk(EMPTY, true);
    });
    this.uploadCredits = (n) => {
      credits += n;
      pump();
    };
    this.uploadAbort = () => {
      this.uploadCredits = undefined;
      this.uploadAbort = undefined;
      body.destroy();
    };
  }

  /** `ctl credits`: more bytes of a streaming upload may go to the handler. */
  grantUploadCredits(n: number): void {
    this.uploadCredits?.(n);
  }

  private toDir(head: RequestHead, end: number, host: HostConfig, prefix: string, target: Extract<Target, { type: 'dir' }>): void {
    const framing = bodyFraming(head);
    if (framing.kind === 'invalid' || framing.kind === 'chunked') return this.fail(400, 'Dir routes take no chunked or ambiguous bodies');
    const length = framing.kind === 'length' ? framing.length : 0;
    if (length > this.host.settings.contentLength) return this.fail(413, `body of ${length} bytes sent to a Dir route`);
    this.phase = 'body';
    // Dir never reads a body; skip it once it is here so the next request parses.
    this.awaitBody(end + length, () => {
      this.consume(end + length);
      this.phase = 'busy';
      this.host.serveDir(target, prefix, head).then(
        (answer) => this.sendDir(host, head, answer),
        (err: unknown) => this.fail(500, `Dir failed: ${(err as Error).message}`),
      );
    });
  }

  private sendDir(host: HostConfig, head: RequestHead, answer: DirResponse | undefined): void {
    if (this.phase === 'closed') {
      answer?.body?.destroy();
      return;
    }
    if (!answer) return this.fail(404, `no Dir handler for ${head.path}`, { keepOpen: keepAlive(head) });
    this.log(host, head, answer.logStatus, answer.bytes);
    const close = answer.close || !keepAlive(head);
    const done = (): void => this.filtered('RESP_SENT', () => (close ? this.endAfterFlush() : this.responseDone()));
    if (answer.content !== undefined) {
      // Head and bytes from memory in one write.
      this.socket.cork();
      this.write(answer.head);
      this.write(answer.content);
      this.socket.uncork();
      return done();
    }
    if (!answer.body) {
      this.write(answer.head);
      return done();
    }
    this.relay(answer.head, answer.body, done, 'Dir body', true);
  }

  /**
   * Writes `head`, then `body` with backpressure; `done` after its end, kill on
   * error. With `withBody` the head goes out with the first body chunk, in one
   * write: fewer syscalls, and a body that fails (or a connection that ends)
   * before its first byte leaves no head without its body behind. Without it
   * the head goes at once (a backend may take its time with the body).
   */
  private relay(head: Buffer, body: Readable, done: () => void, what: string, withBody: boolean): void {
    let pending: Buffer | undefined = head;
    if (!withBody) {
      this.write(head);
      pending = undefined;
    }
    body.on('data', (chunk: Buffer) => {
      let ok: boolean;
      if (pending !== undefined) {
        this.socket.cork();
        this.write(pending);
        pending = undefined;
        ok = this.write(chunk);
        this.socket.uncork();
      } else ok = this.write(chunk);
      if (!ok) {
        body.pause();
        this.socket.once('drain', () => body.resume());
      }
    });
    body.once('end', () => {
      if (pending !== undefined) this.write(pending);
      pending = undefined;
      done();
    });
    body.once('error', (err) => {
      this.host.log.error({ conn: this.id, err: err.message }, `${what} failed mid-response; closing`);
      this.kill();
    });
    const prev = this.onGone;
    this.onGone = () => {
      prev?.();
      body.destroy();
    };
  }

  private toProxy(head: RequestHead, end: number, host: HostConfig, target: ProxyTarget): void {
    const framing = bodyFraming(head);
    if (framing.kind === 'invalid') return this.fail(400, `bad body framing: ${framing.reason}`);
    const expect = expectation(head);
    if (expect === 'fail') return this.fail(417, 'unsupported Expect value');
    if (expect === 'continue') this.write(CONTINUE_100);
    const cancel = (this.proxyCancel ??= new ProxyCancel());
    let body: BodyStream | null = null;
    if (framing.kind === 'chunked' || (framing.kind === 'length' && framing.length > 0)) body = this.streamBody(framing, end);
    else {
      this.consume(end);
      this.phase = 'busy';
    }
    this.onGone = this.cancelProxy;
    const bodyLength = framing.kind === 'length' ? framing.length : framing.kind === 'none' ? 0 : undefined;
    this.proxyHost = host;
    this.proxyHead = head;
    this.host.proxy(target).send({ head, remoteAddr: this.remoteAddr, scheme: this.host.urlScheme, body, bodyLength, cancel }, this.proxied);
  }

  private sendProxied(host: HostConfig, head: RequestHead, res: ProxyResponse): void {
    this.proxyHost = undefined;
    this.proxyHead = undefined;
    if (this.phase === 'closed') {
      res.body?.destroy();
      res.upgrade?.socket.destroy();
      return;
    }
    if (res.error !== undefined) this.host.log.error({ conn: this.id, status: res.status, backend: res.error }, 'proxy answered the client itself');
    if (res.upgrade) {
      this.write(res.head);
      this.log(host, head, res.status, 0);
      return this.openTunnel(res.upgrade.socket, res.upgrade.head);
    }
    if (res.whole !== undefined) {
      // The whole response came in one piece: one write, no stream.
      this.write(res.whole);
      this.log(host, head, res.status, res.bytes);
      return res.close ? this.endAfterFlush() : this.responseDone();
    }
    const done = (): void => {
      this.log(host, head, res.status, res.bytes);
      if (res.close) this.endAfterFlush();
      else this.responseDone();
    };
    if (!res.body) {
      this.write(res.head);
      return done();
    }
    // A body that came with the head is already buffered: both go in one write.
    this.relay(res.head, res.body, done, 'proxied body', res.body.readableLength > 0);
  }

  /** After a 101 from the backend: bytes go both ways until either side closes. */
  private openTunnel(backend: Socket, first: Buffer): void {
    this.phase = 'tunnel';
    this.tunnel = backend;
    this.onGone = () => backend.destroy();
    if (first.length > 0) this.write(first);
    const pending = this.buf;
    this.buf = EMPTY;
    if (pending.length > 0) backend.write(pending);
    backend.on('data', (chunk: Buffer) => {
      if (!this.write(chunk)) {
        backend.pause();
        this.socket.once('drain', () => backend.resume());
      }
    });
    backend.on('drain', () => this.socket.resume());
    backend.once('end', () => this.endAfterFlush());
    backend.once('close', () => this.endAfterFlush());
    backend.on('error', (err) => this.host.log.info({ conn: this.id, err: err.message }, 'proxied upgrade: backend connection failed'));
    backend.resume();
    this.socket.resume();
  }

  /** Phase 'stream': the body after the head at `end` goes to the returned stream as it arrives; `fed` once it is all in. */
  private streamBody(framing: StreamedFraming, end: number, fed?: () => void, copy?: (piece: Buffer) => Buffer): BodyStream {
    const first = this.buf.subarray(end);
    this.buf = EMPTY;
    const body: BodyStream = new BodyStream(framing, {
      pause: () => this.socket.pause(),
      resume: () => {
        if (this.body === body && this.phase === 'stream') this.socket.resume();
      },
    }, undefined, copy);
    this.body = body;
    this.bodyFed = fed;
    this.phase = 'stream';
    // Fed after the caller has wired the stream up.
    queueMicrotask(() => {
      if (this.body === body) this.feedBody(first);
    });
    return body;
  }

  private feedBody(chunk: Buffer): void {
    const body = this.body as BodyStream;
    let rest: Buffer | undefined;
    try {
      rest = body.feed(chunk);
    } catch (err) {
      this.body = undefined;
      body.destroy(err as Error);
      return this.fail(400, `bad request body: ${(err as Error).message}`);
    }
    if (rest === undefined) {
      if (body.readableLength < body.readableHighWaterMark && this.socket.isPaused()) this.socket.resume();
      return;
    }
    this.body = undefined;
    this.buf = rest.length > 0 ? Buffer.from(rest) : EMPTY;
    this.phase = 'busy';
    const fed = this.bodyFed;
    this.bodyFed = undefined;
    fed?.();
    if (this.tracker?.status === 'done' && !this.uploadAbort) return this.responseDone();
    this.flowControl();
  }

  /** Runs `then` once `upTo` bytes are buffered (a request body arriving). */
  private awaitBody(upTo: number, then: () => void): void {
    if (this.buf.length >= upTo) return then();
    const check = (): void => {
      if (this.phase === 'closed') return;
      if (this.buf.length < upTo) return void (this.bodyWait = check);
      then();
      this.pump();
    };
    this.bodyWait = check;
  }

  private consume(n: number): void {
    this.buf = this.buf.length === n ? EMPTY : this.buf.subarray(n);
  }

  /** The in-progress response is complete: the next buffered request may go. */
  private responseDone(): void {
    if (this.phase === 'closed') return;
    this.tracker = undefined;
    this.onGone = undefined;
    this.phase = 'head';
    this.armHeaderTimer();
    // A pipelined request already here goes next, once this call stack unwinds (nothing to do when none is).
    if (this.buf.length > 0) setImmediate(this.pumpLater);
    this.flowControl();
  }

  /** responseDone()'s deferred pump, made once per connection rather than per response. */
  private readonly pumpLater = (): void => this.pump();

  private log(host: HostConfig, head: RequestHead, status: number, size: number): void {
    this.host.accessLog({ host: host.name, remoteAddr: this.remoteAddr, remotePort: this.remotePort, time: now(), method: head.method, path: head.path, version: head.version, status, size });
  }

  private write(bytes: Buffer, written?: () => void): boolean {
    if (this.phase === 'closed' || this.socket.destroyed) return false;
    this.info.bytesWritten += bytes.length;
    this.info.lastWrite = now();
    this.ping();
    return written ? this.socket.write(bytes, (err) => (err ? undefined : written())) : this.socket.write(bytes);
  }

  /**
   * The `sendfile` extended reply: the file's bytes go to the client after
   * everything delivered before, and replies delivered meanwhile wait for it.
   * `file` resolves to the checked real path, or undefined (bad path → close).
   */
  sendFile(file: Promise<string | undefined>): void {
    if (this.phase === 'closed') return;
    if (this.waiting) return void this.waiting.push(() => this.sendFile(file));
    this.waiting = [];
    const finish = (): void => {
      const queued = this.waiting ?? [];
      this.waiting = undefined;
      // Each queued step may start another sendfile, which queues the rest again.
      while (queued.length > 0 && !this.waiting) queued.shift()!();
      if (this.waiting) (this.waiting as Array<() => void>).push(...queued);
    };
    void file.then((real) => {
      if (this.phase === 'closed') return;
      if (real === undefined) return this.kill();
      const stream = createReadStream(real);
      stream.on('data', (chunk) => {
        const bytes = chunk as Buffer;
        if (!this.write(bytes)) {
          stream.pause();
          this.socket.once('drain', () => stream.resume());
        }
        if (this.tracker && this.tracker.feed(bytes) >= 0 && this.phase === 'busy') this.responseDone();
      });
      stream.once('end', finish);
      stream.once('error', (err) => {
        this.host.log.error({ conn: this.id, file: real, err: err.message }, 'sendfile failed; closing');
        this.kill();
      });
    });
  }

  /**
   * Handler reply bytes for this connection: written verbatim, as Mongrel2
   * does, except to a socket-message client (base64 unless the replying
   * handler, `from`, has raw_payload).
   */
  deliver(reply: Buffer, from?: HandlerTarget): void {
    if (this.phase === 'closed') return;
    if (this.waiting) return void this.waiting.push(() => this.deliver(reply, from));
    // Credits count what is written, so a base64 reply counts at its base64 length (as in Mongrel2).
    const data = this.msgMode && !this.ws ? socketReplyBytes(reply, (from ?? this.handler)?.rawPayload === true) : reply;
    const flow = this.host.settings.downloadFlowControl;
    // With download.flow_control the bound is Mongrel2's: at most MAX_CREDITS bytes pending, this reply included.
    const limit = flow ? MAX_CREDITS : this.host.settings.deliverQueueBytes;
    const queued = this.socket.writableLength + (flow ? data.length : 0);
    if (queued > limit) {
      this.host.log.warn({ conn: this.id, queued, limit }, flow ? 'reply runs ahead of the download credits; killing the connection' : 'client is not reading; killing it (limits.deliver_queue_bytes)');
      return this.kill();
    }
    const to = this.handler;
    if (flow && to) {
      // Credits go back once the bytes are handed to the kernel (Mongrel2: after each write to the client).
      this.write(data, () => {
        if (this.phase !== 'closed') this.host.toHandler(to, encodeCredits(to, this.id, data.length));
      });
    } else this.write(data);
    if (this.ws || this.msgMode) return;
    // While the request body is still coming (uploads), the response may be done early: the body completing ends it then.
    if (this.tracker && this.tracker.feed(data) >= 0 && this.phase === 'busy') this.responseDone();
  }

  /** The handler's close message: end after what is queued, no disconnect notice. */
  closeFromHandler(): void {
    if (this.waiting && !this.uploadAbort) return void this.waiting.push(() => this.closeFromHandler());
    this.uploadAbort?.('the handler sent the close message');
    this.quiet = true;
    this.endAfterFlush();
  }

  /** Ends the connection after what is queued, with no disconnect notice. */
  private endAfterFlush(): void {
    if (this.phase === 'closed') return;
    this.quiet = true;
    this.endNotify();
  }

  /** Fixed response; closes unless `keepOpen`. Client errors still notify the handler, as in Mongrel2. */
  private fail(status: FixedStatus, why: string, opts: { keepOpen?: boolean } = {}): void {
    this.host.log[status >= 500 ? 'error' : 'info']({ conn: this.id, status, remote: this.remoteAddr }, why);
    this.write(fixedResponse(status));
    if (opts.keepOpen) return this.responseDone();
    this.endNotify();
  }

  /** Ends the connection after what is queued; the handler still gets the disconnect notice. */
  private endNotify(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.stopTimers();
    this.socket.end();
    // A client that never reads must not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 10_000).unref();
  }

  /** Drops the connection now (Mongrel2's state-machine error); the handler still gets the disconnect notice. */
  private drop(): void {
    this.phase = 'closed';
    this.stopTimers();
    this.socket.destroy();
  }

  /** Drop the connection now with no notice to the handler (control `kill`, timeouts, ctl cancel, overflow). */
  kill(): void {
    this.uploadAbort?.('connection killed');
    this.quiet = true;
    this.phase = 'closed';
    this.stopTimers();
    this.socket.destroy();
  }

  private stopTimers(): void {
    this.disarmHeaderTimer();
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }

  private onClose(): void {
    const notify = !this.quiet && this.handler !== undefined;
    this.phase = 'closed';
    this.stopTimers();
    this.buf = EMPTY;
    this.uploadAbort?.('client disconnected');
    this.body?.destroy();
    this.body = undefined;
    this.onGone?.();
    this.onGone = undefined;
    if (notify) this.host.disconnected(this.handler!, this.id);
    this.host.released(this);
    // CLOSE filters only observe: the connection is gone whatever they return.
    const chain = this.host.filters;
    if (chain?.hooks('CLOSE')) void Promise.resolve(chain.run('CLOSE', this.filterView())).catch(() => undefined);
  }
}

/** x-mongrel2-* in any case (a check per client header: no regex). */
function isServerHeader(name: string): boolean {
  // The first letter rules out nearly every name before a slice is made.
  return name.length > 10 && (name.charCodeAt(0) | 0x20) === 0x78 && name.slice(0, 11).toLowerCase() === 'x-mongrel2-';
}

/** What filters see of an HTTP request. */
function requestView(head: RequestHead): FilterRequest {
  return {
    method: head.method,
    uri: head.uri,
    path: head.path,
    query: head.query,
    version: head.version,
    headers: head.headers,
    header: (name) => {
      const lower = name.toLowerCase();
      return head.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
    },
  };
}

/** What filters see of a socket message (or the policy request): no version, query or headers. */
function socketView(method: 'JSON' | 'XML', path: string): FilterRequest {
  return { method, uri: path, path, query: undefined, version: '', headers: [], header: () => undefined };
}
