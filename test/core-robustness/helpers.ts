/**
 * Shared tools for the core robustness suites: raw sockets with deadlines, a
 * raw 0MQ handler (PULL + PUB, as a Mongrel2 handler would be), and the
 * "still up and clean" check every abuse test ends with.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pull } from 'zeromq';
import type { Config } from '../../src/config/types.js';
import { parseMessage, type Message } from '../../src/protocol/request.js';
import type { CorePeer } from '../support/core.js';
import type { Mongrel2HandlerInfo } from '../support/mongrel2.js';
import { handlerTarget, serverRow } from '../support/config.js';
import { subscribedPublisher } from '../support/zmq.js';

export const HELLO = 'hello static\n';

/** Rejects after `ms` with `what` in the message; the timer never keeps the process alive. */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fail = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    timer.unref();
  });
  return Promise.race([p, fail]).finally(() => clearTimeout(timer));
}

/** Polls `cond` (cheap, in-process state) until it holds or `ms` pass. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** A socket whose bytes are collected and whose close is a promise (errors such as resets count as a close). */
export interface Probe {
  readonly sock: net.Socket;
  received(): Buffer;
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;
  /** True once the server ended its side (FIN or reset). */
  serverClosed(): boolean;
  /** Resolves when `pred(received)` holds; rejects after `ms` or if the socket closes first. */
  waitFor(pred: (got: Buffer) => boolean, ms: number, what: string): Promise<Buffer>;
}

export async function probe(port: number): Promise<Probe> {
  const sock = await connect(port);
  return watch(sock);
}

export function watch(sock: net.Socket): Probe {
  const chunks: Buffer[] = [];
  let ended = false;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    wake();
  });
  sock.on('error', () => {
    ended = true;
    wake();
  });
  sock.on('end', () => {
    ended = true;
    wake();
  });
  const closed = new Promise<void>((resolve) =>
    sock.once('close', () => {
      ended = true;
      wake();
      resolve();
    }),
  );
  const received = (): Buffer => Buffer.concat(chunks);
  return {
    sock,
    received,
    closed,
    serverClosed: () => ended,
    waitFor(pred, ms, what) {
      return deadline(
        new Promise<Buffer>((resolve, reject) => {
          const check = (): void => {
            const got = received();
            if (pred(got)) {
              waiters.delete(check);
              resolve(got);
            } else if (ended) {
              waiters.delete(check);
              reject(new Error(`socket closed before ${what}; got ${JSON.stringify(got.toString('latin1').slice(0, 200))}`));
            }
          };
          waiters.add(check);
          check();
        }),
        ms,
        what,
      );
    },
  };
}

/** Writes every chunk as a write of its own, yielding to the event loop between them; stops quietly once the socket is gone. */
export async function writeChunks(sock: net.Socket, chunks: readonly Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (sock.destroyed || !sock.writable) return;
    await new Promise<void>((resolve) => sock.write(c, () => resolve()));
  }
}

/** Splits `buf` into pieces at the given cut points (sorted, deduplicated, inside the buffer). */
export function splitAt(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].filter((c) => c > 0 && c < buf.length).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out.filter((b) => b.length > 0);
}

export function byteByByte(buf: Buffer): Buffer[] {
  return [...buf].map((b) => Buffer.from([b]));
}

/** Every HTTP response the core writes itself must start with a status line and carry a complete, well-framed head. */
export function assertWellFormedResponses(got: Buffer, what: string): number[] {
  const statuses: number[] = [];
  let off = 0;
  while (off < got.length) {
    const headEnd = got.indexOf('\r\n\r\n', off, 'latin1');
    const text = got.subarray(off, headEnd < 0 ? got.length : headEnd).toString('latin1');
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]+(\r\n[!-9;-~]+: [^\r\n]*)*$/.exec(text);
    assert.ok(headEnd >= 0 && m, `${what}: malformed response at byte ${off}: ${JSON.stringify(got.subarray(off, off + 300).toString('latin1'))}`);
    const status = Number(m[1]);
    statuses.push(status);
    const len = /\r\nContent-Length: (\d+)/i.exec(text);
    const bodyless = status === 100 || status === 304;
    assert.ok(bodyless || len, `${what}: response ${status} without Content-Length`);
    off = headEnd + 4 + (bodyless ? 0 : Number(len![1]));
    assert.ok(off <= got.length, `${what}: response ${status} body cut short`);
  }
  return statuses;
}

