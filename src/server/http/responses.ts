/**
 * The server core's fixed responses, byte for byte as Mongrel2's src/response.c
 * (server-core.md §8.4): status line, Content-Type, Connection: close,
 * Content-Length, Server, blank line, body. No Date header.
 */

/** The one place the Server: value lives (src/version.h). */
export const SERVER_HEADER = 'Mongrel2/1.13.0';

export type FixedStatus = 400 | 404 | 405 | 412 | 413 | 417 | 500 | 501 | 502 | 504;

/** status → [reason phrase, body]. 413's body is shorter than its reason, as in the C source. */
const FIXED: Record<FixedStatus, readonly [string, string]> = {
  400: ['Bad Request', 'Bad Request'],
  404: ['Not Found', 'Not Found'],
  405: ['Method Not Allowed', 'Method Not Allowed'],
  412: ['Precondition Failed', 'Precondition Failed'],
  413: ['Request Entity Too Large', 'Entity Too Large'],
  417: ['Expectation Failed', 'Expectation Failed'],
  500: ['Internal Server Error', 'Internal Server Error'],
  501: ['Not Implemented', 'Not Implemented'],
  502: ['Bad Gateway', 'Bad Gateway'],
  // The proxy's; Mongrel2 has none (it waits for a silent backend forever).
  504: ['Gateway Timeout', 'Gateway Timeout'],
};

/**
 * A complete short response in the fixed responses' shape: any status,
 * reason phrase and text body (UTF-8). The one renderer for the core's fixed
 * responses and those filters send.
 */
export function plainResponse(status: number, reason: string, body: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      'Content-Type: text/plain\r\n' +
      'Connection: close\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `Server: ${SERVER_HEADER}\r\n` +
      '\r\n' +
      body,
    'utf8',
  );
}

const RENDERED = new Map<FixedStatus, Buffer>(
  (Object.keys(FIXED) as unknown as string[]).map((k) => {
    const status = Number(k) as FixedStatus;
    return [status, plainResponse(status, ...FIXED[status])];
  }),
);

/** A fresh copy of the fixed response (callers may hand it to a socket that keeps it). */
export function fixedResponse(status: FixedStatus): Buffer {
  const bytes = RENDERED.get(status);
  if (bytes === undefined) throw new RangeError(`no fixed response for status ${String(status)}`);
  return Buffer.from(bytes);
}

/** Sent before reading the body when the client asked `Expect: 100-continue`. */
export const CONTINUE_100: Buffer = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** Dir's 304: no Content-Type and no body (1.13; older releases sent a text body). */
export const NOT_MODIFIED_304: Buffer = Buffer.from(
  `HTTP/1.1 304 Not Modified\r\nConnection: close\r\nContent-Length: 0\r\nServer: ${SERVER_HEADER}\r\n\r\n`,
  'latin1',
);

/** The Flash cross-domain policy (response.c FLASH_RESPONSE) plus the NUL XML sockets expect; then close. */
export const POLICY_RESPONSE: Buffer = Buffer.from(
  '<?xml version="1.0"?>' +
    '<!DOCTYPE cross-domain-policy SYSTEM "http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd">' +
    '<cross-domain-policy> <allow-access-from domain="*" to-ports="*" /></cross-domain-policy>\0',
  'latin1',
);
