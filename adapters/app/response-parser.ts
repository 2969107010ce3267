/**
 * An incremental parser for the HTTP/1.1 response bytes Node's own
 * ServerResponse serializes: the status line and headers up to CRLF CRLF,
 * then the body as Node framed it (Content-Length, chunked, or until the
 * connection ends), handed on as it arrives. It parses Node's well-formed
 * output, not arbitrary peers, so it is strict and small: anything unexpected
 * is an error rather than something to recover from.
 *
 * Interim 1xx responses (`100 Continue` for `Expect: 100-continue`,
 * `writeEarlyHints`, `writeProcessing`) are skipped: the bridge cannot relay
 * them. `101 Switching Protocols` is an error, unless the parser reads the
 * answer to an upgrade request (`upgrade: true`): then the 101 head is
 * reported and every byte after it is data of the upgraded stream.
 */

export class ResponseParseError extends Error {
  override readonly name = 'ResponseParseError';
}

export interface ParsedHead {
  status: number;
  reason: string;
  /** In order, names as the app wrote them, values decoded as latin1 (as Node encodes them). */
  headers: Array<[string, string]>;
  /** No body follows (HEAD, 204, 304): the response is complete with the head. */
  bodyless: boolean;
}

export interface ResponseParserEvents {
  head(head: ParsedHead): void;
  /** A piece of the decoded body (a view into the written chunk). */
  data(chunk: Buffer): void;
  /** The body is complete. */
  end(): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'close' | 'upgraded' | 'done';

const CRLF = Buffer.from('\r\n', 'latin1');
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** `HTTP/1.x NNN reason` (the first `eol` characters of `text`). */
function statusLine(text: string, eol: number): { status: number; reason: string } {
  // HTTP/1.0 or HTTP/1.1, a space, three digits (the first not 0), then the end or a space and the reason.
  const ok =
    eol >= 12 &&
    text.startsWith('HTTP/1.', 0) &&
    (text.charCodeAt(7) === 0x30 || text.charCodeAt(7) === 0x31) &&
    text.charCodeAt(8) === 0x20 &&
    isDigit(text.charCodeAt(9), 0x31) &&
    isDigit(text.charCodeAt(10), 0x30) &&
    isDigit(text.charCodeAt(11), 0x30) &&
    (eol === 12 || text.charCodeAt(12) === 0x20);
  if (!ok) throw new ResponseParseError(`bad status line ${JSON.stringify(text.slice(0, eol))}`);
  const status = (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30);
  return { status, reason: eol > 13 ? text.slice(13, eol) : '' };
}

function isDigit(c: number, min: number): boolean {
  return c >= min && c <= 0x39;
}

/** text[from, to) without leading and trailing spaces and tabs. */
function trimmed(text: string, from: number, to: number): string {
  while (from < to && (text.charCodeAt(from) === 0x20 || text.charCodeAt(from) === 0x09)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 0x20 || text.charCodeAt(to - 1) === 0x09)) to--;
  return text.slice(from, to);
}

export class ResponseParser {
  readonly #headRequest: boolean;
  readonly #upgrade: boolean;
  readonly #maxHead: number;
  readonly #on: ResponseParserEvents;
  #state: State = 'head';
  /** Bytes of a head, chunk-size line or trailer section not complete yet. */
  #pending: Buffer = EMPTY;
  #remaining = 0;

  constructor(options: { method: string; maxHeadBytes?: number; upgrade?: boolean }, events: ResponseParserEvents) {
    this.#headRequest = options.method === 'HEAD';
    this.#upgrade = options.upgrade ?? false;
    this.#maxHead = options.maxHeadBytes ?? 1024 * 1024;
    this.#on = events;
  }

  /** True once the whole response has been seen. */
  get complete(): boolean {
    return this.#state === 'done';
  }

  /** True while the body is delimited by the end of the connection. */
  get closeDelimited(): boolean {
    return this.#state === 'close';
  }

