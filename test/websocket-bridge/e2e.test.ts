/**
 * Websockets through the REAL Mongrel2 and the bridge, with a `ws` client:
 * an in-process ws server (handleUpgrade on the app's http.Server), Express
 * and ws on one server, and an upstream ws server through HttpBackend.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import express from 'express';
import { pino } from 'pino';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { mount, type Mounted } from '../../adapters/mount.js';
import { HttpBackend } from '../../adapters/http.js';
import { Connection } from '../../src/handler/connection.js';
import { Bridge } from '../../src/bridge/bridge.js';

const silent = pino({ level: 'silent' });

/** An http.Server whose 'upgrade' listener hands every socket to ws, echoing each message. */
function echoServer(): http.Server {
  const server = http.createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true });
  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => echo(ws));
  });
  return server;
}

function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

/** A connected client and the messages it receives, in order. */
async function connect(url: string, opts: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<{ ws: WebSocket; next: () => Promise<{ data: Buffer; binary: boolean }> }> {
  const ws = new WebSocket(url, opts.protocols, opts);
  const queue: Array<{ data: Buffer; binary: boolean }> = [];
  const waiters: Array<{ resolve: (m: { data: Buffer; binary: boolean }) => void; reject: (err: Error) => void }> = [];
  let closed: Error | undefined;
  ws.on('message', (data: RawData, binary: boolean) => {
    const m = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), binary };
    const w = waiters.shift();
    if (w) w.resolve(m);
    else queue.push(m);
  });
  // A connection that dies fails the test instead of hanging it.
  ws.on('close', (code: number) => {
    closed = new Error(`the websocket closed (${code}) while a message was awaited`);
    for (const w of waiters.splice(0)) w.reject(closed);
  });
  await once(ws, 'open');
  return {
    ws,
    next: () => {
      const m = queue.shift();
      if (m) return Promise.resolve(m);
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
  };
}

async function closeWith(ws: WebSocket, code: number, reason: string): Promise<{ code: number; reason: string }> {
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  ws.close(code, reason);
  const [c, r] = await closed;
  return { code: c, reason: r.toString() };
}

/** Echo round trips every websocket test does: text, binary, 1 MB, close with a code. */
async function echoRoundTrips(url: string): Promise<void> {
  const { ws, next } = await connect(url);
  ws.send('hello ✓');
  assert.deepEqual(await next(), { data: Buffer.from('hello ✓'), binary: false });
  const bin = randomBytes(300);
  ws.send(bin);
  assert.deepEqual(await next(), { data: bin, binary: true });
  const big = randomBytes(1024 * 1024);
  ws.send(big);
  const got = await next();
  assert.equal(got.data.length, big.length);
  assert.ok(got.data.equals(big), '1 MB message intact');
  assert.deepEqual(await closeWith(ws, 4321, 'see you'), { code: 4321, reason: 'see you' });
}

for (const flowControl of [false, true]) {
  describe(`in-process ws app behind the real Mongrel2 (flow control ${flowControl ? 'on' : 'off'})`, () => {
    let peer: Mongrel2Peer;
    let mounted: Mounted;

    before(async () => {
      peer = await startMongrel2({ rootRoute: true, flowControl });
      mounted = mount(echoServer(), { sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: silent });
      await mounted.ready();
    });

    after(async () => {
      await mounted?.close(1000);
      await peer?.stop();
    });

    test('text, binary, a 1 MB message, close with a code', async () => {
      await echoRoundTrips(`ws://127.0.0.1:${peer.httpPort}/echo`);
    });

    test('permessage-deflate is negotiated end to end (RSV1 passes through Mongrel2)', async () => {
      const { ws, next } = await connect(`ws://127.0.0.1:${peer.httpPort}/echo`, { perMessageDeflate: true });
      assert.match(String(ws.extensions), /permessage-deflate/);
      const text = 'compress me '.repeat(1000);
      ws.send(text);
      assert.equal((await next()).data.toString(), text);
      ws.close();
      await once(ws, 'close');
    });

    test('many messages in a burst arrive in order', async () => {
      const { ws, next } = await connect(`ws://127.0.0.1:${peer.httpPort}/echo`);
      for (let i = 0; i < 500; i++) ws.send(`m${i}`);
      for (let i = 0; i < 500; i++) assert.equal((await next()).data.toString(), `m${i}`);
      ws.close(1000);
      await once(ws, 'close');
    });
  });
}

