/**
 * Headers that describe one connection and so never cross a proxy
 * (RFC 9110 §7.6.1), and the comma-separated token lists they are written
 * in. Pure. The one rule for the core's Proxy target, the upstream HTTP
 * adapter (m2bridge --http) and the websocket tunnel.
 */
import { listTokens } from '../protocol/http-tokens.js';

export { listTokens };

/** [name, value] pairs in arrival order, names in any case. */
export type HeaderPairs = Iterable<readonly [string, string]>;

/**
 * The headers that describe one connection and its framing (RFC 9110
 * §7.6.1, plus Trailer): what a gateway re-framing a response never copies.
 */
export const CONNECTION_HEADERS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Hop-by-hop by definition: the connection headers plus the proxy
 * authentication pair (RFC 2616 §13.5.1) — each hop re-frames the body and
 * authenticates on its own.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([...CONNECTION_HEADERS, 'proxy-authenticate', 'proxy-authorization']);

/** Where the request goes: never dropped because a Connection header names it. */
const NEVER_NAMED = new Set(['host']);

/** Every token of every `name` header (name compared case-insensitively), lower-cased. */
export function headerTokens(headers: HeaderPairs, name: string): string[] {
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [k, v] of headers) if (k.toLowerCase() === wanted) values.push(v);
  return listTokens(values);
}

/**
 * Lower-case names that must not be passed on from a message with these
 * Connection header values: HOP_BY_HOP and every name Connection lists
 * (RFC 9110 §7.6.1), except Host.
 */
export function droppedHeaderNames(connectionValues: Iterable<string>): ReadonlySet<string> {
  const out = new Set(HOP_BY_HOP);
  for (const token of listTokens(connectionValues)) if (!NEVER_NAMED.has(token)) out.add(token);
  return out;
}

/** `headers` without the ones droppedHeaderNames names for them, nor any named in `also` (lower-case). Order kept. */
export function endToEndHeaders<T extends readonly [string, string]>(headers: readonly T[], also: Iterable<string> = []): T[] {
  const dropped = new Set(droppedHeaderNames(headers.filter(([name]) => name.toLowerCase() === 'connection').map(([, v]) => v)));
  for (const name of also) dropped.add(name);
  return headers.filter(([name]) => !dropped.has(name.toLowerCase()));
}
