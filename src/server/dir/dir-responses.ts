/**
 * The bytes of every response head the Dir handler sends. The fixed error
 * responses (server-core.md §8.4) are built here too until
 * src/server/http/responses.ts (`fixedResponse`, `SERVER_HEADER`) lands;
 * `fixedStatus` is the one place to switch over.
 */
import { formatHttpDate } from './http-date.js';

/** The Server: value (Mongrel2's VERSION). */
export const DIR_SERVER_HEADER = 'Mongrel2/1.13.0';

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  206: 'Partial Content',
  301: 'Moved Permanently',
  304: 'Not Modified',
  404: 'Not Found',
  405: 'Method Not Allowed',
  412: 'Precondition Failed',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
};

export type FixedStatus = 404 | 405 | 412 | 500;

/**
 * §8.4: status line, Content-Type: text/plain, Connection: close,
 * Content-Length, Server, blank line, reason as body. The 405 also carries
 * `Allow: GET, HEAD` (RFC 9110 §15.5.6 requires it; Mongrel2 omits it).
 * With `headOnly` the body is left off (a HEAD response has none).
 */
export function fixedStatus(status: FixedStatus, headOnly: boolean): Buffer {
  const reason = REASONS[status]!;
  const allow = status === 405 ? 'Allow: GET, HEAD\r\n' : '';
  const head =
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n` +
    `Content-Length: ${Buffer.byteLength(reason)}\r\n${allow}Server: ${DIR_SERVER_HEADER}\r\n\r\n`;
  return Buffer.from(headOnly ? head : head + reason, 'latin1');
}

/** What a file response says about the file. */
export interface FileHeadFields {
  readonly contentType: string;
  /** Quoted strong entity-tag. */
  readonly etag: string;
  /** Last-Modified, whole seconds. */
  readonly lastModified: number;
  /** Full size of the file. */
  readonly size: number;
}

function head(lines: readonly string[]): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

/**
 * 200 (whole file) or 206 (`range` inclusive) in Mongrel2's header order —
 * Date, Content-Type, Content-Length, Last-Modified, ETag, Server — plus
 * Content-Range (206) and Accept-Ranges.
 */
export function fileHead(f: FileHeadFields, nowSeconds: number, range?: { start: number; end: number }): Buffer {
  const length = range ? range.end - range.start + 1 : f.size;
  return head([
    range ? 'HTTP/1.1 206 Partial Content' : 'HTTP/1.1 200 OK',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Content-Type: ${f.contentType}`,
    `Content-Length: ${length}`,
    ...(range ? [`Content-Range: bytes ${range.start}-${range.end}/${f.size}`] : []),
    `Last-Modified: ${formatHttpDate(f.lastModified)}`,
    `ETag: ${f.etag}`,
    'Accept-Ranges: bytes',
    `Server: ${DIR_SERVER_HEADER}`,
  ]);
}

/** 304 with the validators a 200 would carry (RFC 9110 §15.4.5); no Content-Length. */
export function notModifiedHead(f: FileHeadFields, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 304 Not Modified',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Last-Modified: ${formatHttpDate(f.lastModified)}`,
    `ETag: ${f.etag}`,
    `Server: ${DIR_SERVER_HEADER}`,
  ]);
}

/** 416 with `Content-Range: bytes *\/size` (RFC 9110 §15.5.17) and an empty body. */
export function rangeNotSatisfiableHead(f: FileHeadFields, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 416 Range Not Satisfiable',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Content-Range: bytes */${f.size}`,
    'Content-Length: 0',
    `Server: ${DIR_SERVER_HEADER}`,
  ]);
}

/** 301 to `location` (already checked to be a safe path-absolute reference). */
export function redirectHead(location: string, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 301 Moved Permanently',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Location: ${location}`,
    'Content-Length: 0',
    `Server: ${DIR_SERVER_HEADER}`,
  ]);
}
