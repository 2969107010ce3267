/**
 * Writes a backend's response to a Mongrel2 connection as raw HTTP: the head
 * planned by http-framing, the body in as few messages as the backend's
 * pace allows (Mongrel2 kills a connection with more than 16 undelivered
 * messages, so chunks that are already there go out together), and the close
 * message when the framing or the client calls for it.
 */
import type { Readable } from 'node:stream';
import type { Connection } from '../handler/connection.js';
import { shouldClose, type HttpRequest } from '../protocol/request.js';
import type { BackendResponse } from './backend.js';
import { CRLF, LAST_CHUNK, chunkSizeLine, planResponse, type ResponsePlan } from './http-framing.js';

export type WriteOutcome = 'complete' | 'client-gone' | 'backend-failed';

export interface WriteOptions {
  /** Largest reply message built from coalesced body chunks (default 1 MiB). */
  maxMessage?: number;
  /** Body bytes gathered before a message goes out, unless the backend pauses (default 64 KiB). */
  minMessage?: number;
  /** How long to wait for more body bytes before sending a smaller message (default 2 ms). */
  lingerMs?: number;
  /** Called once with the error when the body fails after the head went out. */
  onBodyError?: (err: Error) => void;
  /** Aborted when the client has gone: then a failing body is no error and nothing more is sent. */
  signal?: AbortSignal;
}

/** Rejects (before anything is sent) when the head cannot be framed; the caller answers 502. */
export function writeResponse(conn: Connection, req: HttpRequest, res: BackendResponse, options: WriteOptions = {}): Promise<WriteOutcome> {
  let plan: ResponsePlan;
  try {
    // A body that fails while a reply is being sent must not become an
    // uncaught 'error': waitForData() reads `errored` on its next turn.
    res.body?.on('error', ignore);
    const version = typeof req.headers.VERSION === 'string' ? req.headers.VERSION : 'HTTP/1.1';
    plan = planResponse({ method: req.method, version, wantsClose: shouldClose(req) }, res);
    // Mongrel2 sends the raw file bytes, so the head must carry their length.
    if (res.sendfile !== undefined && plan.framing !== 'length' && plan.framing !== 'none') throw new Error('a sendfile response needs a Content-Length');
  } catch (err) {
    return Promise.reject(err);
  }
  if (res.sendfile !== undefined) return writeSendfile(conn, req, res.body, res.sendfile, plan);
  if (plan.framing === 'none' || res.body === null) return writeHeadOnly(conn, req, res.body, plan);
  const maxMessage = options.maxMessage ?? 1024 * 1024;
  // The usual in-process answer: the backend wrote and ended its whole body before handing over the head.
  if (bufferedToEnd(res.body, maxMessage)) return writeWhole(conn, req, res.body, plan);
  return writeStreamed(conn, req, res, plan, maxMessage, options);
}

async function writeSendfile(conn: Connection, req: HttpRequest, body: Readable | null, file: string, plan: ResponsePlan): Promise<WriteOutcome> {
  body?.destroy();
  if (!(await conn.reply(req, plan.head))) return 'client-gone';
  if (plan.framing === 'length' && !(await conn.sendfile(req, file))) return 'client-gone';
  return finish(conn, req, plan, 'complete');
}

async function writeHeadOnly(conn: Connection, req: HttpRequest, body: Readable | null, plan: ResponsePlan): Promise<WriteOutcome> {
  body?.destroy();
  if (plan.framing === 'chunked') return (await conn.reply(req, [plan.head, LAST_CHUNK])) ? finish(conn, req, plan, 'complete') : 'client-gone';
  if (!(await conn.reply(req, plan.head))) return 'client-gone';
  // A body of some length was promised but the backend has none.
  return finish(conn, req, plan, plan.framing === 'length' && (plan.contentLength ?? 0) > 0 ? 'backend-failed' : 'complete');
}

/** Head and whole body in one message, as the streaming path would send them, without its waiting and gathering. */
async function writeWhole(conn: Connection, req: HttpRequest, src: Readable, plan: ResponsePlan): Promise<WriteOutcome> {
  const parts: Buffer[] = [];
  let size = 0;
  let remaining = plan.framing === 'length' ? plan.contentLength ?? 0 : Infinity;
  for (let chunk = src.read() as Buffer | string | null; chunk !== null; chunk = src.read() as Buffer | string | null) {
    let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (data.length > remaining) data = data.subarray(0, remaining); // the backend sent more than it declared
    remaining -= data.length;
    if (data.length === 0) continue;
    parts.push(data);
    size += data.length;
  }
  if (plan.framing === 'length' && remaining === 0) src.destroy();
  let message: Buffer[];
  if (plan.framing !== 'chunked') message = [plan.head, ...parts];
  else if (size === 0) message = [plan.head, LAST_CHUNK];
  else message = [plan.head, chunkSizeLine(size), ...parts, CRLF, LAST_CHUNK];
  if (!(await conn.reply(req, message))) return 'client-gone';
  return finish(conn, req, plan, plan.framing === 'length' && remaining > 0 ? 'backend-failed' : 'complete');
}

