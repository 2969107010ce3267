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

export type TrackerState = 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'done' | 'never';

/** Response heads longer than this are treated as unframeable. */
const MAX_HEAD = 64 * 1024;
const MAX_LINE = 4096;
const EMPTY = Buffer.alloc(0);

export class ResponseTracker {
  private state: TrackerState = 'head';
  private pending: Buffer = EMPTY;
  private remaining = 0;

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
          const data = start === 0 ? buf.subarray(i) : Buffer.concat([this.pending, buf.subarray(i)]);
          const end = findBlankLine(data);
          if (end < 0) {
            if (!looksLikeStatusLine(data) || data.length > MAX_HEAD) this.state = 'never';
            else this.pending = start === 0 ? Buffer.from(data) : data;
            return -1;
          }
          i += end - start;
          const head = data.toString('latin1', 0, end);
          this.pending = EMPTY;
          this.startBody(head);
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
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailers': {
          const nl = buf.indexOf(0x0a, i);
          const lineEnd = nl < 0 ? buf.length : nl + 1;
          this.pending = Buffer.concat([this.pending, buf.subarray(i, lineEnd)]);
          i = lineEnd;
          if (nl < 0) {
            if (this.pending.length > MAX_LINE) this.state = 'never';
            return -1;
          }
          const line = this.pending.toString('latin1').replace(/\r?\n$/, '');
          this.pending = EMPTY;
          this.onLine(line);
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

  private startBody(head: string): void {
    const lines = head.split('\n');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
    if (!Number.isInteger(status)) {
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
    for (let l = 1; l < lines.length; l++) {
      const line = lines[l]!;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      // Only two names matter: skip the others by length before lower-casing.
      const name = line.slice(0, colon).trim();
      if (name.length !== TRANSFER_ENCODING.length && name.length !== CONTENT_LENGTH.length) continue;
      const lower = name.toLowerCase();
      const value = line.slice(colon + 1).trim(); // trim() also drops the '\r' of a CRLF line
      if (lower === TRANSFER_ENCODING) chunked = value.toLowerCase().split(',').map((t) => t.trim()).includes('chunked');
      else if (lower === CONTENT_LENGTH && /^[0-9]{1,15}$/.test(value)) length = Number(value);
    }
    if (chunked) this.state = 'chunk-size';
    else if (length !== undefined) {
      this.state = 'body';
      this.remaining = length;
    } else this.state = 'never'; // read until close
  }

  private onLine(line: string): void {
    if (this.state === 'chunk-crlf') {
      this.state = line === '' ? 'chunk-size' : 'never';
      return;
    }
    if (this.state === 'trailers') {
      if (line === '') this.state = 'done';
      return;
    }
    const m = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line);
    if (!m) {
      this.state = 'never';
      return;
    }
    const size = parseInt(m[1]!, 16);
    if (size === 0) this.state = 'trailers';
    else {
      this.state = 'chunk-data';
      this.remaining = size;
    }
  }
}

const TRANSFER_ENCODING = 'transfer-encoding';
const CONTENT_LENGTH = 'content-length';

/** Just past the first empty line (LF LF or LF CR LF), or -1. */
function findBlankLine(buf: Buffer): number {
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const STATUS_PREFIX = Buffer.from('HTTP/', 'latin1');

function looksLikeStatusLine(buf: Buffer): boolean {
  const n = Math.min(buf.length, STATUS_PREFIX.length);
  return buf.subarray(0, n).equals(STATUS_PREFIX.subarray(0, n));
}
