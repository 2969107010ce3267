/**
 * End to end: an Express app behind a real Connection + Bridge, with the
 * in-process stand-in for Mongrel2's sockets. The raw bytes that would go to
 * the client are checked as they leave the handler.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import { pino } from 'pino';
import { Connection } from '../../src/handler/connection.js';
import { Bridge } from '../../src/bridge/bridge.js';
import { encodeRequest, parseReply, type HeaderValue } from '../../src/protocol/index.js';
import { AppBackend, detectApp } from '../../adapters/app.js';
import { FakeServer } from '../support/fake-server.js';
import { assertAllClosed, gate } from './helpers.js';

const SENDER = 'srv-e2e';

function request(connId: number, opts: { method?: string; uri?: string; headers?: Array<[string, HeaderValue]>; body?: string } = {}): Buffer {
  const uri = opts.uri ?? '/';
  const [p = uri, q] = uri.split('?');
  const headers: Array<[string, HeaderValue]> = [['PATH', p], ['host', 'localhost:6767'], ...(opts.headers ?? []), ['METHOD', opts.method ?? 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', uri]];
  if (q !== undefined) headers.push(['QUERY', q]);
  headers.push(['PATTERN', '/'], ['URL_SCHEME', 'http'], ['REMOTE_ADDR', '192.0.2.10']);
  return encodeRequest({ sender: SENDER, connId, path: p, headers, body: opts.body });
}

/** The raw bytes one connection receives until `done` says the response is complete. */
async function collect(srv: FakeServer, done: (text: string) => boolean): Promise<string> {
  let text = '';
  while (!done(text)) {
    const r = parseReply(await srv.nextReply());
    if (r.type === 'data') text += r.body.toString('latin1');
  }
  return text;
}

describe('Bridge + AppBackend + Express, behind a stand-in Mongrel2', () => {
  let srv: FakeServer;
  let bridge: Bridge;
  let backend: AppBackend;
  const streamGate = gate();
  const holdClosed = gate<{ reqDestroyed: boolean; writableEnded: boolean }>();

  beforeEach(async () => {
    const app = express();
    app.use(express.json());
    app.post('/api/items', (req, res) => {
      res.status(201).set('X-Seen-Ip', req.ip ?? '').json({ created: req.body as unknown, q: req.query.v });
    });
    app.get('/events', async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: a\n\n');
      await streamGate.promise;
      res.end('data: b\n\n');
    });
    app.get('/hold', (req, res) => {
      res.on('close', () => holdClosed.open({ reqDestroyed: req.destroyed, writableEnded: res.writableEnded }));
      res.type('text/plain').write('held open');
    });
    srv = await FakeServer.start();
    const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: pino({ level: 'silent' }) });
    await conn.ready();
    backend = new AppBackend({ handler: detectApp(app)!, logger: pino({ level: 'silent' }) });
    bridge = new Bridge({ connection: conn, backend, logger: pino({ level: 'silent' }) });
    void bridge.run();
  });

  afterEach(async () => {
    await bridge.drain(1000); // also closes the backend
    await srv.close();
  });

  test('a POST with JSON: one reply with the exact response bytes', async () => {
    const body = '{"name":"widget"}';
    await srv.send(request(1, { method: 'POST', uri: '/api/items?v=2', headers: [['content-type', 'application/json'], ['content-length', String(body.length)]], body }));
    const reply = parseReply(await srv.nextReply());
    assert.deepEqual(reply.ids, [1]);
    assert.equal(reply.type, 'data');
    const text = reply.type === 'data' ? reply.body.toString('latin1') : '';
    const json = '{"created":{"name":"widget"},"q":"2"}';
    const date = /\r\nDate: ([^\r]+)\r\n/.exec(text)?.[1] ?? 'missing';
    const etag = /\r\nETag: ([^\r]+)\r\n/.exec(text)?.[1] ?? 'missing';
    assert.equal(
      text,
      'HTTP/1.1 201 Created\r\n' +
        'X-Powered-By: Express\r\n' +
        'X-Seen-Ip: 192.0.2.10\r\n' +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${json.length}\r\n` +
        `ETag: ${etag}\r\n` +
        `Date: ${date}\r\n` +
        '\r\n' +
        json,
    );
    assert.equal(srv.pending, 0, 'one reply, no close message');
  });

  test('SSE through the bridge: chunked to the client, the first event sent before the app writes the next', async () => {
    await srv.send(request(2, { uri: '/events' }));
    const first = await collect(srv, (t) => t.includes('data: a'));
    assert.match(first, /^HTTP\/1\.1 200 OK\r\nX-Powered-By: Express\r\nContent-Type: text\/event-stream\r\nDate: [^\r]+\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: a\n\n\r\n$/);
    streamGate.open();
    const rest = await collect(srv, (t) => t.endsWith('0\r\n\r\n'));
    assert.equal(rest, '9\r\ndata: b\n\n\r\n0\r\n\r\n');
  });

  test('a Mongrel2 disconnect notice closes the app’s connection mid-response', async () => {
    await srv.send(request(3, { uri: '/hold' }));
    assert.match(await collect(srv, (t) => t.includes('held open')), /\r\n\r\n9\r\nheld open\r\n$/);
    await srv.send(encodeRequest({ sender: SENDER, connId: 3, path: '@*', headers: [['METHOD', 'JSON']], body: JSON.stringify({ type: 'disconnect' }) }));
    assert.deepEqual(await holdClosed.promise, { reqDestroyed: true, writableEnded: false });
    await assertAllClosed(bridge);
    await assertAllClosed(backend);
  });
});
