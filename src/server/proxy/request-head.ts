/**
 * The request head the proxy sends to a backend, built from the client's
 * parsed head (pure; no I/O).
 *
 * Always (RFC 9110 §7.6.1, we run our own keep-alive connection to the backend):
 * the hop-by-hop headers and every header the client's Connection names
 * (http/hop-by-hop.ts) are dropped; body framing (Content-Length /
 * Transfer-Encoding) is rewritten for the body we actually send, in the place
 * of the client's first framing header; HTTP/1.0 requests get
 * `Connection: keep-alive`. A websocket upgrade keeps `Upgrade` and sends
 * `Connection: Upgrade`. The target is sent in origin-form (originForm).
 * With `forwarded`: the client's X-Forwarded-* and Forwarded give way to the
 * shared policy's (http/forwarded-headers.ts), as the last headers.
 * Without it, nothing else changes: the closest to Mongrel2's raw relay.
 */
import { FORWARDED_NAMES, forwardedHeaders } from '../../http/forwarded-headers.js';
import { droppedHeaderNames, HOP_BY_HOP, headerTokens } from '../../http/hop-by-hop.js';
import { headerValues } from '../http/body.js';
import type { RequestHead } from '../http/request-parser.js';

export interface BackendHeadOptions {
  /** Body length, or undefined for a body of unknown length (sent chunked); 0 / null body = none. */
  readonly bodyLength: number | undefined;
  readonly hasBody: boolean;
  /** Set the forwarded headers: `trust` keeps the client's (proxy.trust_forwarded). */
  readonly forwarded: { readonly peer: string; readonly proto: string; readonly trust: boolean } | undefined;
}

/** The RFC 9110 upgrade test a proxy needs (`Upgrade: websocket` token, `Connection: upgrade`); looser than Mongrel2's handler-route rule in websocket/handshake.ts. */
export function asksForWebSocket(head: RequestHead): boolean {
  return headerTokens(head.headers, 'upgrade').includes('websocket') && headerTokens(head.headers, 'connection').includes('upgrade');
}

/**
 * The request target for the backend in origin-form (RFC 9112 §3.2.2): an
 * absolute-form target loses its authority (the parser keeps `//host/p`,
 * which a backend resolving against its base would read as another host),
 * and a target without a leading '/' gets one. `*` stays as it is.
 */
export function originForm(head: RequestHead): string {
  let target = head.uri;
  if (head.absoluteForm && target.startsWith('//')) {
    const end = target.slice(2).search(/[/?]/);
    target = end < 0 ? '' : target.slice(2 + end);
  }
  return target === '*' || target.startsWith('/') ? target : `/${target}`;
}

/** One pass to find what the rules need, then one string: no per-header arrays (a per-request hot path). */
export function buildBackendHead(head: RequestHead, options: BackendHeadOptions): Buffer {
  return Buffer.from(backendHeadText(head, options), 'latin1');
}

/** buildBackendHead as latin1 text: a socket writes it with no Buffer made in JS. */
export function backendHeadText(head: RequestHead, options: BackendHeadOptions): string {
  let connection: string[] | undefined;
  let host: string | undefined;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (lower === 'connection') (connection ??= []).push(value);
    else if (lower === 'host' && host === undefined) host = value;
  }
  // Without a Connection header there is no upgrade and nothing named to drop.
  const upgrade = connection !== undefined && asksForWebSocket(head);
  const dropped = connection === undefined ? HOP_BY_HOP : droppedHeaderNames(connection);
  const { forwarded } = options;
  const length = options.hasBody ? options.bodyLength : 0;
  let out = `${head.method} ${originForm(head)} ${head.version}\r\n`;
  let framed = false;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      if (!framed) out += framingLine(lower, name, length);
      framed = true;
      continue;
    }
    if ((upgrade && lower === 'upgrade') || !(dropped.has(lower) || (forwarded && FORWARDED_NAMES.has(lower)))) out += `${name}: ${value}\r\n`;
  }
  if (options.hasBody && !framed) out += framingLine('', '', length);
  if (upgrade) out += 'Connection: Upgrade\r\n';
  else if (head.version === 'HTTP/1.0') out += 'Connection: keep-alive\r\n';
  if (forwarded) {
    const facts = { peer: forwarded.peer, proto: forwarded.proto, trust: forwarded.trust, host };
    // The client's values are only read when trusting them: no closure per request otherwise.
    const values = forwarded.trust ? (n: string): string[] => headerValues(head, n) : noValues;
    for (const [name, value] of forwardedHeaders(values, facts)) out += `${name}: ${value}\r\n`;
  }
  return out + '\r\n';
}

/** The framing header for the body we send; keeps the client's spelling of the name when the framing kind is the same. */
function framingLine(lower: string, name: string, length: number | undefined): string {
  return length === undefined ? `${lower === 'transfer-encoding' ? name : 'Transfer-Encoding'}: chunked\r\n` : `${lower === 'content-length' ? name : 'Content-Length'}: ${length}\r\n`;
}

const noValues = (): string[] => [];
