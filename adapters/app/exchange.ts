/**
 * One request served to an in-process app: the request head and body go into
 * a MemorySocket, Node's own HTTP server parses them and calls the app, and
 * the bytes Node's ServerResponse writes back are parsed into a
 * BackendResponse whose body streams as Node writes it.
 *
 * Backpressure runs end to end in both directions:
 * - response: a response-body chunk the consumer has not read holds the
 *   socket's write callback, so the socket's buffer fills, `res.write()`
 *   returns false and the app waits for 'drain';
 * - request: the body source is read only when the socket wants bytes, which
 *   Node stops asking for when `req` is not read (it pauses the socket).
 *
 * Lifetime: when the response has finished cleanly on a connection Node keeps
 * alive, the socket is handed back (`onKeep`) for the next request of the
 * same Mongrel2 connection, as a keep-alive client would; otherwise it is
 * destroyed then. It is also destroyed when the
 * client leaves (the signal), when the consumer drops the body early, or when
 * the app fails. Destroying it is what an app sees as the client going away:
 * 'close' on req and res, `req.destroyed`, and `res.writableEnded` false.
 */
import { CONNECTION_HEADERS } from '../../src/http/hop-by-hop.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from '../../src/handler/logger.js';
import type { HttpRequest } from '../../src/protocol/request.js';
import { BackendError, type BackendResponse, type CancelHook, type RequestCancel } from '../../src/bridge/backend.js';
import { clientAddressing, MemorySocket, type SocketPeer } from './memory-socket.js';
import { ResponseParser, type ParsedHead, type ResponseParserEvents } from './response-parser.js';
import type { RequestHead } from './request-head.js';


export interface ExchangeOptions {
  req: HttpRequest;
  head: RequestHead;
  body: Readable | null;
  bodyLength: number | undefined;
  /** Entries name the request's connId themselves (no child logger per request). */
  logger: Logger;
  /** Answer 504 when the app has not started its response within this time. */
  headTimeoutMs?: number;
  highWaterMark?: number;
  /** A kept-alive socket of the same Mongrel2 connection to continue on (default: a new one). */
  socket?: MemorySocket;
  /** The response finished cleanly and Node keeps the connection: the socket is free for the next request. */
  onKeep?: (socket: MemorySocket, connId: number) => void;
  /** Called once when the socket has closed (or was kept) and everything is released: a callback, not a promise per request. */
  onClosed?: (exchange: Exchange) => void;
}

export class Exchange implements SocketPeer, CancelHook {
  readonly socket: MemorySocket;
  /** Resolves with the response once its head is parsed; rejects if there will be none. */
  readonly response: Promise<BackendResponse>;
  /** The bridge's cancel switch this exchange hooked into, if any (the backend unhooks it when the exchange closes). */
  cancel: RequestCancel | undefined;
  readonly #log: Logger;
  readonly #parser: ResponseParser;
  readonly #body: ResponseBody;
  #resolve!: (res: BackendResponse) => void;
  #reject!: (err: unknown) => void;
  #settled = false;
  #isClosed = false;
  readonly #closedCallback: ((exchange: Exchange) => void) | undefined;
  /** Made only when someone asks for `closed` (AppBackend.close()). */
  #closedPromise: Promise<void> | undefined;
  #resolveClosed: (() => void) | undefined;
  /** The socket's write callback, held while the response body is full. */
  #held: ((err?: Error | null) => void) | undefined;
  #headTimer: NodeJS.Timeout | undefined;
  #req: IncomingMessage | undefined;
  #res: ServerResponse | undefined;
  #onKeep: ((socket: MemorySocket, connId: number) => void) | undefined;
  readonly connId: number;
  /** The socket went back to the backend: it is no longer this exchange's to destroy. */
  #kept = false;

  // Request side.
  #headBytes: Buffer | null;
  readonly #chunked: boolean;
  readonly #source: Readable | null;
  #remaining: number | undefined;
  #fedAll: boolean;
  #wantMore = false;
  #pumping = false;

