/**
 * FastCGI 1.0 records (Open Market spec, 1996), pure codecs over Buffers.
 *
 *   version(1) type(1) requestId(2) contentLength(2) paddingLength(1) reserved(1)
 *   content[contentLength] padding[paddingLength]
 *
 * Two rules come from PHP-FPM rather than the spec (php-src main/fastcgi.c
 * fcgi_read_request):
 *  - a PARAMS record with contentLength + paddingLength > 65535 is refused, so
 *    padded records carry at most 65528 content bytes (65528 = 8191 * 8);
 *  - FPM parses every PARAMS record on its own, so a name/value pair must never
 *    straddle two records.
 */
import { FastCgiError } from './errors.js';

export { FastCgiError, isFastCgiError, type FastCgiErrorCode } from './errors.js';

export const FCGI_VERSION_1 = 1;
export const FCGI_HEADER_LEN = 8;
/** Largest contentLength a header can express. */
export const FCGI_MAX_LENGTH = 0xffff;
/** Largest content that still leaves room for padding to a multiple of 8 within FCGI_MAX_LENGTH. */
export const FCGI_MAX_PADDED_CONTENT = 65528;
/** Request id of management records (GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE). */
export const FCGI_NULL_REQUEST_ID = 0;
/** BEGIN_REQUEST flag: keep the connection open after END_REQUEST. */
export const FCGI_KEEP_CONN = 1;

export const RecordType = {
  BeginRequest: 1,
  AbortRequest: 2,
  EndRequest: 3,
  Params: 4,
  Stdin: 5,
  Stdout: 6,
  Stderr: 7,
  Data: 8,
  GetValues: 9,
  GetValuesResult: 10,
  UnknownType: 11,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export const Role = {
  Responder: 1,
  Authorizer: 2,
  Filter: 3,
} as const;
export type RoleValue = (typeof Role)[keyof typeof Role];

export const ProtocolStatus = {
  RequestComplete: 0,
  CantMpxConn: 1,
  Overloaded: 2,
  UnknownRole: 3,
} as const;
export type ProtocolStatusValue = (typeof ProtocolStatus)[keyof typeof ProtocolStatus];

/** The variable names FCGI_GET_VALUES may ask for. */
export const ManagementVar = {
  MaxConns: 'FCGI_MAX_CONNS',
  MaxReqs: 'FCGI_MAX_REQS',
  MpxsConns: 'FCGI_MPXS_CONNS',
} as const;

export type NameValue = readonly [name: string | Buffer, value: string | Buffer];

export interface FastCgiRecord {
  type: number;
  requestId: number;
  /** A slice of the input when the record arrived in one chunk, else a copy. */
  content: Buffer;
  paddingLength: number;
  /** Stream offset of the record's first header byte. */
  offset: number;
}

const EMPTY = Buffer.alloc(0);

function checkU16(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`fastcgi: ${what} must be an integer 0-65535, got ${n}`);
}

/** Padding that rounds `length` up to a multiple of 8, or 0 when that would pass 65535. */
export function paddingFor(length: number): number {
  const pad = (8 - (length % 8)) % 8;
  return length + pad > FCGI_MAX_LENGTH ? 0 : pad;
}

/** The 8-byte header alone (for callers that write content without copying it). */
export function encodeHeader(type: number, requestId: number, contentLength: number, paddingLength: number): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new RangeError(`fastcgi: record type must be 0-255, got ${type}`);
  checkU16('requestId', requestId);
  checkU16('contentLength', contentLength);
  if (!Number.isInteger(paddingLength) || paddingLength < 0 || paddingLength > 0xff) throw new RangeError(`fastcgi: paddingLength must be 0-255, got ${paddingLength}`);
  const h = Buffer.allocUnsafe(FCGI_HEADER_LEN);
  writeHeader(h, 0, type, requestId, contentLength, paddingLength);
  return h;
}

