// Self-test of the real php-fpm + nginx harness (test/support/php-fpm.ts,
// test/support/nginx.ts) and the PHP fixtures in test/php/.
// Needs /usr/sbin/php-fpm8.2 (Debian php8.2-fpm) and /usr/sbin/nginx.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, test } from 'node:test';

import { startNginx, type Nginx } from '../support/nginx.js';
import { bigBody, PHP_DOCROOT, startPhpFpm, type PhpFpm } from '../support/php-fpm.js';
import { isProcessAlive } from '../support/process.js';

interface Got {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request with node's http client, no keep-alive agent (no pooled sockets left open). */
function request(
  port: number,
  urlPath: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

// Everything started here, stopped in after() even when an assertion fails
// (stop() is idempotent, so the tests also stop explicitly to check the cleanup).
const started: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
});

for (const listen of ['tcp', 'unix'] as const) {
  test(`php-fpm (${listen}) behind nginx: hello, server.php, exploit blocked, restart, clean stop`, async () => {
    const fpm = await startPhpFpm({ listen });
    started.push(fpm);
    const ngx = await startNginx({ fpm });
    started.push(ngx);

    if (listen === 'tcp') {
      assert.ok('port' in fpm.address);
      assert.equal(fpm.addressText, `127.0.0.1:${fpm.address.port}`);
    } else {
      assert.ok('path' in fpm.address);
      assert.equal(fpm.addressText, `unix:${fpm.address.path}`);
      assert.ok(fs.statSync(fpm.address.path).isSocket());
    }
    assert.equal(fpm.docRoot, PHP_DOCROOT);
    const fpmPid1 = fpm.pid;
    const workers1 = fpm.workerPids();
    assert.equal(workers1.length, 2, `pm=static, 2 children: ${workers1.join(',')}`);
    const ngxWorkers = ngx.workerPids();
    assert.equal(ngxWorkers.length, 1);
    assert.equal(ngx.baseUrl, `http://127.0.0.1:${ngx.port}`);

    const hello = await request(ngx.port, '/hello.php');
    assert.equal(hello.status, 200);
    assert.equal(hello.text, 'Hello, World!');
    assert.match(String(hello.headers['x-powered-by']), /^PHP\/8\.2\./);

    const server = await request(ngx.port, '/server.php?a=1');
    assert.equal(server.status, 200);
    assert.match(String(server.headers['content-type']), /^application\/json/);
    const info = JSON.parse(server.text) as { server: Record<string, unknown>; get: Record<string, unknown> };
    assert.equal(info.server['QUERY_STRING'], 'a=1');
    assert.deepEqual(info.get, { a: '1' });
    assert.equal(info.server['SCRIPT_FILENAME'], path.join(PHP_DOCROOT, 'server.php'));

    // cgi.fix_pathinfo=1 exploit: nginx's try_files $fastcgi_script_name =404 stops it.
    const exploit = await request(ngx.port, '/uploads/x.jpg/y.php');
    assert.equal(exploit.status, 404);
    assert.doesNotMatch(exploit.text, /EXPLOITED/);

    const index = await request(ngx.port, '/');
    assert.equal(index.status, 200);
    assert.equal(index.text, 'index');

    // restart(): a new master on the same address, old processes gone.
    await fpm.restart();
    assert.notEqual(fpm.pid, fpmPid1);
    for (const pid of [fpmPid1, ...workers1]) assert.equal(isProcessAlive(pid), false, `old fpm pid ${pid} gone after restart`);
    const workers2 = fpm.workerPids();
    assert.equal(workers2.length, 2);
    const again = await request(ngx.port, '/hello.php');
    assert.equal(again.status, 200);
    assert.equal(again.text, 'Hello, World!');
    assert.match(fpm.errorLog(), /ready to handle connections[\s\S]*ready to handle connections/, 'both starts in one log');

    const homes = [fpm.home, ngx.home];
    const pids = [fpm.pid, ...workers2, ngx.pid, ...ngxWorkers];
    await ngx.stop();
    await fpm.stop();
    assert.deepEqual(ngx.exitStatus(), { code: 0, signal: null }, ngx.errorLog().slice(-2000));
    assert.deepEqual(fpm.exitStatus(), { code: 0, signal: null }, fpm.errorLog().slice(-2000));
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `pid ${pid} gone`);
    for (const home of homes) assert.equal(fs.existsSync(home), false, `${home} removed`);
    await ngx.stop(); // idempotent
    await fpm.stop();
    assert.match(fpm.errorLog(), /exiting, bye-bye/, 'log snapshot survives stop()');
    assert.match(ngx.accessLog(), /GET \/hello\.php HTTP\/1\.1" 200/);
  });
}