/** One of `valid` with one to four bytes replaced, inserted or deleted. */
export function mutationsOf(valid: readonly string[]): fc.Arbitrary<Buffer> {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete'));
  return fc.tuple(fc.constantFrom(...valid), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => {
    const arr = [...Buffer.from(text, 'latin1')];
    for (const [pos, byte, how] of edits) {
      const i = pos % (arr.length + 1);
      if (how === 'set' && i < arr.length) arr[i] = byte;
      else if (how === 'insert') arr.splice(i, 0, byte);
      else arr.splice(i, 1);
    }
    return Buffer.from(arr);
  });
}

/** Open file descriptors of this process (sockets, pipes, files). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A GET of the static file must give exactly the 200 and body, on a connection that stays open for a second request. */
export async function assertServesStatic(port: number): Promise<void> {
  const p = await probe(port);
  try {
    const req = 'GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n';
    for (const n of [1, 2]) {
      p.sock.write(req);
      const got = await p.waitFor((b) => countResponses(b) >= n, 5000, `static response ${n}`);
      const statuses = assertWellFormedResponses(got, 'static GET');
      assert.deepEqual(statuses, n === 1 ? [200] : [200, 200]);
      assert.ok(got.toString('latin1').endsWith(`\r\n\r\n${HELLO}`));
    }
  } finally {
    p.sock.destroy();
    await p.closed;
  }
}

/** Complete responses (with Content-Length or bodiless) at the start of `buf`. */
export function countResponses(buf: Buffer): number {
  let off = 0;
  let n = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (headEnd < 0) return n;
    const head = buf.subarray(off, headEnd).toString('latin1');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(head)?.[1] ?? NaN);
    const len = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    const bodyless = status === 100 || status === 204 || status === 304;
    if (!bodyless && !len) return n;
    off = headEnd + 4 + (bodyless ? 0 : Number(len![1]));
    if (off > buf.length) return n;
    n++;
  }
}

/** No connection left in the core's table. */
export async function assertNoClients(peer: CorePeer, ms = 5000): Promise<void> {
  await until(() => [...peer.server.clients()].length === 0, ms, `clients() empty (still ${JSON.stringify([...peer.server.clients()].map((c) => c.id))})`);
}

/** A handler as Mongrel2's manual has it: PULL requests, PUB replies. */
export interface RawHandler {
  readonly info: Mongrel2HandlerInfo;
  /** Next message, skipping nothing; rejects after `ms` (default 5 s). */
  next(ms?: number): Promise<Message>;
  /** Messages already received and not yet taken. */
  pending(): number;
  /** Next message that is not a disconnect notice (late notices from earlier abuse are skipped). */
  nextRequest(ms?: number): Promise<Message>;
  send(...parts: Array<string | Buffer>): Promise<void>;
  /** `SENDER LEN:ID, BODY` for one id. */
  reply(connId: number, body: string | Buffer): Promise<void>;
  close(): void;
}

/** Anything that serves HTTP and routes `info.route` to a handler: our core or the real Mongrel2. */
export interface HandlerPeer {
  readonly httpPort: number;
  readonly handler: Mongrel2HandlerInfo;
}

