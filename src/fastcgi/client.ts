/**
 * A FastCGI client for PHP-FPM over node:net: one request per connection at a
 * time (FPM does not multiplex: it answers FCGI_MPXS_CONNS=0), request id 1,
 * an optional FCGI_KEEP_CONN pool, a bounded FIFO queue, timeouts, abort, and
 * backpressure both ways.
 *
 * Things PHP-FPM 8.2 taught us (test/fastcgi/client-fpm.test.ts checks them):
 *  - FPM stops a running script only when its socket closes, so abort destroys
 *    the socket; FCGI_ABORT_REQUEST alone lets the script run to completion.
 *  - A kept connection pins an FPM worker even while it sits idle in our pool.
 *    With more sockets than pm.max_children, a request on a new socket then
 *    waits in FPM's listen backlog while the workers wait on our idle sockets,
 *    until it times out. So keep maxConnections ≤ pm.max_children; as a safety
 *    net, a new socket that has heard nothing for idleRescueMs closes one idle
 *    socket per interval (freeing a worker), and idle sockets close after
 *    idleTimeoutMs.
 *  - pm.max_requests recycles a worker right after its last END_REQUEST; our
 *    next request usually reaches the kept socket before the FIN does. A
 *    reused socket that dies before FPM sent anything is retried once on a
 *    fresh one.
 */
import * as net from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { FastCgiError } from './errors.js';
import {
  FCGI_MAX_PADDED_CONTENT,
  ProtocolStatus,
  RecordDecoder,
  RecordType,
  Role,
  decodeNameValuePairs,
  encodeGetValues,
  encodeRequest,
  encodeStdin,
  encodeStdinEnd,
  parseEndRequest,
  recordTypeName,
  type FastCgiRecord,
} from './records.js';

export { FastCgiError, isFastCgiError, type FastCgiErrorCode } from './errors.js';

export type FastCgiAddress = { host: string; port: number } | { path: string };