describe('Express and ws on one http.Server behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let mounted: Mounted;
  const app = express();
  app.get('/hello', (_req, res) => res.json({ from: 'express' }));
  const server = http.createServer(app);
  const wss = new WebSocketServer({ server, path: '/live' });
  wss.on('connection', (ws, req) => {
    ws.send(`welcome ${req.headers['sec-websocket-protocol'] ?? ''}`);
    echo(ws);
  });

  before(async () => {
    peer = await startMongrel2({ rootRoute: true });
    mounted = mount(server, { sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: silent });
    await mounted.ready();
  });

  after(async () => {
    await mounted?.close(1000);
    await peer?.stop();
  });

  test('an Express route and a websocket on the same server', async () => {
    const res = await fetch(`http://127.0.0.1:${peer.httpPort}/hello`);
    assert.deepEqual(await res.json(), { from: 'express' });
    const { ws, next } = await connect(`ws://127.0.0.1:${peer.httpPort}/live`, { protocols: ['chat.v1'] });
    assert.equal(ws.protocol, 'chat.v1');
    assert.equal((await next()).data.toString(), 'welcome chat.v1');
    ws.send('ping?');
    assert.equal((await next()).data.toString(), 'ping?');
    assert.deepEqual(await closeWith(ws, 1000, ''), { code: 1000, reason: '' });
  });

  test("a path ws does not serve: its 400 refusal reaches the client and the connection closes", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/elsewhere`);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(res.statusCode, 400);
    res.resume();
    ws.on('error', () => undefined);
  });
});

describe("mount(expressApp, { onUpgrade }) behind the real Mongrel2", () => {
  let peer: Mongrel2Peer;
  let mounted: Mounted;
  const app = express();
  app.get('/plain', (_req, res) => res.send('express'));
  const wss = new WebSocketServer({ noServer: true });

  before(async () => {
    peer = await startMongrel2({ rootRoute: true });
    mounted = mount(app, {
      sendSpec: peer.handler.sendSpec,
      recvSpec: peer.handler.recvSpec,
      logger: silent,
      onUpgrade: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => echo(ws)),
    });
    await mounted.ready();
  });

  after(async () => {
    await mounted?.close(1000);
    await peer?.stop();
  });

  test('a plain Express app gets websockets through the onUpgrade option', async () => {
    assert.equal(await (await fetch(`http://127.0.0.1:${peer.httpPort}/plain`)).text(), 'express');
    const { ws, next } = await connect(`ws://127.0.0.1:${peer.httpPort}/echo`);
    ws.send('through mount');
    assert.equal((await next()).data.toString(), 'through mount');
    assert.deepEqual(await closeWith(ws, 1000, ''), { code: 1000, reason: '' });
  });
});

describe('an upstream ws server through HttpBackend behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let upstream: WebSocketServer;
  let connection: Connection;
  let bridge: Bridge;

  before(async () => {
    upstream = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('echo') ? 'echo' : false),
      verifyClient: (info: { req: http.IncomingMessage }) => info.req.url !== '/forbidden',
    });
    await once(upstream, 'listening');
    upstream.on('connection', (ws) => echo(ws));
    const { port } = upstream.address() as { port: number };
    peer = await startMongrel2({ rootRoute: true });
    connection = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: silent });
    bridge = new Bridge({ connection, backend: new HttpBackend({ url: `http://127.0.0.1:${port}`, logger: silent }), logger: silent });
    void bridge.run();
    await connection.ready();
  });

  after(async () => {
    await bridge?.drain(1000);
    await peer?.stop();
    for (const ws of upstream?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  });

  test('text, binary, a 1 MB message, close with a code (seen by the upstream too)', async () => {
    const upstreamClosed = new Promise<{ code: number; reason: string }>((resolve) =>
      upstream.once('connection', (ws) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    );
    await echoRoundTrips(`ws://127.0.0.1:${peer.httpPort}/up`);
    assert.deepEqual(await upstreamClosed, { code: 4321, reason: 'see you' });
  });

  test('the subprotocol the upstream chose reaches the client', async () => {
    const { ws } = await connect(`ws://127.0.0.1:${peer.httpPort}/up`, { protocols: ['nope', 'echo'] });
    assert.equal(ws.protocol, 'echo');
    ws.close();
    await once(ws, 'close');
  });

  test("the upstream's refusal (401) is forwarded", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/forbidden`);
    ws.on('error', () => undefined);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(res.statusCode, 401);
    res.resume();
  });

  test('the upstream going away: the client gets a close frame (1001)', async () => {
    const { ws } = await connect(`ws://127.0.0.1:${peer.httpPort}/up`);
    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    for (const c of upstream.clients) c.terminate();
    const [code] = await closed;
    assert.ok(code === 1001 || code === 1011, `close code ${code}`);
  });
});
