/**
 * Mongrel2's access-log line (src/log.c make_log_message): one tnetstring list
 * per request, then '\n':
 *   [host name, remote addr, remote port#, unix time#, method, path, version, status#, size#]
 * e.g. `80:9:localhost,9:127.0.0.1,5:54321#10:1700000000#3:GET,1:/,8:HTTP/1.1,3:200#4:1234#]\n`.
 * Pure: the caller supplies the time. The host name is the configured one
 * (UTF-8, as in the config); method, path and version are written as the
 * latin1 bytes the parser decoded, so the log holds what the client sent.
 */
import type { AccessLogEntry } from '../types.js';

export type { AccessLogEntry };

const NUMERIC = ['remotePort', 'time', 'status', 'size'] as const;

/** The host name's UTF-8 bytes as a latin1 string (one char per byte); hosts are few, so the last one is kept. */
let lastHost = '';
let lastHostBytes = '';
function utf8AsLatin1(host: string): string {
  if (host !== lastHost) {
    lastHostBytes = Buffer.from(host, 'utf8').toString('latin1');
    lastHost = host;
  }
  return lastHostBytes;
}

/** A tnetstring string of latin1 text: its length is its byte count. */
const str = (s: string): string => `${s.length}:${s},`;
const int = (n: number): string => {
  const digits = String(n);
  return `${digits.length}:${digits}#`;
};

/** The exact bytes of one access-log line, newline included. Throws RangeError naming a field that is not a safe integer. */
export function formatAccessLine(entry: AccessLogEntry): Buffer {
  return Buffer.from(accessLineText(entry), 'latin1');
}

/** formatAccessLine as latin1 text (one char per byte), for writers that batch lines before encoding. */
export function accessLineText(entry: AccessLogEntry): string {
  const { remotePort, time, status, size } = entry;
  // One check for the four (this runs per request); the loop names the culprit.
  if (!(Number.isSafeInteger(remotePort) && Number.isSafeInteger(time) && Number.isSafeInteger(status) && Number.isSafeInteger(size))) {
    for (const field of NUMERIC) {
      if (!Number.isSafeInteger(entry[field])) throw new RangeError(`access log: ${field} must be an integer, got ${String(entry[field])}`);
    }
  }
  // Built as latin1 text, one char per byte: wire fields keep the bytes the parser decoded.
  const items = str(utf8AsLatin1(entry.host)) + str(entry.remoteAddr) + int(remotePort) + int(time) + str(entry.method) + str(entry.path) + str(entry.version) + int(status) + int(size);
  return `${items.length}:${items}]\n`;
}
