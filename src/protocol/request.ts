/**
 * Requests and notices from the server to a handler:
 *
 *     SENDER SP CONN_ID SP PATH SP HEADERS BODY
 *
 * HEADERS is a netstring of JSON (`,` tag) or a tnetstring dict (`}` tag);
 * BODY is a netstring. Everything is parsed on bytes: lengths are byte counts.
 */
import { ProtocolError, EncodeError } from './errors.js';
import { encodeNetstring, parseNetstringAt } from './netstring.js';
import { parseTolerantJson } from './json-text.js';
import { listTokens } from './http-tokens.js';
import { jsonRequestFrame } from './request-frame.js';
import { encode as encodeTnet, parseAt as parseTnetAt, readFrame, type TDict, type TValue } from './tnetstring.js';

export type HeaderValue = string | string[];
/** Header map: client header names are lower-case, server-set keys upper-case. */
export type Headers = { readonly [name: string]: HeaderValue };
export type HeaderProtocol = 'json' | 'tnetstring';

/** Largest connection id: Mongrel2 ids are uint32 counters. */
export const MAX_CONN_ID = 0xffffffff;

interface MessageBase {
  /** The handler's send_ident as the server sent it. Replies may use any valid id. */
  readonly sender: string;
  readonly connId: number;
  readonly path: string;
  readonly headers: Headers;
  readonly body: Buffer;
  /** How the headers were encoded. */
  readonly protocol: HeaderProtocol;
}

/**
 * An HTTP request. `upload` reflects the `x-mongrel2-upload-*` headers, which a
 * client can forge: trust them only through the handler's upload helpers.
 */
export interface HttpRequest extends MessageBase {
  readonly kind: 'http';
  readonly method: string;
  /** `DOWNLOAD_CREDITS` of the first request when download flow control is on. */
  readonly downloadCredits?: number;
  readonly upload?: UploadState;
}

export type UploadState =
  | { readonly mode: 'file'; readonly phase: 'start'; readonly start: string }
  | { readonly mode: 'file'; readonly phase: 'done'; readonly start: string; readonly done: string }
  /** First message of a streaming upload (`upload.stream=1`), full headers. */
  | { readonly mode: 'stream'; readonly offset: number; readonly done: boolean };

/** A later chunk of a streaming upload: its headers hold only the UPLOAD_STREAM keys. */
export interface UploadChunk extends MessageBase {
  readonly kind: 'upload-chunk';
  readonly offset: number;
  readonly done: boolean;
}

export interface WebSocketHandshake extends MessageBase {
  readonly kind: 'websocket-handshake';
  /** The Sec-WebSocket-Accept value the server computed (the message body). */
  readonly accept: string;
}

export interface WebSocketMessage extends MessageBase {
  readonly kind: 'websocket';
  /** First frame byte with FIN forced on, as sent in `FLAGS` (e.g. 0x81). */
  readonly flags: number;
  readonly opcode: number;
  /** RSV1..3 as a 3-bit number (RSV1 is the high bit). */
  readonly rsv: number;
}

/** A JSSocket (`@route`, METHOD JSON) or XML socket (`<tag`, METHOD XML) message. */
export interface SocketMessage extends MessageBase {
  readonly kind: 'socket';
  readonly method: 'JSON' | 'XML';
}

export interface DisconnectNotice extends MessageBase {
  readonly kind: 'disconnect';
}

export interface CreditsNotice extends MessageBase {
  readonly kind: 'credits';
  readonly credits: number;
}

/** A `@*` notice of a type this library does not know. */
export interface UnknownNotice extends MessageBase {
  readonly kind: 'notice';
  readonly type: string;
}

export type Message =
  | HttpRequest
  | UploadChunk
  | WebSocketHandshake
  | WebSocketMessage
  | SocketMessage
  | DisconnectNotice
  | CreditsNotice
  | UnknownNotice;

const SP = 0x20;

export interface ParseRequestOptions {
  maxDepth?: number;
}

