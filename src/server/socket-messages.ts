/**
 * JSSocket / XML socket messages (handler-protocol.md §8): the `@route {…}\0`
 * and `<tag …>…\0` messages the request parser returns as `json` / `xml`,
 * the Flash policy answer, and how handler replies reach such a client.
 *
 * Mongrel2 (connection.c connection_msg_to_handler, request.c) resets the
 * request for each message, so a socket message carries only
 * x-forwarded-for plus METHOD (JSON or XML), PATTERN, URL_SCHEME and
 * REMOTE_ADDR: no VERSION, URI or QUERY. PATH is the `@route` or `<tag`, and
 * routing uses it on the default host (a socket message has no Host header).
 * The body is the message without its NUL.
 */
import { encodeHttpRequest, type HandlerAddress, type HandlerMessage, type RequestFacts } from './handler-message.js';
import { HeaderTable } from './header-table.js';
import { POLICY_RESPONSE } from './http/responses.js';

export { POLICY_RESPONSE };

export interface SocketMessage {
  readonly kind: 'json' | 'xml';
  /** '@route' or '<tag'. */
  readonly path: string;
  /** JSON text, or the whole XML, without the terminating NUL. */
  readonly body: Buffer;
}

export interface SocketMessageContext {
  /** The matched route's configured path. */
  readonly pattern: string;
  readonly urlScheme: 'http' | 'https';
  readonly remoteAddr: string;
}

/**
 * The handler message for a JSON or XML socket message. Built with the HTTP
 * request encoder; VERSION and URI are absent (the encoder skips absent
 * server keys).
 */
export function encodeSocketMessage(to: HandlerAddress, connId: number, msg: SocketMessage, ctx: SocketMessageContext): HandlerMessage {
  const table = new HeaderTable(1);
  table.replace('x-forwarded-for', ctx.remoteAddr);
  const facts: RequestFacts = {
    method: msg.kind === 'json' ? 'JSON' : 'XML',
    version: undefined,
    uri: undefined,
    path: msg.path,
    query: undefined,
    fragment: undefined,
    pattern: ctx.pattern,
    urlScheme: ctx.urlScheme,
    remoteAddr: ctx.remoteAddr,
  };
  return encodeHttpRequest(to, connId, facts, table, msg.body);
}

/**
 * Mongrel2 swallows JSSocket pings (they only refresh the idle timer) when
 * `@path {body}` matches its PING_PATTERN `@[a-z/]- {"type":\s*"ping"}`,
 * anchored at the start only. Checked against the real server (Debian
 * 1.12.2): `{"type":"ping"}` and `{"type": "ping"}` are swallowed,
 * `{"type":\sss"ping"}` is forwarded. `\s` is C isspace (no 0xA0).
 */
const PING = /^@[a-z/]*? \{"type":[ \t\n\v\f\r]*"ping"\}/;

export function isSocketPing(msg: SocketMessage): boolean {
  return msg.kind === 'json' && PING.test(`${msg.path} ${msg.body.toString('latin1')}`);
}

/**
 * What a socket-message client receives for a handler reply body: verbatim
 * with `raw_payload=1`, otherwise base64 of the body less ONE trailing NUL
 * (handler.c handler_cap_payload + Connection_deliver; no NUL after the
 * base64 since 1.8).
 */
export function socketReplyBytes(body: Buffer, rawPayload: boolean): Buffer {
  if (rawPayload) return body;
  const capped = body.length > 0 && body[body.length - 1] === 0 ? body.subarray(0, body.length - 1) : body;
  return Buffer.from(capped.toString('base64'), 'latin1');
}
