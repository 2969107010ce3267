/**
 * What a parsed request head says about its body and its connection:
 * framing (Content-Length / chunked), keep-alive and Expect, with Mongrel2's
 * rules (connection.c, request.c) made strict where the real server is
 * exploitable (request smuggling).
 */
import { listTokens } from '../../http/hop-by-hop.js';
import type { RequestHead } from './request-parser.js';

export { ChunkedDecoder, MAX_CHUNK_SIZE, type ChunkedResult } from './chunked-decoder.js';

export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  | { kind: 'invalid'; reason: string };

/** Every value of a header, by case-insensitive name, in arrival order. */
export function headerValues(head: RequestHead, name: string): string[] {
  const wanted = name.toLowerCase();
  const out: string[] = [];
  for (const [n, v] of head.headers) if (n.toLowerCase() === wanted) out.push(v);
  return out;
}

/** The first value of a header (Mongrel2's Request_get), or undefined. */
export function headerValue(head: RequestHead, name: string): string | undefined {
  return headerValues(head, name)[0];
}

const DIGITS = /^[0-9]+$/;

/**
 * Differences from Mongrel2 (which strtol()s the first Content-Length and uses
 * chunked only for an exact `Transfer-Encoding: chunked` without one): a
 * Content-Length that is not plain digits, several that disagree, any
 * Transfer-Encoding other than exactly `chunked`, and Transfer-Encoding with
 * Content-Length (in either order) are all invalid → 400.
 */
export function bodyFraming(head: RequestHead): BodyFraming {
  const lengths = headerValues(head, 'content-length');
  const encodings = headerValues(head, 'transfer-encoding');
  if (encodings.length > 0) {
    if (lengths.length > 0) return { kind: 'invalid', reason: 'both Transfer-Encoding and Content-Length (refused: request smuggling)' };
    if (encodings.length > 1) return { kind: 'invalid', reason: 'more than one Transfer-Encoding header' };
    if (encodings[0] !== 'chunked') return { kind: 'invalid', reason: `unsupported Transfer-Encoding ${JSON.stringify(encodings[0])} (only "chunked")` };
    return { kind: 'chunked' };
  }
  if (lengths.length === 0) return { kind: 'none' };
  let length = -1;
  for (const value of lengths) {
    const trimmed = value.replace(/[ \t]+$/, ''); // values keep trailing blanks; strtol would stop there too
    if (!DIGITS.test(trimmed)) return { kind: 'invalid', reason: `Content-Length ${JSON.stringify(value)} is not a decimal number` };
    const n = Number(trimmed);
    if (!Number.isSafeInteger(n)) return { kind: 'invalid', reason: `Content-Length ${value} is too large` };
    if (length >= 0 && n !== length) return { kind: 'invalid', reason: `conflicting Content-Length headers (${length} and ${n})` };
    length = n;
  }
  return { kind: 'length', length };
}

/**
 * The one keep-alive rule of the core (client connections, Dir, Proxy):
 * HTTP/1.0 always closes (connection.c:1343-1357, even with keep-alive);
 * HTTP/1.1 closes when any token of any Connection header is `close`, in any
 * case (RFC 9110 §7.6.1). Mongrel2 compares only the first value, whole, so
 * `Connection: Upgrade, close` keeps its connection open there.
 */
export function keepAliveFor(version: string, connection: readonly string[]): boolean {
  return version === 'HTTP/1.1' && !listTokens(connection).includes('close');
}

export function keepAlive(head: RequestHead): boolean {
  return keepAliveFor(head.version, headerValues(head, 'connection'));
}

/** connection.c: `Expect: 100-continue` exactly (case-sensitive) continues; any other Expect value is a 417. */
export function expectation(head: RequestHead): 'none' | 'continue' | 'fail' {
  const value = headerValue(head, 'expect');
  if (value === undefined) return 'none';
  return value === '100-continue' ? 'continue' : 'fail';
}
