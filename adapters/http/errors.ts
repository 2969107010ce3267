/**
 * undici and socket failures as the status the client gets, as nginx maps
 * upstream failures: nothing usable from the upstream → 502, too slow → 504.
 */
import { BackendError } from '../../src/bridge/backend.js';

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function statusForUpstreamError(err: unknown): number {
  const code = codeOf(err);
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 504;
    case 'UND_ERR_INVALID_ARG':
      // A client header or path undici will not write (it validates what we could not).
      return 400;
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return 503;
    default:
      // Refused, reset, closed before a response, garbage (HPE_*), header overflow, DNS.
      return 502;
  }
}

/** Wraps a failure before the response head as a BackendError naming the upstream. */
export function upstreamError(err: unknown, origin: string): BackendError {
  if (err instanceof BackendError) return err;
  const status = statusForUpstreamError(err);
  const code = codeOf(err);
  const what = status === 504 ? 'timed out' : status === 400 ? 'refused the request' : 'failed';
  return new BackendError(status, `upstream ${origin} ${what}: ${(err as Error)?.message ?? String(err)}${code ? ` (${code})` : ''}`, { cause: err });
}
