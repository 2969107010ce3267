/**
 * Helpers for the in-process app adapter tests: Mongrel2 requests built the
 * way the bridge receives them, bodies collected, gates the tests open.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { encodeRequest, parseMessage, type HeaderValue, type HttpRequest } from '../../src/protocol/index.js';

export interface RequestOptions {
  method?: string;
  /** Path and query, e.g. `/a?b=1`. */
  uri?: string;
  version?: string;
  scheme?: 'http' | 'https';
  remoteAddr?: string;
  headers?: Array<[string, HeaderValue]>;
  body?: Buffer | string;
  /** Mongrel2's connection id (default 7). */
  connId?: number;
}

/** A Mongrel2 HTTP request as the bridge hands it to a backend (parseMessage of encodeRequest). */
export function httpRequest(opts: RequestOptions = {}): HttpRequest {
  const uri = opts.uri ?? '/';
  const [p = uri, q] = uri.split('?');
  const headers: Array<[string, HeaderValue]> = [['PATH', p], ['host', 'app.example'], ...(opts.headers ?? []), ['METHOD', opts.method ?? 'GET'], ['VERSION', opts.version ?? 'HTTP/1.1'], ['URI', uri]];
  if (q !== undefined) headers.push(['QUERY', q]);
  headers.push(['PATTERN', '/'], ['URL_SCHEME', opts.scheme ?? 'http'], ['REMOTE_ADDR', opts.remoteAddr ?? '127.0.0.1']);
  const msg = parseMessage(encodeRequest({ sender: 'srv', connId: opts.connId ?? 7, path: p, headers, body: opts.body }));
  if (msg.kind !== 'http') throw new Error(`not an http request: ${msg.kind}`);
  return msg;
}

/** The backend arguments for a request with an optional body (streamed in 64 KiB pieces). */
export function backendRequest(opts: RequestOptions & { signal?: AbortSignal; bodyLength?: number | null } = {}): {
  req: HttpRequest;
  body: Readable | null;
  bodyLength: number | undefined;
  signal: AbortSignal;
} {
  const data = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const headers = [...(opts.headers ?? [])];
  if (data && !headers.some(([k]) => k === 'content-length')) headers.push(['content-length', String(data.length)]);
  // Large bodies reach the bridge as uploads; keep the message body empty then, as Mongrel2 would.
  const req = httpRequest({ ...opts, headers, body: data && data.length <= 1024 * 1024 ? data : undefined });
  const body = data ? Readable.from(pieces(data, 64 * 1024)) : null;
  const bodyLength = opts.bodyLength === null ? undefined : opts.bodyLength ?? data?.length ?? 0;
  return { req, body, bodyLength, signal: opts.signal ?? new AbortController().signal };
}

function* pieces(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function collect(body: Readable | null): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

/** A promise with its resolve function, for the test and the app to wait on each other. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** The next chunk a body yields, keeping the iterator for the rest. */
export function chunks(body: Readable): { next(): Promise<string>; rest(): Promise<string> } {
  const it = body[Symbol.asyncIterator]();
  return {
    async next() {
      const r = await it.next();
      if (r.done) throw new Error('body ended');
      return (r.value as Buffer).toString();
    },
    async rest() {
      let text = '';
      for (;;) {
        const r = await it.next();
        if (r.done) return text;
        text += (r.value as Buffer).toString();
      }
    },
  };
}

export function header(headers: ReadonlyArray<readonly [string, string]>, name: string): string[] {
  return headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** A logger whose records the test can inspect. */
export function memoryLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  );
  return { logger, records };
}

/**
 * Waits (a bounded number of event-loop turns, no timers) until every
 * request's socket has been torn down: that happens a tick or two after a
 * response's body has ended.
 */
export async function assertAllClosed(backend: { readonly inflight: number }): Promise<void> {
  for (let turns = 0; backend.inflight > 0 && turns < 100; turns++) await new Promise((r) => setImmediate(r));
  if (backend.inflight !== 0) throw new Error(`${backend.inflight} request(s) left open`);
}
