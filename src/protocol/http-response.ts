/**
 * Builds HTTP/1.1 responses for handler replies. Mongrel2 writes reply bytes
 * verbatim, so framing is the handler's job: Content-Length is the body's
 * byte length (m2py counted characters), and header fields that could split
 * the response (CR, LF, NUL) are refused.
 */
import { STATUS_CODES } from 'node:http';
import { EncodeError } from './errors.js';

export type HeaderInput =
  | Readonly<Record<string, string | number | readonly string[] | undefined>>
  | ReadonlyArray<readonly [string, string | number]>;

export interface HttpResponseInit {
  status?: number;
  /** Reason phrase; defaults to the standard one for the status. */
  reason?: string;
  headers?: HeaderInput;
  body?: Buffer | string;
  /**
   * Leave the body out but keep Content-Length of the full body (a HEAD answer).
   */
  omitBody?: boolean;
  /**
   * `length` (default): set Content-Length to the body's byte length, replacing
   * any given. `none`: write headers as given, e.g. for a streamed or
   * close-delimited body that follows in later replies.
   */
  framing?: 'length' | 'none';
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** CR, LF and NUL split or truncate a head; above U+00FF a char has no single byte. */
const BAD_VALUE_RE = /[\r\n\0\u0100-\uffff]/;

/** Statuses that never carry a body or a Content-Length (RFC 9110 §8.6, §15). */
function isBodiless(status: number): boolean {
  return (status >= 100 && status < 200) || status === 204 || status === 304;
}

export function headerEntries(headers: HeaderInput | undefined): Array<[string, string]> {
  if (headers === undefined) return [];
  const out: Array<[string, string]> = [];
  const push = (name: string, value: string | number): void => {
    if (!TOKEN_RE.test(name)) throw new EncodeError(`http: invalid header name ${JSON.stringify(name)}`);
    const text = String(value);
    if (BAD_VALUE_RE.test(text)) throw new EncodeError(`http: header ${name} contains CR, LF, NUL or a character above U+00FF`);
    out.push([name, text]);
  };
  if (Array.isArray(headers)) {
    for (const [k, v] of headers as ReadonlyArray<readonly [string, string | number]>) push(k, v);
  } else {
    for (const [k, v] of Object.entries(headers as Record<string, string | number | readonly string[] | undefined>)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v as readonly string[]) push(k, item);
      else push(k, v as string | number);
    }
  }
  return out;
}

/** Builds the status line and header block (ending in the blank line). */
export function buildHttpHead(status: number, reason: string | undefined, headers: ReadonlyArray<readonly [string, string]>): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new EncodeError(`http: invalid status ${status}`);
  const phrase = reason ?? STATUS_CODES[status] ?? 'Unknown';
  if (BAD_VALUE_RE.test(phrase)) throw new EncodeError('http: reason phrase contains CR, LF, NUL or a character above U+00FF');
  let head = `HTTP/1.1 ${status} ${phrase}\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  return Buffer.from(head + '\r\n', 'latin1');
}

export function buildHttpResponse(init: HttpResponseInit = {}): Buffer {
  const status = init.status ?? 200;
  const body = typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : init.body ?? Buffer.alloc(0);
  const bodiless = isBodiless(status);
  if (bodiless && body.length > 0) throw new EncodeError(`http: a ${status} response cannot have a body`);
  let headers = headerEntries(init.headers);
  if ((init.framing ?? 'length') === 'length') {
    const at = headers.findIndex(([k]) => k.toLowerCase() === 'content-length');
    headers = headers.filter(([k], i) => i === at || k.toLowerCase() !== 'content-length');
    if (bodiless) {
      if (at >= 0) headers.splice(at, 1);
    } else if (at >= 0) {
      // Keep the caller's position for the header, as m2py does.
      headers[at] = [headers[at]![0], String(body.length)];
    } else {
      headers.push(['Content-Length', String(body.length)]);
    }
  }
  const head = buildHttpHead(status, init.reason, headers);
  return init.omitBody || body.length === 0 ? head : Buffer.concat([head, body]);
}
