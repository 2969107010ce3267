/**
 * A real Express 5 app behind AppBackend: what the app sees of the Mongrel2
 * request (query, JSON body, headers, cookies, client IP, https), and how its
 * response comes back (status, headers, streaming chunk by chunk, SSE, 5 MB
 * bodies both ways).
 */
import { test, describe, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import express from 'express';
import { pino } from 'pino';
import { AppBackend, detectApp } from '../../adapters/app.js';
import { assertAllClosed, backendRequest, chunks, collect, gate, header, md5 } from './helpers.js';

describe('AppBackend with Express 5', () => {
  let backend: AppBackend;
  const app = express();
  const gates = { stream: gate(), sse1: gate(), sse2: gate() };
  let secondWritten = false;

  app.set('env', 'test'); // finalhandler: no stack traces on stderr for the route error
  app.use(express.json());
  app.get('/query', (req, res) => {
    res.json({ query: req.query, path: req.path, url: req.originalUrl });
  });
  app.post('/json', (req, res) => {
    res.status(201).json({ got: req.body as unknown, type: req.get('content-type'), length: req.get('content-length') });
  });
  app.get('/headers', (req, res) => {
    res.cookie('session', 'abc', { httpOnly: true });
    res.cookie('theme', 'dark');
    res.set('X-Custom', 'yes');
    res.json({ cookie: req.headers.cookie, accept: req.get('accept'), dup: req.headers['x-dup'], agent: req.get('user-agent'), mongrel2: Object.keys(req.headers).filter((k) => k.startsWith('x-mongrel2') || k === 'method' || k === 'remote_addr') });
  });
  app.get('/client', (req, res) => {
    res.json({ ip: req.ip, protocol: req.protocol, secure: req.secure, xff: req.get('x-forwarded-for'), hostname: req.hostname, httpVersion: req.httpVersion });
  });
  app.get('/status/:code', (req, res) => {
    res.statusMessage = 'Custom Reason';
    res.status(Number(req.params.code)).send(`status ${req.params.code}`);
  });
  app.get('/redirect', (_req, res) => res.redirect(302, '/elsewhere'));
  app.get('/error', () => {
    throw new Error('route failed');
  });
  app.get('/stream', async (_req, res) => {
    res.type('text/plain');
    res.write('first\n');
    await gates.stream.promise;
    secondWritten = true;
    res.write('second\n');
    res.end('third\n');
  });
  app.get('/sse', async (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.flushHeaders();
    await gates.sse1.promise;
    res.write('data: one\n\n');
    await gates.sse2.promise;
    res.write('data: two\n\n');
    res.end();
  });
  app.post('/echo', express.raw({ type: '*/*', limit: '10mb' }), (req, res) => {
    const body = req.body as Buffer;
    res.set('X-Request-Md5', md5(body)).type('application/octet-stream').send(body);
  });
  app.get('/big', (_req, res) => {
    res.type('application/octet-stream').send(BIG);
  });
  const BIG = randomBytes(5 * 1024 * 1024);

  before(() => {
    backend = new AppBackend({ handler: detectApp(app)!, logger: pino({ level: 'silent' }) });
  });
  afterEach(() => assertAllClosed(backend));
  after(async () => {
    await backend.close();
  });

  test('GET with a query string', async () => {
    const res = await backend.handle(backendRequest({ uri: '/query?a=1&b=two%20words&list=x&list=y' }));
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { query: { a: '1', b: 'two words', list: ['x', 'y'] }, path: '/query', url: '/query?a=1&b=two%20words&list=x&list=y' });
  });

  test('POST with a JSON body parsed by express.json()', async () => {
    const body = JSON.stringify({ name: 'mongrel', n: [1, 2, 3] });
    const res = await backend.handle(backendRequest({ method: 'POST', uri: '/json', headers: [['content-type', 'application/json']], body }));
    assert.equal(res.status, 201);
    assert.equal(res.reason, 'Created');
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { got: { name: 'mongrel', n: [1, 2, 3] }, type: 'application/json', length: String(body.length) });
  });

  test('request headers (duplicates, cookies) in; Set-Cookie and custom headers out', async () => {
    const res = await backend.handle(
      backendRequest({
        uri: '/headers',
        headers: [['accept', 'application/json'], ['cookie', ['a=1', 'b=2']], ['x-dup', ['one', 'two']], ['user-agent', 'curl/8'], ['x-mongrel2-upload-start', '/tmp/forged']],
      }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(header(res.headers, 'set-cookie'), ['session=abc; Path=/; HttpOnly', 'theme=dark; Path=/']);
    assert.deepEqual(header(res.headers, 'x-custom'), ['yes']);
    assert.deepEqual(header(res.headers, 'connection'), [], 'hop-by-hop headers are the bridge’s business');
    assert.deepEqual(header(res.headers, 'keep-alive'), []);
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { cookie: 'a=1; b=2', accept: 'application/json', dup: 'one, two', agent: 'curl/8', mongrel2: [] });
  });

  test('req.ip is the trusted REMOTE_ADDR; x-forwarded-for is passed as the client sent it', async () => {
    const res = await backend.handle(backendRequest({ uri: '/client', remoteAddr: '203.0.113.7', headers: [['x-forwarded-for', '10.9.8.7']] }));
    assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { ip: '203.0.113.7', protocol: 'http', secure: false, xff: '10.9.8.7', hostname: 'app.example', httpVersion: '1.1' });
  });

  test('URL_SCHEME https: req.protocol is https and req.secure true', async () => {
    const res = await backend.handle(backendRequest({ uri: '/client', scheme: 'https', remoteAddr: '2001:db8::1' }));
    const seen = JSON.parse((await collect(res.body)).toString()) as Record<string, unknown>;
    assert.equal(seen.protocol, 'https');
    assert.equal(seen.secure, true);
    assert.equal(seen.ip, '2001:db8::1');
  });

  test('status codes and reason phrases: custom, 404, 302, and a route error (500)', async () => {
    let res = await backend.handle(backendRequest({ uri: '/status/418' }));
    assert.equal(res.status, 418);
    assert.equal(res.reason, 'Custom Reason');
    assert.equal((await collect(res.body)).toString(), 'status 418');
    res = await backend.handle(backendRequest({ uri: '/missing' }));
    assert.equal(res.status, 404);
    assert.match((await collect(res.body)).toString(), /Cannot GET \/missing/);
    res = await backend.handle(backendRequest({ uri: '/redirect' }));
    assert.equal(res.status, 302);
    assert.deepEqual(header(res.headers, 'location'), ['/elsewhere']);
    await collect(res.body);
    res = await backend.handle(backendRequest({ uri: '/error' }));
    assert.equal(res.status, 500);
    await collect(res.body);
  });

  test('HEAD: the head with its Content-Length, no body', async () => {
    const res = await backend.handle(backendRequest({ method: 'HEAD', uri: '/status/200' }));
    assert.equal(res.status, 200);
    assert.equal(res.body, null);
    assert.deepEqual(header(res.headers, 'content-length'), ['10']);
  });

  test('a streaming response arrives chunk by chunk: the first is readable before the app writes the second', async () => {
    const res = await backend.handle(backendRequest({ uri: '/stream' }));
    assert.equal(res.status, 200);
    assert.deepEqual(header(res.headers, 'transfer-encoding'), [], 'de-chunked; the bridge re-frames');
    assert.equal(res.noBuffering, false);
    const body = chunks(res.body!);
    assert.equal(await body.next(), 'first\n');
    assert.equal(secondWritten, false);
    gates.stream.open();
    assert.equal(await body.rest(), 'second\nthird\n');
  });

  test('SSE: flushHeaders gives the head at once, text/event-stream sets noBuffering, each event arrives as written', async () => {
    const res = await backend.handle(backendRequest({ uri: '/sse', headers: [['accept', 'text/event-stream']] }));
    // The head came from flushHeaders(): the app is still waiting on its first gate.
    assert.equal(res.status, 200);
    assert.equal(res.noBuffering, true);
    assert.deepEqual(header(res.headers, 'content-type'), ['text/event-stream']);
    const body = chunks(res.body!);
    gates.sse1.open();
    assert.equal(await body.next(), 'data: one\n\n');
    gates.sse2.open();
    assert.equal(await body.rest(), 'data: two\n\n');
  });

  test('a 5 MB request body reaches the app and a 5 MB response comes back intact (md5)', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const res = await backend.handle(backendRequest({ method: 'POST', uri: '/echo', headers: [['content-type', 'application/octet-stream']], body: data }));
    assert.equal(res.status, 200);
    assert.deepEqual(header(res.headers, 'x-request-md5'), [md5(data)]);
    const back = await collect(res.body);
    assert.equal(back.length, data.length);
    assert.equal(md5(back), md5(data));
    const big = await backend.handle(backendRequest({ uri: '/big' }));
    assert.deepEqual(header(big.headers, 'content-length'), [String(BIG.length)]);
    assert.equal(md5(await collect(big.body)), md5(BIG));
  });

  test('concurrent requests each get their own connection', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => backend.handle(backendRequest({ uri: `/query?i=${i}` }))));
    const seen = await Promise.all(all.map(async (r) => (JSON.parse((await collect(r.body)).toString()) as { query: { i: string } }).query.i));
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => String(i)));
  });
});