async function writeStreamed(conn: Connection, req: HttpRequest, res: BackendResponse, plan: ResponsePlan, maxMessage: number, options: WriteOptions): Promise<WriteOutcome> {
  const src = res.body!;
  // Without download credits Mongrel2 kills a connection that has more than
  // 16 undelivered messages, so small chunks are gathered for a moment.
  const minMessage = res.noBuffering ? 0 : Math.min(options.minMessage ?? 64 * 1024, maxMessage);
  const lingerMs = options.lingerMs ?? 2;
  const out = new Gatherer(conn, req, plan);
  let remaining = plan.framing === 'length' ? plan.contentLength ?? 0 : Infinity;
  let ended = false;
  try {
    for (;;) {
      // Reads what the stream already holds, up to about maxMessage bytes, without waiting.
      for (let chunk = src.read() as Buffer | string | null; chunk !== null; chunk = out.bytes < maxMessage ? (src.read() as Buffer | string | null) : null) {
        let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        if (data.length > remaining) data = data.subarray(0, remaining); // the backend sent more than it declared
        remaining -= data.length;
        out.add(data);
      }
      if (plan.framing === 'length' && remaining === 0) {
        src.destroy();
        ended = true;
        break;
      }
      if (out.bytes > 0 && out.bytes >= minMessage) {
        if (!(await out.flush())) return abandon(src);
        continue;
      }
      const state = await waitForData(src, out.bytes > 0 || out.headPending ? lingerMs : undefined);
      if (state === 'end') {
        ended = true;
        break;
      }
      if (state === 'timeout' && !(await out.flush())) return abandon(src);
    }
  } catch (err) {
    if (options.signal?.aborted) return 'client-gone';
    options.onBodyError?.(err as Error);
    if (!(await out.flush())) return 'client-gone';
    return finish(conn, req, plan, 'backend-failed');
  }
  if (!(await out.flush(ended && plan.framing === 'chunked'))) return 'client-gone';
  return finish(conn, req, plan, plan.framing === 'length' && remaining > 0 ? 'backend-failed' : 'complete');
}

/** The close message when due; no promise when there is none to send. */
function finish(conn: Connection, req: HttpRequest, plan: ResponsePlan, outcome: WriteOutcome): WriteOutcome | Promise<WriteOutcome> {
  // Truncation can only be signalled by closing; a clean end closes only when asked.
  if (outcome === 'backend-failed' || plan.closeAfter) return conn.close(req).then(() => outcome);
  return outcome;
}

function abandon(src: Readable): WriteOutcome {
  src.destroy();
  return 'client-gone';
}

/** The head (until sent) and the body bytes gathered for the next message. */
class Gatherer {
  headPending = true;
  bytes = 0;
  #parts: Buffer[] = [];

  constructor(
    private readonly conn: Connection,
    private readonly req: HttpRequest,
    private readonly plan: ResponsePlan,
  ) {}

  add(data: Buffer): void {
    if (data.length === 0) return;
    this.#parts.push(data);
    this.bytes += data.length;
  }

  /** Sends the head (if not yet sent) and the gathered body as one message, without concatenating first. */
  flush(last = false): Promise<boolean> {
    const out: Buffer[] = [];
    if (this.headPending) out.push(this.plan.head);
    if (this.bytes > 0) {
      if (this.plan.framing === 'chunked') out.push(chunkSizeLine(this.bytes), ...this.#parts, CRLF);
      else out.push(...this.#parts);
    }
    if (last) out.push(LAST_CHUNK);
    this.headPending = false;
    this.#parts = [];
    this.bytes = 0;
    if (out.length === 0) return Promise.resolve(true);
    return this.conn.reply(this.req, out);
  }
}

function ignore(): void {}

/** The stream has ended with everything still unread in its buffer (at most `maxBytes`), or read out already. */
function bufferedToEnd(src: Readable, maxBytes: number): boolean {
  const state = (src as Readable & { _readableState?: { ended?: unknown } })._readableState;
  return state?.ended === true && !src.destroyed && src.readableLength <= maxBytes;
}

/**
 * All data read and the end pushed, 'end' not emitted yet (it comes on the
 * next tick): the usual state of a small backend response, which then needs
 * no listeners and no linger timer. Node has no public flag for it.
 */
function drainedAfterEnd(src: Readable): boolean {
  const state = (src as Readable & { _readableState?: { ended?: unknown } })._readableState;
  return state?.ended === true && src.readableLength === 0 && !src.destroyed;
}

/**
 * Resolves when the stream has data or has ended, or after `timeoutMs` if
 * given; rejects if it fails or closes early.
 */
function waitForData(src: Readable, timeoutMs?: number): Promise<'data' | 'end' | 'timeout'> {
  if (src.readableEnded || drainedAfterEnd(src)) return Promise.resolve('end');
  if (src.errored) return Promise.reject(src.errored);
  if (src.destroyed) return Promise.reject(new Error('response body closed before its end'));
  return new Promise((resolve, reject) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      cleanup();
      resolve('timeout');
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      src.off('readable', onReadable);
      src.off('end', onEnd);
      src.off('error', onError);
      src.off('close', onClose);
    };
    const onReadable = (): void => {
      cleanup();
      resolve('data');
    };
    const onEnd = (): void => {
      cleanup();
      resolve('end');
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (src.readableEnded) resolve('end');
      else reject(src.errored ?? new Error('response body closed before its end'));
    };
    src.on('readable', onReadable);
    src.on('end', onEnd);
    src.on('error', onError);
    src.on('close', onClose);
  });
}
