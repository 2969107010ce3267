/**
 * m2bridge --app and mount(): an Express app behind the real Mongrel2, served
 * on Node's own IncomingMessage/ServerResponse, compared with the same app on
 * node:http.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { pino } from 'pino';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { startBridge, type BridgeProcess } from '../support/m2bridge.js';
import { mount, type Mounted } from '../../adapters/mount.js';

const EXPRESS_APP = fileURLToPath(new URL('../app/fixtures/express-app.ts', import.meta.url));

function get(port: number, p: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('m2bridge --app behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let bridge: BridgeProcess;

  before(async () => {
    peer = await startMongrel2({ rootRoute: true });
    bridge = await startBridge(['--app', EXPRESS_APP, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--log-level', 'info']);
  });

  after(async () => {
    await bridge?.stop();
    await peer?.stop();
  });

  test('an Express route answers, with req.ip from Mongrel2', async () => {
    const res = await get(peer.httpPort, '/who');
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { kind: 'express', ip: '127.0.0.1' });
  });

  test("Express's own 404 comes through", async () => {
    const res = await get(peer.httpPort, '/nope');
    assert.equal(res.status, 404);
  });

  test('SIGTERM: exit 0', async () => {
    assert.equal(await bridge.stop(), 0);
  });
});

describe('mount() behind the real Mongrel2 gives what node:http gives', () => {
  let peer: Mongrel2Peer;
  let mounted: Mounted;
  let direct: http.Server;
  let directPort: number;
  const app = express();
  app.use(express.json());
  app.get('/hello', (req, res) => {
    res.set('X-Custom', 'yes').cookie('a', '1').cookie('b', '2').send(`hello ${String(req.query.name)}`);
  });
  app.post('/echo', (req, res) => {
    res.status(201).json({ got: req.body as unknown });
  });

  before(async () => {
    peer = await startMongrel2({ rootRoute: true });
    mounted = mount(app, { sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
    await mounted.ready();
    direct = http.createServer(app).listen(0, '127.0.0.1');
    await once(direct, 'listening');
    directPort = (direct.address() as { port: number }).port;
  });

  after(async () => {
    await mounted?.close(1000);
    direct?.close();
    await peer?.stop();
  });

  for (const [name, p, init] of [
    ['GET with a query and cookies', '/hello?name=zed', {}],
    ['POST JSON', '/echo', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"x":[1,2]}' }],
    ['404', '/missing', {}],
  ] as const) {
    test(name, async () => {
      const [a, b] = await Promise.all([get(peer.httpPort, p, init), get(directPort, p, init)]);
      assert.equal(a.status, b.status);
      assert.equal(a.body, b.body);
      for (const h of ['content-type', 'content-length', 'set-cookie', 'x-custom', 'etag', 'x-powered-by']) assert.deepEqual(a.headers[h], b.headers[h], h);
    });
  }
});
