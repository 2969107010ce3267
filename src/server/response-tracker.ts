/**
 * Finds where one HTTP response ends in the bytes a handler sends for a
 * connection. Handlers reply with raw bytes and Mongrel2 never parses them,
 * but the core holds a pipelined request until the previous response is
 * complete (so answers can never overtake each other), and this is how it
 * knows: Content-Length, chunked framing, or no body (HEAD, 1xx, 204, 304).
 * A response framed by closing the connection, or bytes that are not an
 * HTTP response at all, never complete: the connection then serves no
 * further pipelined request until the handler closes it.
 */
import { ChunkSizeReader, chunkSizeRules, FAILED } from './http/chunk-size.js';
import { findByte } from './http/byte-scan.js';

export type TrackerState = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'chunk-lf' | 'trailers' | 'done' | 'never';

/** Response heads longer than this are treated as unframeable. */
const MAX_HEAD = 64 * 1024;
const MAX_LINE = 4096;
const EMPTY = Buffer.alloc(0);
const CR = 0x0d;
const LF = 0x0a;
/** What any client parser takes: 1-12 hex digits, blanks, any `;extension`, CRLF or bare LF. */
const SIZE_RULES = chunkSizeRules({
  leadingBlanks: false,
  maxSizeChars: 12,
  maxSize: Number.MAX_SAFE_INTEGER,
  bareLf: true,
  maxLineBytes: MAX_LINE,
  extensionRefuses: () => false,
});

export class ResponseTracker {
  private state: TrackerState = 'head';
  private pending: Buffer = EMPTY;
  private remaining = 0;
  /** Made when a chunked body starts (most replies have none). */
  private sizeLine: ChunkSizeReader | undefined;

  /** `headRequest`: the request was HEAD, so no response to it has a body. */
  constructor(private readonly headRequest: boolean) {}

  get status(): TrackerState {
    return this.state;
  }

  /**
   * Feeds bytes that were written to the client. Returns the offset in `buf`
   * just past the end of the response, or -1 while it is not complete.
   */
  feed(buf: Buffer): number {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case 'done':
          return i;
        case 'never':
          return -1;
        case 'head': {
          const start = this.pending.length;
          // Usually the whole head is in this one reply: no copy then.
          const data = start === 0 ? (i === 0 ? buf : buf.subarray(i)) : Buffer.concat([this.pending, buf.subarray(i)]);
          const end = findBlankLine(data);
          if (end < 0) {
            if (!looksLikeStatusLine(data) || data.length > MAX_HEAD) this.state = 'never';
            else this.pending = start === 0 ? Buffer.from(data) : data;
            return -1;
          }
          i += end - start;
          this.pending = EMPTY;
          this.startBody(data, end);
          if ((this.state as TrackerState) === 'body' && this.remaining === 0) this.state = 'done';
          break;
        }
        case 'body': {
          const take = Math.min(this.remaining, buf.length - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = 'done';
          break;
        }
        case 'chunk-size': {
          const reader = (this.sizeLine ??= new ChunkSizeReader(SIZE_RULES));
          const end = reader.read(buf, i);
          if (end < 0) {
            if (end === FAILED) this.state = 'never';
            return -1;
          }
          i = end;
          if (reader.size === 0) this.state = 'trailers';
          else {
            this.state = 'chunk-data';
            this.remaining = reader.size;
          }
          break;
        }
        case 'chunk-crlf':
        case 'chunk-lf': {
          const b = buf[i++];
          if (b === LF) this.state = 'chunk-size';
          else if (b === CR && this.state === 'chunk-crlf') this.state = 'chunk-lf';
          else {
            this.state = 'never';
            return -1;
          }
          break;
        }
        case 'trailers': {
          const nl = buf.indexOf(0x0a, i);
          const lineEnd = nl < 0 ? buf.length : nl + 1;
          this.pending = Buffer.concat([this.pending, buf.subarray(i, lineEnd)]);
          i = lineEnd;
          if (nl < 0) {
            if (this.pending.length > MAX_LINE) this.state = 'never';
            return -1;
          }
          // An empty line (CRLF or bare LF) ends the trailers.
          if (this.pending.length <= 2 && (this.pending.length === 1 || this.pending[0] === CR)) this.state = 'done';
          this.pending = EMPTY;
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.remaining, buf.length - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = 'chunk-crlf';
          break;
        }
      }
    }
    return this.state === 'done' ? i : -1;
  }

  /** The head is `h[0..end)`; read on bytes (this runs once per reply). */
  private startBody(h: Buffer, end: number): void {
    const status = statusOf(h, end);
    if (status < 0) {
      this.state = 'never';
      return;
    }
    if (status === 101) {
      this.state = 'never'; // an upgrade: no more HTTP on this connection
      return;
    }
    if (status >= 100 && status < 200) {
      this.state = 'head'; // interim response; the real one follows
      return;
    }
    if (this.headRequest || status === 204 || status === 304) {
      this.state = 'done';
      return;
    }
    let length: number | undefined;
    let chunked = false;
    for (let from = findByte(h, 0x0a, 0, end) + 1; from > 0 && from < end; ) {
      const nl = findByte(h, 0x0a, from, end);
      const lineEnd = nl < 0 ? end : nl;
      const colon = findByte(h, 0x3a, from, lineEnd);
      if (colon > from) {
        const [ns, ne] = trimmed(h, from, colon);
        const [vs, ve] = trimmed(h, colon + 1, lineEnd);
        if (nameIs(h, ns, ne, TRANSFER_ENCODING)) {
          chunked = h.toString('latin1', vs, ve).toLowerCase().split(',').map((t) => t.trim()).includes('chunked');
        } else if (nameIs(h, ns, ne, CONTENT_LENGTH)) {
          const n = digits(h, vs, ve);
          if (n >= 0) length = n;
        }
      }
      from = lineEnd + 1;
    }
    if (chunked) this.state = 'chunk-size';
    else if (length !== undefined) {
      this.state = 'body';
      this.remaining = length;
    } else this.state = 'never'; // read until close
  }
}