test('fixtures through nginx: headers, status, pathinfo, echo, big, uploads, stream marker', async () => {
  const fpm = await startPhpFpm({ listen: 'unix', workers: 3 });
  started.push(fpm);
  const ngx = await startNginx({ fpm });
  started.push(ngx);
  const port = ngx.port;

  const teapot = await request(port, '/headers.php');
  assert.equal(teapot.status, 418);
  assert.equal(teapot.text, 'teapot');
  assert.deepEqual(teapot.headers['set-cookie'], ['a=1', 'b=2; path=/; HttpOnly']);
  assert.equal(teapot.headers['x-custom'], 'custom-value');
  assert.equal(teapot.headers['x-multi'], 'first, second');
  const stout = await request(port, '/headers.php?line=1');
  assert.equal(stout.status, 418);
  assert.equal(stout.statusMessage, 'Short And Stout');
  const redirect = await request(port, '/headers.php?redirect=1');
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.location, '/x');

  const noContent = await request(port, '/status.php?code=204');
  assert.equal(noContent.status, 204);
  assert.equal(noContent.body.length, 0);
  const err = await request(port, '/status.php?code=500&reason=Boom');
  assert.equal(err.status, 500);
  assert.equal(err.text, 'status 500');

  const pi = await request(port, '/pathinfo.php/a/b?x=1');
  assert.equal(pi.status, 200);
  const piJson = JSON.parse(pi.text) as Record<string, string | null>;
  assert.equal(piJson['PATH_INFO'], '/a/b');
  assert.equal(piJson['SCRIPT_NAME'], '/pathinfo.php');

  const payload = Buffer.from('binary\x00\xff body \r\n'.repeat(1000), 'latin1');
  const echo = await request(port, '/echo.php', { method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(echo.status, 200);
  assert.ok(echo.body.equals(payload));
  assert.equal(echo.headers['x-input-md5'], md5(payload));

  const big = await request(port, '/big.php?n=1000003');
  assert.equal(big.body.length, 1000003);
  assert.ok(big.body.equals(bigBody(1000003)));
  const bigDefault = await request(port, '/big.php?cl=1', { timeoutMs: 30_000 });
  assert.equal(bigDefault.headers['content-length'], String(10 * 1024 * 1024));
  assert.equal(md5(bigDefault.body), md5(bigBody()));

  const fileData = Buffer.from('file contents \x01\x02\x03', 'latin1');
  const boundary = 'm2bridgeBoundary7MA4YWxk';
  const multipart = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="up"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    fileData,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const up = await request(port, '/server.php', {
    method: 'POST',
    body: multipart,
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, cookie: 'c1=x; c2=y' },
  });
  assert.equal(up.status, 200, up.text);
  const upJson = JSON.parse(up.text) as {
    post: Record<string, string>;
    cookie: Record<string, string>;
    files: Record<string, { name: string; size: number; md5: string | null; tmp_name: string }>;
  };
  assert.deepEqual(upJson.post, { field: 'value' });
  assert.deepEqual(upJson.cookie, { c1: 'x', c2: 'y' });
  assert.equal(upJson.files['up']?.name, 'a.bin');
  assert.equal(upJson.files['up']?.size, fileData.length);
  assert.equal(upJson.files['up']?.md5, md5(fileData));
  assert.ok(upJson.files['up']?.tmp_name.startsWith(fpm.tmpDir + '/'), 'upload_tmp_dir is the private tmp');

  const marker = path.join(fpm.tmpDir, 'stream-marker');
  const stream = await request(port, `/stream.php?n=3&delay=10&marker=${encodeURIComponent(marker)}`);
  assert.equal(stream.text, 'line 0\nline 1\nline 2\n');
  assert.match(fs.readFileSync(marker, 'utf8'), /^start \d+\nline 0\nline 1\nline 2\ndone\n$/);
  const outside = await request(port, '/stream.php?n=1&marker=%2Fetc%2Fpasswd');
  assert.equal(outside.status, 400);

  const slept = await request(port, '/sleep.php?ms=50');
  assert.equal(slept.text, 'slept 50');

  await ngx.stop();
  await fpm.stop();
});
