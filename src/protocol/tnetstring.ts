/**
 * tnetstrings (https://tnetstrings.info): `LEN:DATA TAG`.
 *
 * Pure functions over Buffers. Strings stay Buffers (lengths are byte counts
 * and bodies may be binary); dict keys are decoded as UTF-8. Dicts parse to
 * null-prototype objects so a key such as `__proto__` is plain data.
 */
import { EncodeError, ProtocolError } from './errors.js';

export type TDict = { [key: string]: TValue };
export type TValue = Buffer | string | number | bigint | boolean | null | TValue[] | TDict;

export interface ParseOptions {
  /** Deepest allowed nesting of lists and dicts (default 32). */
  maxDepth?: number;
}

export interface ParseResult<T = TValue> {
  value: T;
  /** The bytes after the parsed value. */
  rest: Buffer;
  /** Offset just past the parsed value, in the buffer given to the parser. */
  end: number;
}

export interface EncodeOptions {
  /**
   * Floats crash the real Mongrel2 (its float parser never advances), so the
   * encoder refuses non-integer numbers unless this is set. Never set it for
   * anything sent to a server.
   */
  allowFloats?: boolean;
  maxDepth?: number;
}

const COLON = 0x3a;
/** The tnetstring spec caps the length prefix at 9 digits. */
const MAX_LEN_DIGITS = 9;
const DEFAULT_MAX_DEPTH = 32;
const INT_RE = /^-?(0|[1-9][0-9]*)$/;
const FLOAT_RE = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/;

/** Reads `LEN:` at `offset`; returns the payload bounds and the tag offset. */
export function readFrame(buf: Buffer, offset: number): { start: number; end: number } {
  if (offset >= buf.length) throw new ProtocolError('tnetstring: unexpected end of input, expected a length', offset);
  let i = offset;
  let len = 0;
  while (i < buf.length && buf[i] !== COLON) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) {
      throw new ProtocolError(`tnetstring: expected a digit or ':' in the length, got ${describeByte(c)}`, i);
    }
    if (i - offset >= MAX_LEN_DIGITS) throw new ProtocolError('tnetstring: length prefix longer than 9 digits', offset);
    len = len * 10 + (c - 0x30);
    i++;
  }
  if (i >= buf.length) throw new ProtocolError("tnetstring: unexpected end of input, expected ':' after the length", i);
  if (i === offset) throw new ProtocolError('tnetstring: empty length prefix', offset);
  if (buf[offset] === 0x30 && i - offset > 1) throw new ProtocolError('tnetstring: length has a leading zero', offset);
  const start = i + 1;
  const end = start + len;
  // The tag byte must exist too, hence `>=`.
  if (end >= buf.length) {
    throw new ProtocolError(`tnetstring: length ${len} runs past the end of input (${buf.length - start} bytes left)`, offset);
  }
  return { start, end };
}

function describeByte(c: number): string {
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
}

/** Parses one tnetstring at `offset` of `buf`. Errors carry absolute offsets. */
export function parseAt(buf: Buffer, offset = 0, options: ParseOptions = {}): ParseResult {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const { value, end } = parseValue(buf, offset, maxDepth, 0);
  return { value, end, rest: buf.subarray(end) };
}

/** Parses the first tnetstring in `buf` and returns it with the remaining bytes. */
export function parse(buf: Buffer, options: ParseOptions = {}): ParseResult {
  return parseAt(buf, 0, options);
}

/** Parses `buf` as exactly one tnetstring; trailing bytes are an error. */
export function parseExact(buf: Buffer, options: ParseOptions = {}): TValue {
  const { value, end } = parseAt(buf, 0, options);
  if (end !== buf.length) throw new ProtocolError(`tnetstring: ${buf.length - end} trailing bytes`, end);
  return value;
}

