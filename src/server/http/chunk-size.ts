/**
 * Reads the chunk-size line of HTTP/1.1 chunked framing (RFC 9112 §7.1):
 *
 *     [blanks] HEX-DIGITS [blanks] [;extension] CRLF
 *
 * incrementally, over bytes that may arrive split anywhere. Pure: no I/O, no
 * allocation per byte or per call. Each user (request-body decoder, proxy
 * body scanner, handler-reply tracker) gives its own limits and words its own
 * errors from the reason and offset reported here.
 */

/** What one user accepts. Build once per module with chunkSizeRules(). */
export interface ChunkSizeRules {
  /** SP/HT before the digits; they count toward maxSizeChars (Mongrel2's 8-character size field). */
  readonly leadingBlanks: boolean;
  /** Most digits (plus leading blanks, when allowed). */
  readonly maxSizeChars: number;
  /** Largest chunk size. */
  readonly maxSize: number;
  /** A bare LF ends the line too (else only CR LF). */
  readonly bareLf: boolean;
  /** Most bytes before the line end (blanks, digits, extension). */
  readonly maxLineBytes: number;
  /** 1 for each byte refused inside a `;extension` (CR and LF end the line and are never looked up). */
  readonly extensionBad: Uint8Array;
}

export interface ChunkSizeOptions extends Omit<ChunkSizeRules, 'extensionBad'> {
  /** Bytes refused inside an extension; evaluated once here, for all 256 bytes. */
  readonly extensionRefuses: (byte: number) => boolean;
}

export function chunkSizeRules(options: ChunkSizeOptions): ChunkSizeRules {
  const { extensionRefuses, ...limits } = options;
  const extensionBad = new Uint8Array(256);
  for (let b = 0; b < 256; b++) if (extensionRefuses(b)) extensionBad[b] = 1;
  // Without bare-LF line ends an LF would otherwise be read as extension text.
  if (!limits.bareLf) extensionBad[LF] = 1;
  return { ...limits, extensionBad };
}

/**
 * Why a size line was refused; the offending byte is at errorAt.
 * - not-hex: the line does not start with a hex digit (or allowed blanks)
 * - too-long: more than maxSizeChars digits/leading blanks
 * - too-large: the value passed maxSize
 * - after-size: a byte other than blank, `;` or the line end after the digits
 * - extension: a byte the rules refuse inside an extension
 * - line-too-long: more than maxLineBytes before the line end
 * - no-lf: CR not followed by LF
 */
export type ChunkSizeError = 'not-hex' | 'too-long' | 'too-large' | 'after-size' | 'extension' | 'line-too-long' | 'no-lf';

/** A user's wording of each refusal, given the offending byte. */
export type ChunkSizeWords = { readonly [E in ChunkSizeError]: (byte: number) => string };

/** read() results besides a position. */
export const NEED_MORE = -1;
export const FAILED = -2;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const SEMI = 0x3b;

// States (numbers: compared per byte).
const START = 0; // leading blanks, then the first digit
const DIGITS = 1;
const BLANKS = 2; // blanks after the digits
const EXT = 3;
const AFTER_CR = 4;
const BROKEN = 5;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

export class ChunkSizeReader {
  /** The size of the line read, once read() returned a position. */
  size = 0;
  /** Set when read() returned FAILED. */
  error: ChunkSizeError | undefined;
  /** Index, in the buffer of the failing read(), of the offending byte. */
  errorAt = -1;
  private state = START;
  private sizeChars = 0;
  private lineBytes = 0;
  private value = 0;

  constructor(private readonly rules: ChunkSizeRules) {}

  /**
   * Reads on from `buf[from]`. Returns the index just past the line end (the
   * size is in `size`, and the reader is ready for the next line), NEED_MORE
   * when all of `buf` was taken, or FAILED (see `error`, `errorAt`; every
   * later read fails too).
   */
  read(buf: Buffer, from: number): number {
    if (this.state === BROKEN) return this.fail(this.error ?? 'not-hex', from);
    const rules = this.rules;
    let state = this.state;
    let sizeChars = this.sizeChars;
    let lineBytes = this.lineBytes;
    let value = this.value;
    const n = buf.length;
    for (let i = from; i < n; i++) {
      const b = buf[i]!;
      if (state <= DIGITS) {
        const v = hexValue(b);
        if (v >= 0) {
          if (++sizeChars > rules.maxSizeChars) return this.fail('too-long', i);
          value = value * 16 + v;
          if (value > rules.maxSize) return this.fail('too-large', i);
          lineBytes++;
          state = DIGITS;
          continue;
        }
        if (state === START) {
          if (!rules.leadingBlanks || (b !== SP && b !== HT)) return this.fail('not-hex', i);
          if (++sizeChars > rules.maxSizeChars) return this.fail('too-long', i);
          lineBytes++;
          continue;
        }
        state = BLANKS; // this byte ends the digits: read it as below
      }
      if (state === AFTER_CR) {
        if (b !== LF) return this.fail('no-lf', i);
        return this.done(value, i + 1);
      }
      if (b === CR) {
        state = AFTER_CR;
        continue;
      }
      if (b === LF && rules.bareLf) return this.done(value, i + 1);
      if (state === BLANKS) {
        if (b === SEMI) state = EXT;
        else if (b !== SP && b !== HT) return this.fail('after-size', i);
      } else if (rules.extensionBad[b] === 1) return this.fail('extension', i);
      if (++lineBytes > rules.maxLineBytes) return this.fail('line-too-long', i);
    }
    this.state = state;
    this.sizeChars = sizeChars;
    this.lineBytes = lineBytes;
    this.value = value;
    return NEED_MORE;
  }

  /** The failed read's error in the user's words (`buf` is the buffer that read was given). */
  describe(buf: Buffer, words: ChunkSizeWords): string {
    return words[this.error ?? 'not-hex'](buf[this.errorAt] ?? 0);
  }

  private done(value: number, end: number): number {
    this.size = value;
    this.state = START;
    this.sizeChars = 0;
    this.lineBytes = 0;
    this.value = 0;
    return end;
  }

  private fail(error: ChunkSizeError, at: number): number {
    this.state = BROKEN;
    this.error = error;
    this.errorAt = at;
    return FAILED;
  }
}