/** Parses one message from the server. Throws ProtocolError naming the byte offset. */
export function parseMessage(buf: Buffer, options: ParseRequestOptions = {}): Message {
  const s1 = buf.indexOf(SP);
  if (s1 <= 0) throw new ProtocolError(s1 === 0 ? 'request: empty sender' : 'request: no space after the sender', s1 === 0 ? 0 : buf.length);
  const s2 = buf.indexOf(SP, s1 + 1);
  if (s2 < 0) throw new ProtocolError('request: no space after the connection id', buf.length);
  const connId = parseConnId(buf, s1 + 1, s2);
  const s3 = buf.indexOf(SP, s2 + 1);
  if (s3 < 0) throw new ProtocolError('request: no space after the path', buf.length);
  if (s3 === s2 + 1) throw new ProtocolError('request: empty path', s3);

  const sender = buf.toString('utf8', 0, s1);
  const path = buf.toString('utf8', s2 + 1, s3);
  const headerAt = s3 + 1;
  const frame = readFrame(buf, headerAt);
  const tag = buf[frame.end];
  let headers: Headers;
  let protocol: HeaderProtocol;
  let bodyAt: number;
  if (tag === 0x2c /* , */) {
    protocol = 'json';
    headers = jsonHeaders(parseTolerantJson(buf.subarray(frame.start, frame.end), frame.start), frame.start);
    bodyAt = frame.end + 1;
  } else if (tag === 0x7d /* } */) {
    protocol = 'tnetstring';
    const parsed = parseTnetAt(buf, headerAt, { maxDepth: options.maxDepth ?? 4 });
    headers = tnetHeaders(parsed.value as TDict, headerAt);
    bodyAt = parsed.end;
  } else {
    throw new ProtocolError('request: headers are neither a JSON netstring nor a tnetstring dict', frame.end);
  }
  const body = parseNetstringAt(buf, bodyAt);
  if (body.end !== buf.length) throw new ProtocolError(`request: ${buf.length - body.end} trailing bytes after the body`, body.end);
  return classify(sender, connId, path, headers, body.value, protocol, headerAt, body.end - 1 - body.value.length);
}

function parseConnId(buf: Buffer, start: number, end: number): number {
  if (end === start) throw new ProtocolError('request: empty connection id', start);
  if (end - start > 10) throw new ProtocolError('request: connection id too long', start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) throw new ProtocolError('request: connection id is not a decimal number', i);
    n = n * 10 + (c - 0x30);
  }
  if (n > MAX_CONN_ID) throw new ProtocolError(`request: connection id ${n} is larger than uint32`, start);
  return n;
}

function jsonHeaders(value: unknown, at: number): Headers {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProtocolError('request: JSON headers are not an object', at);
  }
  const out: Record<string, HeaderValue> = Object.create(null);
  const obj = value as Record<string, unknown>;
  // for-in over JSON.parse's own keys: no entries arrays per request.
  for (const k in obj) {
    const v = obj[k];
    if (typeof v === 'string' || (Array.isArray(v) && allStrings(v))) out[k] = v as HeaderValue;
    else throw new ProtocolError(`request: header ${JSON.stringify(k)} is neither a string nor a list of strings`, at);
  }
  return out;
}

function allStrings(list: unknown[]): boolean {
  for (const x of list) if (typeof x !== 'string') return false;
  return true;
}

function tnetHeaders(dict: TDict, at: number): Headers {
  const out: Record<string, HeaderValue> = Object.create(null);
  for (const [k, v] of Object.entries(dict)) {
    if (Buffer.isBuffer(v)) out[k] = v.toString('utf8');
    else if (Array.isArray(v) && v.every((x): x is Buffer => Buffer.isBuffer(x))) out[k] = v.map((x) => x.toString('utf8'));
    else throw new ProtocolError(`request: header ${JSON.stringify(k)} is neither a string nor a list of strings`, at);
  }
  return out;
}

/** The first value of a header (duplicates arrive as arrays). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function decimal(text: string | undefined, what: string, at: number): number {
  if (text === undefined || !/^[0-9]{1,15}$/.test(text)) throw new ProtocolError(`request: ${what} is not a decimal number: ${JSON.stringify(text)}`, at);
  return Number(text);
}

const OPCODE_MASK = 0x0f;

/**
 * The message's kind from its headers. Every message object is one literal
 * in the same field order (no base object spread into a second one: this
 * runs per request).
 */