  constructor(options: ExchangeOptions) {
    const { req } = options;
    this.#log = options.logger;
    this.response = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.response.catch(() => undefined); // observed by the caller; never an unhandled rejection here
    this.#closedCallback = options.onClosed;

    this.#onKeep = options.onKeep;
    this.connId = req.connId;
    if (options.socket) {
      this.socket = options.socket;
      this.socket.attach(this);
    } else this.socket = new MemorySocket({ peer: this, ...clientAddressing(req.headers), highWaterMark: options.highWaterMark });

    this.#body = new ResponseBody(this, options.highWaterMark ?? 64 * 1024);
    this.#parser = new ResponseParser({ method: req.method }, this.#body);
    // A cut body is reported through `errored`, which the bridge checks when
    // it next waits for data; an 'error' event while it is busy sending must
    // not become an uncaught exception.
    this.#body.on('error', ignore);

    this.#headBytes = options.head.bytes;
    this.#chunked = options.head.chunked;
    this.#source = options.body;
    this.#remaining = options.body ? options.bodyLength : 0;
    this.#fedAll = options.body === null || options.bodyLength === 0;
    if (this.#source) {
      this.#source.on('readable', () => this.#pump());
      // 'end' comes once every byte has been read out of the source, i.e. pushed to the socket.
      this.#source.on('end', () => this.#sourceDone());
      this.#source.on('error', (err) => {
        if (!this.#fedAll) this.fail(new BackendError(400, `request body failed: ${err.message}`, { cause: err }));
      });
    }
    if (options.headTimeoutMs !== undefined) {
      this.#headTimer = setTimeout(() => this.fail(new BackendError(504, `the app sent no response within ${options.headTimeoutMs} ms`)), options.headTimeoutMs);
    }
  }

  /** Resolves when the socket has closed (or was kept) and everything is released. */
  get closed(): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    this.#closedPromise ??= new Promise((resolve) => (this.#resolveClosed = resolve));
    return this.#closedPromise;
  }

  #onClosed(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#resolveClosed?.();
    this.#closedCallback?.(this);
  }

  /** CancelHook: the bridge's request was aborted (the client left). */
  cancelled(reason: unknown): void {
    this.abort(reason);
  }

  /** The client left: the socket is not kept for a next request. */
  noKeep(): void {
    this.#onKeep = undefined;
  }

  /** Feeds the request into a kept socket (a new one starts when Node's server takes it as a connection). */
  resume(): void {
    this.#wantMore = true;
    this.#pump();
  }

  /** Node's server emitted 'request' for this socket. */
  started(req: IncomingMessage, res: ServerResponse): void {
    this.#req = req;
    this.#res = res;
    // Listeners added after Node's own resOnFinish: by now the response is detached from the socket.
    res.once('finish', () => this.#responseFinished());
  }

  /**
   * The app threw or its promise rejected. Once it has ended its response
   * the error changes nothing for the client; else the request fails: a 500
   * before the head, a cut body after it.
   */
  appFailed(err: unknown): void {
    if (this.#res?.writableEnded) return;
    this.fail(new BackendError(500, `the app failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
  }

  /** Ends the exchange with an error: rejects the response, or cuts its body. */
  fail(err: Error): void {
    if (!this.#settle()) {
      this.#reject(err);
    } else if (!this.#parser.complete) {
      this.#body.destroy(err);
    }
    this.#destroySocket();
  }

  /** The client left: the app sees the connection close. */
  abort(reason: unknown): void {
    if (!this.#settle()) this.#reject(reason);
    if (!this.#parser.complete) this.#body.destroy();
    this.#destroySocket();
  }

  /**
   * The consumer dropped the body before its end (client gone, or it read
   * all the Content-Length it wanted): stop the app.
   */
  bodyDropped(): void {
    if (!this.#parser.complete) this.#destroySocket();
  }

  #destroySocket(): void {
    if (!this.#kept) this.socket.destroy();
  }

  #settle(): boolean {
    const was = this.#settled;
    this.#settled = true;
    clearTimeout(this.#headTimer);
    return was;
  }

  /** The parser found the response head (called through the body, the parser's event sink). */
  headParsed(head: ParsedHead): void {
    if (this.#settled) return;
    let noBuffering = false;
    const headers: Array<[string, string]> = [];
    for (const [name, value] of head.headers) {
      const lower = name.toLowerCase();
      if (CONNECTION_HEADERS.has(lower)) continue;
      if (lower === 'x-accel-buffering') {
        noBuffering = value.toLowerCase() === 'no';
        continue;
      }
      if (lower === 'content-type' && /^text\/event-stream\b/i.test(value)) noBuffering = true;
      headers.push([name, value]);
    }
    this.#settle();
    this.#resolve({ status: head.status, reason: head.reason, headers, body: head.bodyless ? null : this.#body, noBuffering });
  }

  #responseFinished(): void {
    // Everything Node wrote has been parsed (finish follows the last write's callback).
    try {
      this.#parser.finish();
    } catch (err) {
      this.fail(new BackendError(502, `the app's response was cut short: ${(err as Error).message}`));
      return;
    }
    const socket = this.socket;
    // Node ended the connection (Connection: close, HTTP/1.0) when it does not keep it (its resOnFinish ran first).
    if (this.#onKeep && this.#req?.complete && this.#fedAll && !socket.destroyed && !socket.writableEnded && this.#held === undefined) {
      this.#kept = true;
      this.#releaseSource();
      this.#onClosed();
      this.#onKeep(socket, this.connId);
      return;
    }
    // A body the app never read: Node has stopped tracking it, so end it here.
    if (this.#req && !this.#req.complete) this.#req.destroy();
    socket.destroy();
  }

  /** The consumer wants more body: let Node write on. */
  release(): void {
    const held = this.#held;
    this.#held = undefined;
    held?.();
  }

  // SocketPeer: the response bytes Node writes.

  write(chunk: Buffer, done: (err?: Error | null) => void): void {
    try {
      this.#parser.push(chunk);
    } catch (err) {
      this.#log.error({ err, connId: this.connId }, 'could not parse the response Node wrote');
      done();
      this.fail(new BackendError(502, `unparseable response from the app: ${(err as Error).message}`, { cause: err }));
      return;
    }
    // Once the body has ended its _read() is never called again: nothing to wait for.
    if (this.#body.full && !this.#parser.complete) this.#held = done;
    else done();
  }

  end(): void {
    try {
      this.#parser.finish();
    } catch {
      // An incomplete response: the socket is destroyed next, which reports it.
    }
  }

  destroyed(): void {
    clearTimeout(this.#headTimer);
    if (!this.#settle()) this.#reject(new BackendError(502, 'the app closed the connection without a response'));
    else if (!this.#parser.complete) this.#body.destroy(new Error('the app closed the connection before the end of the response'));
    const held = this.#held;
    this.#held = undefined;
    held?.(new Error('socket destroyed'));
    this.#releaseSource();
    this.socket.once('close', () => this.#onClosed());
  }

  #releaseSource(): void {
    if (!this.#source) return;
    this.#source.removeAllListeners('readable');
    this.#source.removeAllListeners('end');
    // Keep an error listener: a late upload failure must not be unhandled.
    this.#source.removeAllListeners('error');
    this.#source.on('error', () => undefined);
  }

  // SocketPeer: the request bytes Node reads.

  read(): void {
    this.#wantMore = true;
    this.#pump();
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#wantMore && !this.socket.destroyed) {
        if (this.#headBytes) {
          const head = this.#headBytes;
          this.#headBytes = null;
          this.#push(head);
          continue;
        }
        // The readable side never ends: a socket EOF would make Node end the connection.
        if (this.#fedAll || !this.#source) return;
        const got = this.#source.read() as Buffer | string | null;
        if (got === null) return; // 'readable' or 'end' comes next
        let data = typeof got === 'string' ? Buffer.from(got) : got;
        if (this.#remaining !== undefined) {
          if (data.length > this.#remaining) {
            this.#log.warn({ connId: this.connId, extra: data.length - this.#remaining }, 'request body longer than its length; extra bytes dropped');
            data = data.subarray(0, this.#remaining);
          }
          this.#remaining -= data.length;
          if (this.#remaining === 0) this.#fedAll = true;
        }
        if (data.length === 0) continue;
        this.#push(this.#chunked ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, Buffer.from('\r\n', 'latin1')]) : data);
      }
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Pushes request bytes. Pushing can run Node's parser and the app
   * synchronously; a read() they cause meanwhile must not be lost to the
   * push's own `false`, or the socket would never ask again.
   */
  #push(data: Buffer): void {
    this.#wantMore = false;
    if (this.socket.push(data)) this.#wantMore = true;
  }

  #sourceDone(): void {
    if (this.#fedAll) return;
    this.#fedAll = true;
    if (this.#chunked) {
      if (!this.socket.destroyed) this.#push(Buffer.from('0\r\n\r\n', 'latin1'));
      return;
    }
    // Node would wait forever for the missing bytes.
    this.fail(new BackendError(400, `request body ended ${this.#remaining} bytes short of its length`));
  }
}

function ignore(): void {}

/**
 * The response body as the bridge reads it, and the parser's event sink:
 * one object per request instead of a Readable plus five closures.
 */
class ResponseBody extends Readable implements ResponseParserEvents {
  /** push() said the buffer is full: Node's next write waits for _read(). */
  full = false;

  constructor(
    private readonly exchange: Exchange,
    highWaterMark: number,
  ) {
    super({ highWaterMark });
  }

  head(head: ParsedHead): void {
    this.exchange.headParsed(head);
  }

  data(chunk: Buffer): void {
    if (!this.push(chunk)) this.full = true;
  }

  end(): void {
    this.push(null);
  }

  override _read(): void {
    this.full = false;
    this.exchange.release();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.exchange.bodyDropped();
    cb(err);
  }
}
