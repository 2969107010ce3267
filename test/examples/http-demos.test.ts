/**
 * examples/handlertest.ts and examples/upload.ts behind the real Mongrel2:
 * the handler test on the JSON handler ('/handler'), the upload demo on the
 * tnetstring handler ('/tnet'), one server for both.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import { readdirSync } from 'node:fs';
import { pino } from 'pino';
import { startMongrel2, rawHttp, untilCompleteResponse, type Mongrel2Peer } from '../support/mongrel2.js';
import { start as startHandlerTest } from '../../examples/handlertest.js';
import { start as startUpload } from '../../examples/upload.js';
import type { Demo } from '../../examples/support/demo.js';

const silent = pino({ level: 'silent' });

/** Parses the handler test's `FIELD: value` lines. */
function parseDump(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.trimEnd().split('\n')) {
    const i = line.indexOf(': ');
    assert.ok(i > 0, `dump line without ": ": ${line}`);
    out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** POSTs with Expect: 100-continue (see interop/handler.test.ts for why) and collects the answer. */
function postBig(port: number, path: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'Content-Length': body.length, Expect: '100-continue' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('continue', () => req.end(body));
    req.on('error', reject);
  });
}

describe('the manual demos behind the real Mongrel2: handlertest and upload', () => {
  let peer: Mongrel2Peer;
  const demos: Demo[] = [];
  const maxBytes = 100_000;

  before(async () => {
    peer = await startMongrel2();
    demos.push(startHandlerTest({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: silent }));
    demos.push(startUpload({ sendSpec: peer.tnetHandler.sendSpec, recvSpec: peer.tnetHandler.recvSpec, logger: silent, uploadDir: peer.uploadDir, chroot: peer.home, maxBytes }));
    await Promise.all(demos.map((d) => d.ready()));
  });

  after(async () => {
    await Promise.all(demos.map((d) => d.stop()));
    await peer?.stop();
  });

  test('handlertest answers with a dump of the request', async () => {
    const body = 'name=zed&quote="hi"\n';
    const raw = await rawHttp(
      peer.httpPort,
      `POST /handler/some/path?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Demo: yes\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      { until: untilCompleteResponse() },
    );
    const text = raw.toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    const dump = parseDump(text.slice(text.indexOf('\r\n\r\n') + 4));
    assert.equal(dump.SENDER, peer.handler.sendIdent);
    assert.match(dump.IDENT!, /^[0-9]+$/);
    assert.equal(dump.PATH, '/handler/some/path');
    assert.equal(dump.METHOD, 'POST');
    const headers = JSON.parse(dump.HEADERS!) as Record<string, string>;
    assert.equal(headers['x-demo'], 'yes');
    assert.equal(headers.QUERY, 'x=1');
    assert.equal(headers.PATTERN, '/handler');
    assert.equal(JSON.parse(dump.BODY!), body);
  });

  test('handlertest kills the connection when asked to (killme header)', async () => {
    // rawHttp resolves on the close: the kill message, and no response at all.
    const raw = await rawHttp(peer.httpPort, 'GET /handler/x HTTP/1.1\r\nHost: localhost\r\nKillme: please\r\n\r\n');
    assert.equal(raw.length, 0);
  });

  test('upload: a body over limits.content_length is spooled, and the answer is its md5', async () => {
    const body = randomBytes(60_000);
    const res = await postBig(peer.httpPort, '/tnet/upload', body);
    assert.equal(res.status, 200);
    assert.equal(res.text, `UPLOAD GOOD: ${createHash('md5').update(body).digest('hex')} ${body.length} bytes\n`);
    assert.deepEqual(readdirSync(peer.uploadDir), [], 'the demo removed the temp file');
  });

  test('upload: small bodies are answered inline with the dump', async () => {
    const raw = await rawHttp(peer.httpPort, 'POST /tnet/small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello', { until: untilCompleteResponse() });
    const text = raw.toString();
    assert.equal(parseDump(text.slice(text.indexOf('\r\n\r\n') + 4)).BODY, '"hello"');
  });

  test('upload: too big is answered 413 and killed at the start message, and the temp file goes', async () => {
    // Headers only: Mongrel2 announces the upload as soon as it has them, so
    // the demo decides before a byte of the body is sent. (A body sent in
    // the same packet as the headers makes Mongrel2 1.12.2 answer 400.)
    const announced = maxBytes * 50;
    const raw = await rawHttp(peer.httpPort, `PUT /tnet/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${announced}\r\nExpect: 100-continue\r\n\r\n`);
    // rawHttp resolves when the server closes the connection: the kill.
    const text = raw.toString('latin1');
    assert.match(text, /^(HTTP\/1\.1 100 Continue\r\n\r\n)?HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.ok(text.endsWith(`\r\n\r\nUPLOAD TOO BIG: ${announced} bytes, at most ${maxBytes}\n`), text);
    // Mongrel2 unlinks the temp file when its read fails on the killed
    // connection, in its own time: a bounded poll.
    for (let i = 0; i < 100 && readdirSync(peer.uploadDir).length > 0; i++) await setTimeout(20);
    assert.deepEqual(readdirSync(peer.uploadDir), [], 'Mongrel2 removed the killed upload');
    assert.match(peer.errorLog(), /Writing tempfile \/tmp\/upload\.\S+ for large upload/);
  });
});
