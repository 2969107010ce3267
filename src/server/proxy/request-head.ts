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
import { droppedHeaderNames, headerTokens } from '../../http/hop-by-hop.js';
import { headerValue, headerValues } from '../http/body.js';
import type { RequestHead } from '../http/request-parser.js';

export interface BackendHeadOptions {
  /** Body length, or undefined for a body of unknown length (sent chunked); 0 / null body = none. */
  readonly bodyLength: number | undefined;
  readonly hasBody: boolean;
  /** Set the forwarded headers: `trust` keeps the client's (proxy.trust_forwarded). */
  readonly forwarded: { readonly peer: string; readonly proto: string; readonly trust: boolean } | undefined;
}

/** `Upgrade: websocket` (a token of it) with `Connection: upgrade`. */
export function isWebSocketUpgrade(head: RequestHead): boolean {
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

export function buildBackendHead(head: RequestHead, options: BackendHeadOptions): Buffer {
  const upgrade = isWebSocketUpgrade(head);
  const dropped = droppedHeaderNames(headerValues(head, 'connection'));
  const { forwarded } = options;
  const length = options.hasBody ? options.bodyLength : 0;
  // Keeps the client's spelling of the header when the framing kind is the same.
  const framing = (name: string): string =>
    length === undefined ? `${name.toLowerCase() === 'transfer-encoding' ? name : 'Transfer-Encoding'}: chunked` : `${name.toLowerCase() === 'content-length' ? name : 'Content-Length'}: ${length}`;
  const lines = [`${head.method} ${originForm(head)} ${head.version}`];
  let framed = false;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') {
      if (!framed) lines.push(framing(name));
      framed = true;
      continue;
    }
    if (upgrade && lower === 'upgrade') {
      lines.push(`${name}: ${value}`);
      continue;
    }
    if (dropped.has(lower) || (forwarded && FORWARDED_NAMES.has(lower))) continue;
    lines.push(`${name}: ${value}`);
  }
  if (options.hasBody && !framed) lines.push(framing(''));
  if (upgrade) lines.push('Connection: Upgrade');
  else if (head.version === 'HTTP/1.0') lines.push('Connection: keep-alive');
  if (forwarded) {
    const facts = { ...forwarded, host: headerValue(head, 'host') };
    for (const [name, value] of forwardedHeaders((n) => headerValues(head, n), facts)) lines.push(`${name}: ${value}`);
  }
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}
