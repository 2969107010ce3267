/**
 * Strict parser for a backend's HTTP/1.x response head (status line + header
 * fields), as a pure function over a Buffer.
 *
 * Mongrel2's httpclient_parser.rl requires a non-empty reason phrase; RFC 9112
 * §4 makes it optional (`HTTP/1.1 200 \r\n`, and the common `HTTP/1.1 200\r\n`
 * is accepted too). Like Mongrel2, bare LF line ends are accepted (RFC 9112
 * §2.2 allows it); a bare CR, obs-fold, whitespace before the colon and control
 * bytes in values are refused (RFC 9112 §5), so a broken backend gets a 502.
 */
import { headerTokens, listTokens } from '../../http/hop-by-hop.js';

export interface ResponseHead {
  readonly version: 'HTTP/1.0' | 'HTTP/1.1';
  readonly status: number;
  readonly reason: string;
  /** In arrival order, names as sent, values latin1 without surrounding blanks. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export type ResponseHeadResult =
  | { kind: 'incomplete' }
  | { kind: 'error'; offset: number; reason: string }
  /** end: absolute offset just after the blank line. */
  | { kind: 'response'; head: ResponseHead; end: number };

export const DEFAULT_MAX_RESPONSE_HEAD = 64 * 1024;

const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
/** RFC 9110 tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parse the head that starts at `start`; scans at most `maxBytes` bytes.
 * Works on one latin1 string of the scanned bytes (one native call per head,
 * not one per line); offsets in errors are into `buf`.
 */
export function parseResponseHead(buf: Buffer, start: number, maxBytes = DEFAULT_MAX_RESPONSE_HEAD): ResponseHeadResult {
  const stop = Math.min(buf.length, start + maxBytes);
  const text = buf.toString('latin1', start, stop);
  const n = text.length;
  let lineStart = 0;
  let status: RegExpExecArray | undefined;
  const headers: Array<readonly [string, string]> = [];
  for (;;) {
    const lf = text.indexOf('\n', lineStart);
    // A CR must be followed by LF (checked up to the LF, or to the end of what we have).
    const cr = text.indexOf('\r', lineStart);
    if (cr >= 0 && (lf < 0 || cr < lf - 1)) {
      if (cr + 1 >= n) break; // need the next byte
      return { kind: 'error', offset: start + cr, reason: 'CR not followed by LF in the response head' };
    }
    if (lf < 0) break;
    const lineEnd = lf > lineStart && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    const line = text.slice(lineStart, lineEnd);
    const at = start + lineStart;
    lineStart = lf + 1;
    if (status === undefined) {
      const m = STATUS_LINE.exec(line);
      if (!m) return { kind: 'error', offset: at, reason: `bad status line ${JSON.stringify(line.slice(0, 80))}` };
      if (m[1] !== '0' && m[1] !== '1') return { kind: 'error', offset: at + 7, reason: `unsupported HTTP version 1.${m[1]}` };
      status = m;
      continue;
    }
    if (line === '') {
      const head: ResponseHead = { version: status[1] === '0' ? 'HTTP/1.0' : 'HTTP/1.1', status: Number(status[2]), reason: status[3] ?? '', headers };
      return { kind: 'response', head, end: start + lf + 1 };
    }
    if (line.charCodeAt(0) === SP || line.charCodeAt(0) === HT) return { kind: 'error', offset: at, reason: 'obs-fold (continuation line) in the response head' };
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'error', offset: at, reason: 'header line without a name and colon' };
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return { kind: 'error', offset: at, reason: `bad header name ${JSON.stringify(name.slice(0, 40))}` };
    const value = trimBlanks(line, colon + 1);
    if (!FIELD_VALUE.test(value)) return { kind: 'error', offset: at + colon + 1, reason: `control byte in the value of ${name}` };
    headers.push([name, value]);
  }
  // Early garbage check: a status line must start with "HTTP/" (fail fast on non-HTTP backends).
  const prefix = text.slice(0, 5);
  if (!'HTTP/'.startsWith(prefix)) return { kind: 'error', offset: start, reason: `response does not start with HTTP/ (got ${JSON.stringify(prefix)})` };
  if (buf.length - start >= maxBytes) return { kind: 'error', offset: start + maxBytes - 1, reason: `response head larger than ${maxBytes} bytes` };
  return { kind: 'incomplete' };
}

/** line.slice(from) without leading and trailing SP / HTAB. */
function trimBlanks(line: string, from: number): string {
  let a = from;
  let b = line.length;
  while (a < b && (line.charCodeAt(a) === SP || line.charCodeAt(a) === HT)) a++;
  while (b > a && (line.charCodeAt(b - 1) === SP || line.charCodeAt(b - 1) === HT)) b--;
  return line.slice(a, b);
}

export type ResponseFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** Body runs until the backend closes (RFC 9112 §6.3 rule 8). */
  | { kind: 'close' }
  | { kind: 'invalid'; reason: string };

/** RFC 9112 §6.3 for a response to `method`. */
export function responseFraming(method: string, head: ResponseHead): ResponseFraming {
  const { status } = head;
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return { kind: 'none' };
  // One pass over the headers (a per-response hot path).
  let te: string[] | undefined;
  let cl: string[] | undefined;
  for (const [k, v] of head.headers) {
    const lower = k.toLowerCase();
    if (lower === 'transfer-encoding') (te ??= []).push(v);
    else if (lower === 'content-length') (cl ??= []).push(v);
  }
  const codings = te === undefined ? [] : listTokens(te);
  if (codings.length > 0) {
    // TE overrides Content-Length (§6.3 rule 3); a final coding other than chunked runs to close.
    return codings[codings.length - 1] === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  let length = -1;
  for (const v of cl ?? []) {
    for (const part of v.split(',')) {
      const text = part.trim();
      if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) return { kind: 'invalid', reason: `bad Content-Length ${JSON.stringify(v)}` };
      const n = Number(text);
      if (length >= 0 && n !== length) return { kind: 'invalid', reason: `conflicting Content-Length values (${length} and ${n})` };
      length = n;
    }
  }
  return length >= 0 ? { kind: 'length', length } : { kind: 'close' };
}

/** Whether the backend keeps its connection open after this response (RFC 9112 §9.3); `tokens`: its Connection tokens, if already at hand. */
export function backendPersists(head: ResponseHead, tokens: readonly string[] = headerTokens(head.headers, 'connection')): boolean {
  if (tokens.includes('close')) return false;
  return head.version === 'HTTP/1.1' || tokens.includes('keep-alive');
}
