/**
 * One websocket connection passed through the bridge: Mongrel2's client on
 * one side, a backend's upgraded byte stream (Backend.upgrade) on the other.
 *
 * - Handshake: the backend's `upgrade()` sends the client's upgrade request;
 *   its answer is read here. A 101 becomes the 101 sent to Mongrel2 (with
 *   the accept value Mongrel2 computed, which the backend's must equal, and
 *   the backend's other headers such as Sec-WebSocket-Protocol); any other
 *   answer is forwarded as an HTTP response and the connection is closed.
 * - Server → client: the backend's bytes already are unmasked server frames,
 *   so they go out as they come, whole reads at a time, paced by download
 *   credits when Mongrel2 has flow control on. A scanner follows the frame
 *   boundaries (without copying payloads) to know when a close frame went
 *   by and where a close frame of our own may be inserted.
 * - Client → server: Mongrel2 hands over one message per client frame or
 *   reassembled message (FLAGS = FIN|RSV|opcode, payload unmasked); each is
 *   re-encoded as one masked client frame.
 * - Memory: Mongrel2 has no flow control for client frames, so client bytes
 *   queued for a backend that does not read are bounded (`maxBuffered`);
 *   past the bound the tunnel closes with 1008. A single message is always
 *   accepted when nothing is queued (it is already in memory).
 * - Close: a close frame each way ends it (then the Mongrel2 close message
 *   and the end of the backend stream); a backend that ends or fails without
 *   a close frame gets one sent on its behalf (1001 / 1011); a client that
 *   disconnects (the signal) destroys the backend stream; `shutdown()` closes
 *   both sides with 1001.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Connection } from '../handler/connection.js';
import type { Logger } from '../handler/logger.js';
import { endToEndHeaders } from '../http/hop-by-hop.js';
import { headerEntries } from '../protocol/http-response.js';
import type { HttpRequest, WebSocketHandshake, WebSocketMessage } from '../protocol/request.js';
import { buildCloseFrame, buildFrame, CloseCode, Opcode } from '../protocol/websocket.js';
import { ResponseParser, type ParsedHead } from '../../adapters/app/response-parser.js';
import { BackendError, type BackendUpgradeRequest } from './backend.js';

/** A backend that can upgrade. */
export interface UpgradeBackend {
  readonly name: string;
  upgrade(request: BackendUpgradeRequest): Promise<Duplex>;
}

export interface TunnelOptions {
  connection: Connection;
  req: WebSocketHandshake;
  backend: UpgradeBackend;
  /** Aborts when the client disconnects (the tunnel then just stops). */
  signal: AbortSignal;
  logger: Logger;
  /** Client bytes queued for the backend before the tunnel closes with 1008 (default 8 MiB). */
  maxBuffered?: number;
  /** How long a close handshake or the end of the backend stream may take (default 5 s). */
  closeTimeoutMs?: number;
  /** Largest body of a refusal (non-101 answer) forwarded to the client (default 1 MiB). */
  maxRefusalBody?: number;
  /** How long the backend may take to answer the upgrade request before a 504 (default 60 s). */
  handshakeTimeoutMs?: number;
  /** Without flow control, the least time between two messages to Mongrel2 in a burst (default 2 ms). */
  lingerMs?: number;
}

/** The handshake seen as the GET request it is (RFC 6455 §4.1), for routers and request-head builders. */
export function handshakeAsRequest(req: WebSocketHandshake): HttpRequest {
  return { ...req, kind: 'http', method: 'GET' };
}

/**
 * The backend's headers minus those that describe its connection to us
 * (hop-by-hop) and those we set anew: the body framing and the accept value.
 */
function relayedHeaders(headers: ParsedHead['headers']): ParsedHead['headers'] {
  return endToEndHeaders(headers, ['content-length', 'sec-websocket-accept']);
}

export class WebSocketTunnel {
  readonly #conn: Connection;
  readonly #req: WebSocketHandshake;
  readonly #backend: UpgradeBackend;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #maxBuffered: number;
  readonly #closeTimeoutMs: number;
  readonly #maxRefusalBody: number;
  readonly #lingerMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #scanner = new FrameScanner();