/** One record, padded to a multiple of 8 where that keeps content + padding ≤ 65535. */
export function encodeRecord(type: number, requestId: number, content: Buffer = EMPTY): Buffer {
  if (content.length > FCGI_MAX_LENGTH) throw new RangeError(`fastcgi: record content is ${content.length} bytes, the maximum is ${FCGI_MAX_LENGTH}`);
  const pad = paddingFor(content.length);
  const out = Buffer.alloc(FCGI_HEADER_LEN + content.length + pad); // zeroed: padding never leaks heap bytes
  encodeHeader(type, requestId, content.length, pad).copy(out, 0);
  content.copy(out, FCGI_HEADER_LEN);
  return out;
}

export function encodeBeginRequest(requestId: number, role: number = Role.Responder, keepConn = false): Buffer {
  checkU16('role', role);
  const body = Buffer.alloc(8);
  body.writeUInt16BE(role, 0);
  body[2] = keepConn ? FCGI_KEEP_CONN : 0;
  return encodeRecord(RecordType.BeginRequest, requestId, body);
}

export function parseBeginRequest(content: Buffer): { role: number; keepConn: boolean } {
  if (content.length !== 8) throw new FastCgiError('PROTOCOL', `fastcgi: BEGIN_REQUEST body must be 8 bytes, got ${content.length}`, { offset: Math.min(content.length, 8) });
  return { role: content.readUInt16BE(0), keepConn: (content[2]! & FCGI_KEEP_CONN) !== 0 };
}

export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number = ProtocolStatus.RequestComplete): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(appStatus >>> 0, 0);
  body[4] = protocolStatus & 0xff;
  return encodeRecord(RecordType.EndRequest, requestId, body);
}

/** END_REQUEST body → statuses. appStatus is unsigned (PHP's exit code, 0-255 in practice). */
export function parseEndRequest(content: Buffer): { appStatus: number; protocolStatus: number } {
  if (content.length < 8) throw new FastCgiError('PROTOCOL', `fastcgi: END_REQUEST body must be 8 bytes, got ${content.length}`, { offset: content.length });
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4]! };
}

function toBytes(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function lengthSize(n: number): number {
  return n < 0x80 ? 1 : 4;
}

/** Wire size of one pair: two length prefixes (1 byte below 128, else 4) + name + value. */
export function nameValueSize(nameLength: number, valueLength: number): number {
  return lengthSize(nameLength) + lengthSize(valueLength) + nameLength + valueLength;
}

function writeLength(buf: Buffer, at: number, n: number): number {
  if (n < 0x80) {
    buf[at] = n;
    return at + 1;
  }
  if (n > 0x7fffffff) throw new RangeError(`fastcgi: name/value length ${n} exceeds 2^31-1`);
  buf.writeUInt32BE((n | 0x80000000) >>> 0, at);
  return at + 4;
}

/** Name-value pairs (spec §3.4). Strings are sent as UTF-8. */
export function encodeNameValuePairs(pairs: Iterable<NameValue>): Buffer {
  const encoded: Array<[Buffer, Buffer]> = [];
  let total = 0;
  for (const [n, v] of pairs) {
    const name = toBytes(n);
    const value = toBytes(v);
    encoded.push([name, value]);
    total += nameValueSize(name.length, value.length);
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const [name, value] of encoded) {
    at = writeLength(out, at, name.length);
    at = writeLength(out, at, value.length);
    at += name.copy(out, at);
    at += value.copy(out, at);
  }
  return out;
}

/**
 * Name-value pairs back to strings. `baseOffset` is added to error offsets so a
 * caller decoding a record's content can report stream positions.
 */
export function decodeNameValuePairs(content: Buffer, encoding: BufferEncoding = 'utf8', baseOffset = 0): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = 0;
  const readLength = (what: string): number => {
    const first = content[at];
    if (first === undefined) throw new FastCgiError('PROTOCOL', `fastcgi: name/value pairs end inside a ${what} length`, { offset: baseOffset + at });
    if (first < 0x80) {
      at += 1;
      return first;
    }
    if (at + 4 > content.length) throw new FastCgiError('PROTOCOL', `fastcgi: 4-byte ${what} length cut off after ${content.length - at} bytes`, { offset: baseOffset + at });
    const n = content.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return n;
  };
  while (at < content.length) {
    const start = at;
    const nameLength = readLength('name');
    const valueLength = readLength('value');
    if (at + nameLength + valueLength > content.length) {
      throw new FastCgiError('PROTOCOL', `fastcgi: name/value pair declares ${nameLength}+${valueLength} bytes but only ${content.length - at} remain`, { offset: baseOffset + start });
    }
    const name = content.toString(encoding, at, at + nameLength);
    at += nameLength;
    const value = content.toString(encoding, at, at + valueLength);
    at += valueLength;
    out.push([name, value]);
  }
  return out;
}

