/**
 * Mongrel2's strict HTTP/1.x request-head parser, as a pure function.
 *
 * Acceptance and the failing byte come from a DFA compiled from the real
 * Ragel grammar (request-grammar.ts), so `offset` on errors is the byte the
 * real parser stops at. Once a head is accepted, the fields are cut out of the
 * (now known-good) bytes the way the Ragel actions do.
 *
 * Incremental use: call again from the same `start` with more bytes; each call
 * rescans, O(n) in the bytes given (and never more than maxHeadBytes).
 */
import { DEAD } from './dfa.js';
import { requestDfa } from './request-grammar.js';
import { findByte } from './byte-scan.js';

export interface RequestHead {
  readonly method: string;
  readonly uri: string;
  readonly path: string;
  readonly query: string | undefined;
  readonly fragment: string | undefined;
  readonly version: 'HTTP/1.0' | 'HTTP/1.1';
  /**
   * The target was absolute-form (`http://host/p`): `uri` and `path` then
   * start after `scheme:`, so they hold `//host/p` as Mongrel2's PATH does.
   * A proxy must not pass that on as if it were a path (RFC 9112 §3.2.2).
   */
  readonly absoluteForm?: boolean;
  /** In arrival order, names exactly as sent, values latin1 with leading whitespace stripped. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export interface ParserLimits {
  /** request.relaxed: allow `{ } ^` in URIs. */
  relaxed?: boolean;
  /** limits.buffer_size (default 4096): the whole head (or socket message) must fit in this many bytes. */
  maxHeadBytes?: number;
  /** limits.header_count (default 1280): distinct (case-insensitive) names kept; once full, every further header line is dropped. */
  maxHeaderCount?: number;
}

export type HeadResult =
  | { kind: 'incomplete' }
  | { kind: 'error'; offset: number; reason: string }
  /** `dropped`: header lines left out because of maxHeaderCount (Mongrel2 logs them and carries on). */
  | { kind: 'request'; head: RequestHead; end: number; dropped: number }
  /** `@path {…}\0`: path includes the '@'; body is the JSON text without the NUL (a copy). */
  | { kind: 'json'; path: string; body: Buffer; end: number }
  /** `<tag …>…\0` other than the policy request: path is '<' + tag name; body without the NUL (a copy). */
  | { kind: 'xml'; path: string; body: Buffer; end: number }
  /** Any XML message whose tag is policy-file-request (Mongrel2 compares the path only). */
  | { kind: 'policy'; end: number };

export const DEFAULT_MAX_HEAD_BYTES = 4096;
export const DEFAULT_MAX_HEADER_COUNT = 1280;
const POLICY_PATH = '<policy-file-request';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;

export function parseHead(buf: Buffer, start: number, limits: ParserLimits = {}): HeadResult {
  const maxHead = limits.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const relaxed = limits.relaxed === true;
  const dfa = requestDfa(relaxed);
  const { classes, classCount, next, accepting } = dfa;
  const stop = Math.min(buf.length, start + maxHead);
  let state = 0;
  for (let i = start; i < stop; i++) {
    state = next[state * classCount + (classes[buf[i] as number] as number)] as number;
    if (state === DEAD) return { kind: 'error', offset: i, reason: explain(buf, start, i, relaxed) };
    if (accepting[state] === 1) return extract(buf, start, i + 1, limits.maxHeaderCount ?? DEFAULT_MAX_HEADER_COUNT);
  }
  if (buf.length - start >= maxHead) {
    // The buffer is full and the head is still open: the last byte that fits is where it went wrong.
    const at = start + maxHead - 1;
    return { kind: 'error', offset: at, reason: `request head does not fit in ${maxHead} bytes (limits.buffer_size) at byte ${at}` };
  }
  return { kind: 'incomplete' };
}

// ---- extraction (input already accepted by the DFA) ------------------------