  #duplex: Duplex | undefined;
  #phase: 'connecting' | 'open' | 'closed' = 'connecting';
  /** Client frames that came before the backend's 101. */
  #early: Buffer[] = [];
  #earlyBytes = 0;
  /** A close frame has gone to the client / to the backend. */
  #toClientClosed = false;
  #toBackendClosed = false;
  /** Nothing more may be sent to Mongrel2 for this connection. */
  #mongrel2Done = false;
  #timer: NodeJS.Timeout | undefined;
  /** shutdown() was called. */
  #stopping = false;
  #wake: (() => void) | undefined;
  readonly #onEvent = (): void => this.#wake?.();

  constructor(options: TunnelOptions) {
    this.#conn = options.connection;
    this.#req = options.req;
    this.#backend = options.backend;
    this.#signal = options.signal;
    this.#log = options.logger;
    this.#maxBuffered = options.maxBuffered ?? 8 * 1024 * 1024;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.#maxRefusalBody = options.maxRefusalBody ?? 1024 * 1024;
    this.#lingerMs = options.lingerMs ?? 2;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 60_000;
  }

  /**
   * Runs the tunnel to its end. Resolves with the status of an error page
   * the caller must send (and close after) when the upgrade failed before
   * any answer went out, else undefined.
   */
  async run(): Promise<number | undefined> {
    const onAbort = (): void => this.#clientGone();
    this.#signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.#run();
    } finally {
      this.#signal.removeEventListener('abort', onAbort);
      clearTimeout(this.#timer);
      this.#phase = 'closed';
    }
  }

