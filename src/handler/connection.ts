/**
 * A handler's connection to a Mongrel2 server: PULL from the server's
 * send_spec, PUB to its recv_spec. The TypeScript heir of m2py's
 * `handler.Connection`.
 *
 * The PUB side is an XPUB so that replies wait until the server's SUB has
 * subscribed (a plain PUB silently drops what is sent before that: the
 * "slow joiner" problem), and again while the server is restarting.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Pull, XPublisher } from 'zeromq';
import { EncodeError, ProtocolError } from '../protocol/errors.js';
import { MAX_CONN_ID, headerValue, parseMessage, shouldClose, type CreditsNotice, type DisconnectNotice, type HttpRequest, type Message, type UnknownNotice, type WebSocketHandshake } from '../protocol/request.js';
import { MAX_TARGETS, ctlReply, encodeDataReply, encodeReply, groupTargets, isValidSender, sendfileReply, type CtlArgs, type Reply } from '../protocol/reply.js';
import { buildHttpResponse, type HeaderInput } from '../protocol/http-response.js';
import { buildFrame, handshakeResponse, Opcode } from '../protocol/websocket.js';
import { CreditWindow } from './credit-window.js';
import { openUpload, UploadError, type UploadConfig, type UploadFile } from './uploads.js';
import { createLogger, type Logger } from './logger.js';
import { zmqPayload } from './zmq-payload.js';

/** What the iterator yields: everything but the `@*` notices, which become events. */
export type Request = Exclude<Message, DisconnectNotice | CreditsNotice | UnknownNotice>;

/** Where a reply goes: any received message, or a sender and connection id. */
export interface Target {
  readonly sender: string;
  readonly connId: number;
}

export interface ConnectionOptions {
  /** The server's send_spec (we connect a PULL socket to it). */
  sendSpec: string;
  /** The server's recv_spec (we connect a PUB socket to it). */
  recvSpec: string;
  /**
   * The sender id put on replies. Defaults to the request's sender (the
   * server's send_ident) when that matches [A-Za-z0-9-]+. When the server's
   * recv_ident is not empty, set this to it: the server drops any reply that
   * does not start with its recv_ident.
   */
  senderId?: string;
  /** The server's `limits.handler_targets` (default 128). */
  maxTargets?: number;
  /** Where temp-file uploads may live; required by `openUpload`. */
  uploads?: UploadConfig;
  logger?: Logger;
  /** Requests buffered before the receive loop waits for the consumer (default 1024). */
  maxQueued?: number;
  /** Replies buffered while the server is not subscribed (default 65536); more are dropped. */
  maxOutbox?: number;
  /** How many recently disconnected ids `signal()` remembers (default 4096). */
  recentDisconnects?: number;
}

export interface HttpReplyInit {
  status?: number;
  reason?: string;
  headers?: HeaderInput;
  /** Send the close message after the response. Default: what the request asked for (HTTP/1.0, `Connection: close`). */
  close?: boolean;
}

export interface WebSocketReplyInit {
  opcode?: number;
  rsv?: number;
}

type ConnectionEvents = {
  disconnect: [DisconnectNotice];
  credits: [CreditsNotice];
  notice: [UnknownNotice];
  malformed: [ProtocolError, Buffer];
};

interface Outgoing {
  bytes: Buffer;
  resolve: (sent: boolean) => void;
}

export class Connection extends EventEmitter<ConnectionEvents> {
  readonly sendSpec: string;
  readonly recvSpec: string;
  readonly #pull: Pull;
  readonly #pub: XPublisher;
  readonly #log: Logger;
  readonly #options: ConnectionOptions;
  readonly #maxTargets: number;
  readonly #fallbackSender = randomUUID();

  /** Set by stopReceiving(): no more requests are taken. */
  #closing = false;
  /** Set by shutdown(): no more replies are sent. */
  #closed = false;
  // Incoming requests waiting for a consumer, and consumers waiting for requests.
  readonly #inbox: Request[] = [];
  readonly #readers: Array<(req: Request | undefined) => void> = [];
  /** Set by onMessage(): requests go straight to it. */
  #onMessage: ((req: Request) => void) | undefined;
  #inboxDrained: (() => void) | undefined;
  readonly #receiving: Promise<void>;