function classify(sender: string, connId: number, path: string, headers: Headers, body: Buffer, protocol: HeaderProtocol, at: number, bodyAt: number): Message {
  const method = headerValue(headers, 'METHOD');
  if (method === undefined) {
    if (headers.UPLOAD_STREAM !== undefined) {
      const offset = decimal(headerValue(headers, 'UPLOAD_STREAM'), 'UPLOAD_STREAM', at);
      return { sender, connId, path, headers, body, protocol, kind: 'upload-chunk', offset, done: headerValue(headers, 'UPLOAD_STREAM_DONE') === '1' };
    }
    throw new ProtocolError('request: no METHOD header', at);
  }
  if (path === '@*' && method === 'JSON') {
    const data = parseTolerantJson(body, bodyAt);
    const type = data !== null && typeof data === 'object' && typeof (data as { type?: unknown }).type === 'string' ? (data as { type: string }).type : undefined;
    if (type === undefined) throw new ProtocolError('request: @* notice body has no "type"', at);
    if (type === 'disconnect') return { sender, connId, path, headers, body, protocol, kind: 'disconnect' };
    if (type === 'credits') return { sender, connId, path, headers, body, protocol, kind: 'credits', credits: decimal(headerValue(headers, 'DOWNLOAD_CREDITS'), 'DOWNLOAD_CREDITS', at) };
    return { sender, connId, path, headers, body, protocol, kind: 'notice', type };
  }
  switch (method) {
    case 'WEBSOCKET_HANDSHAKE':
      return { sender, connId, path, headers, body, protocol, kind: 'websocket-handshake', accept: body.toString('latin1') };
    case 'WEBSOCKET': {
      const flagsText = headerValue(headers, 'FLAGS');
      if (flagsText === undefined || !/^0x[0-9A-Fa-f]{1,2}$/.test(flagsText)) throw new ProtocolError(`request: bad websocket FLAGS ${JSON.stringify(flagsText)}`, at);
      const flags = parseInt(flagsText.slice(2), 16);
      return { sender, connId, path, headers, body, protocol, kind: 'websocket', flags, opcode: flags & OPCODE_MASK, rsv: (flags >> 4) & 0x7 };
    }
    case 'JSON':
    case 'XML':
      return { sender, connId, path, headers, body, protocol, kind: 'socket', method };
    default:
      break;
  }
  const request: { -readonly [K in keyof HttpRequest]: HttpRequest[K] } = { sender, connId, path, headers, body, protocol, kind: 'http', method };
  const credits = headerValue(headers, 'DOWNLOAD_CREDITS');
  if (credits !== undefined) request.downloadCredits = decimal(credits, 'DOWNLOAD_CREDITS', at);
  const stream = headerValue(headers, 'UPLOAD_STREAM');
  if (stream !== undefined) {
    request.upload = { mode: 'stream', offset: decimal(stream, 'UPLOAD_STREAM', at), done: headerValue(headers, 'UPLOAD_STREAM_DONE') === '1' };
    return request;
  }
  const start = headerValue(headers, 'x-mongrel2-upload-start');
  if (start === undefined) return request;
  const done = headerValue(headers, 'x-mongrel2-upload-done');
  request.upload = done !== undefined ? { mode: 'file', phase: 'done', start, done } : { mode: 'file', phase: 'start', start };
  return request;
}

/**
 * True when the handler must send the close message after its response:
 * HTTP/1.0, or a `Connection: close` token (any case, any position, unlike
 * m2py's exact match). Mongrel2 never closes handler connections by itself.
 */
export function shouldClose(message: Message): boolean {
  if (message.kind !== 'http') return false;
  if (headerValue(message.headers, 'VERSION') === 'HTTP/1.0') return true;
  const raw = message.headers.connection;
  return raw !== undefined && listTokens(Array.isArray(raw) ? raw : [raw]).includes('close');
}

/** Input for encoding a request message (used by servers and tests). */
export interface RequestInit {
  sender: string;
  connId: number;
  path: string;
  /** Ordered header entries; the order is kept on the wire. */
  headers: ReadonlyArray<readonly [string, HeaderValue]>;
  body?: Buffer | string;
  protocol?: HeaderProtocol;
}

/**
 * Encodes a request. JSON headers are escaped properly (Mongrel2 leaves
 * control bytes raw, which strict JSON parsers reject). JSON messages are
 * built as one string and written into one allocation (this runs per request
 * in the server core).
 */
export function encodeRequest(init: RequestInit): Buffer {
  const message = encodeRequestMessage(init);
  return typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
}

/**
 * The message encodeRequest makes, left as a string when it has no body and
 * the JSON protocol: the message is then exactly that string's UTF-8 bytes.
 * For senders that can hand a string to their socket as it is (zeromq.js
 * copies a string, see src/handler/zmq-payload.ts), saving the Buffer.
 */
export function encodeRequestMessage(init: RequestInit): Buffer | string {
  if (!/^[^\s]+$/.test(init.sender)) throw new EncodeError('request: sender must be non-empty and contain no whitespace');
  if (!Number.isInteger(init.connId) || init.connId < 0 || init.connId > MAX_CONN_ID) throw new EncodeError(`request: bad connection id ${init.connId}`);
  if (!/^[^\s]+$/.test(init.path)) throw new EncodeError('request: path must be non-empty and contain no whitespace');
  const body = init.body === undefined ? EMPTY : typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : init.body;
  if ((init.protocol ?? 'json') === 'json') {
    let json = '{';
    const { headers } = init;
    for (let i = 0; i < headers.length; i++) {
      const [k, v] = headers[i]!;
      json += `${i === 0 ? '' : ','}${jsonString(k)}:${typeof v === 'string' ? jsonString(v) : JSON.stringify(v)}`;
    }
    json += '}';
    return jsonRequestFrame(init.sender, init.connId, init.path, json, Buffer.byteLength(json, 'utf8'), body);
  }
  const dict: TDict = Object.create(null);
  for (const [k, v] of init.headers) dict[k] = v as TValue;
  return Buffer.concat([Buffer.from(`${init.sender} ${init.connId} ${init.path} `, 'utf8'), encodeTnet(dict), encodeNetstring(body)]);
}

const EMPTY = Buffer.alloc(0);

/** JSON.stringify of a string, without its call when nothing needs escaping (the usual header). */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // '"', '\\', control characters and (lone) surrogates are JSON.stringify's business.
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}
