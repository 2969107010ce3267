/**
 * Test support for test/core-interop/uploads.test.ts: the same upload set-up
 * on the real Mongrel2 and on our core (upload.temp_store
 * '/tmp/upload.XXXXXX' inside the chroot, limits.content_length 2048), a
 * handler whose messages the test takes one by one, and a raw HTTP client
 * that can wait for `100 Continue` before it sends a body. Every wait ends on
 * an event or a deadline, never on a sleep.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Connection, type Request } from '../../src/handler/connection.js';
import type { DisconnectNotice } from '../../src/protocol/request.js';
import { startMongrel2, type Mongrel2HandlerInfo } from '../support/mongrel2.js';
import { startCore } from '../support/core.js';

export type ServerKind = 'mongrel2' | 'core';

export const SERVERS: ReadonlyArray<readonly [ServerKind, string]> = [
  ['mongrel2', 'real Mongrel2'],
  ['core', 'our core'],
];

/** limits.content_length of both servers (interop.conf.in, startCore's INTEROP_SETTINGS). */
export const CONTENT_LENGTH_LIMIT = 2048;

export interface UploadPeer {
  readonly kind: ServerKind;
  readonly httpPort: number;
  readonly handler: Mongrel2HandlerInfo;
  /** The chroot on disk. */
  readonly root: string;
  /** Where '/tmp/upload.XXXXXX' files land on disk. */
  readonly uploadDir: string;
  /** Disk path of a path the server announced (inside its chroot). */
  hostPath(announced: string): string;
  stop(): Promise<void>;
}

export async function startUploadPeer(kind: ServerKind, opts: { stream?: boolean } = {}): Promise<UploadPeer> {
  if (kind === 'mongrel2') {
    const m2 = await startMongrel2({ uploadStream: opts.stream });
    return { kind, httpPort: m2.httpPort, handler: m2.handler, root: m2.home, uploadDir: m2.uploadDir, hostPath: (p) => m2.hostPath(p), stop: () => m2.stop() };
  }
  const core = await startCore({ chroot: true, settings: { 'upload.temp_store': '/tmp/upload.XXXXXX', 'upload.stream': opts.stream ? '1' : '0' } });
  const uploadDir = path.join(core.home, 'tmp');
  try {
    await fsp.mkdir(uploadDir);
  } catch (err) {
    await core.stop();
    throw err;
  }
  return { kind, httpPort: core.httpPort, handler: core.handler, root: core.home, uploadDir, hostPath: (p) => path.join(core.home, p), stop: () => core.stop() };
}