const TRANSFER_ENCODING = Buffer.from('transfer-encoding', 'latin1');
const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');

/** `HTTP/d.d ddd` at the start: the status, else -1. */
function statusOf(h: Buffer, end: number): number {
  if (end < 12 || !looksLikeStatusLine(h) || h[8] !== 0x20 || h[6] !== 0x2e || !isDigit(h[5]) || !isDigit(h[7])) return -1;
  if (!isDigit(h[9]) || !isDigit(h[10]) || !isDigit(h[11])) return -1;
  return (h[9]! - 0x30) * 100 + (h[10]! - 0x30) * 10 + (h[11]! - 0x30);
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** String.prototype.trim's whitespace among latin1 bytes: TAB LF VT FF CR SP NBSP. */
function isSpace(b: number): boolean {
  return (b >= 0x09 && b <= 0x0d) || b === 0x20 || b === 0xa0;
}

function trimmed(h: Buffer, start: number, end: number): [number, number] {
  while (start < end && isSpace(h[start]!)) start++;
  while (end > start && isSpace(h[end - 1]!)) end--;
  return [start, end];
}

/** ASCII case-insensitive equality with a lower-case name (no other latin1 byte lower-cases into ASCII). */
function nameIs(h: Buffer, start: number, end: number, name: Buffer): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const b = h[start + i]!;
    if ((b >= 0x41 && b <= 0x5a ? b | 0x20 : b) !== name[i]) return false;
  }
  return true;
}

/** 1 to 15 decimal digits: their value, else -1. */
function digits(h: Buffer, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = h[i]!;
    if (b < 0x30 || b > 0x39) return -1;
    n = n * 10 + (b - 0x30);
  }
  return n;
}

/** Just past the first empty line (LF LF or LF CR LF), or -1. A plain loop: heads are short, and native indexOf calls cost more here. */
function findBlankLine(buf: Buffer): number {
  const n = buf.length;
  for (let i = 0; i < n; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const STATUS_PREFIX = Buffer.from('HTTP/', 'latin1');

/** The bytes so far could start a status line (`HTTP/`). */
function looksLikeStatusLine(buf: Buffer): boolean {
  const n = Math.min(buf.length, STATUS_PREFIX.length);
  for (let i = 0; i < n; i++) if (buf[i] !== STATUS_PREFIX[i]) return false;
  return true;
}
