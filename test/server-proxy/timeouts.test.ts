/** The proxy's response timeout counts from the end of the request body; an upload is bounded by an idle timer instead. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { collect, httpBackend, proxyTo, rawBackend, request, requestHead } from './helpers.js';

const TIMEOUT = 150;

/** A client upload that trickles: `count` chunks `gapMs` apart (a slow client, not a synchronisation). */
function trickle(count: number, gapMs: number, size = 1000): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < count; i++) {
        if (i > 0) await delay(gapMs);
        yield Buffer.alloc(size, 0x61 + (i % 26));
      }
    })(),
  );
}

const post = (length?: number): ReturnType<typeof requestHead> =>
  requestHead(`POST /up HTTP/1.1\r\nHost: h\r\n${length === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`}\r\n\r\n`);

test('an upload longer than responseTimeoutMs is not a 504 while it keeps flowing (Content-Length and chunked)', async (t) => {
  const backend = await httpBackend(t, async (req, res) => {
    let n = 0;
    for await (const c of req) n += (c as Buffer).length;
    res.end(String(n));
  });
  const proxy = proxyTo(t, backend.port, { responseTimeoutMs: TIMEOUT });
  for (const bodyLength of [10_000, undefined]) {
    const started = Date.now();
    const res = await proxy.forward(request(post(bodyLength), { body: trickle(10, 40), bodyLength }));
    assert.ok(Date.now() - started > TIMEOUT, 'the upload outlasted the response timeout');
    assert.equal(res.status, 200, res.error);
    assert.equal((await collect(res)).body.toString(), '10000');
  }
});

test('an upload that stalls for the idle time → 504, and the backend socket is closed', async (t) => {
  let closed = false;
  const backend = await rawBackend(t, (s) => s.on('close', () => (closed = true)));
  const stalled = new Readable({ read() {} });
  stalled.push(Buffer.alloc(100, 0x62));
  const res = await proxyTo(t, backend.port, { responseTimeoutMs: TIMEOUT }).forward(request(post(1000), { body: stalled, bodyLength: 1000 }));
  assert.equal(res.status, 504);
  assert.match(res.error ?? '', /request body/);
  const { until } = await import('./helpers.js');
  await until(() => closed, 'the backend to see its socket closed');
});

test('the response timeout starts once the body is sent: a silent backend → 504 after the upload plus the timeout', async (t) => {
  const backend = await rawBackend(t, () => undefined);
  const started = Date.now();
  const res = await proxyTo(t, backend.port, { responseTimeoutMs: TIMEOUT }).forward(request(post(5000), { body: trickle(5, 60), bodyLength: 5000 }));
  assert.equal(res.status, 504);
  assert.match(res.error ?? '', /no response head within 150 ms/);
  assert.ok(Date.now() - started >= 4 * 60 + TIMEOUT - 20, `took ${Date.now() - started} ms`);
});

test('one pooled socket, many exchanges: a quick answer leaves no timeout behind; a later silent backend still gets its 504', async (t) => {
  // The timer is one per backend socket, re-armed per exchange: a stale one must neither fire into the next exchange nor be lost.
  const backend = await rawBackend(t, (socket, _head, index) => {
    if (index < 2) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const proxy = proxyTo(t, backend.port, { responseTimeoutMs: TIMEOUT });
  const get = requestHead('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal((await collect(await proxy.forward(request(get)))).body.toString(), 'ok');
  // Idle for longer than the timeout, then a second quick exchange on the same socket.
  await delay(TIMEOUT * 2);
  assert.equal(proxy.idleConnections, 1);
  const second = await proxy.forward(request(get));
  assert.equal(second.status, 200, second.error);
  const started = Date.now();
  const third = await proxy.forward(request(get));
  assert.equal(third.status, 504, third.error);
  assert.ok(Date.now() - started >= TIMEOUT - 5, `504 after ${Date.now() - started} ms, not before the timeout`);
  assert.equal(backend.connections, 1);
});
