/**
 * One error class for the whole FastCGI client. `code` says what went wrong in
 * terms a gateway can map to an HTTP status (see adapters/fastcgi.ts): CONNECT,
 * RESET and PROTOCOL → 502, TIMEOUT → 504, OVERLOADED and QUEUE_FULL → 503,
 * PARAMS_TOO_LARGE → 431.
 */
export type FastCgiErrorCode =
  /** connection refused or unreachable (ECONNREFUSED, ENOENT for a unix socket, ...) */
  | 'CONNECT'
  /** connect timeout, or FPM silent for longer than readTimeoutMs */
  | 'TIMEOUT'
  /** the connection closed or was reset before END_REQUEST */
  | 'RESET'
  /** bytes that are not FastCGI, or a record we did not expect */
  | 'PROTOCOL'
  /** END_REQUEST with FCGI_OVERLOADED or FCGI_CANT_MPX_CONN */
  | 'OVERLOADED'
  /** one name/value pair does not fit in a single PARAMS record */
  | 'PARAMS_TOO_LARGE'
  /** the caller's AbortSignal fired, the caller destroyed stdout, or stdin failed */
  | 'ABORTED'
  /** more than maxQueue requests waiting for a connection */
  | 'QUEUE_FULL'
  /** the client was closed */
  | 'CLOSED';

export class FastCgiError extends Error {
  override readonly name = 'FastCgiError';
  readonly code: FastCgiErrorCode;
  /** Byte offset into the decoded stream or buffer where a PROTOCOL error was found, else -1. */
  readonly offset: number;

  constructor(code: FastCgiErrorCode, message: string, options: { offset?: number; cause?: unknown } = {}) {
    const offset = options.offset ?? -1;
    super(offset >= 0 ? `${message} (at byte ${offset})` : message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.offset = offset;
  }
}

export function isFastCgiError(err: unknown, code?: FastCgiErrorCode): err is FastCgiError {
  return err instanceof FastCgiError && (code === undefined || err.code === code);
}