const ADDRESS_HELP = 'expected HOST:PORT, [IPv6]:PORT or unix:/absolute/path';
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** 'HOST:PORT', '[IPv6]:PORT' or 'unix:/abs/path' (nginx fastcgi_pass syntax) → an address. */
export function parseFastCgiAddress(text: string): FastCgiAddress {
  const bad = (why: string): Error => new Error(`invalid FastCGI address ${JSON.stringify(text)}: ${why} (${ADDRESS_HELP})`);
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw bad('the unix socket path must be absolute');
    if (path.includes('\0')) throw bad('the unix socket path contains a NUL byte');
    return { path };
  }
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:([^:]*)$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
    if (!net.isIPv6(host)) throw bad(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw bad('no port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) throw bad('an IPv6 address needs brackets');
    if (/^[0-9.]+$/.test(host)) {
      if (!net.isIPv4(host)) throw bad(`${JSON.stringify(host)} is not an IPv4 address`);
    } else if (!HOSTNAME_RE.test(host)) {
      throw bad(host === '' ? 'no host' : `${JSON.stringify(host)} is not a host name`);
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad(`port ${JSON.stringify(portText)} is not 1-65535`);
  return { host, port: Number(portText) };
}

export function formatFastCgiAddress(address: FastCgiAddress): string {
  if ('path' in address) return `unix:${address.path}`;
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export interface FastCgiClientOptions {
  address: FastCgiAddress | string;
  /** FCGI_KEEP_CONN and a pool of idle sockets (default true). */
  keepAlive?: boolean;
  /** Concurrent requests = open sockets, idle ones included (default 8). Keep it ≤ pm.max_children with keepAlive. */
  maxConnections?: number;
  /** Requests waiting for a connection beyond this are refused with QUEUE_FULL (default 1024). */
  maxQueue?: number;
  /** default 5000 */
  connectTimeoutMs?: number;
  /** The longest silence from FPM while it owes us bytes (default 60000). */
  readTimeoutMs?: number;
  /** An idle kept socket is closed after this long, which frees the FPM worker it pins (default 30000). */
  idleTimeoutMs?: number;
  /**
   * A request on a new socket that has heard nothing from FPM for this long may
   * be stuck in FPM's listen backlog behind workers pinned by our idle sockets:
   * then each interval one idle socket is closed, and a finished request's
   * socket is closed rather than kept, to free a worker (default 250).
   */
  idleRescueMs?: number;
  logger?: Logger;
}

export interface FastCgiRequestInit {
  /** CGI params in order (CONTENT_LENGTH is needed whenever there is a body: FPM waits for it otherwise). */
  params: ReadonlyArray<readonly [string, string]>;
  /**
   * The request body: a Buffer, or a stream/async iterable read with
   * backpressure (FPM's pace). The empty STDIN record always follows it. If the
   * request ends before the body was sent (FPM answered early, a failure, an
   * abort), a Readable body is destroyed.
   */
  stdin?: Buffer | NodeJS.ReadableStream | AsyncIterable<Buffer | Uint8Array | string>;
  /** Aborting destroys the FPM socket (the only thing that stops a PHP script) and frees the slot at once. */
  signal?: AbortSignal;
  /** The same as `signal` through a cancel switch (the Bridge's RequestCancel): no AbortSignal or listener per request. */
  cancel?: FastCgiCancel;
  /**
   * STDERR bytes go to this callback as they arrive instead of to
   * `response.stderr` (which then ends empty): no stream per request for
   * output that is usually absent. A throwing callback is ignored.
   */
  onStderr?: (chunk: Buffer) => void;
}

/**
 * A caller's abort switch, read when the request starts; while it runs the
 * client owns `hook` and clears it at the end. Calling the hook aborts the
 * request as an aborted `signal` would.
 */
export interface FastCgiCancel {
  readonly aborted: boolean;
  readonly reason: unknown;
  hook: { cancelled(reason: unknown): void } | undefined;
}

/** END_REQUEST. PHP-FPM 8.2 always sends appStatus 0, even after exit(3) or a fatal error. */
export interface FastCgiEnd {
  appStatus: number;
  protocolStatus: number;
}

/**
 * The reply, available as soon as the first STDOUT (or END_REQUEST) record
 * arrived.
 *
 *  - stdout: STDOUT bytes (the CGI header block, then the body) as Buffer
 *    slices, with real backpressure: while it is not read, FPM's socket is
 *    paused. It ends only after a clean END_REQUEST; a later failure destroys
 *    it with the FastCgiError. Destroying it early aborts the request. The
 *    client attaches a no-op 'error' listener, so a failure never becomes an
 *    uncaught exception; iterate it or listen for 'error' to see failures.
 *  - stderr: STDERR bytes as a Readable (no backpressure: FPM's stderr is
 *    small, and nobody has to read it). It ends with the request, successful
 *    or not, and never emits 'error' (failures surface on stdout and done).
 *    Made on first access (bytes that came before are kept for it).
 *  - done: END_REQUEST's statuses; rejects with the same error as stdout. A
 *    no-op catch is attached, so leaving it unobserved is safe. Made on first
 *    access.
 */
export interface FastCgiResponse {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly done: Promise<FastCgiEnd>;
  /**
   * The whole STDOUT, if END_REQUEST has already arrived and `stdout` was
   * never touched: its chunks are handed over (stdout then ends empty) and no
   * stream is made at all. Otherwise undefined: read `stdout`.
   */
  takeWhole(): Buffer[] | undefined;
}

export interface FastCgiStats {
  /** Requests holding a connection slot (connecting, sending or receiving). */
  active: number;
  /** Kept-alive sockets waiting in the pool. */
  idle: number;
  /** Requests waiting for a slot. */
  queued: number;
  /** Sockets not yet closed (pool, active and FCGI_GET_VALUES sockets). */
  open: number;
  /** Sockets ever created by this client. */
  created: number;
}

const REQUEST_ID = 1;
const STDIN_END = encodeStdinEnd(REQUEST_ID);
/** Body bytes kept for one replay after a stale kept socket; past this a stream body is not retried. */
const REPLAY_LIMIT = 1 << 20;
/** Buffer bodies up to this size go out in the same write as the params. */
const INLINE_BODY_LIMIT = 64 * 1024;
const STDOUT_HIGH_WATER = 64 * 1024;

const EMPTY = Buffer.alloc(0);
/** Reads complete (and are copied out) before the next one starts, so every socket shares this buffer. */
const READ_BUFFER = new Uint8Array(64 * 1024);

function noop(): void {}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves on 'drain' or once the socket is gone (a dead socket never drains). */
function waitDrain(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * The request body as numbered chunks. A retry must resend what the dead
 * socket got, so chunks are addressable by index: a Buffer is sliced again; a
 * stream's chunks are logged (up to REPLAY_LIMIT) while a retry is possible.
 */
interface StdinSource {
  /** Chunk i, pulling from the stream when i is the next one; null at the end. */
  get(i: number): Promise<Buffer | null>;
  /** An already-pulled chunk, for a replay. Only valid while `replayable`. */
  replay(i: number): Buffer;
  /** Every chunk pulled so far can be replayed. */
  readonly replayable: boolean;
  /** Forget the logged chunks: no retry (or replay) can happen any more. */
  stopLogging(): void;
  /** Release the underlying stream (the request is over). */
  close(): void;
}

class BufferSource implements StdinSource {
  readonly #data: Buffer;
  readonly count: number;
  readonly replayable = true;

  constructor(data: Buffer) {
    this.#data = data;
    this.count = Math.ceil(data.length / FCGI_MAX_PADDED_CONTENT);
  }

  get(i: number): Promise<Buffer | null> {
    return Promise.resolve(i < this.count ? this.replay(i) : null);
  }

  replay(i: number): Buffer {
    return this.#data.subarray(i * FCGI_MAX_PADDED_CONTENT, (i + 1) * FCGI_MAX_PADDED_CONTENT);
  }

  stopLogging(): void {}
  close(): void {}
}

/** Stateless, so every request without a body shares it. */
const NO_BODY = new BufferSource(Buffer.alloc(0));

class StreamSource implements StdinSource {
  readonly #iterable: AsyncIterable<Buffer | string>;
  #iterator: AsyncIterator<Buffer | string> | undefined;
  #log: Buffer[] | null;
  #logBytes = 0;
  #pulled = 0;
  #ended = false;
  #closed = false;
  #pulling: Promise<Buffer | null> | undefined;

  constructor(iterable: AsyncIterable<Buffer | string>, log: boolean) {
    this.#iterable = iterable;
    this.#log = log ? [] : null;
  }

  get replayable(): boolean {
    return this.#log !== null && this.#log.length === this.#pulled;
  }

  async get(i: number): Promise<Buffer | null> {
    for (;;) {
      if (i < this.#pulled) return this.replay(i);
      if (this.#ended || this.#closed) return null;
      if (this.#pulling) {
        await this.#pulling;
        continue;
      }
      this.#pulling = this.#pull();
      try {
        return await this.#pulling;
      } finally {
        this.#pulling = undefined;
      }
    }
  }

  async #pull(): Promise<Buffer | null> {
    this.#iterator ??= this.#iterable[Symbol.asyncIterator]();
    const r = await this.#iterator.next();
    if (r.done || this.#closed) {
      this.#ended = true;
      return null;
    }
    const v: unknown = r.value;
    const chunk = Buffer.isBuffer(v) ? v : typeof v === 'string' ? Buffer.from(v, 'utf8') : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : undefined;
    if (!chunk) throw new TypeError(`fastcgi: stdin yielded a ${typeof v}, expected Buffer, Uint8Array or string`);
    this.#pulled++;
    if (this.#log) {
      this.#log.push(chunk);
      this.#logBytes += chunk.length;
      if (this.#logBytes > REPLAY_LIMIT) this.#log = null;
    }
    return chunk;
  }

  replay(i: number): Buffer {
    const chunk = this.#log?.[i];
    if (!chunk) throw new Error(`fastcgi: stdin chunk ${i} is no longer available for a replay`);
    return chunk;
  }

  stopLogging(): void {
    this.#log = null;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log = null;
    // The body is no longer wanted. A Readable is destroyed directly: return() on
    // its iterator would queue behind a pending next() and never run if the
    // sender stalls.
    const stream = this.#iterable as Partial<Readable>;
    if (typeof stream.destroy === 'function') stream.destroy();
    else void this.#iterator?.return?.().catch(noop);
  }
}

/**
 * One FPM socket. Its listeners are attached once and dispatch on its state
 * (bound to an attempt, idle in the pool, or neither), and its timers are
 * refreshed rather than re-created: a kept socket serves many requests, and
 * per-request closures and timers showed up in the profile.
 */
interface Conn {
  socket: net.Socket;
  decoder: RecordDecoder;
  /** Requests completed on this socket. */
  served: number;
  /** The attempt currently using the socket. */
  attempt: Attempt | undefined;
  /** Waiting in the pool. */
  idle: boolean;
  idleTimer?: NodeJS.Timeout;
  /** Runs while FPM owes the bound attempt bytes (see #updateReadTimer). */
  readTimer?: NodeJS.Timeout;
  readArmed: boolean;
  /** An FCGI_GET_VALUES socket's reader (request sockets go through #onSocketData). */
  onChunk?: (chunk: Buffer) => void;
}

interface Attempt {
  job: Job;
  conn: Conn;
  reused: boolean;
  /** Connected and BEGIN_REQUEST + PARAMS written. */
  ready: boolean;
  /** FPM sent at least one byte for this request: no retry after that. */
  gotBytes: boolean;
  /** The empty STDIN record was written to this socket. */
  stdinDone: boolean;
  /** The socket is paused because stdout is full. */
  paused: boolean;
  dead: boolean;
  end?: FastCgiEnd;
  connectTimer?: NodeJS.Timeout;
  rescueTimer?: NodeJS.Timeout;
  /** When BEGIN_REQUEST went out (new sockets only, for the rescue). */
  readyAt: number;
}

interface Job {
  /** BEGIN_REQUEST + PARAMS, and for an inline body its STDIN records + the empty one: a socket's first write. */
  head: Buffer;
  /** The whole body rides in `head`. */
  inline: boolean;
  source: StdinSource;
  /** Chunks handed to the current socket (and replayed on a retry). */
  committed: number;
  stdinEnded: boolean;
  pumpStarted: boolean;
  waitingForSource: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
  cancel?: FastCgiCancel;
  /** What this job put in cancel.hook. */
  cancelLink?: CancelLink;
  response: Deferred<FastCgiResponse>;
  /** Made when the caller asks for `done` before the end. */
  done?: Deferred<FastCgiEnd>;
  /** END_REQUEST's statuses, or the failure, once finished. */
  outcome?: FastCgiEnd | FastCgiError;
  /** Made when the caller asks for it; until then STDOUT bytes wait in stdoutChunks. */
  stdout?: Readable;
  stdoutChunks: Buffer[];
  stdoutBytes: number;
  /** Made when the caller asks for it; until then STDERR bytes wait in stderrChunks. */
  stderr?: Readable;
  stderrChunks?: Buffer[];
  onStderr?: (chunk: Buffer) => void;
  attempt?: Attempt;
  readyWaiters: Array<() => void>;
  state: 'queued' | 'running' | 'finished';
  responded: boolean;
  retried: boolean;
}

export class FastCgiClient {
  readonly address: FastCgiAddress;
  readonly #keepAlive: boolean;
  readonly #maxConnections: number;
  readonly #maxQueue: number;
  readonly #connectTimeoutMs: number;
  readonly #readTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #idleRescueMs: number;
  readonly #log: Logger | undefined;

  #active = 0;
  readonly #queue: Job[] = [];
  /** Most recently used last: reuse the warmest socket. */
  readonly #idle: Conn[] = [];
  readonly #sockets = new Set<net.Socket>();
  readonly #running = new Set<Job>();
  /** Attempts on new sockets that have not heard from FPM yet. */
  readonly #silent = new Set<Attempt>();
  readonly #management = new Map<net.Socket, (err: FastCgiError) => void>();
  #created = 0;
  #closed = false;
  #waiters: Array<() => void> = [];

  constructor(options: FastCgiClientOptions) {
    this.address = typeof options.address === 'string' ? parseFastCgiAddress(options.address) : options.address;
    this.#keepAlive = options.keepAlive ?? true;
    this.#maxConnections = positiveInt('maxConnections', options.maxConnections ?? 8);
    this.#maxQueue = nonNegativeInt('maxQueue', options.maxQueue ?? 1024);
    this.#connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? 5000);
    this.#readTimeoutMs = positiveInt('readTimeoutMs', options.readTimeoutMs ?? 60_000);
    this.#idleTimeoutMs = positiveInt('idleTimeoutMs', options.idleTimeoutMs ?? 30_000);
    this.#idleRescueMs = positiveInt('idleRescueMs', options.idleRescueMs ?? 250);
    this.#log = options.logger;
  }

  stats(): FastCgiStats {
    return { active: this.#active, idle: this.#idle.length, queued: this.#queue.length, open: this.#sockets.size, created: this.#created };
  }

  /**
   * Send one request. Resolves with the response once FPM's first STDOUT (or
   * END_REQUEST) record arrived; rejects with a FastCgiError for anything that
   * fails before that, so the caller can still answer 502/503/504/431.
   */
  request(init: FastCgiRequestInit): Promise<FastCgiResponse> {
    if (this.#closed) return Promise.reject(new FastCgiError('CLOSED', 'fastcgi: the client is closed'));
    if (init.signal?.aborted) return Promise.reject(abortedError(init.signal.reason));
    if (init.cancel?.aborted) return Promise.reject(abortedError(init.cancel.reason));
    if (this.#active >= this.#maxConnections && this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new FastCgiError('QUEUE_FULL', `fastcgi: ${this.#queue.length} requests already wait for one of ${this.#maxConnections} connections`));
    }
    const stdin = init.stdin;
    // Small bodies ride in the first write with the params.
    const inline = stdin === undefined || (Buffer.isBuffer(stdin) && stdin.length <= INLINE_BODY_LIMIT);
    let head: Buffer;
    try {
      head = encodeRequest(REQUEST_ID, init.params, { role: Role.Responder, keepConn: this.#keepAlive, stdin: inline ? (stdin as Buffer | undefined) ?? EMPTY : undefined });
    } catch (err) {
      return Promise.reject(err);
    }
    const job = this.#newJob(init, head, inline);
    if (this.#active < this.#maxConnections) this.#start(job);
    else this.#queue.push(job);
    return job.response.promise;
  }

  /**
   * FCGI_GET_VALUES on a short-lived socket of its own (FPM answers, then
   * closes). Names FPM does not know are simply absent from the result.
   */
  getValues(names: readonly string[]): Promise<Record<string, string>> {
    if (this.#closed) return Promise.reject(new FastCgiError('CLOSED', 'fastcgi: the client is closed'));
    let request: Buffer;
    try {
      request = encodeGetValues(names);
    } catch (err) {
      return Promise.reject(err);
    }
    const conn = this.#newConn();
    const { socket } = conn;
    return new Promise<Record<string, string>>((resolve, reject) => {
      let connected = false;
      let settled = false;
      let timer = setTimeout(() => {
        finish(new FastCgiError('TIMEOUT', `fastcgi: connect to ${this.#where()} timed out after ${this.#connectTimeoutMs} ms`));
      }, this.#connectTimeoutMs);
      const finish = (err: FastCgiError | null, values?: Record<string, string>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#management.delete(socket);
        socket.destroy();
        if (err) reject(err);
        else resolve(values!);
      };
      this.#management.set(socket, (err) => finish(err));
      socket.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        timer = setTimeout(() => finish(new FastCgiError('TIMEOUT', `fastcgi: no FCGI_GET_VALUES_RESULT within ${this.#readTimeoutMs} ms`)), this.#readTimeoutMs);
        socket.write(request);
      });
      conn.onChunk = (chunk: Buffer) => {
        let records: FastCgiRecord[];
        try {
          records = conn.decoder.push(chunk);
        } catch (err) {
          finish(err as FastCgiError);
          return;
        }
        for (const rec of records) {
          if (rec.type !== RecordType.GetValuesResult) {
            finish(new FastCgiError('PROTOCOL', `fastcgi: expected FCGI_GET_VALUES_RESULT, got ${recordTypeName(rec.type)}`, { offset: rec.offset }));
            return;
          }
          try {
            const values: Record<string, string> = {};
            for (const [k, v] of decodeNameValuePairs(rec.content, 'utf8', rec.offset + 8)) values[k] = v;
            finish(null, values);
          } catch (err) {
            finish(err as FastCgiError);
          }
          return;
        }
      };
      socket.on('error', (err) => {
        finish(
          connected
            ? new FastCgiError('RESET', `fastcgi: FCGI_GET_VALUES connection failed: ${errorText(err)}`, { cause: err })
            : new FastCgiError('CONNECT', `fastcgi: cannot connect to ${this.#where()}: ${errorText(err)}`, { cause: err }),
        );
      });
      socket.once('close', () => finish(new FastCgiError('RESET', 'fastcgi: FPM closed the connection without FCGI_GET_VALUES_RESULT')));
    });
  }

  /**
   * Stop: queued requests are rejected with CLOSED, idle sockets closed,
   * active requests get `timeoutMs` (default readTimeoutMs) to finish and are
   * then failed with CLOSED. Resolves once every socket is closed.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#fail(job, new FastCgiError('CLOSED', 'fastcgi: the client was closed while the request waited for a connection'));
    for (const conn of this.#idle.splice(0)) this.#destroyConn(conn);
    for (const fail of [...this.#management.values()]) fail(new FastCgiError('CLOSED', 'fastcgi: the client was closed'));
    const timeoutMs = options.timeoutMs ?? this.#readTimeoutMs;
    if (!(await this.#waitFor(() => this.#running.size === 0, timeoutMs))) {
      for (const job of [...this.#running]) this.#fail(job, new FastCgiError('CLOSED', `fastcgi: the client was closed and the request did not finish within ${timeoutMs} ms`));
    }
    for (const socket of this.#sockets) socket.destroy();
    await this.#waitFor(() => this.#sockets.size === 0, 5000);
  }

  // -------------------------------------------------------------------------
  // jobs

  #newJob(init: FastCgiRequestInit, head: Buffer, inline: boolean): Job {
    const stdin = init.stdin;
    let source: StdinSource;
    let committed = 0;
    let stdinEnded = false;
    if (stdin === undefined || Buffer.isBuffer(stdin)) {
      const buffer = stdin === undefined || stdin.length === 0 ? NO_BODY : new BufferSource(stdin);
      source = buffer;
      if (inline) {
        committed = buffer.count;
        stdinEnded = true;
      }
    } else {
      // Chunks are logged for a replay only while a retry is possible (see #onReady and #respond).
      source = new StreamSource(stdin as AsyncIterable<Buffer | string>, this.#keepAlive);
    }
    const job: Job = {
      head,
      inline,
      source,
      committed,
      stdinEnded,
      pumpStarted: false,
      waitingForSource: false,
      signal: init.signal,
      response: deferred(),
      stdoutChunks: [],
      stdoutBytes: 0,
      onStderr: init.onStderr,
      readyWaiters: [],
      state: 'queued',
      responded: false,
      retried: false,
    };
    if (init.signal) {
      const signal = init.signal;
      job.onAbort = () => this.#fail(job, abortedError(signal.reason));
      // #unhookSignal removes it, so no { once: true } (which costs an options parse per request).
      signal.addEventListener('abort', job.onAbort);
    }
    if (init.cancel) {
      job.cancel = init.cancel;
      job.cancelLink = new CancelLink(job, this.#cancelled);
      init.cancel.hook = job.cancelLink;
    }
    return job;
  }

  readonly #cancelled = (job: Job, reason: unknown): void => this.#fail(job, abortedError(reason));

  /** One set of hooks for every request's stdout: no closures per request. */
  readonly #stdoutHooks: StdoutHooks = {
    read: (job) => this.#onStdoutRead(job),
    destroyed: (job) => {
      if (!isFinished(job)) this.#fail(job, new FastCgiError('ABORTED', 'fastcgi: stdout was destroyed before the end of the response'));
    },
  };

  #start(job: Job): void {
    job.state = 'running';
    this.#active++;
    this.#running.add(job);
    this.#attempt(job, true);
  }

  #dispatch(): void {
    while (!this.#closed && this.#queue.length > 0 && this.#active < this.#maxConnections) this.#start(this.#queue.shift()!);
  }

  /** Run the job on an idle socket (when allowed and available) or a new one. */
  #attempt(job: Job, mayReuse: boolean): void {
    const idle = mayReuse ? this.#takeIdle() : undefined;
    if (idle) {
      this.#bind(job, idle, true);
      return;
    }
    this.#bind(job, this.#newConn(), false);
  }

  #bind(job: Job, conn: Conn, reused: boolean): void {
    const a: Attempt = { job, conn, reused, ready: false, gotBytes: false, stdinDone: false, paused: false, dead: false, readyAt: 0 };
    job.attempt = a;
    conn.attempt = a;
    if (reused) {
      this.#onReady(job, a);
    } else {
      a.connectTimer = setTimeout(() => {
        this.#fail(job, new FastCgiError('TIMEOUT', `fastcgi: connect to ${this.#where()} timed out after ${this.#connectTimeoutMs} ms`));
      }, this.#connectTimeoutMs);
    }
  }

  /** The attempt no longer listens to its socket. */
  #detach(a: Attempt): void {
    if (a.conn.attempt === a) a.conn.attempt = undefined;
    clearTimeout(a.connectTimer);
    clearInterval(a.rescueTimer);
    this.#silent.delete(a);
    this.#disarmRead(a.conn);
  }

  // Socket events, dispatched on the socket's state.

  #onSocketConnect(conn: Conn): void {
    const a = conn.attempt;
    if (a && !a.ready) this.#onReady(a.job, a);
  }

  #onRead(conn: Conn, buf: Uint8Array, n: number): void {
    // The decoder and stdout keep slices of what they get, so the shared buffer is copied.
    const chunk = Buffer.allocUnsafe(n);
    chunk.set(n === buf.length ? buf : buf.subarray(0, n));
    if (conn.onChunk) conn.onChunk(chunk);
    else this.#onSocketData(conn, chunk);
  }

  #onSocketData(conn: Conn, chunk: Buffer): void {
    const a = conn.attempt;
    if (a) this.#onData(a.job, a, chunk);
    else if (conn.idle) this.#dropIdle(conn, 'unexpected bytes on an idle connection');
  }

  #onSocketGone(conn: Conn, ended: boolean): void {
    const a = conn.attempt;
    if (a) this.#onLost(a.job, a, ended ? 'FPM closed the connection' : 'the connection closed');
    else if (conn.idle) this.#dropIdle(conn, ended ? 'closed by FPM' : 'closed');
  }

  #onSocketError(conn: Conn, err: Error): void {
    const a = conn.attempt;
    if (a) {
      if (!a.ready) this.#fail(a.job, new FastCgiError('CONNECT', `fastcgi: cannot connect to ${this.#where()}: ${errorText(err)}`, { cause: err }));
      else this.#onLost(a.job, a, errorText(err), err);
    } else if (conn.idle) this.#dropIdle(conn, errorText(err));
  }

  /** Connected (or reused): send BEGIN_REQUEST, PARAMS and whatever body a retry must replay. */
  #onReady(job: Job, a: Attempt): void {
    if (isFinished(job) || a.dead) return;
    clearTimeout(a.connectTimer);
    a.ready = true;
    if (job.inline) {
      a.stdinDone = true;
      this.#write(job, a, job.head);
      return;
    }
    const parts: Buffer[] = [job.head];
    try {
      for (let i = 0; i < job.committed; i++) parts.push(...encodeStdin(REQUEST_ID, job.source.replay(i)));
    } catch (err) {
      this.#fail(job, new FastCgiError('RESET', `fastcgi: a kept connection died and the request body cannot be sent again: ${errorText(err)}`, { cause: err }));
      return;
    }
    // This is the last socket the job will try: nothing needs replaying any more.
    if (job.retried || !a.reused) job.source.stopLogging();
    if (job.stdinEnded) {
      parts.push(STDIN_END);
      a.stdinDone = true;
    }
    this.#write(job, a, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    wakeReady(job);
    if (!job.stdinEnded && !job.pumpStarted) {
      job.pumpStarted = true;
      void this.#pumpStdin(job);
    }
  }

  /** The attempt's first write; a new socket starts its rescue watch. */
  #write(job: Job, a: Attempt, bytes: Buffer): void {
    a.conn.socket.write(bytes);
    this.#updateReadTimer(job);
    if (!a.reused) {
      a.readyAt = Date.now();
      this.#silent.add(a);
      a.rescueTimer = setInterval(() => this.#rescue(a), this.#idleRescueMs);
      a.rescueTimer.unref();
    }
  }

  /** Streams the body into STDIN records, one socket write per chunk, waiting for 'drain'. */
  async #pumpStdin(job: Job): Promise<void> {
    try {
      for (let i = job.committed; ; i++) {
        // While a retry connects, pull nothing: what is pulled then would only grow the replay.
        while (job.state === 'running' && !(job.attempt?.ready && !job.attempt.dead)) {
          await new Promise<void>((resolve) => job.readyWaiters.push(resolve));
        }
        if (isFinished(job)) return;
        job.waitingForSource = true;
        this.#updateReadTimer(job);
        let chunk: Buffer | null;
        try {
          chunk = await job.source.get(i);
        } finally {
          job.waitingForSource = false;
        }
        if (isFinished(job)) return;
        this.#updateReadTimer(job);
        if (chunk === null) break;
        job.committed = i + 1;
        const records = encodeStdin(REQUEST_ID, chunk);
        if (records.length > 0) await this.#sendCommitted(job, records.length === 1 ? records[0]! : Buffer.concat(records), false);
      }
      if (isFinished(job)) return;
      job.stdinEnded = true;
      await this.#sendCommitted(job, STDIN_END, true);
    } catch (err) {
      if (!isFinished(job)) this.#fail(job, new FastCgiError('ABORTED', `fastcgi: reading the request body failed: ${errorText(err)}`, { cause: err }));
    }
  }

  /**
   * Writes committed body bytes to the live socket. Between a dead socket and
   * its retry there is none: the retry's #onReady replays every committed
   * chunk, so waiting for it is enough.
   */
  async #sendCommitted(job: Job, bytes: Buffer, isEnd: boolean): Promise<void> {
    if (isFinished(job)) return;
    const a = job.attempt;
    if (a && a.ready && !a.dead) {
      if (isEnd) a.stdinDone = true;
      if (!a.conn.socket.write(bytes)) await waitDrain(a.conn.socket);
      return;
    }
    await new Promise<void>((resolve) => job.readyWaiters.push(resolve));
  }

  /** A new socket still silent: perhaps queued in FPM's backlog behind our idle sockets. Free one worker. */
  #rescue(a: Attempt): void {
    if (a.gotBytes || a.dead) {
      clearInterval(a.rescueTimer);
      this.#silent.delete(a);
      return;
    }
    const oldest = this.#idle.shift();
    if (!oldest) return;
    this.#log?.debug({ fcgi: this.#where(), idle: this.#idle.length }, 'fastcgi: a new connection is still silent; closing an idle one to free its FPM worker');
    this.#destroyConn(oldest);
  }

  /** Some new socket has been silent for idleRescueMs: maybe in FPM's backlog. */
  #starving(): boolean {
    const now = Date.now();
    for (const a of this.#silent) if (now - a.readyAt >= this.#idleRescueMs) return true;
    return false;
  }

  #onData(job: Job, a: Attempt, chunk: Buffer): void {
    if (isFinished(job) || a.dead) return;
    if (!a.gotBytes) {
      clearInterval(a.rescueTimer);
      this.#silent.delete(a);
    }
    a.gotBytes = true;
    if (a.conn.readArmed) a.conn.readTimer?.refresh();
    let records: FastCgiRecord[];
    try {
      records = a.conn.decoder.push(chunk);
    } catch (err) {
      this.#fail(job, err as FastCgiError);
      return;
    }
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      try {
        this.#onRecord(job, a, rec);
      } catch (err) {
        this.#fail(job, err instanceof FastCgiError ? err : new FastCgiError('PROTOCOL', `fastcgi: ${errorText(err)}`, { offset: rec.offset, cause: err }));
        return;
      }
      if (isFinished(job)) return; // failed (e.g. OVERLOADED)
      if (a.end) {
        const trailing = i < records.length - 1 || a.conn.decoder.buffered > 0;
        this.#succeed(job, a, a.end, trailing);
        return;
      }
    }
  }

  #onRecord(job: Job, a: Attempt, rec: FastCgiRecord): void {
    if (rec.requestId !== REQUEST_ID) {
      throw new FastCgiError('PROTOCOL', `fastcgi: ${recordTypeName(rec.type)} record for request id ${rec.requestId}, expected ${REQUEST_ID}`, { offset: rec.offset });
    }
    switch (rec.type) {
      case RecordType.Stdout:
        this.#respond(job);
        if (rec.content.length > 0 && !pushStdout(job, rec.content)) {
          // Real backpressure: stop reading FPM's socket until stdout is read.
          a.conn.socket.pause();
          a.paused = true;
          this.#updateReadTimer(job);
        }
        return;
      case RecordType.Stderr:
        if (rec.content.length > 0) this.#onStderr(job, rec.content);
        return;
      case RecordType.EndRequest: {
        const end = parseEndRequest(rec.content);
        if (end.protocolStatus === ProtocolStatus.Overloaded || end.protocolStatus === ProtocolStatus.CantMpxConn) {
          const what = end.protocolStatus === ProtocolStatus.Overloaded ? 'FCGI_OVERLOADED' : 'FCGI_CANT_MPX_CONN';
          this.#fail(job, new FastCgiError('OVERLOADED', `fastcgi: FPM refused the request (${what})`));
          return;
        }
        if (end.protocolStatus !== ProtocolStatus.RequestComplete) {
          throw new FastCgiError('PROTOCOL', `fastcgi: END_REQUEST with protocol status ${end.protocolStatus}${end.protocolStatus === ProtocolStatus.UnknownRole ? ' (FCGI_UNKNOWN_ROLE)' : ''}`, { offset: rec.offset });
        }
        a.end = end;
        return;
      }
      default:
        throw new FastCgiError('PROTOCOL', `fastcgi: unexpected ${recordTypeName(rec.type)} record from FPM`, { offset: rec.offset });
    }
  }

  #respond(job: Job): void {
    if (job.responded) return;
    job.responded = true;
    // No retry once FPM has answered: the body log can go.
    job.source.stopLogging();
    job.response.resolve(new JobResponse(job, this.#stdoutHooks));
  }

  #onStderr(job: Job, chunk: Buffer): void {
    if (job.onStderr) {
      try {
        job.onStderr(chunk);
      } catch (err) {
        this.#log?.debug({ fcgi: this.#where(), err: errorText(err) }, 'fastcgi: the onStderr callback threw');
      }
    } else if (job.stderr) job.stderr.push(chunk);
    else (job.stderrChunks ??= []).push(chunk);
  }

  #onStdoutRead(job: Job): void {
    const a = job.attempt;
    if (job.state !== 'running' || !a || !a.paused || a.dead) return;
    a.paused = false;
    a.conn.socket.resume();
    this.#updateReadTimer(job);
  }

  /**
   * The read timer runs only while FPM owes us bytes: not while our stdout
   * consumer is slow (socket paused) and not while we wait for the caller's body.
   */
  #updateReadTimer(job: Job): void {
    const a = job.attempt;
    if (!a) return;
    const run = job.state === 'running' && a.ready && !a.dead && !a.paused && !job.waitingForSource;
    const conn = a.conn;
    if (run && !conn.readArmed) {
      conn.readArmed = true;
      if (conn.readTimer) conn.readTimer.refresh().ref();
      else conn.readTimer = setTimeout(() => this.#onReadTimeout(conn), this.#readTimeoutMs);
    } else if (!run && conn.readArmed) {
      this.#disarmRead(conn);
    }
  }

  /** A disarmed timer may still fire (and is ignored); unref'd, it keeps no process alive. */
  #disarmRead(conn: Conn): void {
    if (!conn.readArmed) return;
    conn.readArmed = false;
    conn.readTimer?.unref();
  }

  #onReadTimeout(conn: Conn): void {
    const a = conn.attempt;
    if (!conn.readArmed || !a) return;
    this.#fail(a.job, new FastCgiError('TIMEOUT', `fastcgi: FPM sent nothing for ${this.#readTimeoutMs} ms`));
  }

  /** The socket died under a running request: retry a stale kept socket once, else RESET. */
  #onLost(job: Job, a: Attempt, why: string, cause?: Error): void {
    if (isFinished(job) || a.dead || job.attempt !== a) return;
    a.dead = true;
    this.#detach(a);
    this.#destroyConn(a.conn);
    if (a.reused && !a.gotBytes && !job.retried && job.source.replayable && !this.#closed) {
      job.retried = true;
      this.#log?.debug({ fcgi: this.#where(), why, served: a.conn.served }, 'fastcgi: kept connection was stale, retrying on a new one');
      this.#attempt(job, false);
      return;
    }
    const phase = job.responded ? 'before END_REQUEST' : 'before any response';
    this.#fail(job, new FastCgiError('RESET', `fastcgi: ${why} ${phase}${a.reused ? ' (kept connection)' : ''}`, { cause }));
  }

  #succeed(job: Job, a: Attempt, end: FastCgiEnd, trailing: boolean): void {
    job.state = 'finished';
    a.dead = true;
    this.#detach(a);
    a.conn.served++;
    this.#unhookSignal(job);
    const reusable = this.#keepAlive && !this.#closed && a.stdinDone && !trailing && !a.conn.socket.destroyed;
    if (trailing) this.#log?.warn({ fcgi: this.#where() }, 'fastcgi: bytes after END_REQUEST, dropping the connection');
    if (reusable && this.#starving()) {
      // Keeping this socket would pin the worker a silent new socket may be queued for.
      this.#log?.debug({ fcgi: this.#where() }, 'fastcgi: a new connection is still silent; not keeping this one');
      this.#destroyConn(a.conn);
    } else if (reusable) this.#putIdle(a.conn);
    else this.#destroyConn(a.conn);
    this.#respond(job);
    job.outcome = end;
    job.stdout?.push(null);
    job.stderr?.push(null);
    job.done?.resolve(end);
    job.source.close();
    this.#release(job);
  }

  #fail(job: Job, err: FastCgiError): void {
    if (isFinished(job)) return;
    const wasQueued = job.state === 'queued';
    job.state = 'finished';
    this.#unhookSignal(job);
    const a = job.attempt;
    if (a && !a.dead) {
      a.dead = true;
      this.#detach(a);
      this.#destroyConn(a.conn);
    }
    if (err.code === 'PROTOCOL') this.#log?.warn({ fcgi: this.#where(), err: err.message }, 'fastcgi: protocol error');
    job.outcome = err;
    if (!job.responded) {
      job.response.reject(err);
    } else {
      job.stdout?.destroy(err);
      job.stderr?.push(null);
    }
    job.done?.reject(err);
    job.source.close();
    wakeReady(job);
    if (wasQueued) {
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
    } else {
      this.#release(job);
    }
  }

  #release(job: Job): void {
    if (!this.#running.delete(job)) return;
    this.#active--;
    this.#dispatch();
    this.#notify();
  }

  #unhookSignal(job: Job): void {
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    if (job.cancel && job.cancel.hook === job.cancelLink) job.cancel.hook = undefined;
  }

  // -------------------------------------------------------------------------
  // sockets

  #where(): string {
    return formatFastCgiAddress(this.address);
  }

  #newConn(): Conn {
    // Reads land in one shared buffer and are copied out at their exact size,
    // straight to #onRead: no 64 KiB allocation per read and no 'data' event
    // through the socket's Readable. pause()/resume() work as before.
    const onread = {
      buffer: READ_BUFFER,
      callback: (n: number, buf: Uint8Array): boolean => {
        this.#onRead(conn, buf, n);
        return true;
      },
    };
    const socket = 'path' in this.address ? net.createConnection({ path: this.address.path, onread }) : net.createConnection({ host: this.address.host, port: this.address.port, onread });
    this.#created++;
    this.#sockets.add(socket);
    const conn: Conn = { socket, decoder: new RecordDecoder(), served: 0, attempt: undefined, idle: false, readArmed: false };
    // Errors are handled by whoever owns the socket at the time; this one only keeps a late error from crashing the process.
    socket.on('error', noop);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#notify();
    });
    socket.once('connect', () => this.#onSocketConnect(conn));
    socket.on('end', () => this.#onSocketGone(conn, true));
    socket.on('close', () => this.#onSocketGone(conn, false));
    socket.on('error', (err: Error) => this.#onSocketError(conn, err));
    if (!('path' in this.address)) socket.setNoDelay(true);
    return conn;
  }

  #destroyConn(conn: Conn): void {
    conn.idle = false;
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.readTimer);
    conn.readArmed = false;
    conn.socket.destroy();
  }

  #dropIdle(conn: Conn, why: string): void {
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#log?.debug({ fcgi: this.#where(), why, served: conn.served }, 'fastcgi: dropping idle connection');
    this.#destroyConn(conn);
    this.#notify();
  }

  #onIdleTimeout(conn: Conn): void {
    if (conn.idle) this.#dropIdle(conn, `idle for ${this.#idleTimeoutMs} ms`);
  }

  #putIdle(conn: Conn): void {
    const { socket } = conn;
    conn.idle = true;
    // Refreshed, not re-created, per request; it fires (ignored) while the socket is in use.
    if (conn.idleTimer) conn.idleTimer.refresh();
    else {
      conn.idleTimer = setTimeout(() => this.#onIdleTimeout(conn), this.#idleTimeoutMs);
      conn.idleTimer.unref();
    }
    socket.resume(); // it may still be paused by stdout backpressure; an idle socket must see FPM's FIN
    socket.unref(); // an idle pool never keeps the process alive
    this.#idle.push(conn);
  }

  #takeIdle(): Conn | undefined {
    for (;;) {
      const conn = this.#idle.pop();
      if (!conn) return undefined;
      conn.idle = false;
      const s = conn.socket;
      if (s.destroyed || !s.readable || !s.writable || s.readableEnded) {
        this.#destroyConn(conn);
        continue;
      }
      s.ref();
      return conn;
    }
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves true once `pred` holds (checked after every release/close), false after timeoutMs. */
  #waitFor(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (pred()) return resolve(true);
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        resolve(false);
      }, timeoutMs);
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          resolve(true);
        } else {
          this.#waiters.push(check);
        }
      };
      this.#waiters.push(check);
    });
  }
}

