/**
 * What every adapter (FastCGI, upstream HTTP, in-process app) implements: take
 * one Mongrel2 HTTP request with its body as a stream, give back a response
 * head and a body stream. Framing, credits, disconnects and error pages are
 * the bridge's job, so adapters stay small.
 */
import type { Duplex, Readable } from 'node:stream';
import type { HttpRequest, WebSocketHandshake } from '../protocol/request.js';

export interface BackendRequest {
  readonly req: HttpRequest;
  /** The request body, or null when there is none. */
  readonly body: Readable | null;
  /** Body length when known (Content-Length, or the size of a temp-file upload). */
  readonly bodyLength: number | undefined;
  /** Aborts when the client disconnects or the bridge gives up on the request. */
  readonly signal: AbortSignal;
  /**
   * The same abort as `signal`, set by the Bridge: a plain flag and one hook
   * field instead of an AbortController and an event listener per request
   * (the Bridge makes `signal` only when a backend reads it).
   */
  readonly cancel?: RequestCancel;
}

/**
 * A client-gone switch: once aborted it stays so, and the hook set at that
 * moment is called once. A backend sets `hook` while it works on the request
 * (one owner: the backend the request was handed to).
 */
export interface RequestCancel {
  readonly aborted: boolean;
  readonly reason: unknown;
  hook: CancelHook | undefined;
}

export interface CancelHook {
  cancelled(reason: unknown): void;
}

export interface BackendResponse {
  readonly status: number;
  readonly reason?: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Body bytes; null for none. */
  readonly body: Readable | null;
  /**
   * Have Mongrel2 send this file after the head (an `X-Sendfile`-style
   * answer); the path is as the server sees it.
   */
  readonly sendfile?: string;
  /** Deliver each body chunk as soon as it arrives (SSE, long-poll). */
  readonly noBuffering?: boolean;
}

export interface BackendUpgradeRequest {
  /** The handshake as Mongrel2 sent it (headers include sec-websocket-key). */
  readonly req: WebSocketHandshake;
  /** Aborts when the client disconnects. */
  readonly signal: AbortSignal;
}

export interface Backend {
  readonly name: string;
  handle(request: BackendRequest): Promise<BackendResponse>;
  /**
   * Websocket support (optional). Sends the client's upgrade request to the
   * backend and resolves with the raw byte stream to it: reading gives the
   * backend's HTTP answer (a 101 head, then server frames), writing sends
   * client frames (masked, as a client must). Backends without it get 501.
   */
  upgrade?(request: BackendUpgradeRequest): Promise<Duplex>;
  /** The client with this connection id left: drop any state kept for it between requests (optional). */
  disconnected?(connId: number): void;
  close(): Promise<void>;
}

/** A failure the bridge turns into an error response with this status. */
export class BackendError extends Error {
  override readonly name = 'BackendError';
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
