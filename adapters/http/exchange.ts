/**
 * One request to the upstream as an undici dispatch handler: resolves the
 * response head once, then feeds a Readable body with backpressure (undici
 * pauses the socket while the body is full and the bridge is out of
 * credits). Skips 1xx answers. Aborts (the bridge's signal, or the body
 * destroyed before its end) close the upstream connection; a body destroyed
 * after the response completed costs nothing and keeps the connection.
 *
 * Why not Pool#request(): its body stream builds an Error with a stack
 * trace whenever it is destroyed before 'end' was read, which the bridge
 * does after the last Content-Length byte: ~12 % of the bridge's CPU in
 * bench/bridge-http.ts.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

export interface UpstreamHead {
  status: number;
  reason: string | undefined;
  /** `[name, value, name, value, ...]` as the upstream sent them (latin1). */
  rawHeaders: string[];
  body: Readable;
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  /** Rejects with the undici error, or the signal's reason, if no head arrives. */
  readonly head: Promise<UpstreamHead>;
  #resolve!: (head: UpstreamHead) => void;
  #reject!: (err: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #body: Readable | undefined;
  /** The response completed or failed: nothing left to abort. */
  #done = false;
  readonly #signal: AbortSignal;
  readonly #highWaterMark: number;
  readonly #onAbort = (): void => this.#abort(this.#signal.reason as Error);

  constructor(signal: AbortSignal, highWaterMark = 64 * 1024) {
    this.#signal = signal;
    this.#highWaterMark = highWaterMark;
    this.head = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#signal.aborted) controller.abort(this.#signal.reason as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, _headers: unknown, statusMessage?: string): void {
    if (statusCode < 200) return; // 100 Continue, 103 Early Hints: not for the client
    const raw = Array.isArray(controller.rawHeaders) ? controller.rawHeaders : [];
    const rawHeaders = raw.map((v) => (typeof v === 'string' ? v : v.toString('latin1')));
    this.#body = new Readable({
      highWaterMark: this.#highWaterMark,
      read: () => controller.resume(),
      destroy: (err, callback) => {
        if (!this.#done) this.#abort(err ?? new Error('the response body was closed before its end'));
        callback(err);
      },
    });
    this.#resolve({ status: statusCode, reason: statusMessage || undefined, rawHeaders, body: this.#body });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#body && !this.#body.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#finish();
    this.#body?.push(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#finish();
    if (this.#body) this.#body.destroy(err);
    else this.#reject(this.#signal.aborted ? this.#signal.reason : err);
  }

  #finish(): void {
    this.#done = true;
    this.#signal.removeEventListener('abort', this.#onAbort);
  }

  #abort(reason: Error): void {
    if (this.#done) return;
    if (this.#controller) this.#controller.abort(reason);
    // Still queued in the pool: answer now; onRequestStart aborts it when its turn comes.
    else this.#reject(reason);
  }
}