/**
 * PARAMS records for `pairs`, then the empty PARAMS record that ends the
 * stream. Pairs are packed greedily into records of at most 65528 content
 * bytes, each padded to 8; a pair is never split (FPM would reject it). A pair
 * that alone needs more than 65528 bytes throws PARAMS_TOO_LARGE: the gateway
 * answers 431 instead of letting FPM drop the connection.
 */
export function encodeParams(requestId: number, pairs: Iterable<NameValue>): Buffer {
  checkU16('requestId', requestId);
  return encodeStreams(requestId, pairs, null, undefined, true) ?? encodeStreams(requestId, pairs, null, undefined, false)!;
}

export interface RequestEncoding {
  /** BEGIN_REQUEST role (default Responder). */
  role?: number;
  /** FCGI_KEEP_CONN. */
  keepConn?: boolean;
  /**
   * The whole request body: its STDIN records and the empty STDIN record
   * follow the params. Leave it out when the body is streamed afterwards.
   */
  stdin?: Buffer;
}

/**
 * Everything a request opens with, in one allocation: BEGIN_REQUEST, the
 * PARAMS stream (as encodeParams) and, when `stdin` is given, the whole STDIN
 * stream (as encodeStdin + encodeStdinEnd). A socket gets it in one write.
 */
export function encodeRequest(requestId: number, pairs: Iterable<NameValue>, opts: RequestEncoding = {}): Buffer {
  checkU16('requestId', requestId);
  const begin = { role: opts.role ?? Role.Responder, keepConn: opts.keepConn ?? false };
  checkU16('role', begin.role);
  return encodeStreams(requestId, pairs, begin, opts.stdin, true) ?? encodeStreams(requestId, pairs, begin, opts.stdin, false)!;
}

/**
 * [BEGIN_REQUEST] PARAMS... [STDIN... empty STDIN] in one buffer. With
 * `ascii`, string pairs are tried as ASCII, and null comes back when they are
 * not (the caller then encodes them as UTF-8).
 */
function encodeStreams(requestId: number, pairs: Iterable<NameValue>, begin: { role: number; keepConn: boolean } | null, stdin: Buffer | undefined, ascii: boolean): Buffer | null {
  const layout = layoutParams(pairs, ascii);
  let at = begin === null ? 0 : 2 * FCGI_HEADER_LEN;
  let bytes = at + layout.bytes;
  if (stdin !== undefined) bytes += stdinBytes(stdin.length) + FCGI_HEADER_LEN;
  const out = Buffer.allocUnsafe(bytes);
  if (begin !== null) {
    writeHeader(out, 0, RecordType.BeginRequest, requestId, 8, 0);
    out.writeUInt16BE(begin.role, FCGI_HEADER_LEN);
    out[FCGI_HEADER_LEN + 2] = begin.keepConn ? FCGI_KEEP_CONN : 0;
    out.fill(0, FCGI_HEADER_LEN + 3, 2 * FCGI_HEADER_LEN);
  }
  at = writeParams(out, at, requestId, layout);
  if (at < 0) return null;
  if (stdin !== undefined) {
    for (let from = 0; from < stdin.length; from += FCGI_MAX_PADDED_CONTENT) {
      const content = Math.min(FCGI_MAX_PADDED_CONTENT, stdin.length - from);
      const pad = paddingFor(content);
      writeHeader(out, at, RecordType.Stdin, requestId, content, pad);
      at += FCGI_HEADER_LEN;
      at += stdin.copy(out, at, from, from + content);
      out.fill(0, at, at + pad);
      at += pad;
    }
    writeHeader(out, at, RecordType.Stdin, requestId, 0, 0);
  }
  return out;
}

