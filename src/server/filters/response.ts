/**
 * A short complete response a filter can send, in the same form as the
 * core's fixed error responses (server-core.md §8.4): status line,
 * Content-Type: text/plain, Connection: close, Content-Length, Server, body.
 */
import { STATUS_CODES } from 'node:http';
import { plainResponse } from '../http/responses.js';

/** Bytes of a `status` response; the body defaults to the reason phrase. Throws RangeError for a status outside 100..599. */
export function filterResponse(status: number, body?: string): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new RangeError(`filter response status must be an integer in 100..599, got ${String(status)}`);
  const reason = STATUS_CODES[status] ?? 'Unknown';
  return plainResponse(status, reason, body ?? reason);
}
