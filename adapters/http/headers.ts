/**
 * Which headers cross the proxy, both ways, for the upstream HTTP adapter.
 * Pure functions over Mongrel2's header map and the upstream's raw headers.
 *
 * Toward the upstream: every client header Mongrel2 passed (lower-case
 * names; its own upper-case keys and the forgeable `x-mongrel2-*` are not
 * client headers), minus hop-by-hop ones (RFC 9110 §7.6.1, plus any named
 * in Connection) and the body framing (the adapter re-frames the body), then
 * Host and the X-Forwarded-* set, as nginx's usual
 * `proxy_set_header Host $http_host; X-Forwarded-For $proxy_add_x_forwarded_for`.
 */
import { FORWARDED_NAMES, forwardedHeaders } from '../../src/http/forwarded-headers.js';
import { droppedHeaderNames, endToEndHeaders } from '../../src/http/hop-by-hop.js';
import { headerValue, type Headers } from '../../src/protocol/request.js';

/** Client header names as Mongrel2 passes them: lower-case tokens (upper-case keys are Mongrel2's own). */
const CLIENT_HEADER = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/**
 * Never forwarded as the client sent them: the body framing (re-framed),
 * `expect` (Mongrel2 has read the body already; undici refuses it), Host and
 * the forwarding headers (set by forwardHeaders itself).
 */
const REPLACED = new Set(['content-length', 'expect', 'host', ...FORWARDED_NAMES]);

export interface ForwardOptions {
  /**
   * The client's X-Forwarded-* / Forwarded come from a proxy we trust (a load
   * balancer in front of Mongrel2, and Mongrel2 runs with no_clobber_xff=1).
   * The policy itself is src/http/forwarded-headers.ts, shared with the core proxy.
   */
  trustForwarded: boolean;
}

function valuesOf(headers: Headers, name: string): string[] {
  const v = headers[name];
  return v === undefined ? [] : typeof v === 'string' ? [v] : [...v];
}

/**
 * Mongrel2 decoded header bytes as UTF-8; undici writes header strings as
 * latin1. Re-encoding gives the upstream the exact bytes the client sent.
 */
function wireText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');
}

/**
 * The request headers for the upstream, in Mongrel2's order, duplicates as
 * separate entries, then Host, X-Forwarded-For, -Proto and -Host.
 * The caller adds framing (Content-Length) or the upgrade headers.
 */
export function forwardHeaders(headers: Headers, options: ForwardOptions): Array<[string, string]> {
  const dropped = droppedHeaderNames(valuesOf(headers, 'connection'));
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!CLIENT_HEADER.test(name) || name.startsWith('x-mongrel2-')) continue;
    if (dropped.has(name) || REPLACED.has(name)) continue;
    for (const v of typeof value === 'string' ? [value] : value) out.push([name, wireText(v)]);
  }
  const host = headerValue(headers, 'host');
  if (host !== undefined && host !== '') out.push(['host', wireText(host)]);

  const facts = { peer: headerValue(headers, 'REMOTE_ADDR'), proto: headerValue(headers, 'URL_SCHEME'), host, trust: options.trustForwarded };
  for (const [name, value] of forwardedHeaders((n) => valuesOf(headers, n), facts)) out.push([name.toLowerCase(), wireText(value)]);
  return out;
}

/** What the adapter makes of the upstream's response headers. */
export interface ResponseHeaders {
  headers: Array<[string, string]>;
  /** `X-Accel-Buffering: no` or an event stream: deliver each chunk at once. */
  noBuffering: boolean;
}

/**
 * The upstream's raw headers (`[name, value, name, value, ...]`, as undici
 * gives them with `responseHeaders: 'raw'`) minus hop-by-hop ones and
 * `X-Accel-Buffering` (a message for us, as for nginx). Case, order and
 * repeats (Set-Cookie) are kept.
 */
export function responseHeaders(raw: readonly string[]): ResponseHeaders {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!, raw[i + 1]!]);
  const headers: Array<[string, string]> = [];
  let noBuffering = false;
  for (const [name, value] of endToEndHeaders(pairs)) {
    const lower = name.toLowerCase();
    if (lower === 'x-accel-buffering') {
      noBuffering ||= value.trim().toLowerCase() === 'no';
      continue;
    }
    if (lower === 'content-type' && /^\s*text\/event-stream\b/i.test(value)) noBuffering = true;
    headers.push([name, value]);
  }
  return { headers, noBuffering };
}

/**
 * Sec-WebSocket-Extensions without the compression extensions. Mongrel2
 * takes no part in extension negotiation, yet it re-frames every message
 * (unmasks, reassembles fragments, hands the handler one message with the
 * first frame's FLAGS), and the bridge re-frames again toward the upstream.
 * permessage-deflate binds RSV1 and a compression context shared across
 * messages (context takeover) to the exact frame sequence of one hop: one
 * message re-fragmented, reordered or stripped of RSV1 by a relay that does
 * not know the extension corrupts every later message. Compression also
 * buys nothing on the loopback hop. So the upstream is never offered it.
 */
export function websocketExtensions(values: readonly string[]): string | undefined {
  const kept: string[] = [];
  for (const value of values) {
    for (const ext of splitOutsideQuotes(value, ',')) {
      const name = ext.split(';')[0]!.trim().toLowerCase();
      if (name === '' || name === 'permessage-deflate' || name === 'x-webkit-deflate-frame') continue;
      kept.push(ext.trim());
    }
  }
  return kept.length > 0 ? kept.join(', ') : undefined;
}

function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    else if (c === sep && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
