/**
 * The upstream given to `--http URL`: its origin, and the base path every
 * request path is put under (`http://127.0.0.1:3000/api` sends `/x?y` as
 * `/api/x?y`). Pure.
 */
import { headerValue, type Headers } from '../../src/protocol/request.js';

export interface UpstreamTarget {
  /** `http://host:port` (undici's origin). */
  readonly origin: string;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  /** '' or a path without a trailing slash, e.g. '/api'. */
  readonly basePath: string;
}

export class UpstreamUrlError extends Error {
  override readonly name = 'UpstreamUrlError';
}

export function parseUpstreamUrl(text: string): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UpstreamUrlError(`--http: ${JSON.stringify(text)} is not a URL (expected http://host:port[/base-path])`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamUrlError(`--http: ${JSON.stringify(text)}: the scheme must be http or https, not ${url.protocol.slice(0, -1)}`);
  if (url.username || url.password) throw new UpstreamUrlError(`--http: ${JSON.stringify(text)}: credentials in the URL are not supported`);
  if (url.search || url.hash) throw new UpstreamUrlError(`--http: ${JSON.stringify(text)}: a query or fragment in the upstream URL is not supported`);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  // URL keeps IPv6 brackets in hostname; net.connect wants them off.
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { origin: url.origin, protocol: url.protocol, hostname, port, basePath: url.pathname.replace(/\/+$/, '') };
}

/**
 * The request-target for the upstream: base path + the client's path and
 * query, byte for byte (Mongrel2's PATH is not percent-decoded). The
 * fragment never goes out. Undefined when the path is not origin-form
 * (`*`, or an absolute URI Mongrel2 could not reduce to a path).
 */
export function upstreamPath(target: UpstreamTarget, headers: Headers, path: string): string | undefined {
  if (!path.startsWith('/')) return undefined;
  const query = headerValue(headers, 'QUERY');
  return target.basePath + path + (query !== undefined ? `?${query}` : '');
}
