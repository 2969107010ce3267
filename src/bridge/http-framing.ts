/**
 * Response framing toward Mongrel2, shared by every adapter. Mongrel2 writes
 * reply bytes verbatim, so the bridge decides how the client finds the end of
 * the body: Content-Length, chunked, or closing the connection
 * (bridge-anchors.md §3.5 "Framing back to Mongrel2").
 */
import { CONNECTION_HEADERS } from '../http/hop-by-hop.js';
import { buildHttpHead, headerEntries } from '../protocol/http-response.js';

/** The backend's headers cannot be framed safely; answer 502 (nginx does). */
export class FramingError extends Error {
  override readonly name = 'FramingError';
  readonly status = 502;
}

export type Framing = 'none' | 'length' | 'chunked' | 'close';

export interface FramingRequest {
  method: string;
  /** `HTTP/1.0` or `HTTP/1.1` (Mongrel2's VERSION). */
  version: string;
  /** The request asked for the connection to end (use shouldClose()). */
  wantsClose: boolean;
}

export interface FramingHead {
  status: number;
  reason?: string;
  headers: ReadonlyArray<readonly [string, string]>;
}

export interface ResponsePlan {
  /** Status line and headers, ending in the blank line. */
  head: Buffer;
  /**
   * How the body bytes that follow must be sent:
   * `none`: send nothing after the head; `length`: exactly `contentLength`
   * bytes as they are; `chunked`: each piece through encodeChunk(), then
   * LAST_CHUNK; `close`: the bytes as they are, then the close message.
   */
  framing: Framing;
  /** Set for `length` only: the body bytes the caller must send. */
  contentLength?: number;
  /** Send Mongrel2's close message (empty reply) after the response. */
  closeAfter: boolean;
}


/**
 * Decides the framing of a response and builds its head. The body the caller
 * sends afterwards is the backend's decoded payload (FastCGI STDOUT, or an
 * HTTP client's de-chunked body), which is why the backend's own
 * Transfer-Encoding is dropped.
 *
 * Throws FramingError for an invalid or conflicting Content-Length, and lets
 * buildHttpHead/headerEntries' EncodeError through for names or values that
 * could split the response.
 */
export function planResponse(req: FramingRequest, head: FramingHead): ResponsePlan {
  const status = head.status;
  const noContent = (status >= 100 && status < 200) || status === 204;
  // This runs per response: a first look for a Connection header (by length
  // before lower-casing), and the Connection-named set only built when there is one.
  let named: Set<string> | undefined;
  for (const [k, v] of head.headers) {
    if (k.length === 10 && k.toLowerCase() === 'connection') {
      named ??= new Set();
      for (const t of v.split(',')) named.add(t.trim().toLowerCase());
    }
  }
  const headers: Array<[string, string]> = [];
  let lengthAt = -1;
  let length: number | undefined;
  for (const pair of head.headers) {
    const [k, v] = pair;
    const lower = k.toLowerCase();
    if (CONNECTION_HEADERS.has(lower) || named?.has(lower)) continue;
    if (lower === 'content-length') {
      // RFC 9110 §8.6: never a Content-Length on 1xx or 204, so don't even validate it.
      if (noContent) continue;
      length = mergeContentLength(length, v);
      // Repeats of one value collapse into one header at the first one's place.
      if (lengthAt >= 0) continue;
      lengthAt = headers.length;
    }
    headers.push(pair as [string, string]);
  }
  if (lengthAt >= 0) headers[lengthAt] = [headers[lengthAt]![0], String(length)];

  let framing: Framing;
  let contentLength: number | undefined;
  let closeAfter = req.wantsClose;
  if (noContent) {
    framing = 'none';
  } else if (req.method === 'HEAD' || status === 304) {
    // No body follows; a Content-Length here describes the GET/200 body, so keep it.
    framing = 'none';
  } else if (length !== undefined) {
    framing = 'length';
    contentLength = length;
  } else if (req.version === 'HTTP/1.1') {
    framing = 'chunked';
    headers.push(['Transfer-Encoding', 'chunked']);
  } else {
    // HTTP/1.0 has no chunked coding: the end of the body is the end of the connection.
    framing = 'close';
    closeAfter = true;
  }
  if (closeAfter) headers.push(['Connection', 'close']);

  const plan: ResponsePlan = { head: buildHttpHead(status, head.reason, headerEntries(headers)), framing, closeAfter };
  if (contentLength !== undefined) plan.contentLength = contentLength;
  return plan;
}

/**
 * Adds one Content-Length header's value to what was found so far. Several
 * headers or a list with equal values count as one (RFC 9110 §8.6); anything
 * else would let the client and us disagree on where the body ends.
 */
function mergeContentLength(found: number | undefined, value: string): number {
  for (const item of value.split(',')) {
    const text = item.trim();
    if (!/^[0-9]{1,15}$/.test(text)) throw new FramingError(`invalid Content-Length ${JSON.stringify(value)}`);
    const n = Number(text);
    if (found !== undefined && found !== n) throw new FramingError(`conflicting Content-Length values ${found} and ${n}`);
    found = n;
  }
  return found!;
}

/** One chunk of a chunked body. Empty data gives no bytes: an empty chunk would end the body. */
export function encodeChunk(data: Buffer): Buffer {
  if (data.length === 0) return Buffer.alloc(0);
  return Buffer.concat([chunkSizeLine(data.length), data, CRLF]);
}

/** The size line that starts a chunk of `size` (> 0) bytes; CRLF ends its data. */
export function chunkSizeLine(size: number): Buffer {
  return Buffer.from(`${size.toString(16)}\r\n`, 'latin1');
}

/** Ends a chunk's data. Do not mutate. */
export const CRLF: Buffer = Buffer.from('\r\n', 'latin1');

/** The last chunk and the empty trailer section that end a chunked body. Do not mutate. */
export const LAST_CHUNK: Buffer = Buffer.from('0\r\n\r\n', 'latin1');
