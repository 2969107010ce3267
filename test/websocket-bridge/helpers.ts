/**
 * Helpers for the websocket tunnel tests: Mongrel2's websocket messages
 * built as the server sends them, a view of what one client connection
 * receives, and a scripted TCP "backend server" behind a fake upgrade().
 */
import net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { encodeRequest, parseFrame, parseReply, websocketAccept, type Frame, type HeaderValue } from '../../src/protocol/index.js';
import type { Backend, BackendResponse, BackendUpgradeRequest } from '../../src/bridge/backend.js';
import type { FakeServer } from '../support/fake-server.js';

export const SENDER = 'srv-ws';

export interface HandshakeOptions {
  path?: string;
  protocol?: string;
  credits?: number;
  key?: string;
}

function wsHeaders(connId: number, opts: HandshakeOptions): Array<[string, HeaderValue]> {
  const p = opts.path ?? '/ws';
  const headers: Array<[string, HeaderValue]> = [
    ['PATH', p],
    ['host', 'localhost'],
    ['upgrade', 'websocket'],
    ['connection', 'Upgrade'],
    ['sec-websocket-key', opts.key ?? keyFor(connId)],
    ['sec-websocket-version', '13'],
  ];
  if (opts.protocol !== undefined) headers.push(['sec-websocket-protocol', opts.protocol]);
  if (opts.credits !== undefined) headers.push(['DOWNLOAD_CREDITS', String(opts.credits)]);
  headers.push(['VERSION', 'HTTP/1.1'], ['URI', p], ['PATTERN', '/'], ['URL_SCHEME', 'http'], ['REMOTE_ADDR', '127.0.0.1']);
  return headers;
}

export function keyFor(connId: number): string {
  return Buffer.from(`key-${connId}`.padEnd(16, '.')).toString('base64');
}

/** A WEBSOCKET_HANDSHAKE message; the body is the accept value Mongrel2 computes. */
export function handshake(connId: number, opts: HandshakeOptions = {}): Buffer {
  const key = opts.key ?? keyFor(connId);
  return encodeRequest({ sender: SENDER, connId, path: opts.path ?? '/ws', headers: [...wsHeaders(connId, opts), ['METHOD', 'WEBSOCKET_HANDSHAKE']], body: websocketAccept(key) });
}

/** A WEBSOCKET message: one client frame, FLAGS as Mongrel2 prints them. */
export function wsMessage(connId: number, flags: number, payload: Buffer | string, opts: HandshakeOptions = {}): Buffer {
  return encodeRequest({
    sender: SENDER,
    connId,
    path: opts.path ?? '/ws',
    headers: [...wsHeaders(connId, opts), ['METHOD', 'WEBSOCKET'], ['FLAGS', `0x${flags.toString(16).toUpperCase()}`]],
    body: typeof payload === 'string' ? Buffer.from(payload) : payload,
  });
}