  async #run(): Promise<number | undefined> {
    if (this.#signal.aborted) return undefined;
    let duplex: Duplex;
    try {
      duplex = await this.#backend.upgrade({ req: this.#req, signal: this.#signal });
    } catch (err) {
      if (this.#signal.aborted) return undefined;
      const status = err instanceof BackendError ? err.status : 502;
      this.#log[status >= 500 && status !== 501 ? 'error' : 'warn']({ err, connId: this.#req.connId, backend: this.#backend.name, status }, `websocket upgrade failed: ${(err as Error).message}`);
      return status;
    }
    this.#duplex = duplex;
    // Errors surface through read() returning null and `errored`; never as an uncaught 'error'.
    duplex.on('error', () => undefined);
    for (const event of ['readable', 'end', 'close', 'error']) duplex.on(event, this.#onEvent);
    if (this.#signal.aborted || this.#phase === 'closed') {
      duplex.destroy();
      return undefined;
    }
    try {
      const status = await this.#handshake(duplex);
      if (status !== undefined) {
        duplex.destroy();
        return status;
      }
      if (this.#phase === 'open') await this.#forwardDown(duplex);
    } finally {
      await this.#closed(duplex);
    }
    return undefined;
  }

  /** Reads the backend's answer; returns an error status, or undefined once answered (open, or refused). */
  async #handshake(duplex: Duplex): Promise<number | undefined> {
    let head: ParsedHead | undefined;
    const rest: Buffer[] = [];
    let restBytes = 0;
    let ended = false;
    const parser = new ResponseParser(
      { method: 'GET', upgrade: true },
      {
        head: (h) => (head = h),
        data: (chunk) => {
          rest.push(chunk);
          restBytes += chunk.length;
        },
        end: () => (ended = true),
      },
    );
    const fail = (why: string, status = 502): number => {
      this.#log.error({ connId: this.#req.connId, backend: this.#backend.name }, `websocket upgrade: ${why}: ${status}`);
      return status;
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      duplex.destroy();
    }, this.#handshakeTimeoutMs);
    try {
      // The head, and for a refusal its whole (bounded) body.
      while (head === undefined || (head.status !== 101 && !ended)) {
        const chunk = await this.#read(duplex);
        if (this.#phase === 'closed') return undefined; // the client left, or the tunnel was closed meanwhile
        if (timedOut) return fail(`no answer within ${this.#handshakeTimeoutMs} ms`, 504);
        if (chunk === null) {
          if (head === undefined) return fail(`the backend closed before answering${duplex.errored ? ` (${duplex.errored.message})` : ''}`);
          try {
            parser.finish();
          } catch (err) {
            return fail(`the refusal was cut short: ${(err as Error).message}`);
          }
          break;
        }
        try {
          parser.push(chunk);
        } catch (err) {
          return fail(`unparseable answer: ${(err as Error).message}`);
        }
        if (restBytes > this.#maxRefusalBody && head?.status !== 101) return fail(`refusal body larger than ${this.#maxRefusalBody} bytes`);
      }
    } finally {
      clearTimeout(timer);
    }
    if (head.status !== 101) return this.#refused(head, Buffer.concat(rest));

    const accept = head.headers.find(([name]) => name.toLowerCase() === 'sec-websocket-accept')?.[1];
    if (accept !== this.#req.accept) return fail(`the backend's Sec-WebSocket-Accept ${JSON.stringify(accept)} is not ${JSON.stringify(this.#req.accept)}`);
    let answer: Buffer;
    try {
      answer = switchingProtocols(this.#req.accept, head);
    } catch (err) {
      return fail(`unusable 101 headers: ${(err as Error).message}`);
    }
    if (!(await this.#send(answer))) return undefined;
    this.#phase = 'open';
    this.#log.debug({ connId: this.#req.connId, backend: this.#backend.name }, 'websocket open');
    // Server frames that came with the head, then client frames that came early.
    if (rest.length > 0 && !(await this.#down(Buffer.concat(rest)))) return undefined;
    const early = this.#early;
    this.#early = [];
    this.#earlyBytes = 0;
    for (const frame of early) this.#toBackend(frame);
    if (this.#stopping) await this.#close(CloseCode.GoingAway, 'bridge shutting down');
    return undefined;
  }

  /** Forwards a non-101 answer as the HTTP response, then closes. */
  async #refused(head: ParsedHead, body: Buffer): Promise<number | undefined> {
    const headers = relayedHeaders(head.headers);
    this.#log.info({ connId: this.#req.connId, backend: this.#backend.name, status: head.status }, 'websocket upgrade refused by the backend');
    try {
      await this.#conn.replyHttp(this.#req, body, { status: head.status, reason: head.reason || undefined, headers, close: true });
    } catch (err) {
      this.#log.error({ err, connId: this.#req.connId }, 'the refusal cannot be forwarded: 502');
      return 502;
    }
    this.#mongrel2Done = true;
    this.#phase = 'closed';
    this.#duplex?.destroy();
    return undefined;
  }

  /** Server → client until the backend stream ends or the tunnel closes. */
  async #forwardDown(duplex: Duplex): Promise<void> {
    let lastSent = 0;
    for (;;) {
      let chunk = await this.#read(duplex);
      if (this.#phase !== 'open') return;
      if (chunk === null) break;
      // Without download credits Mongrel2 kills a connection with more than
      // 16 undelivered messages: in a burst, messages go out at most one per
      // `lingerMs`, each carrying all that arrived meanwhile. A lone message
      // goes out at once.
      const wait = lastSent + this.#lingerMs - performance.now();
      if (wait > 0 && this.#conn.credits(this.#req.connId) === undefined) {
        await new Promise((resolve) => setTimeout(resolve, wait));
        const more = duplex.read() as Buffer | null;
        if (more !== null) chunk = Buffer.concat([chunk, more]);
        if (this.#phase !== 'open') return;
      }
      lastSent = performance.now();
      if (!(await this.#down(chunk))) return;
    }
    // The backend's stream ended: a close frame on its behalf if it sent none.
    const failed = duplex.errored !== null || !duplex.readableEnded;
    if (!this.#toClientClosed) this.#log.warn({ connId: this.#req.connId, err: duplex.errored ?? undefined }, 'the backend ended the websocket without a close frame');
    await this.#close(failed ? CloseCode.InternalError : CloseCode.GoingAway, failed ? 'backend failed' : 'backend went away');
  }

  /** Forwards server bytes; false when the tunnel is done. */
  async #down(chunk: Buffer): Promise<boolean> {
    const scan = this.#scanner.scan(chunk);
    if (scan.forward > 0 && !(await this.#send(chunk.subarray(0, scan.forward)))) return false;
    if (scan.error !== undefined) {
      this.#log.error({ connId: this.#req.connId, backend: this.#backend.name }, `bad frame from the backend: ${scan.error}`);
      await this.#close(CloseCode.InternalError, 'bad frame from the backend', true);
      return false;
    }
    if (scan.close) {
      this.#toClientClosed = true;
      if (this.#toBackendClosed) await this.#finish();
      else this.#armTimer('the client did not answer the close frame');
      // Nothing may follow a close frame.
      return this.#phase === 'open';
    }
    return true;
  }

  /** A WEBSOCKET message from Mongrel2: one client frame for the backend. */
  push(msg: WebSocketMessage): void {
    if (this.#phase === 'closed' || this.#toBackendClosed) return;
    let frame: Buffer;
    try {
      frame = buildFrame(msg.body, { opcode: msg.opcode, rsv: msg.rsv, mask: randomBytes(4) });
    } catch (err) {
      this.#log.warn({ connId: this.#req.connId, flags: msg.flags }, `unforwardable client frame: ${(err as Error).message}`);
      void this.#close(CloseCode.ProtocolError, 'bad frame', true);
      return;
    }
    const queued = this.#phase === 'open' ? (this.#duplex?.writableLength ?? 0) : this.#earlyBytes;
    if (queued > 0 && queued + frame.length > this.#maxBuffered) {
      this.#log.warn({ connId: this.#req.connId, queued, frame: frame.length, max: this.#maxBuffered }, 'the backend is not reading client frames: closing with 1008');
      void this.#close(CloseCode.PolicyViolation, 'backend not reading', true);
      return;
    }
    if (this.#phase === 'open') {
      this.#toBackend(frame);
    } else {
      this.#early.push(frame);
      this.#earlyBytes += frame.length;
    }
    if (msg.opcode === Opcode.Close) {
      this.#toBackendClosed = true;
      if (this.#toClientClosed) void this.#finish();
      else this.#armTimer('the backend did not answer the close frame');
    }
  }

  #toBackend(frame: Buffer): void {
    const duplex = this.#duplex;
    if (duplex && !duplex.destroyed && !duplex.writableEnded) duplex.write(frame);
  }

  /** Drain: close both sides with 1001 (a tunnel still connecting does so as soon as it opens). */
  shutdown(): void {
    this.#stopping = true;
    if (this.#phase === 'open') void this.#close(CloseCode.GoingAway, 'bridge shutting down');
  }

  /**
   * Ends the tunnel with a close frame of ours to whichever side has not had
   * one (to the client only on a frame boundary), then the close message.
   * `abandon`: the backend is failing or not reading; do not wait for it.
   */
  async #close(code: number, reason: string, abandon = false): Promise<void> {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'connecting') {
      this.#phase = 'closed';
      this.#duplex?.destroy();
      if (!this.#mongrel2Done) {
        this.#mongrel2Done = true;
        await this.#conn.close(this.#req);
      }
      return;
    }
    if (!this.#toBackendClosed) {
      this.#toBackendClosed = true;
      this.#toBackend(buildFrame(closePayload(code, reason), { opcode: Opcode.Close, mask: randomBytes(4) }));
    }
    if (!this.#toClientClosed && this.#scanner.atBoundary) {
      this.#toClientClosed = true;
      await this.#send(buildCloseFrame(code, reason));
    }
    await this.#finish();
    if (abandon) this.#duplex?.destroy();
  }

  /** Both close frames went by (or were given up on): close the client connection and end the backend stream. */
  async #finish(): Promise<void> {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#wake?.();
    // end() lets written frames reach the backend first; #closed() destroys it if it lingers.
    this.#duplex?.end();
    if (!this.#mongrel2Done) {
      this.#mongrel2Done = true;
      await this.#conn.close(this.#req);
    }
  }

  #clientGone(): void {
    this.#mongrel2Done = true;
    this.#phase = 'closed';
    this.#wake?.();
    this.#duplex?.destroy();
  }

  #armTimer(why: string): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#log.warn({ connId: this.#req.connId }, `${why} within ${this.#closeTimeoutMs} ms`);
      void this.#finish();
      this.#duplex?.destroy();
    }, this.#closeTimeoutMs);
  }

  /** Sends bytes to the client; false (and the tunnel stops) when the client is gone. */
  async #send(bytes: Buffer): Promise<boolean> {
    if (this.#mongrel2Done) return false;
    if (await this.#conn.reply(this.#req, bytes)) return true;
    this.#clientGone();
    return false;
  }

  /** Everything readable now (one coalesced Buffer), or null once the stream has ended or failed. */
  async #read(duplex: Duplex): Promise<Buffer | null> {
    for (;;) {
      if (this.#phase === 'closed') return null;
      const chunk = duplex.read() as Buffer | null;
      if (chunk !== null) return chunk;
      if (duplex.readableEnded || duplex.destroyed) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** Waits for the backend stream to close, destroying it if it takes longer than the close timeout. */
  async #closed(duplex: Duplex): Promise<void> {
    if (duplex.closed || duplex.destroyed) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      duplex.once('close', resolve);
      // A stream whose readable side is not read never finishes ending (resume() is a no-op while 'readable' is listened to).
      duplex.off('readable', this.#onEvent);
      duplex.resume();
      timer = setTimeout(() => duplex.destroy(), this.#closeTimeoutMs);
    });
    clearTimeout(timer);
  }
}

/** The 101 for Mongrel2: our accept value, plus the backend's end-to-end headers. */
function switchingProtocols(accept: string, head: ParsedHead): Buffer {
  const extra = headerEntries(relayedHeaders(head.headers));
  if (!/^[A-Za-z0-9+/=]+$/.test(accept)) throw new Error('the accept value is not base64');
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, ...extra.map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

function closePayload(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return payload;
}

export interface ScanResult {
  /** Bytes of the chunk that may be forwarded (up to a close frame's end, or a bad frame's start). */
  forward: number;
  /** A close frame ends at `forward`. */
  close: boolean;
  /** The stream is not valid server frames from the reported frame on. */
  error?: string;
}

/**
 * Follows frame boundaries in a stream of server frames: reads each header
 * and skips its payload. Pure bookkeeping, no copies of payloads.
 */
export class FrameScanner {
  /** Header bytes of the frame being read (at most 14). */
  #header: number[] = [];
  #skip = 0;
  #closing = false;
  /** The close frame has been seen: the stream is over. */
  #done = false;
  /** A bad frame began in an earlier chunk: what went out ends mid-frame. */
  #cut = false;

  /** True between frames: a frame of our own may be sent now. */
  get atBoundary(): boolean {
    return !this.#cut && this.#header.length === 0 && this.#skip === 0;
  }

  scan(chunk: Buffer): ScanResult {
    if (this.#done) return { forward: 0, close: false };
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        if (this.#skip === 0 && this.#closing) return this.#closed(at);
        continue;
      }
      const frameStart = at - this.#header.length;
      this.#header.push(chunk[at++]!);
      const need = headerLength(this.#header);
      if (this.#header.length < need) continue;
      const h = this.#header;
      const opcode = h[0]! & 0x0f;
      const fin = (h[0]! & 0x80) !== 0;
      let error: string | undefined;
      let length = h[1]! & 0x7f;
      if (length === 126) length = (h[2]! << 8) | h[3]!;
      else if (length === 127) {
        const big = Buffer.from(h.slice(2, 10)).readBigUInt64BE(0);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) error = `payload length ${big} too large`;
        length = Number(big);
      }
      if ((h[1]! & 0x80) !== 0) error = 'a masked server frame';
      else if (!(opcode <= 2 || (opcode >= 8 && opcode <= 10))) error = `unknown opcode ${opcode}`;
      else if (opcode >= 8 && (length > 125 || !fin)) error = 'a fragmented or oversized control frame';
      if (error !== undefined) {
        this.#done = true;
        // The bad frame's first bytes may have gone out with the previous chunk.
        this.#cut = frameStart < 0;
        this.#header = [];
        return { forward: Math.max(0, frameStart), close: false, error };
      }
      this.#header = [];
      this.#skip = length;
      this.#closing = opcode === Opcode.Close;
      if (length === 0 && this.#closing) return this.#closed(at);
    }
    return { forward: chunk.length, close: false };
  }

  #closed(at: number): ScanResult {
    this.#done = true;
    return { forward: at, close: true };
  }
}

/** Bytes in a frame header, once its first two bytes are known. */
function headerLength(h: readonly number[]): number {
  if (h.length < 2) return 2;
  const len = h[1]! & 0x7f;
  return (len === 126 ? 4 : len === 127 ? 10 : 2) + ((h[1]! & 0x80) !== 0 ? 4 : 0);
}
