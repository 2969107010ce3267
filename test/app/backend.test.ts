/**
 * AppBackend's own guarantees, with plain (req, res) listeners: backpressure
 * both ways, disconnects, failing and silent apps, request framing (HTTP/1.0,
 * unknown length, short bodies, Expect), and close().
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { AppBackend } from '../../adapters/app.js';
import { BackendError } from '../../src/bridge/backend.js';
import { assertAllClosed, backendRequest, chunks, collect, gate, header, memoryLogger } from './helpers.js';

const MiB = 1024 * 1024;
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** What the app saw when its connection went away. */
interface Seen {
  reqClose: boolean;
  resClose: boolean;
  reqDestroyed: boolean;
  resWritableEnded: boolean;
}

describe('AppBackend', () => {
  const { logger, records } = memoryLogger();
  let backend: AppBackend;

  // Backpressure on the response.
  const BIG = 50 * MiB;
  const bigStats = { written: 0, falses: 0, drains: 0 };
  const blocked = gate<number>();
  // Backpressure on the request.
  const readerGate = gate();
  // Disconnects: `arrived` opens when the app has the request, `closed` when it saw the connection go.
  let arrived = gate();
  let closed = gate<Seen>();
  const watching = (): void => {
    arrived = gate();
    closed = gate<Seen>();
  };

  function watch(req: IncomingMessage, res: ServerResponse): void {
    const seen = { reqClose: false, resClose: false };
    const done = (): void => {
      if (seen.reqClose && seen.resClose) closed.open({ ...seen, reqDestroyed: req.destroyed, resWritableEnded: res.writableEnded });
    };
    req.on('close', () => ((seen.reqClose = true), done()));
    res.on('close', () => ((seen.resClose = true), done()));
    arrived.open();
  }

  async function app(req: IncomingMessage, res: ServerResponse): Promise<void> {
    switch (req.url) {
      case '/hello':
        res.setHeader('Content-Type', 'text/plain');
        res.end(`hello ${req.httpVersion}`);
        return;
      case '/big-write': {
        res.setHeader('Content-Type', 'application/octet-stream');
        const chunk = Buffer.alloc(16 * 1024, 0x61);
        while (bigStats.written < BIG) {
          const ok = res.write(chunk);
          bigStats.written += chunk.length;
          if (!ok) {
            bigStats.falses++;
            blocked.open(bigStats.written);
            await once(res, 'drain');
            bigStats.drains++;
          }
        }
        res.end();
        return;
      }
      case '/slow-reader': {
        await readerGate.promise;
        let n = 0;
        for await (const c of req) n += (c as Buffer).length;
        res.end(String(n));
        return;
      }
      case '/partial':
        watch(req, res);
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('partial');
        return;
      case '/never':
        watch(req, res);
        return;
      case '/reject':
        await Promise.resolve();
        throw new Error('async boom');
      case '/echo-framing': {
        let body = '';
        for await (const c of req) body += (c as Buffer).toString();
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, body }));
        return;
      }
      case '/consume':
        watch(req, res);
        req.on('error', () => undefined);
        req.resume();
        return;
      case '/old-style':
        // HTTP/1.0 and no length: Node delimits the body by closing the connection.
        res.write('one,');
        res.end('two');
        return;
      case '/short-length':
        // Promises 10 bytes, sends 5: the client must see a cut response, not a complete one.
        res.writeHead(200, { 'Content-Length': '10' });
        res.end('12345');
        return;
      case '/slow':
        // Node's socket timeout reaches the app through the in-memory socket.
        res.setTimeout(20, () => {
          res.statusCode = 503;
          res.end('timed out');
        });
        return;
      default:
        res.statusCode = 404;
        res.end();
    }
  }

  /** Not async, so that '/throw' throws synchronously. */
  function handler(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    if (req.url === '/throw') throw new Error('sync boom');
    return app(req, res);
  }

  before(() => {
    backend = new AppBackend({ handler, logger });
  });
  afterEach(() => assertAllClosed(backend));
  after(async () => {
    await backend.close();
  });

  test('a plain listener answers; the socket is released after the response', async () => {
    const res = await backend.handle(backendRequest({ uri: '/hello' }));
    assert.equal(res.status, 200);
    assert.equal(backend.kind, 'listener');
    assert.equal((await collect(res.body)).toString(), 'hello 1.1');
  });

  test('response backpressure: a consumer that reads nothing makes res.write() return false, and the app waits for drain', async () => {
    const memBefore = process.memoryUsage().arrayBuffers;
    const res = await backend.handle(backendRequest({ uri: '/big-write' }));
    const at = await blocked.promise;
    assert.ok(at <= 256 * 1024, `write() returned false only after ${at} bytes`);
    // However often the event loop turns, nothing moves while nobody reads.
    await turns(50);
    assert.equal(bigStats.written, at);
    assert.equal(bigStats.drains, 0);
    assert.ok(process.memoryUsage().arrayBuffers - memBefore < 16 * MiB, 'memory grew while the consumer read nothing');
    let total = 0;
    for await (const c of res.body!) total += (c as Buffer).length;
    assert.equal(total, BIG);
    assert.ok(bigStats.falses > 10, `write() returned false ${bigStats.falses} times`);
    assert.equal(bigStats.drains, bigStats.falses);
  });

  test('request backpressure: an app that does not read its body stops the upload being read', async () => {
    const size = 20 * MiB;
    let pulled = 0;
    const piece = Buffer.alloc(64 * 1024, 0x62);
    const source = Readable.from(
      (function* () {
        while (pulled < size) {
          pulled += piece.length;
          yield piece;
        }
      })(),
    );
    const r = backendRequest({ method: 'POST', uri: '/slow-reader' });
    const pending = backend.handle({ ...r, body: source, bodyLength: size });
    await turns(50);
    assert.ok(pulled <= 512 * 1024, `${pulled} bytes were pulled from the upload before the app read any`);
    readerGate.open();
    const res = await pending;
    assert.equal((await collect(res.body)).toString(), String(size));
  });

  test('a disconnect mid-response: the app sees close on req and res, req.destroyed, res.writableEnded false', async () => {
    watching();
    const ac = new AbortController();
    const res = await backend.handle(backendRequest({ uri: '/partial', signal: ac.signal }));
    const body = chunks(res.body!);
    assert.equal(await body.next(), 'partial');
    ac.abort(new Error('client 7 disconnected'));
    assert.deepEqual(await closed.promise, { reqClose: true, resClose: true, reqDestroyed: true, resWritableEnded: false });
    await assert.rejects(body.rest());
  });

  test('a disconnect before any response: handle() rejects with the reason, the app sees close', async () => {
    watching();
    const ac = new AbortController();
    const pending = backend.handle(backendRequest({ uri: '/never', signal: ac.signal }));
    await arrived.promise;
    const reason = new Error('client 7 disconnected');
    ac.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    assert.deepEqual(await closed.promise, { reqClose: true, resClose: true, reqDestroyed: true, resWritableEnded: false });
  });

  test('the consumer dropping the body early (the bridge does on client-gone) closes the app’s connection too', async () => {
    watching();
    const res = await backend.handle(backendRequest({ uri: '/partial' }));
    const body = chunks(res.body!);
    assert.equal(await body.next(), 'partial');
    res.body!.destroy();
    const seen = await closed.promise;
    assert.equal(seen.reqDestroyed, true);
    assert.equal(seen.resWritableEnded, false);
  });

  test('a handler that throws synchronously: BackendError 500, logged, and the next request works', async () => {
    records.length = 0;
    await assert.rejects(backend.handle(backendRequest({ uri: '/throw' })), (err) => err instanceof BackendError && err.status === 500 && /sync boom/.test(err.message));
    assert.ok(records.some((r) => r.level === 50 && /the app threw: sync boom/.test(String(r.msg))), JSON.stringify(records));
    const res = await backend.handle(backendRequest({ uri: '/hello' }));
    assert.equal((await collect(res.body)).toString(), 'hello 1.1');
  });

  test('a listener whose promise rejects: BackendError 500, no unhandled rejection', async () => {
    await assert.rejects(backend.handle(backendRequest({ uri: '/reject' })), (err) => err instanceof BackendError && err.status === 500 && /async boom/.test(err.message));
    const res = await backend.handle(backendRequest({ uri: '/hello' }));
    assert.equal(res.status, 200);
    await collect(res.body);
  });

  test('an app that never answers: 504 after headTimeoutMs, and the app sees its connection close', async () => {
    const silent = new AppBackend({ handler, logger, headTimeoutMs: 30 });
    try {
      watching();
      await assert.rejects(silent.handle(backendRequest({ uri: '/never' })), (err) => err instanceof BackendError && err.status === 504);
      assert.equal((await closed.promise).reqDestroyed, true);
      await assertAllClosed(silent);
    } finally {
      await silent.close();
    }
  });

  test('HTTP/1.0: the app sees 1.0 and a close-delimited response is read to its end', async () => {
    let res = await backend.handle(backendRequest({ uri: '/hello', version: 'HTTP/1.0' }));
    assert.equal((await collect(res.body)).toString(), 'hello 1.0');
    res = await backend.handle(backendRequest({ uri: '/old-style', version: 'HTTP/1.0' }));
    assert.deepEqual(header(res.headers, 'content-length'), []);
    assert.deepEqual(header(res.headers, 'connection'), []);
    assert.equal((await collect(res.body)).toString(), 'one,two');
  });

  test('request framing: Content-Length from bodyLength; chunked only when the length is unknown; Content-Length 0 for an empty POST', async () => {
    let res = await backend.handle(backendRequest({ method: 'POST', uri: '/echo-framing', body: 'abc', headers: [['transfer-encoding', 'chunked']] }));
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { te: null, cl: '3', body: 'abc' });
    res = await backend.handle(backendRequest({ method: 'POST', uri: '/echo-framing', body: 'streamed upload', bodyLength: null }));
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { te: 'chunked', cl: null, body: 'streamed upload' });
    res = await backend.handle(backendRequest({ method: 'POST', uri: '/echo-framing', headers: [['content-length', '0']] }));
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { te: null, cl: '0', body: '' });
    // A body longer than its length is cut to it: the rest would be read as another request.
    const r = backendRequest({ method: 'POST', uri: '/echo-framing', body: 'abcdef' });
    res = await backend.handle({ ...r, bodyLength: 4 });
    assert.equal((JSON.parse((await collect(res.body)).toString()) as { body: string }).body, 'abcd');
  });

  test('a body shorter than its length: 400, and the app’s request is aborted', async () => {
    watching();
    const r = backendRequest({ method: 'POST', uri: '/consume', body: 'short' });
    await assert.rejects(backend.handle({ ...r, bodyLength: 100 }), (err) => err instanceof BackendError && err.status === 400 && /95 bytes short/.test(err.message));
    assert.equal((await closed.promise).reqDestroyed, true);
  });

  test('Expect: 100-continue: Node’s interim 100 is skipped, the final response comes back', async () => {
    const res = await backend.handle(backendRequest({ method: 'POST', uri: '/echo-framing', body: 'x', headers: [['expect', '100-continue']] }));
    assert.equal(res.status, 200);
    assert.equal((JSON.parse((await collect(res.body)).toString()) as { body: string }).body, 'x');
  });

  test('a header Node’s parser refuses (a control character) is a 400, not a hang', async () => {
    await assert.rejects(backend.handle(backendRequest({ uri: '/hello', headers: [['x-bad', 'a\u0001b']] })), (err) => err instanceof BackendError && err.status === 400);
  });

  test('CR/LF in a header value or CONNECT never reach Node', async () => {
    await assert.rejects(backend.handle(backendRequest({ uri: '/hello', headers: [['x-split', 'a\r\nx-injected: 1']] })), (err) => err instanceof BackendError && err.status === 400);
    await assert.rejects(backend.handle(backendRequest({ method: 'CONNECT', uri: 'example.com:443' })), (err) => err instanceof BackendError && err.status === 501);
  });

  test('a response shorter than its Content-Length: the body fails after the head (the bridge then closes the client connection)', async () => {
    const res = await backend.handle(backendRequest({ uri: '/short-length' }));
    assert.equal(res.status, 200);
    await assert.rejects(collect(res.body), /cut short/);
  });

  test('res.setTimeout() works: the socket emits timeout after idle time', async () => {
    const res = await backend.handle(backendRequest({ uri: '/slow' }));
    assert.equal(res.status, 503);
    assert.equal((await collect(res.body)).toString(), 'timed out');
  });

  test('close(): in-flight requests end (the app sees close), later ones get 503', async () => {
    const b = new AppBackend({ handler, logger });
    watching();
    const pending = b.handle(backendRequest({ uri: '/never' }));
    await arrived.promise;
    await b.close();
    await assert.rejects(pending);
    assert.equal((await closed.promise).reqDestroyed, true);
    assert.equal(b.inflight, 0);
    await assert.rejects(b.handle(backendRequest({ uri: '/hello' })), (err) => err instanceof BackendError && err.status === 503);
  });
});
