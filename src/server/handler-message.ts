/**
 * The messages the core sends to a handler, in Mongrel2's exact layout
 * (handler-protocol.md §1-§2): the request (JSON: PATH, the client headers in
 * hash order, then METHOD VERSION URI QUERY FRAGMENT PATTERN URL_SCHEME
 * REMOTE_ADDR; TNET: the server keys in reverse, then the client headers in
 * reverse hash order) and the `@*` disconnect notice.
 */
import { encodeRequest, encodeRequestMessage, MAX_CONN_ID, type HeaderProtocol, type HeaderValue } from '../protocol/request.js';
import { jsonRequestFrame } from '../protocol/request-frame.js';
import type { HeaderTable, TableValue } from './header-table.js';

export interface RequestFacts {
  readonly method: string;
  /** Absent for JSON/XML socket messages (Mongrel2 resets the request for each). */
  readonly version?: string | undefined;
  readonly uri?: string | undefined;
  readonly path: string;
  readonly query: string | undefined;
  readonly fragment: string | undefined;
  /** The matched route's full configured path. */
  readonly pattern: string;
  readonly urlScheme: 'http' | 'https';
  readonly remoteAddr: string;
}

/** A message for a handler: its bytes, or a string that stands for its UTF-8 bytes (sent as it is, see zmq-payload.ts). */
export type HandlerMessage = Buffer | string;

export interface HandlerAddress {
  readonly sendIdent: string;
  readonly protocol: HeaderProtocol;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Header values arrive as latin1 text (one char per byte). Bytes that are
 * valid UTF-8 are passed on as that text, so the handler sees the client's
 * bytes; other bytes stay one char each (Mongrel2 would send them raw, which
 * no strict JSON parser accepts).
 */
export function wireText(latin1: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(latin1)) return latin1;
  try {
    return utf8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return latin1;
  }
}

function wireValue(v: TableValue): HeaderValue {
  return Array.isArray(v) ? v.map(wireText) : wireText(v);
}

export function encodeHttpRequest(to: HandlerAddress, connId: number, facts: RequestFacts, table: HeaderTable, body: Buffer): HandlerMessage {
  if (to.protocol === 'json') {
    const plain = plainJsonRequest(to.sendIdent, connId, facts, table, body);
    if (plain !== undefined) return plain;
  }
  const path = wireText(facts.path);
  if (to.protocol === 'json') {
    // The hot path: one list, built in wire order (PATH, client headers in hash order, server keys).
    const headers: Array<[string, HeaderValue]> = [['PATH', path]];
    table.forEach((k, values) => headers.push([k, values.length > 1 ? values.map(wireText) : wireText(values[0]!)]));
    for (const [k, v] of serverKeys(facts)) if (v !== undefined) headers.push([k, wireText(v)]);
    return encodeRequestMessage({ sender: to.sendIdent, connId, path, headers, body, protocol: 'json' });
  }
  const client = table.entries().map(([k, v]): [string, HeaderValue] => [k, wireValue(v)]);
  const present = serverKeys(facts)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]): [string, HeaderValue] => [k, wireText(v)]);
  const headers = [...tnetServerOrder(present), ['PATH', path] as [string, HeaderValue], ...client.reverse()];
  return encodeRequest({ sender: to.sendIdent, connId, path, headers, body, protocol: to.protocol });
}

/** Printable ASCII without '"' or '\\': the text is its own JSON string body and its wire bytes, one per char. */
function isPlain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/**
 * The JSON request of the general path below, built in one pass when every
 * text in it is plain (nearly every request): no tuples, no UTF-8 decoding
 * attempts, and the JSON's length is its byte count. Undefined when anything
 * is not plain (or the sender, path or id would be refused): the general
 * path then encodes it (or throws), with the same bytes for plain requests.
 */