function extract(buf: Buffer, start: number, end: number, maxHeaderCount: number): HeadResult {
  const first = buf[start];
  if (first === 0x40 /* @ */) {
    const space = buf.indexOf(SP, start);
    return {
      kind: 'json',
      path: buf.toString('latin1', start, space),
      body: Buffer.from(buf.subarray(space + 1, end - 1)),
      end,
    };
  }
  if (first === 0x3c /* < */) {
    let tagEnd = start + 1;
    while (tagEnd < end && isTagByte(buf[tagEnd] as number)) tagEnd++;
    const path = buf.toString('latin1', start, tagEnd);
    if (path === POLICY_PATH) return { kind: 'policy', end };
    return { kind: 'xml', path, body: Buffer.from(buf.subarray(start, end - 1)), end };
  }
  return extractRequest(buf, start, end, maxHeaderCount);
}

function isTagByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e;
}

function isSchemeByte(b: number): boolean {
  return isTagByte(b) || b === 0x2b; // ALPHA DIGIT + - .
}

/** The common methods as constants (no string made per request); any other as its bytes. */
function methodName(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n === 3 && buf[start] === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET';
  if (n === 4 && buf[start] === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return 'POST';
  return buf.toString('latin1', start, end);
}

function extractRequest(buf: Buffer, start: number, end: number, maxHeaderCount: number): HeadResult {
  const methodEnd = findByte(buf, SP, start, end);
  const uriStart = methodEnd + 1;
  const uriEnd = findByte(buf, SP, uriStart, end);
  const versionStart = uriEnd + 1;
  // The grammar allows only these two versions.
  const version = buf[versionStart + 7] === 0x31 ? 'HTTP/1.1' : 'HTTP/1.0';

  const hash = findByte(buf, 0x23 /* # */, uriStart, uriEnd);
  const refEnd = hash >= 0 ? hash : uriEnd;
  // Absolute form: the Ragel `mark` moves to just after `scheme:`, so PATH and URI start there.
  let mark = uriStart;
  const first = buf[uriStart] as number;
  if ((first | 0x20) >= 0x61 && (first | 0x20) <= 0x7a) {
    let i = uriStart + 1;
    while (i < refEnd && isSchemeByte(buf[i] as number)) i++;
    if (i < refEnd && buf[i] === 0x3a /* : */) mark = i + 1;
  }
  const q = findByte(buf, 0x3f /* ? */, mark, refEnd);
  const pathEnd = q >= 0 ? q : refEnd;

  const headers: Array<readonly [string, string]> = [];
  // Distinct names need counting only once there are as many lines as the limit (a Set per request costs).
  let names: Set<string> | undefined;
  let dropped = 0;
  let p = findByte(buf, LF, versionStart, end) + 1;
  while (buf[p] !== CR && buf[p] !== LF) {
    const colon = findByte(buf, 0x3a, p, end);
    const lf = findByte(buf, LF, colon, end);
    let v = colon + 1;
    while (buf[v] === SP || buf[v] === HT) v++;
    const vEnd = buf[lf - 1] === CR ? lf - 1 : lf;
    const name = buf.toString('latin1', p, colon);
    p = lf + 1;
    if (names === undefined && headers.length >= maxHeaderCount) names = new Set(headers.map(([n]) => n.toLowerCase()));
    if (names !== undefined) {
      // request.c: the header hash has room for header_count names; when full, every further line is dropped.
      if (names.size >= maxHeaderCount) {
        dropped++;
        continue;
      }
      names.add(name.toLowerCase());
    }
    headers.push([name, buf.toString('latin1', Math.min(v, vEnd), vEnd)]);
  }

  const uri = buf.toString('latin1', mark, refEnd);
  const head: RequestHead = {
    method: methodName(buf, start, methodEnd),
    uri,
    path: pathEnd === refEnd ? uri : buf.toString('latin1', mark, pathEnd),
    query: pathEnd < refEnd ? buf.toString('latin1', pathEnd + 1, refEnd) : undefined,
    fragment: refEnd < uriEnd ? buf.toString('latin1', refEnd + 1, uriEnd) : undefined,
    version,
    absoluteForm: mark !== uriStart,
    headers,
  };
  return { kind: 'request', head, end, dropped };
}

// ---- error reasons -----------------------------------------------------------

function byteName(b: number): string {
  if (b >= 0x21 && b <= 0x7e) return `'${String.fromCharCode(b)}'`;
  if (b === SP) return 'space';
  if (b === CR) return 'CR';
  if (b === LF) return 'LF';
  if (b === HT) return 'HT';
  if (b === 0x7f) return 'DEL';
  return `byte 0x${b.toString(16).padStart(2, '0')}`;
}

function isHex(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66));
}

