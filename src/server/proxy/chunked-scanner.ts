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

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
/** 13 hex digits cover every safe integer; more (leading zeros aside) is garbage. */
const MAX_SIZE_DIGITS = 16;
const MAX_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 64 * 1024;

type State = 'size' | 'size-ws' | 'ext' | 'size-lf' | 'data' | 'data-end' | 'data-lf' | 'trailer-start' | 'trailer' | 'trailer-lf' | 'end-lf' | 'done';

function hex(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

export class ChunkedScanner {
  private state: State = 'size';
  private digits = 0;
  private size = 0;
  private remaining = 0;
  private lineBytes = 0;
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
          const v = hex(b);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) fail('chunk size has too many digits');
            this.size = this.size * 16 + v;
            if (!Number.isSafeInteger(this.size)) fail('chunk size too large');
            break;
          }
          if (this.digits === 0) fail(`chunk size must start with a hex digit, got byte 0x${b.toString(16)}`);
          this.state = 'size-ws';
          continue;
        }
        case 'size-ws':
        case 'ext':
          if (b === CR) this.state = 'size-lf';
          else if (b === LF) this.endSizeLine();
          else if (this.state === 'size-ws' && (b === SP || b === HT)) this.lineBytes++;
          else if (b === 0x3b /* ; */ || this.state === 'ext') {
            if (b < 0x20 && b !== HT) fail(`control byte 0x${b.toString(16)} in a chunk extension`);
            this.state = 'ext';
            if (++this.lineBytes > MAX_LINE_BYTES) fail('chunk size line too long');
          } else fail(`byte 0x${b.toString(16)} after the chunk size`);
          break;
        case 'size-lf':
          if (b !== LF) fail('CR not followed by LF after the chunk size');
          this.endSizeLine();
          break;
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

  private endSizeLine(): void {
    this.lineBytes = 0;
    this.digits = 0;
    if (this.size === 0) this.state = 'trailer-start';
    else {
      this.remaining = this.size;
      this.size = 0;
      this.state = 'data';
    }
  }
}
