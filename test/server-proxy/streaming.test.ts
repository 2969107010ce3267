/** ProxyHandler streaming: 10 MB both ways with bounded buffering, client aborts, websocket upgrade through the raw socket. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { parseHead } from '../../src/server/http/request-parser.js';
import { collect, get, httpBackend, proxyTo, rawBackend, request, requestHead, until } from './helpers.js';

const MB = 1024 * 1024;
const SIZE = 10 * MB;
const CHUNK = 64 * 1024;

/** SIZE deterministic bytes, produced only when pulled; `produced` counts them. */
function source(): { stream: Readable; produced: () => number; sha: string } {
  const block = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) block[i] = (i * 31 + 7) & 0xff;
  let produced = 0;
  const hash = createHash('sha256');
  for (let n = 0; n < SIZE; n += CHUNK) hash.update(block);
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (produced >= SIZE) return void this.push(null);
      produced += CHUNK;
      this.push(Buffer.from(block));
    },
  });
  return { stream, produced: () => produced, sha: hash.digest('hex') };
}

test('10 MB up and back down through a node:http echo: intact, and buffering stays bounded both ways', async (t) => {
  const backend = await httpBackend(t, (req, res) => {
    res.setHeader('Content-Length', String(req.headers['content-length']));
    req.pipe(res);
  });
  const proxy = proxyTo(t, backend.port);
  // What the proxy has queued on its backend socket (beyond the kernel's buffers) is its own memory use.
  let maxQueued = 0;
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>): boolean {
    const ok = write.apply(this, args);
    if (this.remotePort === backend.port) maxQueued = Math.max(maxQueued, this.writableLength);
    return ok;
  } as net.Socket['write'];
  t.after(() => (net.Socket.prototype.write = write));
  const up = source();
  const head = requestHead(`POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: ${SIZE}\r\n\r\n`);
  const res = await proxy.forward(request(head, { body: up.stream, bodyLength: SIZE }));
  assert.equal(res.status, 200);
  const body = res.body!;
  const hash = createHash('sha256');
  let received = 0;
  let maxBuffered = 0;
  // A slow reader: one chunk per millisecond at most (slowness, not synchronisation).
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    received += (chunk as Buffer).length;
    maxBuffered = Math.max(maxBuffered, body.readableLength);
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(received, SIZE);
  assert.equal(res.bytes, SIZE);
  assert.equal(hash.digest('hex'), up.sha);
  // The relay holds at most its high-water mark plus one socket read.
  assert.ok(maxBuffered <= 192 * 1024, `relay buffered ${maxBuffered} bytes`);
  // The request body is paused whenever the backend socket is full: one source chunk over its high-water mark at most.
  assert.ok(maxQueued > 0 && maxQueued <= 16 * 1024 + CHUNK, `backend socket queued ${maxQueued} bytes`);
  assert.equal(up.produced(), SIZE);
  assert.equal(backend.connections, 1);
  assert.equal(proxy.idleConnections, 1);
});

test('a reader that stops: the backend socket is paused, the relay holds no more than its high-water mark', async (t) => {
  let finished = false;
  const backend = await httpBackend(t, (_req, res) => {
    res.setHeader('Content-Length', String(SIZE));
    source().stream.pipe(res).on('finish', () => (finished = true));
  });
  const proxy = proxyTo(t, backend.port);
  let paused = 0;
  const pause = net.Socket.prototype.pause;
  net.Socket.prototype.pause = function (this: net.Socket): net.Socket {
    if (this.remotePort === backend.port) paused++;
    return pause.call(this);
  };
  t.after(() => (net.Socket.prototype.pause = pause));
  const res = await proxy.forward(request(get()));
  const body = res.body!;
  // Not reading: either the proxy pauses the backend, or (no backpressure) the whole body piles up in the relay.
  await until(() => paused > 0 || finished, 'the proxy to pause the backend socket');
  const stalled = body.readableLength;
  let received = 0;
  for await (const chunk of body) received += (chunk as Buffer).length;
  assert.equal(received, SIZE);
  assert.ok(paused > 0, 'the backend socket was paused');
  assert.ok(stalled <= 192 * 1024, `relay held ${stalled} bytes while nobody read`);
});

