/**
 * m2bridge --config behind the real Mongrel2: PHP (real php-fpm), an Express
 * app and an upstream HTTP server side by side behind ONE Mongrel2 handler,
 * chosen per request by PATTERN (the Mongrel2 route) or PATH prefix. Then a
 * route is moved by rewriting bridge.json and restarting the bridge.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { startPhpFpm, PHP_DOCROOT, type PhpFpm } from '../support/php-fpm.js';
import { startBridge, type BridgeProcess } from '../support/m2bridge.js';

const SITE_APP = fileURLToPath(new URL('./apps/site.ts', import.meta.url));

function get(port: number, p: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${p}: no answer within 10 s`)));
    req.on('error', reject);
  });
}

describe('m2bridge --config: one Mongrel2 handler, three backends', () => {
  let peer: Mongrel2Peer;
  let fpm: PhpFpm;
  let upstream: http.Server;
  let upstreamPort: number;
  let bridge: BridgeProcess | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2routes-'));
  const configFile = path.join(dir, 'bridge.json');

  const backends = (): Record<string, unknown> => ({
    php: { type: 'fcgi', address: fpm.addressText, root: PHP_DOCROOT, idle: 0 },
    web: { type: 'app', file: SITE_APP },
    api: { type: 'http', url: `http://127.0.0.1:${upstreamPort}/up` },
  });
  const start = (): Promise<BridgeProcess> =>
    startBridge(['--config', configFile, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--timeout', '5', '--log-level', 'info']);

  before(async () => {
    // rootRoute: Mongrel2 sends both '/' and '/handler' to the same JSON handler.
    [peer, fpm] = await Promise.all([startMongrel2({ rootRoute: true }), startPhpFpm({ workers: 2 })]);
    upstream = http.createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ app: 'upstream', url: req.url, xff: req.headers['x-forwarded-for'] ?? null }));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as { port: number }).port;
  });

  after(async () => {
    await bridge?.stop();
    upstream?.closeAllConnections();
    upstream?.close();
    await peer?.stop();
    await fpm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('PHP, Express and an HTTP upstream side by side, by PATTERN and prefix', async () => {
    fs.writeFileSync(
      configFile,
      JSON.stringify({
        backends: backends(),
        routes: [
          { pattern: '/handler', backend: 'api' },
          { prefix: '/app/', backend: 'web' },
          { prefix: '/', backend: 'php' },
        ],
      }),
    );
    bridge = await start();
    assert.match(bridge.log(), /"backends":\["php:fcgi","web:app","api:http"\]/);

    const php = await get(peer.httpPort, '/hello.php');
    assert.deepEqual([php.status, php.body], [200, 'Hello, World!']);
    const index = await get(peer.httpPort, '/');
    assert.deepEqual([index.status, index.body], [200, 'index']);

    const web = await get(peer.httpPort, '/app/who?x=1');
    assert.equal(web.status, 200);
    assert.deepEqual(JSON.parse(web.body), { app: 'express', path: '/app/who' });

    // Mongrel2's route '/handler' sets PATTERN: the pattern route wins over the
    // '/app/'-free path and over the catch-all prefix.
    const api = await get(peer.httpPort, '/handler/app/x?q=2');
    assert.equal(api.status, 200);
    assert.deepEqual(JSON.parse(api.body), { app: 'upstream', url: '/up/handler/app/x?q=2', xff: '127.0.0.1' });

    // The same FPM answers a missing script with its 404, through the catch-all.
    assert.equal((await get(peer.httpPort, '/nope.php')).status, 404);
    // Requests may interleave across backends.
    const many = await Promise.all(['/hello.php', '/app/a', '/handler', '/hello.php', '/app/b'].map((p) => get(peer.httpPort, p)));
    assert.deepEqual(many.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.deepEqual(many.map((r) => (r.body.startsWith('{') ? (JSON.parse(r.body) as { app: string }).app : r.body)), ['Hello, World!', 'express', 'upstream', 'Hello, World!', 'express']);

    assert.equal(await bridge.stop(), 0, 'SIGTERM drains and closes every backend: exit 0');
  });

  test('moving routes: rewrite bridge.json, restart the bridge', async () => {
    fs.writeFileSync(
      configFile,
      JSON.stringify(
        {
          backends: backends(),
          routes: [
            { prefix: '/hello.php', backend: 'web' },
            { prefix: '/index.php', backend: 'php' },
          ],
        },
        null,
        2,
      ),
    );
    bridge = await start();
    assert.match(bridge.log(), /backends\.api: not used by any route/, 'the unused backend is warned about');

    const moved = await get(peer.httpPort, '/hello.php');
    assert.equal(moved.status, 200);
    assert.deepEqual(JSON.parse(moved.body), { app: 'express', path: '/hello.php' });
    const php = await get(peer.httpPort, '/index.php');
    assert.deepEqual([php.status, php.body], [200, 'index']);
    // No route matches any more: the bridge's own 404.
    for (const p of ['/app/who', '/handler/x', '/']) {
      const none = await get(peer.httpPort, p);
      assert.deepEqual([none.status, none.type, none.body], [404, 'text/plain', '404 Not Found\n'], p);
    }
    assert.equal(await bridge.stop(), 0);
  });

  test('a bad bridge.json: the bridge refuses to start, exit 2, naming the key', async () => {
    fs.writeFileSync(configFile, JSON.stringify({ backends: backends(), routes: [{ prefix: '/', backend: 'phpp' }] }));
    await assert.rejects(start(), /exited \(code 2\)[\s\S]*routes\[0\]\.backend: unknown backend "phpp" \(known: php, web, api\)/);
    bridge = undefined;
  });
});
