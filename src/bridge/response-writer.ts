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
import { LAST_CHUNK, encodeChunk, planResponse } from './http-framing.js';

export type WriteOutcome = 'complete' | 'client-gone' | 'backend-failed';

export interface WriteOptions {
  /** Largest reply message built from coalesced body chunks (default 256 KiB). */
  maxMessage?: number;
  /** Called once with the error when the body fails after the head went out. */
  onBodyError?: (err: Error) => void;
  /** Aborted when the client has gone: then a failing body is no error and nothing more is sent. */
  signal?: AbortSignal;
}

/** Throws (before anything is sent) when the head cannot be framed; the caller answers 502. */
export async function writeResponse(conn: Connection, req: HttpRequest, res: BackendResponse, options: WriteOptions = {}): Promise<WriteOutcome> {
  const version = typeof req.headers.VERSION === 'string' ? req.headers.VERSION : 'HTTP/1.1';
  const plan = planResponse({ method: req.method, version, wantsClose: shouldClose(req) }, { status: res.status, reason: res.reason, headers: res.headers });
  const finish = async (outcome: WriteOutcome): Promise<WriteOutcome> => {
    if (outcome === 'client-gone') return outcome;
    // Truncation can only be signalled by closing; a clean end closes only when asked.
    if (outcome === 'backend-failed' || plan.closeAfter) await conn.close(req);
    return outcome;
  };

  if (res.sendfile !== undefined) {
    // Mongrel2 sends the raw file bytes, so the head must carry their length.
    if (plan.framing !== 'length' && plan.framing !== 'none') throw new Error('a sendfile response needs a Content-Length');
    res.body?.destroy();
    if (!(await conn.reply(req, plan.head))) return 'client-gone';
    if (plan.framing === 'length' && !(await conn.sendfile(req, res.sendfile))) return 'client-gone';
    return finish('complete');
  }
  if (plan.framing === 'none' || res.body === null) {
    res.body?.destroy();
    if (plan.framing === 'chunked') return (await conn.reply(req, Buffer.concat([plan.head, LAST_CHUNK]))) ? finish('complete') : 'client-gone';
    if (!(await conn.reply(req, plan.head))) return 'client-gone';
    // A body of some length was promised but the backend has none.
    return finish(plan.framing === 'length' && (plan.contentLength ?? 0) > 0 ? 'backend-failed' : 'complete');
  }

  const body = res.body;
  const maxMessage = res.noBuffering ? 1 : options.maxMessage ?? 256 * 1024;
  let pending: Buffer[] = [plan.head];
  let remaining = plan.framing === 'length' ? plan.contentLength ?? 0 : Infinity;
  try {
    for (;;) {
      const parts = takeAvailable(body, maxMessage);
      for (let data of parts) {
        if (data.length > remaining) data = data.subarray(0, remaining); // the backend sent more than it declared
        remaining -= data.length;
        if (data.length > 0) pending.push(plan.framing === 'chunked' ? encodeChunk(data) : data);
      }
      if (plan.framing === 'length' && remaining === 0) {
        body.destroy();
        return finish((await flush()) ? 'complete' : 'client-gone');
      }
      if (parts.length === 0) {
        // Nothing buffered: let what we have go out before waiting (the head of an SSE stream).
        if (pending.length > 0 && !(await flush())) return abandon();
        const state = await waitForData(body);
        if (state === 'end') break;
      } else if (!(await flush())) {
        return abandon();
      }
    }
  } catch (err) {
    if (options.signal?.aborted) return 'client-gone';
    options.onBodyError?.(err as Error);
    if (pending.length > 0 && !(await flush())) return 'client-gone';
    return finish('backend-failed');
  }
  if (plan.framing === 'chunked') pending.push(LAST_CHUNK);
  if (!(await flush())) return 'client-gone';
  return finish(plan.framing === 'length' && remaining > 0 ? 'backend-failed' : 'complete');

  async function flush(): Promise<boolean> {
    if (pending.length === 0) return true;
    const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    return conn.reply(req, bytes);
  }

  function abandon(): WriteOutcome {
    body.destroy();
    return 'client-gone';
  }
}

/** Reads what the stream already holds, up to about `max` bytes, without waiting. */
function takeAvailable(src: Readable, max: number): Buffer[] {
  const parts: Buffer[] = [];
  let size = 0;
  while (size < max) {
    const chunk = src.read() as Buffer | string | null;
    if (chunk === null) break;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    parts.push(buf);
    size += buf.length;
  }
  return parts;
}

/** Resolves when the stream has data or has ended; rejects if it fails or closes early. */
function waitForData(src: Readable): Promise<'data' | 'end'> {
  if (src.readableEnded) return Promise.resolve('end');
  if (src.errored) return Promise.reject(src.errored);
  if (src.destroyed) return Promise.reject(new Error('response body closed before its end'));
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
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