test('client gone while waiting for the head: 502 result and the backend socket is closed', async (t) => {
  let closed = 0;
  const backend = await rawBackend(t, (s) => s.on('close', () => closed++));
  const proxy = proxyTo(t, backend.port);
  const abort = new AbortController();
  const pending = proxy.forward(request(get(), { signal: abort.signal }));
  await until(() => backend.heads.length === 1, 'the request at the backend');
  abort.abort();
  const res = await pending;
  assert.equal(res.status, 502);
  assert.match(res.error ?? '', /client went away/);
  await until(() => closed === 1, 'the backend socket to close');
});

test('client gone mid-body (signal, or the caller destroying the body): the backend socket is closed, not pooled', async (t) => {
  let closed = 0;
  const backend = await rawBackend(t, (s) => {
    s.on('close', () => closed++);
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nfirst bytes');
  });
  const proxy = proxyTo(t, backend.port);
  const abort = new AbortController();
  const a = await proxy.forward(request(get(), { signal: abort.signal }));
  await once(a.body!, 'readable');
  abort.abort();
  await until(() => closed === 1, 'the backend socket to close (signal)');
  const b = await proxy.forward(request(get()));
  b.body!.destroy();
  await until(() => closed === 2, 'the backend socket to close (body destroyed)');
  assert.equal(proxy.idleConnections, 0);
  assert.equal(backend.connections, 2);
});

test('websocket upgrade: 101 hands over the raw backend socket; a ws client echoes through it', async (t) => {
  const backend = await httpBackend(t, (_req, res) => res.end('not a websocket'));
  const wss = new WebSocketServer({ server: backend.server });
  let upgradeHeaders: http.IncomingHttpHeaders | undefined;
  wss.on('connection', (ws, req) => {
    upgradeHeaders = req.headers;
    ws.send('welcome'); // sent right after the 101: may arrive in the same read as the head
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo: ${String(data)}`));
  });
  t.after(() => wss.close());
  const proxy = proxyTo(t, backend.port);

  // A minimal front server doing what client.ts does with the result.
  const front = net.createServer((client) => {
    client.once('data', async (chunk: Buffer) => {
      const parsed = parseHead(chunk, 0);
      if (parsed.kind !== 'request') return void client.destroy();
      const res = await proxy.forward(request(parsed.head));
      client.write(res.head);
      if (!res.upgrade) return void client.end();
      const { socket, head } = res.upgrade;
      client.write(head);
      socket.pipe(client).on('error', () => undefined);
      client.pipe(socket);
      client.on('close', () => socket.destroy());
      socket.on('close', () => client.destroy());
    });
    client.on('error', () => undefined);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  t.after(() => new Promise<void>((r) => front.close(() => r())));
  const port = (front.address() as net.AddressInfo).port;

  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
  const messages: string[] = [];
  ws.on('message', (d) => messages.push(String(d)));
  await once(ws, 'open');
  ws.send('hello');
  await until(() => messages.length === 2, 'the welcome and the echo');
  assert.deepEqual(messages, ['welcome', 'echo: hello']);
  assert.equal(upgradeHeaders?.upgrade, 'websocket');
  assert.equal(upgradeHeaders?.connection, 'Upgrade');
  assert.equal(upgradeHeaders?.['x-forwarded-for'], '10.1.2.3');
  ws.close();
  await once(ws, 'close');
  assert.equal(proxy.idleConnections, 0, 'an upgraded socket never goes back to the pool');
});

test('a 101 to a request that asked for no upgrade is a bad gateway', async (t) => {
  const backend = await rawBackend(t, (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
  const res = await proxyTo(t, backend.port).forward(request(get()));
  assert.equal(res.status, 502);
  assert.match(res.error ?? '', /101/);
  assert.equal((await collect(res)).body.length, 0);
});