export async function rawHandler(peer: HandlerPeer, info: Mongrel2HandlerInfo = peer.handler): Promise<RawHandler> {
  const pull = new Pull({ linger: 0 });
  pull.connect(info.sendSpec);
  // Replies are lost until the server's SUB has our subscription.
  const pub = await subscribedPublisher(info.recvSpec).catch((err: unknown) => {
    pull.close();
    throw err;
  });
  // One receive loop feeds a queue, so a timed-out wait leaves no receive pending.
  const inbox: Array<Message | Error> = [];
  let wake: (() => void) | undefined;
  void (async () => {
    try {
      for await (const [frame] of pull) {
        try {
          inbox.push(parseMessage(frame!));
        } catch (err) {
          // The core must never send a message a handler cannot parse: surface it in the test.
          inbox.push(new Error(`unparseable message from the core: ${(err as Error).message}: ${frame!.toString('latin1').slice(0, 200)}`));
        }
        wake?.();
      }
    } catch {
      // closed
    }
  })();
  const next = async (ms = 5000): Promise<Message> => {
    const end = Date.now() + ms;
    while (inbox.length === 0) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no message from the core on ${info.sendSpec} within ${ms} ms`);
      await deadline(new Promise<void>((r) => (wake = r)), left, 'a handler message').catch(() => undefined);
    }
    const m = inbox.shift()!;
    if (m instanceof Error) throw m;
    return m;
  };
  const reply = (connId: number, body: string | Buffer): Promise<void> => {
    const id = String(connId);
    return pub.send(Buffer.concat([Buffer.from(`${info.sendIdent} ${id.length}:${id}, `, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]));
  };
  const h: RawHandler = {
    info,
    next,
    pending: () => inbox.length,
    async nextRequest(ms = 5000) {
      for (;;) {
        const m = await next(ms);
        if (m.kind !== 'disconnect') return m;
      }
    },
    send: (...parts) => pub.send(parts.length === 1 ? parts[0]! : parts),
    reply,
    close: () => {
      pull.close();
      pub.close();
    },
  };
  return h;
}

/** The next handler message is the disconnect notice for `connId`. */
export async function expectNotice(h: RawHandler, connId: number): Promise<void> {
  const m = await h.next();
  assert.deepEqual([m.kind, m.connId], ['disconnect', connId]);
}

/** One handler round trip: a request on a fresh connection, a 200 back, byte-exact. */
export async function assertHandlerAnswers(peer: HandlerPeer, h: RawHandler): Promise<void> {
  const p = await probe(peer.httpPort);
  try {
    p.sock.write(`GET ${h.info.route}/health HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const req = await h.nextRequest();
    assert.equal(req.path, `${h.info.route}/health`);
    const answer = 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy';
    await h.reply(req.connId, answer);
    const got = await p.waitFor((b) => b.length >= answer.length, 5000, 'the handler reply');
    assert.equal(got.toString('latin1'), answer);
  } finally {
    p.sock.destroy();
    await p.closed;
  }
  const notice = await h.next();
  assert.equal(notice.kind, 'disconnect');
}

/** A minimal one-host config: '/handler' to a handler on the given 0MQ ports, '/static/' to a Dir under the cwd. */
export function minimalConfig(ports: { http: number; send: number; recv: number }, over: { defaultHost?: string; routePath?: string; matching?: string; sendSpec?: string } = {}): Config {
  const handler = handlerTarget(1, { sendSpec: over.sendSpec ?? `tcp://127.0.0.1:${ports.send}`, recvSpec: `tcp://127.0.0.1:${ports.recv}` });
  return {
    server: serverRow({
      name: 'robustness',
      port: ports.http,
      defaultHost: over.defaultHost ?? 'localhost',
      hosts: [
        {
          id: 1,
          name: 'localhost',
          matching: over.matching ?? 'localhost',
          routes: [
            { id: 1, path: over.routePath ?? '/handler', target: handler },
            { id: 2, path: '/static/', target: { type: 'dir', id: 1, base: 'static/', indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 0 } },
          ],
        },
      ],
    }),
    settings: new Map(),
    mimetypes: new Map([['.txt', 'text/plain']]),
  };
}