/** A list that tests take items from, waiting (bounded) for one that matches. */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<() => void> = [];

  push(item: T): void {
    this.#items.push(item);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Whether an item matching `pred` is waiting now. */
  has(pred: (item: T) => boolean): boolean {
    return this.#items.some(pred);
  }

  /** Removes and returns the first item matching `pred`; rejects after `ms`, or when `signal` aborts. */
  async take(pred: (item: T) => boolean, what: string, ms = 10_000, signal?: AbortSignal): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const at = this.#items.findIndex(pred);
      if (at >= 0) return this.#items.splice(at, 1)[0]!;
      if (signal?.aborted) throw new Error(`stopped waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`not seen within ${ms} ms: ${what}`);
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      signal?.addEventListener('abort', stop, { once: true });
      await Promise.race([new Promise<void>((r) => this.#waiters.push(r)), sleep(left, undefined, { signal: ac.signal }).catch(() => undefined)]);
      signal?.removeEventListener('abort', stop);
      ac.abort();
    }
  }
}

/** Our TS handler on the peer's JSON route: the test takes each message and answers it itself. */
export class TestHandler {
  readonly conn: Connection;
  readonly requests = new Inbox<Request>();
  readonly disconnects = new Inbox<DisconnectNotice>();
  readonly #loop: Promise<void>;

  private constructor(peer: UploadPeer) {
    const conn = new Connection({
      sendSpec: peer.handler.sendSpec,
      recvSpec: peer.handler.recvSpec,
      logger: pino({ level: 'silent' }),
      uploads: { dir: peer.uploadDir, root: peer.root },
    });
    this.conn = conn;
    conn.on('disconnect', (n) => this.disconnects.push(n));
    this.#loop = (async () => {
      for (;;) {
        const req = await conn.recv();
        if (req === undefined) return;
        this.requests.push(req);
      }
    })();
  }

  /** Connects and proves both directions work with one GET. */
  static async start(peer: UploadPeer): Promise<TestHandler> {
    const h = new TestHandler(peer);
    try {
      await h.conn.ready();
      const client = await RawClient.open(peer.httpPort);
      client.write('GET /handler/warm HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const req = await h.requests.take((r) => r.path === '/handler/warm', 'the warm-up GET');
      await h.conn.replyHttp(req, 'warm');
      await client.response();
      client.destroy();
      await h.disconnects.take((n) => n.connId === req.connId, 'the warm-up disconnect');
    } catch (err) {
      await h.stop();
      throw err;
    }
    return h;
  }

  /** The next message on `path` (of `connId` when given). */
  next(urlPath: string, what: string, connId?: number, ms?: number, signal?: AbortSignal): Promise<Request> {
    return this.requests.take((r) => r.path === urlPath && (connId === undefined || r.connId === connId), what, ms, signal);
  }

  async stop(): Promise<void> {
    await this.conn.shutdown(200);
    await this.#loop;
  }
}

export interface HttpAnswer {
  status: number;
  head: string;
  body: Buffer;
}

/** A raw client connection that keeps everything it received. */
export class RawClient {
  #received = Buffer.alloc(0);
  readonly #changed = new Inbox<true>();
  #ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.#received = Buffer.concat([this.#received, d]);
      this.#changed.push(true);
    });
    sock.on('error', () => undefined); // resets show up as 'close'
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.#ended = true;
        this.#changed.push(true);
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  get received(): Buffer {
    return this.#received;
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(bytes: Buffer | string): void {
    this.sock.write(bytes);
  }

  /** Resolves once `pred(received)` holds; rejects on a deadline or when the server closed first. */
  async until(pred: (received: Buffer) => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (pred(this.#received)) return;
      if (this.#ended) throw new Error(`connection closed before ${what}; got ${JSON.stringify(this.#received.toString('latin1').slice(0, 300))}`);
      await this.#changed.take(() => true, `${what} within ${ms} ms`, Math.max(1, deadline - Date.now()));
    }
  }

  /** The first complete response after any `100 Continue`, by Content-Length. */
  async response(ms?: number): Promise<HttpAnswer> {
    let answer: HttpAnswer | undefined;
    await this.until((buf) => (answer = parseResponse(buf)) !== undefined, 'a complete response', ms);
    return answer!;
  }

  /** Resolves once the server closed the connection (rejects after `ms`). */
  async waitClosed(ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.#ended) await this.#changed.take(() => true, `the server closing the connection within ${ms} ms`, Math.max(1, deadline - Date.now()));
  }

  destroy(): void {
    this.sock.destroy();
  }
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

function parseResponse(buf: Buffer): HttpAnswer | undefined {
  let from = 0;
  while (buf.subarray(from, from + CONTINUE.length).toString('latin1') === CONTINUE) from += CONTINUE.length;
  const headEnd = buf.indexOf('\r\n\r\n', from, 'latin1');
  if (headEnd < 0) return undefined;
  const head = buf.subarray(from, headEnd).toString('latin1');
  const length = Number(/\r\ncontent-length:[ \t]*(\d+)/i.exec(head)?.[1] ?? 0);
  if (buf.length < headEnd + 4 + length) return undefined;
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? NaN), head, body: buf.subarray(headEnd + 4, headEnd + 4 + length) };
}

export interface UploadInit {
  path: string;
  /** Extra header lines, e.g. 'Transfer-Encoding: chunked'. Content-Length is added for `body` unless `chunks` is given. */
  headers?: string[];
  body?: Buffer;
  /** Sent as a chunked body, one HTTP chunk each. */
  chunks?: Buffer[];
  /**
   * Send `Expect: 100-continue` and the body only after `100 Continue`
   * (what curl does for big bodies). Default true: it keeps the real
   * Mongrel2 1.12.2 from corrupting 40 bytes of the temp file.
   */
  expectContinue?: boolean;
  /** Send only this many bytes of the (encoded) body; the rest never comes. */
  sendOnly?: number;
}

export function requestHead(init: UploadInit): string {
  const lines = [`POST ${init.path} HTTP/1.1`, 'Host: localhost', ...(init.headers ?? [])];
  if (init.chunks) lines.push('Transfer-Encoding: chunked');
  else lines.push(`Content-Length: ${init.body?.length ?? 0}`);
  if (init.expectContinue ?? true) lines.push('Expect: 100-continue');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export function chunkedBody(chunks: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of chunks) parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Opens a connection and sends the request (the body after `100 Continue` by default). */
export async function startUpload(port: number, init: UploadInit): Promise<RawClient> {
  const client = await RawClient.open(port);
  const head = requestHead(init);
  const whole = init.chunks ? chunkedBody(init.chunks) : (init.body ?? Buffer.alloc(0));
  const body = init.sendOnly === undefined ? whole : whole.subarray(0, init.sendOnly);
  if (init.expectContinue ?? true) {
    client.write(head);
    await client.until((b) => b.toString('latin1').startsWith(CONTINUE), '100 Continue');
    client.write(body);
  } else client.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  return client;
}

/** Bounded poll for a file the server removes on its own (an external process: no event to wait on). */
export async function removedWithin(file: string, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (fs.existsSync(file)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function listUploads(peer: UploadPeer): string[] {
  return fs.readdirSync(peer.uploadDir).filter((f) => f.startsWith('upload.'));
}