/** Wakes the body pump waiting for a ready socket (usually nobody waits: no array copy then). */
function wakeReady(job: Job): void {
  if (job.readyWaiters.length === 0) return;
  const waiters = job.readyWaiters;
  job.readyWaiters = [];
  for (const wake of waiters) wake();
}

/** A function, so TypeScript does not narrow `state` across awaits and callbacks. */
function isFinished(job: Job): boolean {
  return job.state === 'finished';
}

function abortedError(reason: unknown): FastCgiError {
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  return new FastCgiError('ABORTED', `fastcgi: request aborted (${why})`, { cause: reason });
}

function positiveInt(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`fastcgi: ${name} must be a positive integer, got ${n}`);
  return n;
}

function nonNegativeInt(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`fastcgi: ${name} must be a non-negative integer, got ${n}`);
  return n;
}

interface StdoutHooks {
  read(job: Job): void;
  destroyed(job: Job): void;
}

/** A request's STDOUT: reading resumes FPM's socket, destroying aborts the request. */
class Stdout extends Readable {
  readonly #job: Job;
  readonly #hooks: StdoutHooks;

  constructor(job: Job, hooks: StdoutHooks) {
    super({ highWaterMark: STDOUT_HIGH_WATER });
    this.#job = job;
    this.#hooks = hooks;
  }