/** A plain HTTP GET. */
export function httpGet(connId: number, p: string): Buffer {
  return encodeRequest({
    sender: SENDER,
    connId,
    path: p,
    headers: [['PATH', p], ['host', 'localhost'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', p], ['PATTERN', '/'], ['URL_SCHEME', 'http'], ['REMOTE_ADDR', '127.0.0.1']],
  });
}

export function notice(connId: number, type: 'disconnect' | 'credits', credits?: number): Buffer {
  const headers: Array<[string, HeaderValue]> = [['METHOD', 'JSON']];
  if (credits !== undefined) headers.push(['DOWNLOAD_CREDITS', String(credits)]);
  return encodeRequest({ sender: SENDER, connId, path: '@*', headers, body: JSON.stringify({ type }) });
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/** What the client of one connection id has been sent, parsed as it arrives. */
export class ClientView {
  bytes = Buffer.alloc(0);
  closed = false;
  messages = 0;
  /** Bytes of each data message, in order. */
  readonly sizes: number[] = [];
  constructor(
    readonly srv: FakeServer,
    readonly connId: number,
  ) {}

  /** Takes replies until `done()` holds (replies for other ids are an error). */
  async until(done: (v: this) => boolean, timeoutMs = 5000): Promise<this> {
    while (!done(this)) {
      const r = parseReply(await this.srv.nextReply(timeoutMs));
      if (!r.ids.includes(this.connId)) throw new Error(`a reply for ids ${r.ids.join(',')}, expected ${this.connId}`);
      this.messages++;
      if (r.type === 'close') this.closed = true;
      else if (r.type === 'data') {
        if (this.closed) throw new Error('data after the close message');
        this.bytes = Buffer.concat([this.bytes, r.body]);
        this.sizes.push(r.body.length);
      } else throw new Error(`unexpected ${r.type} reply`);
    }
    return this;
  }

  get headEnd(): number {
    const at = this.bytes.indexOf('\r\n\r\n');
    return at < 0 ? -1 : at + 4;
  }

  get head(): string {
    return this.headEnd < 0 ? '' : this.bytes.toString('latin1', 0, this.headEnd);
  }

  /** The frames after the head (complete ones only). */
  get frames(): Frame[] {
    return framesIn(this.bytes.subarray(Math.max(0, this.headEnd)));
  }

  /** Waits for the head and `n` frames after it. */
  frameCount(n: number): Promise<this> {
    return this.until((v) => v.headEnd >= 0 && v.frames.length >= n);
  }
}

export function framesIn(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let at = 0;
  for (;;) {
    const f = parseFrame(buf.subarray(at));
    if (!f) return out;
    out.push(f);
    at += f.length;
  }
}

/** A server frame (unmasked) or a client frame (masked). */
export function frame(opcode: number, payload: Buffer | string, opts: { fin?: boolean; rsv?: number; masked?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = opts.masked ? randomBytes(4) : undefined;
  const len = data.length;
  const head = len < 126 ? Buffer.from([0, len]) : len <= 0xffff ? Buffer.from([0, 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0, 127]), u64(len)]);
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  if (!mask) return Buffer.concat([head, data]);
  head[1]! |= 0x80;
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([head, mask, masked]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** One connection the fake backend server accepted: the request it got, then frames. */
export class Upstream {
  received = Buffer.alloc(0);
  ended = false;
  closed = false;
  readonly #waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.received = Buffer.concat([this.received, c]);
      this.#notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#notify();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits (bounded) until `cond` holds. */
  async until(cond: (u: this) => boolean, timeoutMs = 5000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('upstream condition not met in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this;
  }

  get requestEnd(): number {
    const at = this.received.indexOf('\r\n\r\n');
    return at < 0 ? -1 : at + 4;
  }

  get request(): string {
    return this.requestEnd < 0 ? '' : this.received.toString('latin1', 0, this.requestEnd);
  }

  /** Client frames after the request (complete ones). */
  get frames(): Frame[] {
    return framesIn(this.received.subarray(Math.max(0, this.requestEnd)));
  }

  frameCount(n: number): Promise<this> {
    return this.until((u) => u.requestEnd >= 0 && u.frames.length >= n);
  }

  /** Answers the upgrade with 101 and the right accept value for `key`. */
  accept(key: string, extra = ''): void {
    this.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n${extra}\r\n`);
  }
}

/**
 * A backend whose upgrade() connects to a local TCP server and writes a
 * stand-in request line; the test plays the server on the accepted socket.
 */
export class FakeUpgradeBackend implements Backend {
  readonly name = 'fake-upgrade';
  readonly upgrades: BackendUpgradeRequest[] = [];
  /** Set to make upgrade() fail. */
  failWith: Error | undefined;
  /** Set to hand back this stream instead of a TCP connection. */
  stream: (() => Duplex) | undefined;
  readonly #server = net.createServer();
  readonly #accepted: Upstream[] = [];
  readonly #all = new Set<net.Socket>();
  readonly #waiting: Array<(u: Upstream) => void> = [];
  closed = false;

  async start(): Promise<this> {
    this.#server.on('connection', (s) => {
      this.#all.add(s);
      s.on('close', () => this.#all.delete(s));
      const u = new Upstream(s);
      const w = this.#waiting.shift();
      if (w) w(u);
      else this.#accepted.push(u);
    });
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return this;
  }

  /** The next connection upgrade() made. */
  next(): Promise<Upstream> {
    const u = this.#accepted.shift();
    if (u) return Promise.resolve(u);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async handle(): Promise<BackendResponse> {
    return { status: 200, headers: [], body: null };
  }

  async upgrade(request: BackendUpgradeRequest): Promise<Duplex> {
    this.upgrades.push(request);
    if (this.failWith) throw this.failWith;
    if (this.stream) return this.stream();
    const { port } = this.#server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET ${request.req.path} HTTP/1.1\r\nsec-websocket-key: ${String(request.req.headers['sec-websocket-key'])}\r\n\r\n`);
    return socket;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.#all) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Waits (bounded poll: there is no event for it) until `what.inflight` is 0. */
export async function untilIdle(what: { readonly inflight: number }, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (what.inflight > 0) {
    if (Date.now() > deadline) throw new Error(`still ${what.inflight} in flight`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
