/**
 * The proxy's 504, in the exact shape of the core's fixed responses
 * (http/responses.ts, server-core.md §8.4). Mongrel2 has no 504: it waits for a
 * silent backend forever.
 */
import { SERVER_HEADER } from '../http/responses.js';

const BODY = 'Gateway Timeout';

const BYTES = Buffer.from(
  `HTTP/1.1 504 ${BODY}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${BODY.length}\r\nServer: ${SERVER_HEADER}\r\n\r\n${BODY}`,
  'latin1',
);

/** A fresh copy (the caller's socket may keep it). */
export function gatewayTimeout(): Buffer {
  return Buffer.from(BYTES);
}