  // Outgoing replies, sent one at a time (zeromq allows one pending send).
  readonly #outbox: Outgoing[] = [];
  #pumping = false;
  #subscribers = 0;
  #subscribed!: Promise<void>;
  #onSubscribed!: () => void;
  #drained: (() => void) | undefined;
  /** Settles when shutdown gives up waiting for a subscriber. */
  readonly #stopWaiting: Promise<void>;
  #stop!: () => void;

  // Per-connection state.
  readonly #windows = new Map<number, CreditWindow>();
  readonly #chains = new Map<number, Promise<unknown>>();
  readonly #aborts = new Map<number, AbortController>();
  readonly #recentlyGone = new Set<number>();

  constructor(options: ConnectionOptions) {
    super();
    if (options.senderId !== undefined && !isValidSender(options.senderId)) {
      throw new TypeError(`senderId ${JSON.stringify(options.senderId)} must match [A-Za-z0-9-]+`);
    }
    this.#options = options;
    this.sendSpec = options.sendSpec;
    this.recvSpec = options.recvSpec;
    this.#maxTargets = options.maxTargets ?? MAX_TARGETS;
    this.#log = options.logger ?? createLogger();
    this.#resetSubscribed();
    this.#stopWaiting = new Promise((resolve) => (this.#stop = resolve));
    this.#pull = new Pull();
    this.#pub = new XPublisher();
    // Let pending replies out on shutdown, but never hang the process for long.
    this.#pub.linger = 2000;
    // An XPUB never blocks a send (it drops past its high-water mark, and
    // #pump only sends with a subscriber), so skip zeromq's per-send
    // writability probe (a getsockopt that costs a poll() and a getpid()).
    // #pump then yields to the event loop itself (zeromq's own 512-send limit is off).
    this.#pub.sendTimeout = 0;
    this.#pull.linger = 0;
    this.#pull.connect(options.sendSpec);
    this.#pub.connect(options.recvSpec);
    this.#receiving = this.#receiveLoop();
    void this.#watchSubscriptions();
  }

  /** Resolves once the server has subscribed to our replies. */
  ready(): Promise<void> {
    return this.#subscribed;
  }

  // ---- receiving ---------------------------------------------------------

