/**
 * The one forwarded-header policy of m2bridge's proxies (the core's Proxy
 * target with forwarded headers on, and m2bridge --http): what the next hop
 * is told about the client. Pure.
 *
 * Not trusting (the default): the client's X-Forwarded-For, -Proto, -Host
 * and Forwarded are all dropped; X-Forwarded-For is the peer address,
 * X-Forwarded-Proto our scheme, X-Forwarded-Host the Host header. So a client
 * cannot forge its address, scheme or host to the backend.
 * Trusting (a proxy we trust stands in front and sets them): the peer is
 * appended to the client's X-Forwarded-For chain; its X-Forwarded-Proto,
 * -Host and Forwarded are kept, ours filling in where it sent none.
 */

/** The headers this policy sets: callers drop the client's copies of them. */
export const FORWARDED_NAMES: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);

export interface ForwardedFacts {
  /** The address of whoever connected to us (REMOTE_ADDR). */
  readonly peer: string | undefined;
  /** The scheme the client used with us. */
  readonly proto: string | undefined;
  /** The request's Host header. */
  readonly host: string | undefined;
  /** The client's forwarded headers come from a proxy we trust. */
  readonly trust: boolean;
}

/**
 * The forwarded headers for the next hop, in this order: X-Forwarded-For,
 * X-Forwarded-Proto, X-Forwarded-Host, then (trusting) the client's
 * Forwarded values. `clientValues(name)` gives every value of a lower-case
 * header name as the client sent it.
 */
export function forwardedHeaders(clientValues: (name: string) => readonly string[], facts: ForwardedFacts): Array<[string, string]> {
  const trusted = (name: string): readonly string[] => (facts.trust ? clientValues(name) : []);
  const out: Array<[string, string]> = [];
  const chain = trusted('x-forwarded-for')
    .map((v) => v.trim())
    .filter(Boolean);
  if (facts.peer) chain.push(facts.peer);
  if (chain.length > 0) out.push(['X-Forwarded-For', chain.join(', ')]);
  const proto = trusted('x-forwarded-proto')[0] || facts.proto;
  if (proto) out.push(['X-Forwarded-Proto', proto]);
  const host = trusted('x-forwarded-host')[0] || facts.host;
  if (host) out.push(['X-Forwarded-Host', host]);
  for (const v of trusted('forwarded')) out.push(['Forwarded', v]);
  return out;
}