/** Wire size of the STDIN records (the empty one excluded) for a body of `length` bytes. */
function stdinBytes(length: number): number {
  const full = Math.floor(length / FCGI_MAX_PADDED_CONTENT);
  const last = length - full * FCGI_MAX_PADDED_CONTENT;
  return full * (FCGI_HEADER_LEN + FCGI_MAX_PADDED_CONTENT) + (last > 0 ? FCGI_HEADER_LEN + last + paddingFor(last) : 0);
}

/**
 * How a params stream will be written. The usual one - string pairs, all
 * ASCII, one record - is copied character by character in JS: cheaper than
 * two native string writes per pair, and it allocates nothing.
 */
type ParamsLayout =
  | { bytes: number; pairs: readonly NameValue[]; content: number }
  | { bytes: number; pairs: null; items: Array<string | Buffer>; sizes: number[]; records: number[] };

function layoutParams(pairs: Iterable<NameValue>, ascii: boolean): ParamsLayout {
  const content = ascii && Array.isArray(pairs) ? asciiContentLength(pairs as readonly NameValue[]) : -1;
  if (content >= 0) {
    return { bytes: (content > 0 ? FCGI_HEADER_LEN + content + paddingFor(content) : 0) + FCGI_HEADER_LEN, pairs: pairs as readonly NameValue[], content };
  }
  // One pass to size everything; strings are written in place later.
  const items: Array<string | Buffer> = [];
  const sizes: number[] = [];
  /** Content bytes of each record, in order (the empty terminator excluded). */
  const records: number[] = [];
  let batch = 0;
  for (const [n, v] of pairs) {
    const nameLength = typeof n === 'string' ? Buffer.byteLength(n, 'utf8') : n.length;
    const valueLength = typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
    const size = nameValueSize(nameLength, valueLength);
    if (size > FCGI_MAX_PADDED_CONTENT) {
      const shown = toBytes(n).toString('utf8', 0, 64);
      throw new FastCgiError(
        'PARAMS_TOO_LARGE',
        `fastcgi: param ${JSON.stringify(shown)} needs ${size} bytes (name ${nameLength}, value ${valueLength}); one PARAMS record holds at most ${FCGI_MAX_PADDED_CONTENT}`,
      );
    }
    if (batch + size > FCGI_MAX_PADDED_CONTENT) {
      records.push(batch);
      batch = 0;
    }
    items.push(n, v);
    sizes.push(nameLength, valueLength);
    batch += size;
  }
  if (batch > 0) records.push(batch);
  let bytes = FCGI_HEADER_LEN; // the empty PARAMS record
  for (const content of records) bytes += FCGI_HEADER_LEN + content + paddingFor(content);
  return { bytes, pairs: null, items, sizes, records };
}

/**
 * Content bytes of the single PARAMS record for string pairs if they are
 * ASCII (one byte per character), or -1: not all strings, or more than one
 * record. Whether they really are ASCII shows while copying (writeAscii).
 */
function asciiContentLength(pairs: readonly NameValue[]): number {
  let total = 0;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const n = pair[0];
    const v = pair[1];
    if (typeof n !== 'string' || typeof v !== 'string') return -1;
    total += nameValueSize(n.length, v.length);
  }
  return total > FCGI_MAX_PADDED_CONTENT ? -1 : total;
}

/** Copies ASCII pairs as name-value bytes from `at`; the end offset, or -1 at the first non-ASCII character. */
function writeAscii(out: Buffer, at: number, pairs: readonly NameValue[]): number {
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const n = pair[0] as string;
    const v = pair[1] as string;
    at = writeLength(out, at, n.length);
    at = writeLength(out, at, v.length);
    at = copyAscii(out, at, n);
    if (at < 0) return -1;
    at = copyAscii(out, at, v);
    if (at < 0) return -1;
  }
  return at;
}

/** Past this many characters two native calls (a UTF-8 byte count, a latin1 write) beat the JS loop. */
const NATIVE_COPY_FROM = 64;