/** Says what was wrong with the byte at `at`, given that every byte before it was acceptable. */
function explain(buf: Buffer, start: number, at: number, relaxed: boolean): string {
  return `${what(buf, start, at, relaxed)} at byte ${at}`;
}

function what(buf: Buffer, start: number, at: number, relaxed: boolean): string {
  const b = buf[at] as number;
  const name = byteName(b);
  if (at > start && buf[at - 1] === CR) return `CR not followed by LF (got ${name})`;
  if (at === start) {
    if (b === CR || b === LF) return 'blank line before the request line';
    if (b >= 0x61 && b <= 0x7a) return 'lower-case method';
    return `${name} cannot start a request (expected a method, '@' or '<')`;
  }
  const first = buf[start] as number;
  if (first === 0x40) {
    const space = buf.indexOf(SP, start);
    if (space < 0 || space >= at) return `${name} in a JSON message path (no query string or spaces allowed)`;
    return `JSON message body must start with '{', got ${name}`;
  }
  if (first === 0x3c) return `${name} in an XML message tag`;

  const lf = buf.lastIndexOf(LF, at - 1);
  if (lf < start) return inRequestLine(buf, start, at, b, name, relaxed);

  const lineStart = lf + 1;
  if (at === lineStart) {
    if (b === SP || b === HT) return 'obsolete line folding (continuation line)';
    if (b === 0x3a) return 'empty header name';
    return `${name} at the start of a header line`;
  }
  const colon = buf.indexOf(0x3a, lineStart);
  if (colon < 0 || colon >= at) {
    if (b === SP || b === HT) return `${b === SP ? 'space' : 'HT'} before ':' in header name`;
    if (b === CR || b === LF) return "header line without ':'";
    return `${name} in header name`;
  }
  if (b === 0x7f) return 'DEL in header value';
  return `control ${name} in header value`;
}

function inRequestLine(buf: Buffer, start: number, at: number, b: number, name: string, relaxed: boolean): string {
  const s1 = buf.indexOf(SP, start);
  if (s1 < 0 || s1 >= at) {
    if (at - start >= 20 && ((b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39))) return 'method longer than 20 characters';
    if (b >= 0x61 && b <= 0x7a) return 'lower-case method';
    return `${name} in method (only A-Z and 0-9)`;
  }
  const s2 = buf.indexOf(SP, s1 + 1);
  if (s2 < 0 || s2 >= at) {
    if (b >= 0x80) return `non-ASCII ${name} in request URI`;
    if (!relaxed && (b === 0x7b || b === 0x7d || b === 0x5e)) return `${name} in request URI (allowed only with request.relaxed=1)`;
    if (buf[at - 1] === 0x25 || (buf[at - 2] === 0x25 && isHex(buf[at - 1]))) return `invalid percent-escape in request URI (${name})`;
    if (b === CR || b === LF) return 'request line ends without an HTTP version';
    return `${name} not allowed here in request URI`;
  }
  if (at - (s2 + 1) === 8) return `${name} after the HTTP version (expected the line end)`;
  return `${name} in HTTP version (only HTTP/1.0 and HTTP/1.1)`;
}
