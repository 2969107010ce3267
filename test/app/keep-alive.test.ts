/**
 * AppBackend keeps one in-memory socket per Mongrel2 connection id between
 * its requests, as Node's server keeps a real client's connection alive:
 * the next request of that connection reads on from the same socket; a
 * disconnect, a response that closes, another client address or a request
 * body the app left unread each end it.
 */
import { test, describe, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { AppBackend } from '../../adapters/app.js';
import { assertAllClosed, backendRequest, collect, memoryLogger, type RequestOptions } from './helpers.js';

describe('AppBackend keep-alive per Mongrel2 connection', () => {
  const { logger } = memoryLogger();
  const sockets = new Map<Socket, number>();
  const events: string[] = [];
  function handler(req: IncomingMessage, res: ServerResponse): void {
    if (!sockets.has(req.socket)) sockets.set(req.socket, sockets.size + 1);
    const n = sockets.get(req.socket)!;
    req.on('close', () => events.push(`req close ${req.url}`));
    res.on('close', () => events.push(`res close ${req.url} ended=${res.writableEnded}`));
    if (req.url === '/close') res.setHeader('Connection', 'close');
    if (req.url === '/ignore-body') {
      res.end(`socket ${n}`);
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => res.end(`socket ${n} body ${Buffer.concat(parts).length}`));
  }
  const backend = new AppBackend({ handler, logger });
  afterEach(() => assertAllClosed(backend));
  after(() => backend.close());

  async function get(opts: RequestOptions): Promise<string> {
    const res = await backend.handle(backendRequest(opts));
    return (await collect(res.body)).toString();
  }

  test('requests of one connection share a socket, another connection gets its own; req and res still close after each response', async () => {
    events.length = 0;
    assert.equal(await get({ connId: 100, uri: '/a' }), 'socket 1 body 0');
    assert.equal(await get({ connId: 100, uri: '/b', method: 'POST', body: 'xyz' }), 'socket 1 body 3');
    assert.equal(await get({ connId: 101, uri: '/c' }), 'socket 2 body 0');
    assert.equal(await get({ connId: 100, uri: '/d' }), 'socket 1 body 0');
    assert.equal(backend.inflight, 0, 'a kept socket is not a request in flight');
    await new Promise((r) => setImmediate(r));
    for (const url of ['/a', '/b', '/c', '/d']) {
      assert.ok(events.includes(`req close ${url}`), `${url}: ${events.join(', ')}`);
      assert.ok(events.includes(`res close ${url} ended=true`), `${url}: ${events.join(', ')}`);
    }
  });

  test('a disconnect notice drops the kept socket, also one arriving as the response ends: the next request of that id is a new connection', async () => {
    const before = sockets.size + 1;
    assert.equal(await get({ connId: 200 }), `socket ${before} body 0`);
    assert.equal(await get({ connId: 200 }), `socket ${before} body 0`);
    backend.disconnected(200);
    assert.equal(await get({ connId: 200 }), `socket ${before + 1} body 0`);
    await new Promise((r) => setImmediate(r));
    backend.disconnected(200);
    assert.equal(await get({ connId: 200 }), `socket ${before + 2} body 0`);
  });

  test('a response with Connection: close, HTTP/1.0, another client address and an unread body each end the socket', async () => {
    const fresh = (): string => `socket ${sockets.size + 1}`;
    let want = fresh();
    assert.equal(await get({ connId: 300, uri: '/close' }), `${want} body 0`);
    want = fresh();
    assert.equal(await get({ connId: 300, version: 'HTTP/1.0' }), `${want} body 0`);
    want = fresh();
    assert.equal(await get({ connId: 300, version: 'HTTP/1.0' }), `${want} body 0`);
    want = fresh();
    assert.equal(await get({ connId: 300 }), `${want} body 0`);
    want = fresh();
    assert.equal(await get({ connId: 300, remoteAddr: '10.0.0.9' }), `${want} body 0`);
    assert.equal(await get({ connId: 300, remoteAddr: '10.0.0.9', uri: '/ignore-body', method: 'POST', body: 'x'.repeat(200_000) }), `socket ${sockets.size}`);
    want = fresh();
    assert.equal(await get({ connId: 300, remoteAddr: '10.0.0.9' }), `${want} body 0`);
  });

  test('a kept socket ended while idle is forgotten: the next request gets a new one', async () => {
    const b = new AppBackend({ handler, logger });
    const res = await b.handle(backendRequest({ connId: 400 }));
    await collect(res.body);
    const [socket] = [...sockets.keys()].slice(-1);
    socket!.destroy();
    assert.equal(await (async () => (await collect((await b.handle(backendRequest({ connId: 400 }))).body)).toString())(), `socket ${sockets.size} body 0`);
    assert.notEqual([...sockets.keys()].slice(-1)[0], socket);
    await b.close();
  });
});