function copyAscii(out: Buffer, at: number, s: string): number {
  if (s.length >= NATIVE_COPY_FROM) {
    // One byte per character in UTF-8 means every character is ASCII.
    if (Buffer.byteLength(s, 'utf8') !== s.length) return -1;
    return at + out.write(s, at, 'latin1');
  }
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c > 0x7f) return -1;
    out[at++] = c;
  }
  return at;
}

/** Writes the params stream laid out by layoutParams at `at`; returns the end offset. */
function writeParams(out: Buffer, at: number, requestId: number, layout: ParamsLayout): number {
  if (layout.pairs !== null) {
    const content = layout.content;
    if (content > 0) {
      const pad = paddingFor(content);
      writeHeader(out, at, RecordType.Params, requestId, content, pad);
      at += FCGI_HEADER_LEN;
      const end = writeAscii(out, at, layout.pairs);
      if (end < 0) return -1;
      out.fill(0, end, end + pad);
      at = end + pad;
    }
    writeHeader(out, at, RecordType.Params, requestId, 0, 0);
    return at + FCGI_HEADER_LEN;
  }
  const { items, sizes, records } = layout;
  let item = 0;
  for (const content of records) {
    const pad = paddingFor(content);
    writeHeader(out, at, RecordType.Params, requestId, content, pad);
    at += FCGI_HEADER_LEN;
    const end = at + content;
    while (at < end) {
      at = writeLength(out, at, sizes[item]!);
      at = writeLength(out, at, sizes[item + 1]!);
      at = writeItem(out, at, items[item]!);
      at = writeItem(out, at, items[item + 1]!);
      item += 2;
    }
    out.fill(0, at, at + pad); // padding never leaks heap bytes
    at += pad;
  }
  writeHeader(out, at, RecordType.Params, requestId, 0, 0);
  return at + FCGI_HEADER_LEN;
}

function writeItem(out: Buffer, at: number, v: string | Buffer): number {
  return at + (typeof v === 'string' ? out.write(v, at, 'utf8') : v.copy(out, at));
}

function writeHeader(out: Buffer, at: number, type: number, requestId: number, contentLength: number, paddingLength: number): void {
  out[at] = FCGI_VERSION_1;
  out[at + 1] = type;
  out.writeUInt16BE(requestId, at + 2);
  out.writeUInt16BE(contentLength, at + 4);
  out[at + 6] = paddingLength;
  out[at + 7] = 0;
}

/**
 * STDIN records carrying `data`, at most 65528 content bytes each (so no
 * padding is ever needed: 65528 is a multiple of 8). Empty data gives no
 * records: the empty STDIN record means end-of-input and is written separately
 * (encodeStdinEnd).
 */
export function encodeStdin(requestId: number, data: Buffer): Buffer[] {
  return encodeStream(RecordType.Stdin, requestId, data);
}

/** The empty STDIN record: end of the request body. */
export function encodeStdinEnd(requestId: number): Buffer {
  return encodeRecord(RecordType.Stdin, requestId, EMPTY);
}

/** Data records of any stream type (STDIN, STDOUT, STDERR, DATA), chunked like encodeStdin. */
export function encodeStream(type: number, requestId: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += FCGI_MAX_PADDED_CONTENT) {
    out.push(encodeRecord(type, requestId, data.subarray(at, at + FCGI_MAX_PADDED_CONTENT)));
  }
  return out;
}

/** A GET_VALUES management record asking for `names` (values left empty, spec §4.1). */
export function encodeGetValues(names: Iterable<string>): Buffer {
  const body = encodeNameValuePairs([...names].map((n) => [n, ''] as const));
  if (body.length > FCGI_MAX_LENGTH) throw new RangeError(`fastcgi: GET_VALUES body is ${body.length} bytes, the maximum is ${FCGI_MAX_LENGTH}`);
  return encodeRecord(RecordType.GetValues, FCGI_NULL_REQUEST_ID, body);
}

interface PendingHeader {
  type: number;
  requestId: number;
  contentLength: number;
  paddingLength: number;
  offset: number;
}

/**
 * Incremental record decoder. Feed it socket chunks as they come; it returns
 * the records completed by each chunk, whatever the split (a header cut in two,
 * a record spread over many chunks, many records in one chunk). Any padding
 * length 0-255 is accepted: the spec only recommends 8-byte alignment.
 */
