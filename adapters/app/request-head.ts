/**
 * The raw HTTP/1.x request head an in-process app is served: Mongrel2 parsed
 * the client's request strictly, and this writes it back out for Node's own
 * parser, so the app gets a real IncomingMessage with the client's method,
 * URI, version and headers. Pure.
 */
import { headerValue, type HttpRequest } from '../../src/protocol/request.js';

export class RequestHeadError extends Error {
  override readonly name = 'RequestHeadError';
  constructor(
    message: string,
    /** What the bridge should answer. */
    readonly status: 400 | 501 | 505,
  ) {
    super(message);
  }
}

export interface RequestHead {
  bytes: Buffer;
  /** The body must be sent chunk-encoded (its length is not known). */
  chunked: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Client header names as Mongrel2 passes them: lower-case tokens (upper-case keys are Mongrel2's own). */
const CLIENT_HEADER = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\0\r\n]/;

/**
 * Builds the request line and headers.
 *
 * - Request line: METHOD, URI (else PATH + `?` + QUERY), VERSION (HTTP/1.0
 *   or HTTP/1.1, default 1.1).
 * - Headers: every lower-case client header in Mongrel2's order, duplicates
 *   repeated, except the framing headers (`content-length`,
 *   `transfer-encoding`: the body is re-framed here) and Mongrel2's
 *   `x-mongrel2-*` upload headers (a client can forge them).
 * - Framing: `Content-Length: bodyLength` when there is a body; `Content-Length:
 *   0` when there is none but the client sent a Content-Length (an empty POST);
 *   `Transfer-Encoding: chunked` only when there is a body of unknown length
 *   (a streaming upload whose client sent no length).
 *
 * Throws RequestHeadError for a value that would split the head (400), a
 * CONNECT (501: Node hands it to a 'connect' listener, not to the app) or an
 * HTTP version other than 1.0/1.1 (505).
 */
export function buildRequestHead(req: HttpRequest, body: { present: boolean; length: number | undefined }): RequestHead {
  const method = req.method;
  if (!TOKEN.test(method)) throw new RequestHeadError(`bad method ${JSON.stringify(method)}`, 400);
  if (method === 'CONNECT' || method === 'PRI') throw new RequestHeadError(`${method} is not served by in-process apps`, 501);
  const version = headerValue(req.headers, 'VERSION') ?? 'HTTP/1.1';
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new RequestHeadError(`unsupported version ${JSON.stringify(version)}`, 505);
  const query = headerValue(req.headers, 'QUERY');
  const uri = headerValue(req.headers, 'URI') ?? req.path + (query ? `?${query}` : '');
  if (uri === '' || /[\0-\x20\x7f]/.test(uri)) throw new RequestHeadError(`bad request URI ${JSON.stringify(uri)}`, 400);

  // One string built in one pass (this runs per request): no entries or line arrays.
  let head = `${method} ${uri} ${version}\r\n`;
  let sentLength = false;
  const headers = req.headers;
  for (const name in headers) {
    if (!CLIENT_HEADER.test(name)) continue;
    if (name === 'content-length') {
      sentLength = true;
      continue;
    }
    if (name === 'transfer-encoding' || name.startsWith('x-mongrel2-')) continue;
    const value = headers[name]!;
    if (typeof value === 'string') head += headerLine(name, value);
    else for (const v of value) head += headerLine(name, v);
  }
  let chunked = false;
  if (body.present && body.length !== undefined) head += `content-length: ${body.length}\r\n`;
  else if (body.present) {
    chunked = true;
    head += 'transfer-encoding: chunked\r\n';
  } else if (sentLength) head += 'content-length: 0\r\n';
  // Values go out as UTF-8: the bytes Mongrel2 received (Node reads them back as latin1, as from any client).
  return { bytes: Buffer.from(head + '\r\n', 'utf8'), chunked };
}

function headerLine(name: string, value: string): string {
  if (BAD_VALUE.test(value)) throw new RequestHeadError(`header ${name} contains NUL, CR or LF`, 400);
  return `${name}: ${value}\r\n`;
}
