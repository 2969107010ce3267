/**
 * A real Koa app behind AppBackend: query, JSON body, headers and cookies,
 * status codes, ctx.ip / ctx.protocol, streaming and SSE bodies, and 5 MB
 * both ways.
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import Koa from 'koa';
import { pino } from 'pino';
import { AppBackend, detectApp } from '../../adapters/app.js';
import { assertAllClosed, backendRequest, chunks, collect, gate, header, md5 } from './helpers.js';

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('AppBackend with Koa', () => {
  let backend: AppBackend;
  const app = new Koa();
  const gates = { stream: gate(), sse: gate() };
  let secondWritten = false;

  app.silent = true; // the 500 test's error would go to stderr
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/query':
        ctx.body = { query: ctx.query, querystring: ctx.querystring, method: ctx.method };
        return;
      case '/json': {
        if (!ctx.is('application/json')) ctx.throw(415);
        ctx.status = 201;
        ctx.body = { got: JSON.parse((await readAll(ctx.req)).toString()) as unknown };
        return;
      }
      case '/headers':
        ctx.cookies.set('session', 'k1', { httpOnly: true });
        ctx.cookies.set('lang', 'fr', { httpOnly: false });
        ctx.set('X-Custom', 'koa');
        ctx.body = { a: ctx.cookies.get('a'), b: ctx.cookies.get('b'), accept: ctx.get('accept'), dup: ctx.get('x-dup') };
        return;
      case '/client':
        ctx.body = { ip: ctx.ip, protocol: ctx.protocol, secure: ctx.secure, host: ctx.host, xff: ctx.get('x-forwarded-for') };
        return;
      case '/teapot':
        ctx.status = 418;
        ctx.message = 'Short And Stout';
        ctx.body = 'tea';
        return;
      case '/forbidden':
        ctx.throw(403, 'no');
        return;
      case '/boom':
        throw new Error('koa route failed');
      case '/stream': {
        const out = new PassThrough();
        ctx.type = 'text/plain';
        ctx.body = out;
        out.write('first\n');
        void gates.stream.promise.then(() => {
          secondWritten = true;
          out.end('second\n');
        });
        return;
      }
      case '/sse': {
        const out = new PassThrough();
        ctx.type = 'text/event-stream';
        ctx.set('Cache-Control', 'no-cache');
        ctx.body = out;
        out.write('data: hello\n\n');
        void gates.sse.promise.then(() => out.end('data: bye\n\n'));
        return;
      }
      case '/echo': {
        const body = await readAll(ctx.req);
        ctx.set('X-Request-Md5', md5(body));
        ctx.type = 'application/octet-stream';
        ctx.body = body;
        return;
      }
      default:
        return; // Koa answers 404
    }
  });

  before(() => {
    backend = new AppBackend({ handler: detectApp(app)!, logger: pino({ level: 'silent' }) });
  });
  afterEach(() => assertAllClosed(backend));
  after(async () => {
    await backend.close();
  });

  test('detected as koa', () => {
    assert.equal(backend.kind, 'koa');
  });

  test('GET with a query string', async () => {
    const res = await backend.handle(backendRequest({ uri: '/query?x=1&y=%C3%A9' }));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { query: { x: '1', y: 'é' }, querystring: 'x=1&y=%C3%A9', method: 'GET' });
  });

  test('POST with a JSON body', async () => {
    const res = await backend.handle(backendRequest({ method: 'POST', uri: '/json', headers: [['content-type', 'application/json; charset=utf-8']], body: '{"k":[true,null]}' }));
    assert.equal(res.status, 201);
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { got: { k: [true, null] } });
  });

  test('cookies and headers in, Set-Cookie and custom headers out', async () => {
    const res = await backend.handle(backendRequest({ uri: '/headers', headers: [['accept', 'text/html'], ['cookie', 'a=1; b=2'], ['x-dup', ['p', 'q']]] }));
    assert.deepEqual(header(res.headers, 'set-cookie'), ['session=k1; path=/; httponly', 'lang=fr; path=/']);
    assert.deepEqual(header(res.headers, 'x-custom'), ['koa']);
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { a: '1', b: '2', accept: 'text/html', dup: 'p, q' });
  });

  test('ctx.ip is REMOTE_ADDR, ctx.protocol http or https from URL_SCHEME', async () => {
    let res = await backend.handle(backendRequest({ uri: '/client', remoteAddr: '192.0.2.44', headers: [['x-forwarded-for', '1.1.1.1']] }));
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { ip: '192.0.2.44', protocol: 'http', secure: false, host: 'app.example', xff: '1.1.1.1' });
    res = await backend.handle(backendRequest({ uri: '/client', scheme: 'https', remoteAddr: '192.0.2.45' }));
    const seen = JSON.parse((await collect(res.body)).toString()) as Record<string, unknown>;
    assert.equal(seen.protocol, 'https');
    assert.equal(seen.secure, true);
    assert.equal(seen.ip, '192.0.2.45');
  });

  test('status codes: custom reason, ctx.throw, an error (500), Koa’s 404', async () => {
    let res = await backend.handle(backendRequest({ uri: '/teapot' }));
    assert.equal(res.status, 418);
    assert.equal(res.reason, 'Short And Stout');
    assert.equal((await collect(res.body)).toString(), 'tea');
    res = await backend.handle(backendRequest({ uri: '/forbidden' }));
    assert.equal(res.status, 403);
    assert.equal((await collect(res.body)).toString(), 'no');
    res = await backend.handle(backendRequest({ uri: '/boom' }));
    assert.equal(res.status, 500);
    assert.equal((await collect(res.body)).toString(), 'Internal Server Error');
    res = await backend.handle(backendRequest({ uri: '/nothing' }));
    assert.equal(res.status, 404);
    await collect(res.body);
  });

  test('a streamed body: the first chunk is readable before the app writes the second', async () => {
    const res = await backend.handle(backendRequest({ uri: '/stream' }));
    assert.equal(res.status, 200);
    const body = chunks(res.body!);
    assert.equal(await body.next(), 'first\n');
    assert.equal(secondWritten, false);
    gates.stream.open();
    assert.equal(await body.rest(), 'second\n');
  });

  test('SSE: text/event-stream sets noBuffering and events arrive as written', async () => {
    const res = await backend.handle(backendRequest({ uri: '/sse' }));
    assert.equal(res.noBuffering, true);
    assert.deepEqual(header(res.headers, 'content-type'), ['text/event-stream; charset=utf-8']);
    const body = chunks(res.body!);
    assert.equal(await body.next(), 'data: hello\n\n');
    gates.sse.open();
    assert.equal(await body.rest(), 'data: bye\n\n');
  });

  test('5 MB up and 5 MB back, md5 checked both ways', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const res = await backend.handle(backendRequest({ method: 'PUT', uri: '/echo', headers: [['content-type', 'application/octet-stream']], body: data }));
    assert.equal(res.status, 200);
    assert.deepEqual(header(res.headers, 'x-request-md5'), [md5(data)]);
    assert.equal(md5(await collect(res.body)), md5(data));
  });
});