function plainJsonRequest(sender: string, connId: number, facts: RequestFacts, table: HeaderTable, body: Buffer): HandlerMessage | undefined {
  const { path } = facts;
  if (sender.length === 0 || path.length === 0 || !isPlain(sender) || !isPlain(path) || sender.includes(' ') || path.includes(' ')) return undefined;
  if (!Number.isInteger(connId) || connId < 0 || connId > MAX_CONN_ID) return undefined;
  let json = `{"PATH":"${path}"`;
  let plain = true;
  table.forEach((k, values) => {
    if (!plain || !isPlain(k)) return void (plain = false);
    if (values.length === 1) {
      const v = values[0]!;
      if (!isPlain(v)) return void (plain = false);
      json += `,"${k}":"${v}"`;
      return;
    }
    json += `,"${k}":[`;
    for (let i = 0; i < values.length; i++) {
      if (!isPlain(values[i]!)) return void (plain = false);
      json += i === 0 ? `"${values[i]!}"` : `,"${values[i]!}"`;
    }
    json += ']';
  });
  if (!plain) return undefined;
  // serverKeys' order.
  const { method, version, uri, query, fragment, pattern, urlScheme, remoteAddr } = facts;
  if (!isPlain(method) || !isPlain(pattern) || !isPlain(urlScheme) || !isPlain(remoteAddr)) return undefined;
  if ((version !== undefined && !isPlain(version)) || (uri !== undefined && !isPlain(uri))) return undefined;
  if ((query !== undefined && !isPlain(query)) || (fragment !== undefined && !isPlain(fragment))) return undefined;
  json += `,"METHOD":"${method}"`;
  if (version !== undefined) json += `,"VERSION":"${version}"`;
  if (uri !== undefined) json += `,"URI":"${uri}"`;
  if (query !== undefined) json += `,"QUERY":"${query}"`;
  if (fragment !== undefined) json += `,"FRAGMENT":"${fragment}"`;
  json += `,"PATTERN":"${pattern}","URL_SCHEME":"${urlScheme}","REMOTE_ADDR":"${remoteAddr}"`;
  json += '}';
  return jsonRequestFrame(sender, connId, path, json, json.length, body);
}

/** The server-set keys, in JSON wire order. */
function serverKeys(facts: RequestFacts): Array<[string, string | undefined]> {
  return [
    ['METHOD', facts.method],
    ['VERSION', facts.version],
    ['URI', facts.uri],
    ['QUERY', facts.query],
    ['FRAGMENT', facts.fragment],
    ['PATTERN', facts.pattern],
    ['URL_SCHEME', facts.urlScheme],
    ['REMOTE_ADDR', facts.remoteAddr],
  ];
}

/** TNET renders REMOTE_ADDR, METHOD, URL_SCHEME, PATTERN, FRAGMENT, QUERY, URI, VERSION (then PATH). */
function tnetServerOrder(present: Array<[string, HeaderValue]>): Array<[string, HeaderValue]> {
  const order = ['REMOTE_ADDR', 'METHOD', 'URL_SCHEME', 'PATTERN', 'FRAGMENT', 'QUERY', 'URI', 'VERSION'];
  return order.flatMap((k) => present.filter(([name]) => name === k));
}

const DISCONNECT_BODY = Buffer.from('{"type":"disconnect"}', 'latin1');

export function encodeDisconnect(to: HandlerAddress, connId: number): Buffer {
  return encodeRequest({ sender: to.sendIdent, connId, path: '@*', headers: [['METHOD', 'JSON']], body: DISCONNECT_BODY, protocol: to.protocol });
}

/**
 * A later `upload.stream` message: its headers are ONLY the stream keys
 * (Mongrel2's altheaders): `UPLOAD_STREAM` = offset, `UPLOAD_STREAM_DONE` on
 * the last one; hash order for JSON, reversed for TNET, like any table.
 */
export function encodeStreamChunk(to: HandlerAddress, connId: number, path: string, table: HeaderTable, body: Buffer): Buffer {
  const entries = table.entries().map(([k, v]): [string, HeaderValue] => [k, wireValue(v)]);
  return encodeRequest({ sender: to.sendIdent, connId, path: wireText(path), headers: to.protocol === 'json' ? entries : entries.reverse(), body, protocol: to.protocol });
}

const CREDITS_BODY = Buffer.from('{"type":"credits"}', 'latin1');

/** The download credits notice (handler-protocol.md §2.2): bytes written to the client, as a decimal string. */
export function encodeCredits(to: HandlerAddress, connId: number, bytes: number): Buffer {
  const headers: Array<[string, HeaderValue]> = [
    ['METHOD', 'JSON'],
    ['DOWNLOAD_CREDITS', String(bytes)],
  ];
  return encodeRequest({ sender: to.sendIdent, connId, path: '@*', headers: to.protocol === 'json' ? headers : headers.reverse(), body: CREDITS_BODY, protocol: to.protocol });
}