export class RecordDecoder {
  #parts: Buffer[] = [];
  #buffered = 0;
  /** Stream offset of the first byte still in #parts. */
  #offset = 0;
  #header: PendingHeader | null = null;
  #failure: FastCgiError | null = null;

  /** Bytes received but not yet returned as a record (0 between records). */
  get buffered(): number {
    return this.#buffered;
  }

  /** Total bytes consumed into records so far. */
  get offset(): number {
    return this.#offset;
  }

  push(chunk: Buffer): FastCgiRecord[] {
    if (this.#failure) throw this.#failure;
    const out: FastCgiRecord[] = [];
    if (this.#buffered === 0 && this.#header === null) {
      // Nothing pending (the usual case): whole records are sliced straight from the chunk.
      const at = this.#direct(chunk, out);
      if (at === chunk.length) return out;
      chunk = chunk.subarray(at);
    }
    if (chunk.length > 0) {
      this.#parts.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#header === null) {
        if (this.#buffered < FCGI_HEADER_LEN) break;
        const offset = this.#offset;
        const h = this.#take(FCGI_HEADER_LEN);
        if (h[0] !== FCGI_VERSION_1) {
          this.#failure = new FastCgiError('PROTOCOL', `fastcgi: record version is ${h[0]}, expected ${FCGI_VERSION_1} (not a FastCGI peer, or the stream lost sync)`, { offset });
          throw this.#failure;
        }
        this.#header = { type: h[1]!, requestId: h.readUInt16BE(2), contentLength: h.readUInt16BE(4), paddingLength: h[6]!, offset };
      }
      const { contentLength, paddingLength } = this.#header;
      if (this.#buffered < contentLength + paddingLength) break;
      const content = this.#take(contentLength);
      this.#skip(paddingLength);
      const h = this.#header;
      out.push({ type: h.type, requestId: h.requestId, content, paddingLength, offset: h.offset });
      this.#header = null;
    }
    return out;
  }

  /** Appends the complete records at the start of `chunk` to `out`; returns where the first incomplete one starts. */
  #direct(chunk: Buffer, out: FastCgiRecord[]): number {
    let at = 0;
    while (chunk.length - at >= FCGI_HEADER_LEN) {
      if (chunk[at] !== FCGI_VERSION_1) break; // the general path reports it, with its offset
      const contentLength = (chunk[at + 4]! << 8) | chunk[at + 5]!;
      const paddingLength = chunk[at + 6]!;
      const end = at + FCGI_HEADER_LEN + contentLength + paddingLength;
      if (end > chunk.length) break;
      const content = contentLength === 0 ? EMPTY : chunk.subarray(at + FCGI_HEADER_LEN, at + FCGI_HEADER_LEN + contentLength);
      out.push({ type: chunk[at + 1]!, requestId: (chunk[at + 2]! << 8) | chunk[at + 3]!, content, paddingLength, offset: this.#offset });
      this.#offset += end - at;
      at = end;
    }
    return at;
  }

  /** The next n bytes: a slice when they sit in one chunk, else a copy. */
  #take(n: number): Buffer {
    this.#buffered -= n;
    this.#offset += n;
    if (n === 0) return EMPTY;
    const first = this.#parts[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const part = this.#parts[0]!;
      const used = Math.min(part.length, n - filled);
      part.copy(out, filled, 0, used);
      filled += used;
      if (used === part.length) this.#parts.shift();
      else this.#parts[0] = part.subarray(used);
    }
    return out;
  }

  #skip(n: number): void {
    this.#buffered -= n;
    this.#offset += n;
    while (n > 0) {
      const part = this.#parts[0]!;
      if (part.length <= n) {
        n -= part.length;
        this.#parts.shift();
      } else {
        this.#parts[0] = part.subarray(n);
        n = 0;
      }
    }
  }
}

/** Readable record names for log lines. */
export function recordTypeName(type: number): string {
  for (const [name, value] of Object.entries(RecordType)) if (value === type) return name;
  return `type ${type}`;
}