function parseValue(buf: Buffer, offset: number, maxDepth: number, depth: number): { value: TValue; end: number } {
  const { start, end } = readFrame(buf, offset);
  const tag = buf[end]!;
  const next = end + 1;
  switch (tag) {
    case 0x2c /* , */:
      return { value: buf.subarray(start, end), end: next };
    case 0x23 /* # */: {
      const text = buf.toString('latin1', start, end);
      if (!INT_RE.test(text)) throw new ProtocolError(`tnetstring: invalid integer ${JSON.stringify(text)}`, start);
      const n = Number(text);
      return { value: Number.isSafeInteger(n) ? n : BigInt(text), end: next };
    }
    case 0x5e /* ^ */: {
      const text = buf.toString('latin1', start, end);
      if (!FLOAT_RE.test(text)) throw new ProtocolError(`tnetstring: invalid float ${JSON.stringify(text)}`, start);
      return { value: Number(text), end: next };
    }
    case 0x21 /* ! */: {
      const text = buf.toString('latin1', start, end);
      if (text === 'true') return { value: true, end: next };
      if (text === 'false') return { value: false, end: next };
      throw new ProtocolError(`tnetstring: invalid boolean ${JSON.stringify(text)}`, start);
    }
    case 0x7e /* ~ */:
      if (end !== start) throw new ProtocolError('tnetstring: null must have length 0', offset);
      return { value: null, end: next };
    case 0x5d /* ] */: {
      if (depth >= maxDepth) throw new ProtocolError(`tnetstring: nesting deeper than ${maxDepth}`, offset);
      const list: TValue[] = [];
      let i = start;
      while (i < end) {
        const item = parseValue(buf.subarray(0, end), i, maxDepth, depth + 1);
        list.push(item.value);
        i = item.end;
      }
      return { value: list, end: next };
    }
    case 0x7d /* } */: {
      if (depth >= maxDepth) throw new ProtocolError(`tnetstring: nesting deeper than ${maxDepth}`, offset);
      const dict: TDict = Object.create(null) as TDict;
      let i = start;
      const inner = buf.subarray(0, end);
      while (i < end) {
        const keyAt = i;
        const key = parseValue(inner, i, maxDepth, depth + 1);
        if (!Buffer.isBuffer(key.value)) throw new ProtocolError('tnetstring: dict key is not a string', keyAt);
        if (key.end >= end) throw new ProtocolError('tnetstring: dict key without a value', keyAt);
        const val = parseValue(inner, key.end, maxDepth, depth + 1);
        dict[key.value.toString('utf8')] = val.value;
        i = val.end;
      }
      return { value: dict, end: next };
    }
    default:
      throw new ProtocolError(`tnetstring: unknown type tag ${describeByte(tag)}`, end);
  }
}

/** Encodes a value. Strings are UTF-8; integers use `#`; see EncodeOptions for floats. */
export function encode(value: TValue, options: EncodeOptions = {}): Buffer {
  const parts: Buffer[] = [];
  encodeInto(value, parts, options, options.maxDepth ?? DEFAULT_MAX_DEPTH, 0);
  return Buffer.concat(parts);
}

function frame(payload: Buffer, tag: string): Buffer[] {
  return [Buffer.from(`${payload.length}:`, 'latin1'), payload, Buffer.from(tag, 'latin1')];
}

function encodeInto(value: TValue, out: Buffer[], options: EncodeOptions, maxDepth: number, depth: number): void {
  if (Buffer.isBuffer(value)) {
    out.push(...frame(value, ','));
  } else if (typeof value === 'string') {
    out.push(...frame(Buffer.from(value, 'utf8'), ','));
  } else if (typeof value === 'bigint') {
    out.push(...frame(Buffer.from(value.toString(), 'latin1'), '#'));
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      if (!Number.isSafeInteger(value)) throw new EncodeError(`tnetstring: integer ${value} is not exact; pass a bigint`);
      out.push(...frame(Buffer.from(String(value), 'latin1'), '#'));
    } else {
      if (!options.allowFloats) {
        throw new EncodeError(`tnetstring: refusing to encode the float ${value} (floats crash Mongrel2)`);
      }
      if (!Number.isFinite(value)) throw new EncodeError(`tnetstring: cannot encode ${value}`);
      out.push(...frame(Buffer.from(String(value), 'latin1'), '^'));
    }
  } else if (typeof value === 'boolean') {
    out.push(...frame(Buffer.from(value ? 'true' : 'false', 'latin1'), '!'));
  } else if (value === null) {
    out.push(Buffer.from('0:~', 'latin1'));
  } else if (Array.isArray(value)) {
    if (depth >= maxDepth) throw new EncodeError(`tnetstring: nesting deeper than ${maxDepth}`);
    const inner: Buffer[] = [];
    for (const item of value) encodeInto(item, inner, options, maxDepth, depth + 1);
    out.push(...frame(Buffer.concat(inner), ']'));
  } else if (typeof value === 'object') {
    if (depth >= maxDepth) throw new EncodeError(`tnetstring: nesting deeper than ${maxDepth}`);
    const inner: Buffer[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      inner.push(...frame(Buffer.from(k, 'utf8'), ','));
      encodeInto(v, inner, options, maxDepth, depth + 1);
    }
    out.push(...frame(Buffer.concat(inner), '}'));
  } else {
    throw new EncodeError(`tnetstring: cannot encode a value of type ${typeof value}`);
  }
}
