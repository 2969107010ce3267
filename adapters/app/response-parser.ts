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

export class ResponseParser {
  readonly #headRequest: boolean;
  readonly #upgrade: boolean;
  readonly #maxHead: number;
  readonly #on: ResponseParserEvents;
  #state: State = 'head';
  /** Bytes of a head, chunk-size line or trailer section not complete yet. */
  #pending: Buffer = Buffer.alloc(0);
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
    this.#pending = Buffer.alloc(0);
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
    this.#pending = Buffer.alloc(0);
    const lines = all.toString('latin1', 0, at).split('\r\n');
    const m = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: (.*))?$/.exec(lines[0] ?? '');
    if (!m) throw new ResponseParseError(`bad status line ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const reason = m[2] ?? '';
    const headers: Array<[string, string]> = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ResponseParseError(`bad header line ${JSON.stringify(line)}`);
      headers.push([line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
    }
    if (status === 101) {
      if (!this.#upgrade) throw new ResponseParseError('101 Switching Protocols: upgrades are not supported');
      this.#on.head({ status, reason, headers, bodyless: false });
      this.#state = 'upgraded';
      return rest;
    }
    if (status < 200) return rest; // interim response: the real head follows

    const bodyless = this.#headRequest || status === 204 || status === 304;
    let chunked = false;
    let length: number | undefined;
    for (const [name, value] of headers) {
      const lower = name.toLowerCase();
      if (lower === 'transfer-encoding') chunked = value.split(',').pop()?.trim().toLowerCase() === 'chunked';
      else if (lower === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value)) throw new ResponseParseError(`bad Content-Length ${JSON.stringify(value)}`);
        if (length !== undefined && length !== Number(value)) throw new ResponseParseError('conflicting Content-Length headers');
        length = Number(value);
      }
    }
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
    this.#pending = Buffer.alloc(0);
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
