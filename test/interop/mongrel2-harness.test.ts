// Self-test of the real-Mongrel2 harness (test/support/mongrel2.ts).
// Needs /usr/bin/mongrel2 + /usr/bin/m2sh (Debian mongrel2-core).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { after, test } from 'node:test';

import {
  rawHttp,
  renderMongrel2Conf,
  startMongrel2,
  STATIC_FILES,
  untilCompleteResponse,
  type Mongrel2Peer,
} from '../support/mongrel2.js';

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET with node's http client, no keep-alive agent (no pooled sockets left open). */
function get(port: number, path: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', reject);
  });
}

let peer: Mongrel2Peer | undefined;
// Always stop the peer, even when an assertion fails (stop() is idempotent).
after(async () => {
  await peer?.stop();
});

test('renderMongrel2Conf replaces every placeholder and rejects missing ones', () => {
  assert.equal(renderMongrel2Conf('port=@HTTP_PORT@ fc=@FLOW_CONTROL@', { HTTP_PORT: 1234, FLOW_CONTROL: 1 }), 'port=1234 fc=1');
  assert.throws(() => renderMongrel2Conf('port=@HTTP_PORT@', {}), /HTTP_PORT/);
});

test('real mongrel2: static file, 404, clean stop', async () => {
  peer = await startMongrel2();
  const p = peer;
  assert.ok(p.pid > 0);
  assert.match(p.handler.sendSpec, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.match(p.tnetHandler.recvSpec, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  const ports = new Set([p.httpPort, p.handler.sendPort, p.handler.recvPort, p.tnetHandler.sendPort, p.tnetHandler.recvPort]);
  assert.equal(ports.size, 5, 'five distinct ports');
  assert.ok(fs.statSync(p.uploadDir).isDirectory());
  assert.match(fs.readFileSync(p.confPath, 'utf8'), /"download\.flow_control": 0,/);

  const hello = await get(p.httpPort, '/static/hello.txt');
  assert.equal(hello.status, 200);
  assert.equal(hello.body, STATIC_FILES['hello.txt']);
  assert.match(String(hello.headers['server']), /^Mongrel2\//);

  const missing = await get(p.httpPort, '/nosuchroute');
  assert.equal(missing.status, 404);

  // raw probe on a keep-alive static response: resolves via the until predicate
  const raw = await rawHttp(p.httpPort, 'GET /static/ HTTP/1.1\r\nHost: localhost\r\n\r\n', {
    until: untilCompleteResponse(),
  });
  const rawText = raw.toString('latin1');
  assert.match(rawText, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(rawText.endsWith(STATIC_FILES['index.html'] ?? '<missing>'), rawText);

  // raw probe on an error reply: mongrel2 closes the connection, rawHttp resolves on close
  const raw404 = (await rawHttp(p.httpPort, 'GET /nosuchroute HTTP/1.1\r\nHost: localhost\r\n\r\n')).toString('latin1');
  assert.match(raw404, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(raw404, /\r\nConnection: close\r\n/);

  assert.match(p.errorLog(), /Running/);
  assert.equal(p.exitStatus(), null, 'still running before stop()');
  const home = p.home;
  await p.stop();
  const status = p.exitStatus();
  assert.ok(status, 'mongrel2 has exited');
  // All our client sockets are closed, so SIGINT is a graceful exit 0.
  assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null }, p.errorLog().slice(-2000));
  assert.equal(fs.existsSync(home), false, 'runtime folder removed');
  await p.stop(); // second call is a no-op
  assert.match(p.errorLog(), /goodbye|Shutting down/i, 'log snapshot survives stop()');
});
