/** Shared helpers for the server-http tests. */
import { parseHead, type HeadResult, type ParserLimits } from '../../src/server/http/request-parser.js';

export const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

export function parse(s: string | Buffer, limits?: ParserLimits, start = 0): HeadResult {
  return parseHead(typeof s === 'string' ? bytes(s) : s, start, limits);
}

/** Where the full parse is decided: the end of an accepted message, or the byte after the offending one. */
export function decidedAt(r: HeadResult): number | undefined {
  if (r.kind === 'incomplete') return undefined;
  if (r.kind === 'error') return r.offset + 1;
  return r.end;
}

/**
 * Feeds `buf` as growing prefixes (each a fresh copy, as if bytes arrived one
 * at a time) and checks the answer is "incomplete" until the deciding byte,
 * then exactly the full answer. Returns a problem description or undefined.
 */
export function splitProblem(buf: Buffer, limits?: ParserLimits): string | undefined {
  const full = parseHead(buf, 0, limits);
  const decided = decidedAt(full);
  for (let k = 0; k <= buf.length; k++) {
    const r = parseHead(Buffer.from(buf.subarray(0, k)), 0, limits);
    const want = decided === undefined || k < decided ? { kind: 'incomplete' } : full;
    if (JSON.stringify(r) !== JSON.stringify(want)) return `prefix ${k}/${buf.length}: got ${JSON.stringify(r)}, want ${JSON.stringify(want)}`;
  }
  return undefined;
}
