/**
 * The bytes of every response head the Dir handler sends. The error
 * responses are the server's fixed ones (server-core.md §8.4).
 */
import { SERVER_HEADER, fixedResponse } from '../http/responses.js';
import { formatHttpDate } from './http-date.js';

export type DirFixedStatus = 404 | 405 | 412;

/**
 * A fixed §8.4 response. The 405 also carries `Allow: GET, HEAD` (RFC 9110
 * §15.5.6 requires it; Mongrel2 omits it). With `headOnly` the body is left
 * off: a HEAD response has none (Mongrel2 sends it anyway).
 */
export function fixedStatus(status: DirFixedStatus, headOnly: boolean): Buffer {
  const bytes = fixedResponse(status);
  const bodyStart = bytes.indexOf('\r\n\r\n') + 4;
  let head = bytes.subarray(0, bodyStart).toString('latin1');
  if (status === 405) head = head.replace('\r\nServer: ', '\r\nAllow: GET, HEAD\r\nServer: ');
  return headOnly ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), bytes.subarray(bodyStart)]);
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
    `Server: ${SERVER_HEADER}`,
  ]);
}

/** 304 with the validators a 200 would carry (RFC 9110 §15.4.5); no Content-Length. */
export function notModifiedHead(f: FileHeadFields, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 304 Not Modified',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Last-Modified: ${formatHttpDate(f.lastModified)}`,
    `ETag: ${f.etag}`,
    `Server: ${SERVER_HEADER}`,
  ]);
}

/** 416 with `Content-Range: bytes *\/size` (RFC 9110 §15.5.17) and an empty body. */
export function rangeNotSatisfiableHead(f: FileHeadFields, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 416 Range Not Satisfiable',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Content-Range: bytes */${f.size}`,
    'Content-Length: 0',
    `Server: ${SERVER_HEADER}`,
  ]);
}

/** 301 to `location` (already checked to be a safe path-absolute reference). */
export function redirectHead(location: string, nowSeconds: number): Buffer {
  return head([
    'HTTP/1.1 301 Moved Permanently',
    `Date: ${formatHttpDate(nowSeconds)}`,
    `Location: ${location}`,
    'Content-Length: 0',
    `Server: ${SERVER_HEADER}`,
  ]);
}
