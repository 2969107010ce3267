/**
 * The three ways a request body reaches the bridge: inline in the request
 * message, as a temp-file upload (opened only through the handler's checked
 * openUpload), or as a streaming upload (`upload.stream=1`) whose chunks
 * arrive as separate messages, paced by the ctl credits we grant.
 */
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Connection } from '../handler/connection.js';
import type { Logger } from '../handler/logger.js';
import { headerValue, type HttpRequest, type UploadChunk } from '../protocol/request.js';

export interface RequestBody {
  readonly stream: Readable | null;
  readonly length: number | undefined;
  /** Releases what the body holds once the request is over (none of today's bodies holds anything). */
  cleanup?(): Promise<void>;
}

/** The usual request: no body, nothing to open or release (shared, never changed). */
const NO_BODY: RequestBody = Object.freeze({ stream: null, length: 0 });

function declaredLength(req: HttpRequest): number | undefined {
  const text = headerValue(req.headers, 'content-length');
  return text !== undefined && /^[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
}

/**
 * Throws (or rejects with) UploadError (answer 400) for upload headers that
 * do not check out. Only a temp-file upload needs to wait (for the file): the
 * other bodies come back at once, so the usual request costs no promise.
 */
export function openRequestBody(conn: Connection, req: HttpRequest, uploads: StreamingUploads): RequestBody | Promise<RequestBody> {
  const upload = req.upload;
  if (upload?.mode === 'file') return openFileBody(conn, req);
  if (upload?.mode === 'stream') return { stream: uploads.open(req), length: declaredLength(req) };
  if (req.body.length === 0) return NO_BODY;
  return { stream: Readable.from([req.body]), length: req.body.length };
}

async function openFileBody(conn: Connection, req: HttpRequest): Promise<RequestBody> {
  const file = await conn.openUpload(req);
  const stream = file.open();
  // Unlink as soon as it is open: the descriptor keeps the data readable,
  // and no temp file outlives the request, even if this process dies.
  await once(stream, 'open');
  await file.remove();
  return { stream, length: file.size };
}

/** Per-connection streaming uploads: chunks in, credits out as the consumer keeps up. */
export class StreamingUploads {
  readonly #streams = new Map<number, { stream: PassThrough; req: HttpRequest }>();

  constructor(
    private readonly conn: Connection,
    private readonly log: Logger,
    /** Bytes granted at a time; also the stream's buffer size. */
    private readonly grant = 64 * 1024,
  ) {}

  open(req: HttpRequest): Readable {
    this.abort(req.connId);
    const stream = new PassThrough({ highWaterMark: this.grant });
    // abort() fails the stream when the client leaves; a backend that has
    // stopped reading must not turn that into an uncaught 'error'.
    stream.on('error', () => undefined);
    this.#streams.set(req.connId, { stream, req });
    stream.once('close', () => {
      if (this.#streams.get(req.connId)?.stream === stream) this.#streams.delete(req.connId);
    });
    const done = req.upload?.mode === 'stream' && req.upload.done;
    this.#accept(req.connId, stream, req.body, done);
    return stream;
  }

  /** Routes a later chunk to its upload. */
  push(chunk: UploadChunk): void {
    const entry = this.#streams.get(chunk.connId);
    if (!entry) {
      this.log.warn({ connId: chunk.connId, offset: chunk.offset }, 'upload chunk for no open upload; cancelling that connection');
      void this.conn.ctl(chunk, { cancel: true });
      return;
    }
    this.#accept(chunk.connId, entry.stream, chunk.body, chunk.done);
  }

  abort(connId: number): void {
    this.#streams.get(connId)?.stream.destroy(new Error(`connection ${connId} went away during the upload`));
    this.#streams.delete(connId);
  }

  #accept(connId: number, stream: PassThrough, data: Buffer, done: boolean): void {
    const entry = this.#streams.get(connId);
    if (!entry) return;
    const roomLeft = data.length === 0 ? true : stream.write(data);
    if (done) {
      stream.end();
      this.#streams.delete(connId);
      return;
    }
    // Mongrel2 sends nothing more until we grant credits; grant once the
    // consumer has room, so a slow backend slows the client down.
    const grantMore = (): void => void this.conn.grantUploadCredits(entry.req, this.grant);
    if (roomLeft) grantMore();
    else stream.once('drain', grantMore);
  }
}
