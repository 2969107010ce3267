/**
 * Mongrel2's access-log line (src/log.c make_log_message): one tnetstring list
 * per request, then '\n':
 *   [host name, remote addr, remote port#, unix time#, method, path, version, status#, size#]
 * e.g. `80:9:localhost,9:127.0.0.1,5:54321#10:1700000000#3:GET,1:/,8:HTTP/1.1,3:200#4:1234#]\n`.
 * Pure: the caller supplies the time. The host name is the configured one
 * (UTF-8, as in the config); method, path and version are written as the
 * latin1 bytes the parser decoded, so the log holds what the client sent.
 */
import { encode } from '../../protocol/tnetstring.js';
import type { AccessLogEntry } from '../types.js';

export type { AccessLogEntry };

const NUMERIC = ['remotePort', 'time', 'status', 'size'] as const;
const NEWLINE = Buffer.from('\n', 'latin1');

/** The exact bytes of one access-log line, newline included. Throws RangeError naming a field that is not a safe integer. */
export function formatAccessLine(entry: AccessLogEntry): Buffer {
  for (const field of NUMERIC) {
    if (!Number.isSafeInteger(entry[field])) throw new RangeError(`access log: ${field} must be an integer, got ${String(entry[field])}`);
  }
  // Wire fields keep their bytes: latin1 round-trips what the parser decoded.
  const wire = (s: string): Buffer => Buffer.from(s, 'latin1');
  const line = encode([
    entry.host,
    wire(entry.remoteAddr),
    entry.remotePort,
    entry.time,
    wire(entry.method),
    wire(entry.path),
    wire(entry.version),
    entry.status,
    entry.size,
  ]);
  return Buffer.concat([line, NEWLINE]);
}
