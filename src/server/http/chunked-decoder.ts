/**
 * Incremental decoder for chunked request bodies (Mongrel2 src/chunked.c
 * semantics, made strict): CRLF line ends only, chunks of at most 100 KiB
 * (connection.c MAX_CHUNK_SIZE), chunk extensions ignored, trailers skipped.
 *
 * Stricter than the real chunked_can_read on purpose: its strtol() turns a
 * junk size such as `zz` into 0, i.e. "last chunk", which lets the rest of the
 * body be read as another request. Here the size must be hex digits.
 */
import { ProtocolError } from '../../protocol/errors.js';
import { ChunkSizeReader, chunkSizeRules, FAILED, type ChunkSizeWords } from './chunk-size.js';

export const MAX_CHUNK_SIZE = 100 * 1024;
/** Real: the size line (leading blanks + digits) must end within 8 characters (`00000000\r\n`). */
const MAX_SIZE_CHARS = 8;
/** A size line with extensions, and the whole trailer section, are bounded so a client cannot grow them forever. */
const MAX_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 20 * 1024;

const CR = 0x0d;
const LF = 0x0a;

export interface ChunkedResult {
  /** Decoded body pieces: views into the pushed buffer, in order. */
  readonly data: Buffer[];
  /** True once the last chunk and the trailer section are complete. */
  readonly done: boolean;
  /** Bytes after the end of the body (a pipelined request), empty until done. */
  readonly rest: Buffer;
}

type State =
  | 'size' // the size line (SIZE_RULES)
  | 'data'
  | 'data-cr'
  | 'data-lf'
  | 'trailer-start' // start of a trailer line, or the final CRLF
  | 'trailer'
  | 'trailer-lf'
  | 'end-lf'
  | 'done';

const SIZE_RULES = chunkSizeRules({
  leadingBlanks: true,
  maxSizeChars: MAX_SIZE_CHARS,
  maxSize: MAX_CHUNK_SIZE,
  bareLf: false,
  maxLineBytes: MAX_LINE_BYTES,
  extensionRefuses: (b) => b === 0 || b === 0x7f,
});

function show(b: number): string {
  return b >= 0x21 && b <= 0x7e ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

const SIZE_WORDS: ChunkSizeWords = {
  'not-hex': (b) => `chunk size must be hex digits, got ${show(b)}`,
  'too-long': () => `chunk size longer than ${MAX_SIZE_CHARS} characters`,
  'too-large': () => `chunk larger than ${MAX_CHUNK_SIZE} bytes`,
  'after-size': (b) => `${show(b)} after the chunk size`,
  extension: (b) => `${show(b)} in a chunk extension`,
  'line-too-long': () => `chunk size line longer than ${MAX_LINE_BYTES} bytes`,
  'no-lf': (b) => `CR not followed by LF after the chunk size (got ${show(b)})`,
};

export class ChunkedDecoder {
  private state: State = 'size';
  private readonly sizeLine = new ChunkSizeReader(SIZE_RULES);
  private remaining = 0;
  private trailerBytes = 0;
  /** Bytes consumed before the current push, so error offsets are relative to the whole chunked body. */
  private consumed = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** Feed the next bytes of the body. Throws ProtocolError (offset into the body stream) on bad framing. */
  push(buf: Buffer): ChunkedResult {
    const data: Buffer[] = [];
    let i = 0;
    const fail = (msg: string, at: number): never => {
      throw new ProtocolError(`chunked body: ${msg}`, this.consumed + at);
    };
    while (i < buf.length && this.state !== 'done') {
      const b = buf[i] as number;
      switch (this.state) {
        case 'size': {
          const end = this.sizeLine.read(buf, i);
          if (end === FAILED) fail(this.sizeLine.describe(buf, SIZE_WORDS), this.sizeLine.errorAt);
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
          data.push(buf.subarray(i, i + take));
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = 'data-cr';
          continue;
        }
        case 'data-cr':
          if (b !== CR) fail(`chunk data not followed by CRLF (got ${show(b)})`, i);
          this.state = 'data-lf';
          break;
        case 'data-lf':
          if (b !== LF) fail(`chunk data not followed by CRLF (got ${show(b)})`, i);
          this.state = 'size';
          break;
        case 'trailer-start':
        case 'trailer':
          if (++this.trailerBytes > MAX_TRAILER_BYTES) fail(`trailer section longer than ${MAX_TRAILER_BYTES} bytes`, i);
          if (b === CR) this.state = this.state === 'trailer-start' ? 'end-lf' : 'trailer-lf';
          else if (b === LF || b === 0) fail(`${show(b)} in a trailer line`, i);
          else this.state = 'trailer';
          break;
        case 'trailer-lf':
          this.trailerBytes++;
          if (b !== LF) fail(`CR not followed by LF in the trailer (got ${show(b)})`, i);
          this.state = 'trailer-start';
          break;
        case 'end-lf':
          if (b !== LF) fail(`CR not followed by LF at the end of the body (got ${show(b)})`, i);
          this.state = 'done';
          break;
      }
      i++;
    }
    this.consumed += i;
    return { data, done: this.state === 'done', rest: this.state === 'done' ? buf.subarray(i) : Buffer.alloc(0) };
  }
}
