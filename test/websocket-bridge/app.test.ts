/**
 * AppBackend.upgrade(): an in-process app's 'upgrade' listeners (ws's
 * handleUpgrade) served over the in-memory socket, through the bridge's
 * tunnel, behind the FakeServer stand-in for Mongrel2.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { pino } from 'pino';
import express from 'express';
import { WebSocketServer, type WebSocket } from 'ws';
import { Connection } from '../../src/handler/connection.js';
import { Bridge } from '../../src/bridge/bridge.js';
import { AppBackend, detectApp, type AppBackendOptions } from '../../adapters/app.js';
import { Opcode, parseClosePayload } from '../../src/protocol/index.js';
import { FakeServer } from '../support/fake-server.js';
import { ClientView, closePayload, handshake, httpGet, notice, untilIdle, wsMessage } from './helpers.js';

const silent = pino({ level: 'silent' });

interface Rig {
  srv: FakeServer;
  backend: AppBackend;
  bridge: Bridge;
}

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.bridge.drain(1000);
  await rig?.srv.close();
  rig = undefined;
});

async function start(app: unknown, options: Partial<AppBackendOptions> = {}): Promise<Rig> {
  const srv = await FakeServer.start();
  const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: silent });
  await conn.ready();
  const handler = detectApp(app);
  assert.ok(handler, 'an app');
  const backend = new AppBackend({ handler, logger: silent, ...options });
  const bridge = new Bridge({ connection: conn, backend, logger: silent });
  void bridge.run();
  rig = { srv, backend, bridge };
  return rig;
}

/** An http.Server whose 'upgrade' listener echoes every message with ws; `seen` records the requests. */
function echoServer(seen: http.IncomingMessage[] = []): http.Server {
  const server = http.createServer((_req, res) => res.end('plain http'));
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
    seen.push(req);
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  return server;
}

describe('AppBackend websocket upgrades', () => {
  test("ws's handleUpgrade on the exported http.Server: 101, echo, close with a code", async () => {
    const seen: http.IncomingMessage[] = [];
    const { srv, backend } = await start(echoServer(seen));
    await srv.send(handshake(1, { protocol: 'chat' }));
    const client = await new ClientView(srv, 1).until((v) => v.headEnd >= 0);
    assert.match(client.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.equal(seen[0]!.method, 'GET');
    assert.equal(seen[0]!.url, '/ws');
    assert.equal(seen[0]!.headers['sec-websocket-protocol'], 'chat');
    assert.equal(seen[0]!.socket.remoteAddress, '127.0.0.1');
    await srv.send(wsMessage(1, 0x81, 'hello'));
    await srv.send(wsMessage(1, 0x82, Buffer.from([0, 1, 2, 255])));
    await client.frameCount(2);
    assert.deepEqual(
      client.frames.map((f) => [f.opcode, f.payload.toString('hex')]),
      [
        [Opcode.Text, Buffer.from('hello').toString('hex')],
        [Opcode.Binary, '000102ff'],
      ],
    );
    await srv.send(wsMessage(1, 0x88, closePayload(4001, 'bye')));
    await client.until((v) => v.closed);
    assert.deepEqual(parseClosePayload(client.frames[2]!.payload), { code: 4001, reason: 'bye' });
    await untilIdle(backend);
  });

  test('ws ping is answered by the app; the app sees its socket close when the client disconnects', async () => {
    let closed!: Promise<number>;
    const server = http.createServer();
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) =>
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
      }),
    );
    const { srv, backend } = await start(server);
    await srv.send(handshake(2));
    const client = await new ClientView(srv, 2).until((v) => v.headEnd >= 0);
    await srv.send(wsMessage(2, 0x89, 'are you there'));
    await client.frameCount(1);
    assert.equal(client.frames[0]!.opcode, Opcode.Pong);
    assert.equal(client.frames[0]!.payload.toString(), 'are you there');
    await srv.send(notice(2, 'disconnect'));
    assert.equal(await closed, 1006);
    await untilIdle(backend);
  });

  test('the onUpgrade option serves an Express app; its plain routes still work', async () => {
    const app = express();
    app.get('/x', (_req, res) => res.send('express'));
    const wss = new WebSocketServer({ noServer: true });
    const { srv } = await start(app, {
      onUpgrade: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws: WebSocket) => ws.send('welcome')),
    });
    await srv.send(handshake(3));
    const client = await new ClientView(srv, 3).frameCount(1);
    assert.equal(client.frames[0]!.payload.toString(), 'welcome');
    await srv.send(httpGet(30, '/x'));
    const plain = await new ClientView(srv, 30).until((v) => v.headEnd >= 0 && v.bytes.length >= v.headEnd + 7);
    assert.match(plain.head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(plain.bytes.subarray(plain.headEnd).toString(), 'express');
  });

  test('a websocket-only http.Server is an app; its plain requests get 404', async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws: WebSocket) => ws.send('hi'));
    const { srv } = await start(server);
    await srv.send(handshake(31));
    assert.equal((await new ClientView(srv, 31).frameCount(1)).frames[0]!.payload.toString(), 'hi');
    await srv.send(httpGet(32, '/'));
    assert.match((await new ClientView(srv, 32).until((v) => v.headEnd >= 0)).head, /^HTTP\/1\.1 404 /);
  });

  test('an app with no upgrade listener answers 501 and closes', async () => {
    const { srv } = await start(express());
    await srv.send(handshake(4));
    const client = await new ClientView(srv, 4).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  });

  test("ws's own refusal (a bad Sec-WebSocket-Version) comes through as its 400", async () => {
    const { srv } = await start(echoServer());
    const msg = handshake(5).toString('latin1').replace('"sec-websocket-version":"13"', '"sec-websocket-version":"99"');
    const fixed = Buffer.from(msg, 'latin1');
    // The header netstring length is unchanged: same number of bytes.
    await srv.send(fixed);
    const client = await new ClientView(srv, 5).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(client.head, /\r\nSec-WebSocket-Version: 13, 8\r\n/i);
  });

  test('a listener that throws: 502, and the process lives on', async () => {
    const server = http.createServer();
    server.on('upgrade', () => {
      throw new Error('boom');
    });
    const { srv, backend } = await start(server);
    await srv.send(handshake(6));
    const client = await new ClientView(srv, 6).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    await untilIdle(backend);
  });
});