  /** Feeds bytes; throws ResponseParseError on output Node would not produce. */
  push(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      switch (this.#state) {
        case 'head':
          buf = this.#takeHead(buf);
          break;
        case 'length': {
          const n = Math.min(this.#remaining, buf.length);
          this.#remaining -= n;
          const data = buf.subarray(0, n);
          buf = buf.subarray(n);
          this.#on.data(data);
          if (this.#remaining === 0) this.#finishBody();
          break;
        }
        case 'chunk-size':
          buf = this.#takeChunkSize(buf);
          break;
        case 'chunk-data': {
          const n = Math.min(this.#remaining, buf.length);
          this.#remaining -= n;
          const data = buf.subarray(0, n);
          buf = buf.subarray(n);
          this.#on.data(data);
          if (this.#remaining === 0) {
            this.#state = 'chunk-crlf';
            this.#remaining = 2;
          }
          break;
        }
        case 'chunk-crlf': {
          // The CRLF after chunk data, possibly split across writes.
          const expect = CRLF.subarray(2 - this.#remaining);
          const n = Math.min(this.#remaining, buf.length);
          if (!buf.subarray(0, n).equals(expect.subarray(0, n))) throw new ResponseParseError('chunk data not followed by CRLF');
          this.#remaining -= n;
          buf = buf.subarray(n);
          if (this.#remaining === 0) this.#state = 'chunk-size';
          break;
        }
        case 'trailers':
          buf = this.#takeTrailers(buf);
          break;
        case 'close':
        case 'upgraded':
          this.#on.data(buf);
          buf = buf.subarray(buf.length);
          break;
        case 'done':
          // One request per connection: nothing can follow the response.
          throw new ResponseParseError(`${buf.length} bytes after the end of the response`);
      }
    }
  }

  /**
   * The connection ended cleanly (Node called `socket.end()`): that ends a
   * close-delimited body. Throws if the response is incomplete.
   */
  finish(): void {
    if (this.#state === 'done') return;
    if (this.#state === 'close' || this.#state === 'upgraded') {
      this.#finishBody();
      return;
    }
    throw new ResponseParseError(this.#state === 'head' ? 'connection ended before a complete response head' : 'connection ended inside the response body');
  }

  #finishBody(): void {
    this.#state = 'done';
    this.#pending = EMPTY;
    this.#on.end();
  }

  /** Accumulates until CRLF CRLF; returns the bytes after the head. */
  #takeHead(buf: Buffer): Buffer {
    const from = Math.max(0, this.#pending.length - 3);
    const all = this.#pending.length === 0 ? buf : Buffer.concat([this.#pending, buf]);
    const at = all.indexOf(CRLFCRLF, from);
    if (at < 0) {
      if (all.length > this.#maxHead) throw new ResponseParseError(`response head larger than ${this.#maxHead} bytes`);
      this.#pending = Buffer.from(all); // own copy: `buf` may be reused by the writer
      return buf.subarray(buf.length);
    }
    const rest = all.subarray(at + 4);
    this.#pending = EMPTY;
    // One scan over the head text, no split or regex per line (this runs per response).
    const text = all.toString('latin1', 0, at);
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const { status, reason } = statusLine(text, eol);
    const headers: Array<[string, string]> = [];
    // Framing is read from final heads only (a 1xx is skipped or, for an upgrade, followed by raw bytes).
    const final = status >= 200;
    let chunked = false;
    let length: number | undefined;
    for (let pos = eol + 2; pos < text.length; pos = eol + 2) {
      eol = text.indexOf('\r\n', pos);
      if (eol < 0) eol = text.length;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon >= eol) throw new ResponseParseError(`bad header line ${JSON.stringify(text.slice(pos, eol))}`);
      const name = text.slice(pos, colon);
      const value = trimmed(text, colon + 1, eol);
      headers.push([name, value]);
      // Only names of the right length are lower-cased.
      if (!final) continue;
      if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') chunked = value.split(',').pop()?.trim().toLowerCase() === 'chunked';
      else if (name.length === 14 && name.toLowerCase() === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value)) throw new ResponseParseError(`bad Content-Length ${JSON.stringify(value)}`);
        if (length !== undefined && length !== Number(value)) throw new ResponseParseError('conflicting Content-Length headers');
        length = Number(value);
      }
    }
    if (status === 101) {
      if (!this.#upgrade) throw new ResponseParseError('101 Switching Protocols: upgrades are not supported');
      this.#on.head({ status, reason, headers, bodyless: false });
      this.#state = 'upgraded';
      return rest;
    }
    if (status < 200) return rest; // interim response: the real head follows

    const bodyless = this.#headRequest || status === 204 || status === 304;
    this.#on.head({ status, reason, headers, bodyless });
    if (bodyless) this.#finishBody();
    else if (chunked) this.#state = 'chunk-size';
    else if (length !== undefined) {
      this.#remaining = length;
      this.#state = 'length';
      if (length === 0) this.#finishBody();
    } else this.#state = 'close';
    return rest;
  }

  #takeChunkSize(buf: Buffer): Buffer {
    const all = this.#pending.length === 0 ? buf : Buffer.concat([this.#pending, buf]);
    const at = all.indexOf(CRLF);
    if (at < 0) {
      if (all.length > 1024) throw new ResponseParseError('chunk-size line too long');
      this.#pending = Buffer.from(all);
      return buf.subarray(buf.length);
    }
    this.#pending = EMPTY;
    const line = all.toString('latin1', 0, at);
    const m = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(line);
    if (!m) throw new ResponseParseError(`bad chunk-size line ${JSON.stringify(line)}`);
    const size = parseInt(m[1]!, 16);
    if (size === 0) this.#state = 'trailers';
    else {
      this.#state = 'chunk-data';
      this.#remaining = size;
    }
    return all.subarray(at + 2);
  }

  /** Trailer fields (dropped: a BackendResponse has none), then the empty line. */
  #takeTrailers(buf: Buffer): Buffer {
    let all = this.#pending.length === 0 ? buf : Buffer.concat([this.#pending, buf]);
    for (;;) {
      const at = all.indexOf(CRLF);
      if (at < 0) {
        if (all.length > this.#maxHead) throw new ResponseParseError('trailer section too large');
        this.#pending = Buffer.from(all);
        return buf.subarray(buf.length);
      }
      const empty = at === 0;
      all = all.subarray(at + 2);
      if (empty) {
        this.#finishBody();
        return all;
      }
    }
  }
}
