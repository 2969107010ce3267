/**
 * Finds where a backend's chunked response body ends without changing its
 * bytes: the proxy relays chunked bodies as they come and only needs to know
 * the last byte (so a keep-alive backend socket can be reused).
 *
 * Unlike the request-side ChunkedDecoder (http/chunked-decoder.ts) there is no
 * 100 KiB chunk cap (backends send large chunks), line ends may be bare LF as
 * Mongrel2's httpclient parser accepts (tests/client_suite is LF-only), and
 * trailers are scanned instead of being assumed absent (Mongrel2 assumed the
 * final CRLF).
 */
import { ProtocolError } from '../../protocol/errors.js';
import { ChunkSizeReader, chunkSizeRules, FAILED, type ChunkSizeWords } from '../http/chunk-size.js';

const CR = 0x0d;
const LF = 0x0a;
const MAX_TRAILER_BYTES = 64 * 1024;

type State = 'size' | 'data' | 'data-end' | 'data-lf' | 'trailer-start' | 'trailer' | 'trailer-lf' | 'end-lf' | 'done';

const SIZE_RULES = chunkSizeRules({
  leadingBlanks: false,
  /** 13 hex digits cover every safe integer; more (leading zeros aside) is garbage. */
  maxSizeChars: 16,
  maxSize: Number.MAX_SAFE_INTEGER,
  bareLf: true,
  maxLineBytes: 4096,
  extensionRefuses: (b) => b < 0x20 && b !== 0x09,
});

const hex = (b: number): string => `byte 0x${b.toString(16)}`;
const SIZE_WORDS: ChunkSizeWords = {
  'not-hex': (b) => `chunk size must start with a hex digit, got ${hex(b)}`,
  'too-long': () => 'chunk size has too many digits',
  'too-large': () => 'chunk size too large',
  'after-size': (b) => `${hex(b)} after the chunk size`,
  extension: (b) => `control ${hex(b)} in a chunk extension`,
  'line-too-long': () => 'chunk size line too long',
  'no-lf': () => 'CR not followed by LF after the chunk size',
};

export class ChunkedScanner {
  private state: State = 'size';
  private readonly sizeLine = new ChunkSizeReader(SIZE_RULES);
  private remaining = 0;
  private trailerBytes = 0;
  private seen = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * How many leading bytes of `buf` belong to the body (all of it until the
   * end is found). Throws ProtocolError with the offset into the whole body.
   */
  scan(buf: Buffer): number {
    let i = 0;
    const fail = (msg: string): never => {
      throw new ProtocolError(`chunked response body: ${msg}`, this.seen + i);
    };
    while (i < buf.length && this.state !== 'done') {
      const b = buf[i] as number;
      switch (this.state) {
        case 'size': {
          const end = this.sizeLine.read(buf, i);
          if (end === FAILED) {
            i = this.sizeLine.errorAt;
            fail(this.sizeLine.describe(buf, SIZE_WORDS));
          }
          // NEED_MORE: the line goes on in the next push.
          i = end < 0 ? buf.length : end;
          if (end >= 0) {
            this.remaining = this.sizeLine.size;
            this.state = this.remaining === 0 ? 'trailer-start' : 'data';
          }
          continue;
        }
        case 'data': {
          const take = Math.min(this.remaining, buf.length - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = 'data-end';
          continue;
        }
        case 'data-end':
          if (b === CR) this.state = 'data-lf';
          else if (b === LF) this.state = 'size';
          else fail('chunk data not followed by CRLF');
          break;
        case 'data-lf':
          if (b !== LF) fail('chunk data not followed by CRLF');
          this.state = 'size';
          break;
        case 'trailer-start':
        case 'trailer':
          if (++this.trailerBytes > MAX_TRAILER_BYTES) fail('trailer section too long');
          if (b === CR) this.state = this.state === 'trailer-start' ? 'end-lf' : 'trailer-lf';
          else if (b === LF) this.state = this.state === 'trailer-start' ? 'done' : 'trailer-start';
          else if (b === 0) fail('NUL in a trailer line');
          else this.state = 'trailer';
          break;
        case 'trailer-lf':
          if (b !== LF) fail('CR not followed by LF in the trailer');
          this.state = 'trailer-start';
          break;
        case 'end-lf':
          if (b !== LF) fail('CR not followed by LF at the end of the body');
          this.state = 'done';
          break;
      }
      i++;
    }
    this.seen += i;
    return i;
  }
}