  /** The next request, or `undefined` once the connection is shut down. */
  recv(): Promise<Request | undefined> {
    const next = this.#inbox.shift();
    if (next !== undefined) {
      this.#inboxDrained?.();
      return Promise.resolve(next);
    }
    if (this.#closing) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#readers.push(resolve));
  }

  /**
   * Hands every request to `fn` synchronously as it is received (those
   * already queued first), instead of through recv() or the async iterator:
   * no promise per request. Resolves once the connection stops receiving.
   * An exception from `fn` is logged and the next request still comes.
   */
  onMessage(fn: (req: Request) => void): Promise<void> {
    if (this.#onMessage) throw new Error('Connection.onMessage: a callback is already set');
    this.#onMessage = fn;
    for (const msg of this.#inbox.splice(0)) this.#deliver(fn, msg);
    this.#inboxDrained?.();
    return this.#receiving;
  }

  #deliver(fn: (req: Request) => void, msg: Request): void {
    try {
      fn(msg);
    } catch (err) {
      this.#log.error({ err, connId: msg.connId, kind: msg.kind }, 'the onMessage callback threw');
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Request> {
    for (;;) {
      const req = await this.recv();
      if (req === undefined) return;
      yield req;
    }
  }

  async #receiveLoop(): Promise<void> {
    const maxQueued = this.#options.maxQueued ?? 1024;
    let received = 0;
    while (!this.#closing) {
      if (++received % RECEIVES_PER_TURN === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#closing) break;
      }
      let frames: Buffer[];
      try {
        frames = await this.#pull.receive();
      } catch (err) {
        if (this.#closing) break;
        this.#log.error({ err, spec: this.sendSpec }, 'receive failed');
        continue;
      }
      if (frames.length !== 1) {
        this.#log.warn({ parts: frames.length, spec: this.sendSpec }, 'skipped a multi-part message (Mongrel2 sends single-part messages)');
        continue;
      }
      this.#dispatch(frames[0]!);
      if (this.#inbox.length >= maxQueued) {
        await new Promise<void>((resolve) => (this.#inboxDrained = resolve));
        this.#inboxDrained = undefined;
      }
    }
    for (const reader of this.#readers.splice(0)) reader(undefined);
  }

  #dispatch(raw: Buffer): void {
    let msg: Message;
    try {
      msg = parseMessage(raw);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#log.error({ offset: err.offset, spec: this.sendSpec, bytes: raw.length, head: raw.subarray(0, 96).toString('latin1') }, `skipped a malformed message: ${err.message}`);
      this.emit('malformed', err, raw);
      return;
    }
    switch (msg.kind) {
      case 'credits':
        this.#windows.get(msg.connId)?.grant(msg.credits);
        this.emit('credits', msg);
        return;
      case 'disconnect':
        this.#gone(msg.connId);
        this.emit('disconnect', msg);
        return;
      case 'notice':
        this.#log.debug({ type: msg.type, connId: msg.connId }, 'unknown notice');
        this.emit('notice', msg);
        return;
      default:
        break;
    }
    // A request after a disconnect notice for its id comes from a restarted
    // server (ids start again at 1), so the id is live again.
    this.#recentlyGone.delete(msg.connId);
    this.#openWindow(msg);
    if (this.#onMessage) {
      this.#deliver(this.#onMessage, msg);
      return;
    }
    const reader = this.#readers.shift();
    if (reader) reader(msg);
    else this.#inbox.push(msg);
  }

  /**
   * DOWNLOAD_CREDITS comes on the first request of a flow-controlled
   * connection (Mongrel2 >= 1.11 sends it once), so an HTTP request or
   * handshake carrying it starts a fresh window. Websocket frames repeat the
   * handshake headers and must not reset it.
   */
  #openWindow(msg: Request): void {
    const text = headerValue(msg.headers, 'DOWNLOAD_CREDITS');
    if (text === undefined || !/^[0-9]{1,15}$/.test(text)) return;
    const fresh = msg.kind === 'http' || msg.kind === 'websocket-handshake';
    if (!fresh && this.#windows.has(msg.connId)) return;
    this.#windows.get(msg.connId)?.close();
    this.#windows.set(msg.connId, new CreditWindow(Number(text)));
  }

  // ---- connection state --------------------------------------------------

  /** An AbortSignal that fires when the client of `connId` disconnects. */
  signal(connId: number): AbortSignal {
    if (this.#recentlyGone.has(connId)) return AbortSignal.abort(new Error(`connection ${connId} disconnected`));
    let ac = this.#aborts.get(connId);
    if (!ac) {
      ac = new AbortController();
      this.#aborts.set(connId, ac);
    }
    return ac.signal;
  }

  /** Whether a disconnect notice for `connId` has been seen recently. */
  isGone(connId: number): boolean {
    return this.#recentlyGone.has(connId);
  }

  /**
   * Drops what is kept for `connId`. Mongrel2 sends no notice when it kills
   * a connection itself (idle timeout, cancel), so long-lived handlers call
   * this for connections they have finished with.
   */
  forget(connId: number): void {
    this.#windows.get(connId)?.close();
    this.#windows.delete(connId);
    this.#aborts.delete(connId);
  }

  #gone(connId: number): void {
    this.#aborts.get(connId)?.abort(new Error(`connection ${connId} disconnected`));
    this.forget(connId);
    this.#recentlyGone.add(connId);
    const limit = this.#options.recentDisconnects ?? 4096;
    if (this.#recentlyGone.size > limit) {
      const oldest = this.#recentlyGone.values().next().value;
      if (oldest !== undefined) this.#recentlyGone.delete(oldest);
    }
  }

  /** Bytes that may be written to `connId` now, or undefined without flow control. */
  credits(connId: number): number | undefined {
    return this.#windows.get(connId)?.balance;
  }

  // ---- replying ----------------------------------------------------------

  #senderFor(sender: string): string {
    return this.#options.senderId ?? (isValidSender(sender) ? sender : this.#fallbackSender);
  }

  /**
   * Sends raw bytes to one connection; several parts go out concatenated, as
   * one message. Resolves false if they were dropped (client gone, shut down).
   *
   * The per-request path: no id set, no closures, and with flow control no
   * promise chain when nothing is queued for the connection and its credits
   * cover the whole body (the outbox keeps the order then).
   */
  reply(to: Target, body: Buffer | string | readonly Buffer[]): Promise<boolean> {
    try {
      const id = to.connId;
      checkId(id);
      const parts = typeof body === 'string' ? [Buffer.from(body, 'utf8')] : Buffer.isBuffer(body) ? [body] : body;
      let size = 0;
      for (const part of parts) size += part.length;
      if (size === 0) throw new TypeError('an empty body is the close message: use close() or deliverClose()');
      const from = this.#senderFor(to.sender);
      const window = this.#windows.get(id);
      if (window === undefined) return this.#send(encodeDataReply(from, [id], parts, { maxTargets: this.#maxTargets }));
      if (!this.#chains.has(id) && window.tryTake(size)) return this.#send(encodeDataReply(from, [id], parts, { maxTargets: this.#maxTargets }));
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      return this.#inOrder(id, () => this.#writeWithCredits(from, id, window, bytes));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async replyJson(to: Target, value: unknown): Promise<boolean> {
    return this.reply(to, JSON.stringify(value));
  }

  /**
   * Sends a complete HTTP response: byte-exact Content-Length, no body for
   * HEAD, and the close message after it when the request asked for one.
   */
  async replyHttp(to: Request | Target, body: Buffer | string = '', init: HttpReplyInit = {}): Promise<boolean> {
    const req = 'kind' in to ? (to as Message) : undefined;
    const head = req?.kind === 'http' && (req as HttpRequest).method === 'HEAD';
    const bytes = buildHttpResponse({ status: init.status, reason: init.reason, headers: init.headers, body, omitBody: head });
    const sent = await this.reply(to, bytes);
    const close = init.close ?? (req !== undefined && shouldClose(req));
    return close && sent ? this.close(to) : sent;
  }

  /** Sends one websocket frame (text by default). */
  async replyWebsocket(to: Target, payload: Buffer | string, init: WebSocketReplyInit = {}): Promise<boolean> {
    return this.reply(to, buildFrame(payload, { opcode: init.opcode ?? Opcode.Text, rsv: init.rsv ?? 0 }));
  }

  /** Answers a WEBSOCKET_HANDSHAKE with 101 and the server-computed accept key. */
  async acceptWebsocket(req: WebSocketHandshake, protocol?: string): Promise<boolean> {
    return this.reply(req, handshakeResponse(req.accept, protocol));
  }

  /** Sends `body` to many connections, in messages of at most `maxTargets` ids. */
  async deliver(sender: string, ids: Iterable<number>, body: Buffer | string): Promise<boolean> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (bytes.length === 0) throw new TypeError('an empty body is the close message: use close() or deliverClose()');
    const from = this.#senderFor(sender);
    return this.#fanOut(
      checkIds(ids),
      (id, window) => this.#writeWithCredits(from, id, window, bytes),
      (group) => ({ type: 'data', sender: from, ids: group, body: bytes }),
    );
  }

  /**
   * Sends to each flow-controlled id on its own, in order behind its earlier
   * writes, and to the others in groups of at most `maxTargets`.
   */
  async #fanOut(ids: number[], controlled: (id: number, window: CreditWindow) => Promise<boolean>, plain: (group: number[]) => Reply): Promise<boolean> {
    const sends: Array<Promise<boolean>> = [];
    const rest: number[] = [];
    for (const id of ids) {
      const window = this.#windows.get(id);
      if (window) sends.push(this.#inOrder(id, () => controlled(id, window)));
      else rest.push(id);
    }
    for (const group of groupTargets(rest, this.#maxTargets)) sends.push(this.#sendReply(plain(group)));
    return (await Promise.all(sends)).every(Boolean);
  }

  async deliverJson(sender: string, ids: Iterable<number>, value: unknown): Promise<boolean> {
    return this.deliver(sender, ids, JSON.stringify(value));
  }

  async deliverHttp(sender: string, ids: Iterable<number>, body: Buffer | string = '', init: Omit<HttpReplyInit, 'close'> = {}): Promise<boolean> {
    return this.deliver(sender, ids, buildHttpResponse({ status: init.status, reason: init.reason, headers: init.headers, body }));
  }

  async deliverWebsocket(sender: string, ids: Iterable<number>, payload: Buffer | string, init: WebSocketReplyInit = {}): Promise<boolean> {
    return this.deliver(sender, ids, buildFrame(payload, { opcode: init.opcode ?? Opcode.Text, rsv: init.rsv ?? 0 }));
  }

  /** The close message: the server closes the connection after what is queued for it. */
  async close(to: Target): Promise<boolean> {
    return this.deliverClose(to.sender, [to.connId]);
  }

  async deliverClose(sender: string, ids: Iterable<number>): Promise<boolean> {
    const from = this.#senderFor(sender);
    const unique = checkIds(ids);
    const ok = await this.#fanOut(
      unique,
      (id) => this.#sendReply({ type: 'close', sender: from, ids: [id] }),
      (group) => ({ type: 'close', sender: from, ids: group }),
    );
    for (const id of unique) this.forget(id);
    return ok;
  }

  /** `["ctl", {...}]`: keep-alive, upload credits, or cancel. */
  async ctl(to: Target, args: CtlArgs): Promise<boolean> {
    return this.#ordered(to.connId, ctlReply(this.#senderFor(to.sender), [to.connId], args));
  }

  /** Grants `bytes` more to a streaming upload (`upload.stream=1`). */
  grantUploadCredits(to: Target, bytes: number): Promise<boolean> {
    return this.ctl(to, { credits: bytes });
  }

  /** Has the server send a file's bytes (send your own status line and headers first). */
  async sendfile(to: Target, path: string): Promise<boolean> {
    return this.#ordered(to.connId, sendfileReply(this.#senderFor(to.sender), [to.connId], path));
  }

  #ordered(connId: number, reply: Reply): Promise<boolean> {
    // Behind pending credit-paced writes only; otherwise the outbox keeps the order.
    return this.#chains.has(connId) ? this.#inOrder(connId, () => this.#sendReply(reply)) : this.#sendReply(reply);
  }

  /**
   * Opens a finished temp-file upload, after checking that both upload
   * headers name the same file and that it lies in the upload directory.
   */
  openUpload(req: HttpRequest): Promise<UploadFile> {
    const config = this.#options.uploads;
    if (!config) return Promise.reject(new UploadError('no upload directory configured (ConnectionOptions.uploads)'));
    return openUpload(req, config);
  }

  /** Runs `task` after every earlier ordered write to `connId`. */
  #inOrder(connId: number, task: () => Promise<boolean>): Promise<boolean> {
    const prev = this.#chains.get(connId) ?? Promise.resolve(true);
    const next = prev.then(task, task);
    this.#chains.set(connId, next);
    void next.finally(() => {
      if (this.#chains.get(connId) === next) this.#chains.delete(connId);
    });
    return next;
  }

  async #writeWithCredits(sender: string, id: number, window: CreditWindow, body: Buffer): Promise<boolean> {
    let offset = 0;
    while (offset < body.length) {
      const n = await window.acquire(body.length - offset);
      if (n === 0) return false;
      const sent = await this.#sendReply({ type: 'data', sender, ids: [id], body: body.subarray(offset, offset + n) });
      if (!sent) return false;
      offset += n;
    }
    return true;
  }

  #sendReply(reply: Reply): Promise<boolean> {
    // Encode first: a bad reply is a programming error and must never reach the server.
    return this.#send(encodeReply(reply, { maxTargets: this.#maxTargets }));
  }

  /** Queues an encoded reply. */
  #send(bytes: Buffer): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#outbox.length >= (this.#options.maxOutbox ?? 65536)) {
      this.#log.error({ bytes: bytes.length }, 'reply dropped: outbox full (is the server running?)');
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      this.#outbox.push({ bytes, resolve });
      if (!this.#pumping && !this.#pumpScheduled) {
        // Replies made in the same event-loop turn go out together: each burst
        // wakes libzmq's I/O thread once instead of once per reply (on a busy
        // machine every wake-up can cost the main thread its CPU).
        this.#pumpScheduled = true;
        setImmediate(this.#startPump);
      }
    });
  }

  #pumpScheduled = false;
  readonly #startPump = (): void => {
    this.#pumpScheduled = false;
    if (!this.#pumping && this.#outbox.length > 0) void this.#pump();
  };

  async #pump(): Promise<void> {
    this.#pumping = true;
    let sent = 0;
    try {
      while (this.#outbox.length > 0) {
        // A long outbox must not starve I/O: every send resolves at once now.
        if (++sent % PUMP_BATCH === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.#subscribers === 0) {
          await Promise.race([this.#subscribed, this.#stopWaiting]);
          if (this.#subscribers === 0) break;
        }
        const item = this.#outbox.shift()!;
        try {
          await this.#pub.send(zmqPayload(item.bytes));
          item.resolve(true);
        } catch (err) {
          this.#log.error({ err }, 'reply send failed');
          item.resolve(false);
        }
      }
    } finally {
      this.#pumping = false;
      if (this.#outbox.length === 0) this.#drained?.();
    }
  }

  #resetSubscribed(): void {
    this.#subscribed = new Promise((resolve) => (this.#onSubscribed = resolve));
  }

  async #watchSubscriptions(): Promise<void> {
    try {
      for await (const [msg] of this.#pub) {
        if (msg === undefined || msg.length === 0) continue;
        if (msg[0] === 1) {
          this.#subscribers++;
          const prefix = msg.subarray(1).toString('latin1');
          this.#log.debug({ spec: this.recvSpec, prefix }, 'server subscribed');
          const sender = this.#options.senderId;
          if (prefix !== '' && (sender === undefined || !sender.startsWith(prefix))) {
            this.#log.warn({ prefix }, 'the server only accepts replies starting with its recv_ident; set senderId to it');
          }
          this.#onSubscribed();
          if (!this.#pumping && this.#outbox.length > 0) void this.#pump();
        } else if (msg[0] === 0) {
          this.#subscribers = Math.max(0, this.#subscribers - 1);
          if (this.#subscribers === 0) this.#resetSubscribed();
        }
      }
    } catch (err) {
      if (!this.#closed) this.#log.error({ err }, 'subscription watch failed');
    }
  }

  // ---- shutdown ------------------------------------------------------------

  /**
   * Stops taking requests; replies can still be sent. Resolves when the
   * receive loop has ended (the iterator then finishes).
   */
  async stopReceiving(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#pull.close();
      this.#inboxDrained?.();
    }
    await this.#receiving;
  }

  /**
   * Stops receiving, sends what is already queued (waiting at most
   * `drainMs` for the server), then closes both sockets. Replies attempted
   * afterwards resolve false.
   */
  shutdown(drainMs = 2000): Promise<void> {
    this.#shutdown ??= this.#doShutdown(drainMs);
    return this.#shutdown;
  }

  #shutdown: Promise<void> | undefined;

  async #doShutdown(drainMs: number): Promise<void> {
    await this.stopReceiving();
    if (this.#outbox.length > 0 || this.#pumping) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs))),
      ]);
      clearTimeout(timer);
    }
    this.#closed = true;
    this.#stop();
    for (const item of this.#outbox.splice(0)) item.resolve(false);
    for (const window of this.#windows.values()) window.close();
    this.#windows.clear();
    this.#pub.close();
  }
}

/**
 * Requests handled in a row before the receive loop lets other I/O in:
 * zeromq.js would otherwise resolve up to 512 receives back to back, and
 * replies (the pump) and backend sockets (the bridge) wait for the whole
 * burst. As in the core's reply loop (src/server/handler-link.ts).
 */
const RECEIVES_PER_TURN = 16;

/** Sends in a row before #pump lets other I/O in. */
const PUMP_BATCH = 256;

/** Checks every id before anything is queued, so a bad id sends nothing at all. */
function checkIds(ids: Iterable<number>): number[] {
  const unique = [...new Set(ids)];
  for (const id of unique) checkId(id);
  return unique;
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_CONN_ID) throw new EncodeError(`reply: bad connection id ${String(id)}`);
}
