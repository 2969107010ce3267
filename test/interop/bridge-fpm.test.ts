/**
 * m2bridge end to end: the real Mongrel2 in front, the real PHP-FPM behind,
 * and a private nginx + the same FPM as the reference for parity.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { startMongrel2, rawHttp, type Mongrel2Peer } from '../support/mongrel2.js';
import { startPhpFpm, bigBody, PHP_DOCROOT, type PhpFpm } from '../support/php-fpm.js';
import { startNginx, type Nginx } from '../support/nginx.js';
import { startBridge, type BridgeProcess } from '../support/m2bridge.js';

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

function get(port: number, p: string, init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string; expectContinue?: boolean } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const headers = { ...init.headers, ...(init.expectContinue ? { Expect: '100-continue' } : {}) };
    const req = http.request({ host: '127.0.0.1', port, path: p, method: init.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.expectContinue) req.on('continue', () => req.end(init.body));
    else req.end(init.body);
  });
}

function multipart(fields: Record<string, string>, files: Record<string, { name: string; data: Buffer }>): { body: Buffer; type: string } {
  const boundary = '----m2bridge' + randomBytes(8).toString('hex');
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  for (const [k, f] of Object.entries(files)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"; filename="${f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe('m2bridge --fcgi behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let fpm: PhpFpm;
  let nginx: Nginx;
  let bridge: BridgeProcess;

  before(async () => {
    [peer, fpm] = await Promise.all([startMongrel2({ rootRoute: true, flowControl: true }), startPhpFpm({ workers: 2 })]);
    nginx = await startNginx({ fpm });
    bridge = await startBridge([
      '--fcgi', fpm.addressText, '--root', PHP_DOCROOT,
      '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec,
      '--upload-dir', peer.uploadDir, '--chroot', peer.home, '--timeout', '5', '--log-level', 'info',
    ]);
  });

  after(async () => {
    await bridge?.stop();
    await Promise.all([nginx?.stop(), peer?.stop()]);
    await fpm?.stop();
  });

  test('hello.php', async () => {
    const res = await get(peer.httpPort, '/hello.php');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'Hello, World!');
  });

  test('$_SERVER through m2bridge equals nginx + FPM, apart from the listed keys', async () => {
    // Keys that differ by design: who the front end is, per-request values,
    // and PATH_TRANSLATED, which RFC 3875 §4.1.6 asks for and nginx omits.
    const DIFFERENT = new Set(['PATH_TRANSLATED', 'SERVER_SOFTWARE', 'SERVER_PORT', 'HTTP_HOST', 'REMOTE_PORT', 'REQUEST_TIME', 'REQUEST_TIME_FLOAT', 'SERVER_ADDR', 'HTTP_X_FORWARDED_FOR', 'SERVER_NAME']);
    const cases: Array<{ path: string; method?: string; headers?: http.OutgoingHttpHeaders; body?: string }> = [
      { path: '/server.php?a=1&b=two%20words' },
      { path: '/server.php/extra/path?x=y' },
      { path: '/server.php', method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=zed&lang=c' },
      { path: '/server.php', headers: { Cookie: 'a=1; b=2', Authorization: 'Basic eDp5', 'X-Custom': 'v' } },
      { path: '/', headers: {} },
    ];
    for (const c of cases) {
      const [viaBridge, viaNginx] = await Promise.all([
        get(peer.httpPort, c.path, { method: c.method, headers: { Host: 'localhost', ...c.headers }, body: c.body }),
        get(nginx.port, c.path, { method: c.method, headers: { Host: 'localhost', ...c.headers }, body: c.body }),
      ]);
      assert.equal(viaBridge.status, viaNginx.status, c.path);
      if (c.path === '/') {
        assert.equal(viaBridge.body.toString(), viaNginx.body.toString());
        continue;
      }
      const a = JSON.parse(viaBridge.body.toString());
      const b = JSON.parse(viaNginx.body.toString());
      const keys = new Set([...Object.keys(a.server), ...Object.keys(b.server)]);
      for (const k of keys) {
        if (DIFFERENT.has(k)) continue;
        assert.deepEqual(a.server[k], b.server[k], `${c.path}: $_SERVER[${k}]`);
      }
      assert.deepEqual(a.get, b.get);
      assert.deepEqual(a.post, b.post);
      assert.deepEqual(a.cookie, b.cookie);
    }
  });

  test('multipart upload under the Mongrel2 body limit: $_POST and $_FILES', async () => {
    const file = randomBytes(1000);
    const { body, type } = multipart({ title: 'hi' }, { doc: { name: 'a.bin', data: file } });
    const res = await get(peer.httpPort, '/server.php', { method: 'POST', headers: { 'Content-Type': type, 'Content-Length': body.length }, body });
    const out = JSON.parse(res.body.toString());
    assert.equal(out.post.title, 'hi');
    assert.equal(out.files.doc.md5, md5(file));
    assert.equal(out.files.doc.size, 1000);
  });

  test('multipart upload over the limit goes through the temp file, which is deleted', async () => {
    const file = randomBytes(300_000);
    const { body, type } = multipart({ title: 'big' }, { doc: { name: 'b.bin', data: file } });
    const res = await get(peer.httpPort, '/server.php', { method: 'POST', headers: { 'Content-Type': type, 'Content-Length': body.length }, body, expectContinue: true });
    assert.equal(res.status, 200);
    const out = JSON.parse(res.body.toString());
    assert.equal(out.post.title, 'big');
    assert.equal(out.files.doc.md5, md5(file));
    assert.deepEqual(readdirSync(peer.uploadDir), []);
  });

  test('a 10 MB request body reaches PHP intact', async () => {
    const body = randomBytes(10 * 1024 * 1024);
    const res = await get(peer.httpPort, '/echo.php', { method: 'POST', headers: { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' }, body, expectContinue: true });
    assert.equal(res.headers['x-input-length'], String(body.length));
    assert.equal(res.headers['x-input-md5'], md5(body));
  });

  test('a 10 MB response body arrives intact (chunked)', async () => {
    const res = await get(peer.httpPort, '/big.php');
    assert.equal(res.status, 200);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.ok(res.body.equals(bigBody()));
  });

  test('cookies, repeated headers and custom status from header()', async () => {
    const res = await get(peer.httpPort, '/headers.php?line=1');
    const ref = await get(nginx.port, '/headers.php?line=1');
    assert.equal(res.status, 418);
    assert.equal(res.status, ref.status);
    assert.deepEqual(res.headers['set-cookie'], ref.headers['set-cookie']);
    assert.equal(res.headers['x-multi'], ref.headers['x-multi']);
    assert.equal(res.body.toString(), ref.body.toString());
  });

  test('Location gives a 302', async () => {
    const res = await get(peer.httpPort, '/headers.php?redirect=1');
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, '/x');
  });

  test('204 and 304 carry no body; HEAD gets no body', async () => {
    for (const code of [204, 304]) {
      const raw = await rawHttp(peer.httpPort, `GET /status.php?code=${code}&body=nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      const text = raw.toString();
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${code} `));
      assert.ok(text.endsWith('\r\n\r\n'), `${code} has no body`);
      assert.doesNotMatch(text, /Transfer-Encoding/i);
    }
    const head = await rawHttp(peer.httpPort, 'HEAD /hello.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    assert.ok(head.toString().endsWith('\r\n\r\n'));
  });

  test('HTTP/1.0: the body ends with the connection', async () => {
    const raw = await rawHttp(peer.httpPort, 'GET /hello.php HTTP/1.0\r\n\r\n');
    const text = raw.toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(text.endsWith('\r\n\r\nHello, World!'));
  });

  test('flush() output streams line by line', async () => {
    const sock = net.connect(peer.httpPort, '127.0.0.1');
    await once(sock, 'connect');
    sock.write('GET /stream.php?n=3&delay=300 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    let text = '';
    // The first line must arrive while PHP is still sleeping before the last.
    for await (const chunk of sock) {
      text += (chunk as Buffer).toString();
      if (text.includes('line 0')) break;
    }
    assert.doesNotMatch(text, /line 2/);
    sock.destroy();
  });

  test('the cgi.fix_pathinfo exploit: /uploads/x.jpg/y.php never runs x.jpg', async () => {
    const res = await get(peer.httpPort, '/uploads/x.jpg/y.php');
    assert.equal(res.status, 404);
    assert.doesNotMatch(res.body.toString(), /EXPLOITED/);
    const ref = await get(nginx.port, '/uploads/x.jpg/y.php');
    assert.equal(ref.status, 404);
  });

  test('a missing script is a 404 from the bridge; a traversal attempt never leaves the root', async () => {
    assert.equal((await get(peer.httpPort, '/nope.php')).status, 404);
    const res = await rawHttp(peer.httpPort, 'GET /%2e%2e/%2e%2e/etc/passwd.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    assert.match(res.toString(), /^HTTP\/1\.1 (400|404) /);
  });

  test('a client abort mid-stream stops the PHP worker', async () => {
    const marker = path.join(fpm.tmpDir, `marker-${process.pid}-${Date.now()}`);
    const sock = net.connect(peer.httpPort, '127.0.0.1');
    await once(sock, 'connect');
    sock.write(`GET /stream.php?n=400&delay=50&marker=${encodeURIComponent(marker)} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    let text = '';
    for await (const chunk of sock) {
      text += (chunk as Buffer).toString();
      if (text.includes('line 2')) break;
    }
    sock.destroy();
    // The worker notices at its next flush after the bridge closed the FPM socket.
    const deadline = Date.now() + 5000;
    let lines = 0;
    let stable = 0;
    while (Date.now() < deadline && stable < 6) {
      await new Promise((r) => setTimeout(r, 100));
      const now = readFileSync(marker, 'utf8').split('\n').filter((l) => l.startsWith('line')).length;
      stable = now === lines ? stable + 1 : 0;
      lines = now;
    }
    assert.ok(stable >= 6, 'the marker stopped growing');
    assert.ok(lines < 400, `the script stopped early (${lines} lines)`);
    assert.doesNotMatch(readFileSync(marker, 'utf8'), /done/);
    // And the pool is fine afterwards.
    assert.equal((await get(peer.httpPort, '/hello.php')).body.toString(), 'Hello, World!');
  });
});

describe('m2bridge error mapping', () => {
  let peer: Mongrel2Peer;
  let fpm: PhpFpm;
  let bridge: BridgeProcess;

  before(async () => {
    [peer, fpm] = await Promise.all([startMongrel2({ rootRoute: true }), startPhpFpm({ workers: 2, listen: 'unix' })]);
    bridge = await startBridge([
      '--fcgi', fpm.addressText, '--root', PHP_DOCROOT, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec,
      '--timeout', '1', '--max-inflight', '2', '--fcgi-idle', '0', '--log-level', 'debug',
    ]);
  });

  after(async () => {
    await bridge?.stop();
    await peer?.stop();
    await fpm?.stop();
  });

  test('more than --max-inflight requests get 503', async () => {
    // Runs first, on an idle pool, with --max-inflight 2 (the bridge counts
    // its own in-flight requests, whatever FPM is doing): two requests in
    // flight, then two more while they still run.
    const started = (): number => (bridge.log().match(/"msg":"request started"/g) ?? []).length;
    const held = Array.from({ length: 2 }, () => get(peer.httpPort, '/sleep.php?ms=600'));
    for (let i = 0; i < 250 && started() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(started(), 2, 'two requests in flight');
    const refused = await Promise.all(Array.from({ length: 2 }, () => get(peer.httpPort, '/hello.php')));
    for (const r of refused) {
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
    }
    assert.deepEqual((await Promise.all(held)).map((r) => r.status), [200, 200]);
  });

  test('a slow script past --timeout is a 504', async () => {
    const res = await get(peer.httpPort, '/sleep.php?ms=2500');
    assert.equal(res.status, 504);
  });

  test('FPM restarted under load: requests during the restart fail cleanly, later ones succeed', async () => {
    const load = Array.from({ length: 20 }, (_v, i) => get(peer.httpPort, `/hello.php?i=${i}`));
    await fpm.restart();
    const results = await Promise.all(load);
    for (const r of results) assert.ok(r.status === 200 || r.status === 502 || r.status === 503, `status ${r.status}`);
    assert.equal((await get(peer.httpPort, '/hello.php')).status, 200);
  });

  test('FPM down: 502, and the bridge keeps running', async () => {
    await fpm.stop();
    const res = await get(peer.httpPort, '/hello.php');
    assert.equal(res.status, 502);
    assert.equal(bridge.child.exitCode, null);
  });

  test('SIGTERM: the bridge drains and exits 0', async () => {
    assert.equal(await bridge.stop(), 0);
  });
});

describe('m2bridge with streaming uploads (upload.stream=1)', () => {
  let peer: Mongrel2Peer;
  let fpm: PhpFpm;
  let bridge: BridgeProcess;

  before(async () => {
    [peer, fpm] = await Promise.all([startMongrel2({ rootRoute: true, uploadStream: true, flowControl: true }), startPhpFpm({ workers: 2 })]);
    bridge = await startBridge(['--fcgi', fpm.addressText, '--root', PHP_DOCROOT, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--log-level', 'info']);
  });

  after(async () => {
    await bridge?.stop();
    await peer?.stop();
    await fpm?.stop();
  });

  test('a 2 MB body arrives in credit-paced chunks and reaches PHP whole', async () => {
    const body = randomBytes(2 * 1024 * 1024);
    const res = await get(peer.httpPort, '/echo.php', { method: 'POST', headers: { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' }, body, expectContinue: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-input-length'], String(body.length));
    assert.equal(res.headers['x-input-md5'], md5(body));
    assert.deepEqual(readdirSync(peer.uploadDir), [], 'no temp file was used');
  });
});

describe('m2bridge --workers and graceful stop', () => {
  let peer: Mongrel2Peer;
  let fpm: PhpFpm;
  let bridge: BridgeProcess;

  before(async () => {
    [peer, fpm] = await Promise.all([startMongrel2({ rootRoute: true }), startPhpFpm({ workers: 4 })]);
    bridge = await startBridge([
      '--fcgi', fpm.addressText, '--root', PHP_DOCROOT, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec,
      '--workers', '2', '--max-connections', '2', '--log-level', 'debug',
    ]);
  });

  after(async () => {
    await bridge?.stop();
    await peer?.stop();
    await fpm?.stop();
  });

  /** The worker processes: children of the primary, from /proc. */
  function workerPids(): number[] {
    const pid = bridge.child.pid!;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return children === '' ? [] : children.split(/\s+/).map(Number);
  }

  test('two workers share the requests', async () => {
    // Workers log their start with their pid once connected.
    const started = (): number => (bridge.log().match(/"msg":"worker ready"/g) ?? []).length;
    for (let i = 0; i < 400 && started() < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(workerPids().length, 2);
    // "worker ready" means Mongrel2 subscribed to the worker's replies; its PULL
    // connection is made on its own and can lag on a loaded machine, and PUSH
    // deals only to connected peers. Once both are connected, one burst reaches
    // both; a few bursts give a slow connection its time.
    const servedBy = (): Set<string> => new Set([...bridge.log().matchAll(/"pid":(\d+)[^\n]*"msg":"served"/g)].map((m) => m[1]!));
    for (let burst = 0; burst < 10 && servedBy().size < 2; burst++) {
      const results = await Promise.all(Array.from({ length: 40 }, (_v, i) => get(peer.httpPort, `/sleep.php?ms=20&i=${burst}-${i}`)));
      assert.ok(results.every((r) => r.status === 200));
    }
    assert.equal(servedBy().size, 2, 'both workers served requests');
  });

  test('SIGTERM lets an in-flight request finish, then every process exits 0', async () => {
    const workers = workerPids();
    // pino writes msg last; the earlier test's requests log the same path, so count.
    const started = (): number => (bridge.log().match(/"path":"\/sleep\.php"[^\n]*"msg":"request started"/g) ?? []).length;
    const before = started();
    const slow = get(peer.httpPort, '/sleep.php?ms=800');
    // Wait until the request is in flight in a worker.
    for (let i = 0; i < 400 && started() === before; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(started(), before + 1, 'the request reached a worker');
    const code = bridge.stop();
    const res = await slow;
    assert.equal(res.status, 200);
    assert.equal(await code, 0);
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), 'worker exited');
  });
});