  override _read(): void {
    this.#hooks.read(this.#job);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#hooks.destroyed(this.#job);
    cb(err);
  }
}

/**
 * STDOUT bytes into the stream, or kept until one is made (the caller may
 * take them whole instead). False: enough is waiting, stop reading FPM.
 */
function pushStdout(job: Job, chunk: Buffer): boolean {
  if (job.stdout) return job.stdout.push(chunk);
  job.stdoutChunks.push(chunk);
  job.stdoutBytes += chunk.length;
  return job.stdoutBytes < STDOUT_HIGH_WATER;
}

/** What request() resolves with; stdout, stderr and done are made on first access. */
class JobResponse implements FastCgiResponse {
  readonly #job: Job;
  readonly #hooks: StdoutHooks;

  constructor(job: Job, hooks: StdoutHooks) {
    this.#job = job;
    this.#hooks = hooks;
  }

  get stdout(): Readable {
    const job = this.#job;
    if (!job.stdout) {
      const stdout = new Stdout(job, this.#hooks);
      stdout.on('error', noop);
      job.stdout = stdout;
      for (const chunk of job.stdoutChunks) stdout.push(chunk);
      job.stdoutChunks = [];
      const outcome = job.outcome;
      if (outcome instanceof FastCgiError) stdout.destroy(outcome);
      else if (outcome) stdout.push(null);
    }
    return job.stdout;
  }

  takeWhole(): Buffer[] | undefined {
    const job = this.#job;
    if (job.stdout || !job.outcome || job.outcome instanceof FastCgiError) return undefined;
    const chunks = job.stdoutChunks;
    job.stdoutChunks = [];
    return chunks;
  }

  get stderr(): Readable {
    const job = this.#job;
    if (!job.stderr) {
      const stderr = new Readable({ read: noop });
      for (const chunk of job.stderrChunks?.splice(0) ?? []) stderr.push(chunk);
      if (isFinished(job)) stderr.push(null);
      job.stderr = stderr;
    }
    return job.stderr;
  }

  get done(): Promise<FastCgiEnd> {
    const job = this.#job;
    if (!job.done) {
      job.done = deferred();
      job.done.promise.catch(noop);
      const outcome = job.outcome;
      if (outcome instanceof FastCgiError) job.done.reject(outcome);
      else if (outcome) job.done.resolve(outcome);
    }
    return job.done.promise;
  }
}

/** A job's entry in its caller's cancel switch. */
class CancelLink {
  constructor(
    private readonly job: Job,
    private readonly onCancel: (job: Job, reason: unknown) => void,
  ) {}

  cancelled(reason: unknown): void {
    this.onCancel(this.job, reason);
  }
}
