/**
 * HttpBackend on its own against a real node:http origin: request line and
 * headers as the origin sees them, bodies streamed both ways, HEAD/204/304,
 * aborts reaching the origin, and the error statuses.
 */
import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HttpBackend } from '../../adapters/http.js';
import { BackendError } from '../../src/bridge/backend.js';
import { backendRequest, chunks, collect, header, memoryLogger } from '../app/helpers.js';
import { deadPort, junkServer, startUpstream, type Upstream } from './upstream.js';

const MiB = 1024 * 1024;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The origin's raw headers as [name, value] pairs, names lower-cased. */
function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}
const values = (raw: readonly string[], name: string): string[] => pairs(raw).filter(([k]) => k === name).map(([, v]) => v);

async function json<T>(body: Readable | null): Promise<T> {
  return JSON.parse((await collect(body)).toString()) as T;
}

interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  size: number;
}

const isStatus = (status: number) => (err: unknown): boolean => err instanceof BackendError && err.status === status;

describe('HttpBackend against a node:http origin', () => {
  const { logger } = memoryLogger();
  let up: Upstream;
  let backend: HttpBackend;
  let based: HttpBackend;
  let trusting: HttpBackend;

  before(async () => {
    up = await startUpstream();
    backend = new HttpBackend({ url: up.url, logger });
    based = new HttpBackend({ url: `${up.url}/base/`, logger });
    trusting = new HttpBackend({ url: up.url, logger, trustForwarded: true });
  });
  after(async () => {
    await Promise.all([backend?.close(), based?.close(), trusting?.close()]);
    await up?.close();
  });

  test('method, path and query go through byte for byte; the base path is put in front', async () => {
    let res = await backend.handle(backendRequest({ method: 'DELETE', uri: '/echo/a%20b?x=1&y=%2F' }));
    assert.equal(res.status, 200);
    let echo = await json<Echo>(res.body);
    assert.equal(echo.method, 'DELETE');
    assert.equal(echo.url, '/echo/a%20b?x=1&y=%2F');
    res = await based.handle(backendRequest({ uri: '/echo?q' }));
    echo = await json<Echo>(res.body);
    assert.equal(echo.url, '/base/echo?q');
    assert.deepEqual(header(res.headers, 'x-method'), ['GET']);
  });

  test("Host is the client's; X-Forwarded-For replaces a client value with REMOTE_ADDR; Proto and Host are set", async () => {
    const req = backendRequest({
      uri: '/echo',
      scheme: 'https',
      remoteAddr: '192.0.2.7',
      headers: [
        ['x-forwarded-for', '6.6.6.6'],
        ['x-forwarded-proto', 'gopher'],
        ['forwarded', 'for=6.6.6.6'],
        ['accept', ['a/b', 'c/d']],
      ],
    });
    const echo = await json<Echo>((await backend.handle(req)).body);
    assert.deepEqual(values(echo.rawHeaders, 'host'), ['app.example']);
    assert.deepEqual(values(echo.rawHeaders, 'x-forwarded-for'), ['192.0.2.7']);
    assert.deepEqual(values(echo.rawHeaders, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(values(echo.rawHeaders, 'x-forwarded-host'), ['app.example']);
    assert.deepEqual(values(echo.rawHeaders, 'forwarded'), []);
    assert.deepEqual(values(echo.rawHeaders, 'accept'), ['a/b', 'c/d'], 'duplicates stay separate, in order');
    // Mongrel2's own keys are not client headers.
    assert.deepEqual(values(echo.rawHeaders, 'remote_addr'), []);
    assert.deepEqual(values(echo.rawHeaders, 'pattern'), []);
  });

  test('trustForwarded appends REMOTE_ADDR to the client chain and keeps its Proto', async () => {
    const req = backendRequest({ uri: '/echo', remoteAddr: '10.0.0.2', headers: [['x-forwarded-for', '203.0.113.5, 10.0.0.1'], ['x-forwarded-proto', 'https']] });
    const echo = await json<Echo>((await trusting.handle(req)).body);
    assert.deepEqual(values(echo.rawHeaders, 'x-forwarded-for'), ['203.0.113.5, 10.0.0.1, 10.0.0.2']);
    assert.deepEqual(values(echo.rawHeaders, 'x-forwarded-proto'), ['https']);
  });

  test('hop-by-hop request headers, and those named in Connection, stay behind', async () => {
    const req = backendRequest({
      uri: '/echo',
      headers: [
        ['connection', 'keep-alive, X-Private'],
        ['x-private', 'secret'],
        ['keep-alive', '300'],
        ['proxy-connection', 'keep-alive'],
        ['te', 'trailers'],
        ['trailer', 'X-T'],
        ['upgrade', 'h2c'],
        ['proxy-authorization', 'Basic eDp5'],
        ['x-mongrel2-upload-done', '/etc/passwd'],
        ['expect', '100-continue'],
        ['authorization', 'Bearer kept'],
      ],
    });
    const echo = await json<Echo>((await backend.handle(req)).body);
    const names = new Set(pairs(echo.rawHeaders).map(([k]) => k));
    for (const gone of ['x-private', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'x-mongrel2-upload-done', 'expect']) assert.equal(names.has(gone), false, gone);
    assert.deepEqual(values(echo.rawHeaders, 'authorization'), ['Bearer kept']);
    // undici's own keep-alive to the origin, not the client's Connection tokens.
    assert.deepEqual(values(echo.rawHeaders, 'connection'), ['keep-alive']);
  });

  test('non-ASCII header bytes reach the origin as the client sent them (UTF-8)', async () => {
    const echo = await json<Echo>((await backend.handle(backendRequest({ uri: '/echo', headers: [['x-name', 'Zoë']] }))).body);
    // node:http reads header bytes as latin1.
    assert.deepEqual(values(echo.rawHeaders, 'x-name'), [Buffer.from('Zoë', 'utf8').toString('latin1')]);
  });

  test('response: reason, case, order, duplicates and Set-Cookie kept; hop-by-hop dropped', async () => {
    const res = await backend.handle(backendRequest({ uri: '/headers' }));
    assert.equal(res.status, 200);
    assert.equal(res.reason, 'Fine Thanks');
    assert.deepEqual(header(res.headers, 'set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly']);
    assert.deepEqual(header(res.headers, 'x-dup'), ['one', 'two']);
    assert.ok(res.headers.some(([k]) => k === 'Set-Cookie'), 'name case kept');
    for (const gone of ['connection', 'x-secret', 'keep-alive', 'proxy-authenticate', 'transfer-encoding']) assert.deepEqual(header(res.headers, gone), [], gone);
    assert.equal((await collect(res.body)).toString(), 'ok');
  });

  test('a 10 MiB request body streams with its Content-Length and arrives intact', async () => {
    const data = randomBytes(10 * MiB);
    const res = await backend.handle(backendRequest({ method: 'POST', uri: '/sha', body: data }));
    const got = await json<{ sha256: string; length: number; te: string | null; cl: string | null }>(res.body);
    assert.deepEqual(got, { sha256: sha256(data), length: data.length, te: null, cl: String(data.length) });
  });

  test('a body of unknown length goes chunked', async () => {
    const data = randomBytes(300 * 1024);
    const res = await backend.handle(backendRequest({ method: 'PUT', uri: '/sha', body: data, bodyLength: null }));
    const got = await json<{ sha256: string; te: string | null; cl: string | null }>(res.body);
    assert.deepEqual(got, { sha256: sha256(data), length: data.length, te: 'chunked', cl: null });
  });

  test('a temp-file upload (a file stream, as openRequestBody gives it) is sent from the file', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'm2b-http-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const data = randomBytes(3 * MiB + 17);
    const file = path.join(dir, 'upload.AbC123');
    await writeFile(file, data);
    const { req, signal } = backendRequest({ method: 'POST', uri: '/sha', headers: [['content-length', String(data.length)]] });
    const res = await backend.handle({ req, body: createReadStream(file), bodyLength: data.length, signal });
    const got = await json<{ sha256: string; length: number }>(res.body);
    assert.equal(got.sha256, sha256(data));
    assert.equal(got.length, data.length);
  });

  test('an empty POST still tells the origin its length (0)', async () => {
    const echo = await json<Echo>((await backend.handle(backendRequest({ method: 'POST', uri: '/echo', headers: [['content-length', '0']] }))).body);
    assert.deepEqual(values(echo.rawHeaders, 'content-length'), ['0']);
  });

  test('the response streams: the first chunk arrives before the origin ends', async () => {
    const res = await backend.handle(backendRequest({ uri: '/stream' }));
    assert.ok(res.body);
    const it = chunks(res.body);
    assert.equal(await it.next(), 'first;');
    up.release();
    assert.equal(await it.rest(), 'second');
  });

  test('backpressure: an unread response body stops the origin; reading resumes it', async () => {
    const blocked = up.blocked();
    const res = await backend.handle(backendRequest({ uri: '/big' }));
    assert.ok(res.body);
    // Nothing reads yet: the origin's socket fills and write() says "wait".
    const before = await blocked;
    assert.ok(before < 8 * MiB, `the origin wrote ${before} bytes before it had to wait`);
    assert.equal((await collect(res.body)).length, 32 * MiB);
  });

  test('HEAD: the head only, no body to read', async () => {
    const res = await backend.handle(backendRequest({ method: 'HEAD', uri: '/echo' }));
    assert.equal(res.status, 200);
    assert.equal(res.body, null);
    assert.deepEqual(header(res.headers, 'x-method'), ['HEAD']);
    // The connection is reusable afterwards.
    assert.equal((await backend.handle(backendRequest({ uri: '/status/204' }))).status, 204);
  });

  test('204 and 304 come back without a body', async () => {
    for (const status of [204, 304]) {
      const res = await backend.handle(backendRequest({ uri: `/status/${status}` }));
      assert.equal(res.status, status);
      assert.equal(res.body, null);
      assert.deepEqual(header(res.headers, 'etag'), ['"v1"']);
    }
  });

  test('a 1xx (103 Early Hints) is not passed on: the 200 is', async () => {
    const res = await backend.handle(backendRequest({ uri: '/hints' }));
    assert.equal(res.status, 200);
    assert.deepEqual(header(res.headers, 'link'), []);
    assert.equal((await collect(res.body)).toString(), 'after hints');
  });

  test('abort before the response head closes the origin connection', async () => {
    const held = up.held();
    const ac = new AbortController();
    const pending = backend.handle(backendRequest({ uri: '/hold', signal: ac.signal }));
    await held.arrived;
    ac.abort(new Error('client went away'));
    await assert.rejects(pending, /client went away/);
    assert.equal((await held.closed).aborted, true);
  });

  test('abort while the body streams closes the origin connection too', async () => {
    const held = up.held();
    const ac = new AbortController();
    const res = await backend.handle(backendRequest({ uri: '/hold-body', signal: ac.signal }));
    await held.arrived;
    assert.ok(res.body);
    assert.equal(await chunks(res.body).next(), 'partial');
    ac.abort(new Error('client went away'));
    assert.equal((await held.closed).aborted, true);
  });

  test('abort during a request body upload closes the origin connection', async () => {
    const held = up.held();
    const ac = new AbortController();
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000, 0x61));
    const { req } = backendRequest({ method: 'POST', uri: '/hold', headers: [['content-length', '5000']] });
    const pending = backend.handle({ req, body, bodyLength: 5000, signal: ac.signal });
    await held.arrived;
    ac.abort(new Error('client went away'));
    await assert.rejects(pending);
    assert.deepEqual(await held.closed, { aborted: true, complete: false });
  });

  test('abort while queued behind a busy connection answers at once', { timeout: 5000 }, async (t) => {
    const one = new HttpBackend({ url: up.url, logger, connections: 1 });
    const holding = new AbortController();
    t.after(async () => {
      holding.abort(new Error('test over'));
      await one.close();
    });
    const held = up.held();
    void one.handle(backendRequest({ uri: '/hold', signal: holding.signal })).catch(() => undefined);
    await held.arrived;
    const ac = new AbortController();
    const queued = one.handle(backendRequest({ uri: '/echo', signal: ac.signal }));
    ac.abort(new Error('left while queued'));
    await assert.rejects(queued, /left while queued/);
  });

  test('a path that is not origin-form or a header undici will not write is a 400, CONNECT a 501', async () => {
    await assert.rejects(backend.handle(backendRequest({ uri: '*', method: 'OPTIONS' })), isStatus(400));
    await assert.rejects(backend.handle(backendRequest({ uri: '/echo', headers: [['x-nul', 'a\u0000b']] })), isStatus(400));
    await assert.rejects(backend.handle(backendRequest({ uri: '/x', method: 'CONNECT' })), isStatus(501));
  });
});

describe('HttpBackend failures', () => {
  const { logger } = memoryLogger();
  const make = (url: string, extra: Partial<ConstructorParameters<typeof HttpBackend>[0]> = {}): HttpBackend => new HttpBackend({ url, logger, ...extra });
  /** A backend in front of `server`; both closed when the test ends. */
  const against = <S extends { url: string; close(): Promise<void> }>(t: TestContext, server: S, extra: Partial<ConstructorParameters<typeof HttpBackend>[0]> = {}): HttpBackend => {
    const b = make(server.url, extra);
    t.after(async () => {
      await b.close();
      await server.close();
    });
    return b;
  };

  test('connection refused → 502', async (t) => {
    const b = make(`http://127.0.0.1:${await deadPort()}`);
    t.after(() => b.close());
    await assert.rejects(b.handle(backendRequest({ uri: '/' })), (err: unknown) => isStatus(502)(err) && /ECONNREFUSED/.test((err as Error).message));
  });

  for (const [what, reply] of [
    ['garbage instead of HTTP', 'SSH-2.0-OpenSSH_9.2\r\n\r\n'],
    ['closed without an answer', ''],
  ] as const) {
    test(`${what} → 502, and the process lives on`, async (t) => {
      const b = against(t, await junkServer(reply));
      await assert.rejects(b.handle(backendRequest({ uri: '/' })), isStatus(502));
    });
  }

  test('no response head within headersTimeoutMs → 504; the origin connection is closed', async (t) => {
    const up = await startUpstream();
    const b = against(t, up, { headersTimeoutMs: 200 });
    const held = up.held();
    await assert.rejects(b.handle(backendRequest({ uri: '/hold' })), isStatus(504));
    assert.equal((await held.closed).aborted, true);
  });

  test('a body that stalls past bodyTimeoutMs fails the body stream mid-way', async (t) => {
    const b = against(t, await startUpstream(), { bodyTimeoutMs: 200 });
    const res = await b.handle(backendRequest({ uri: '/hold-body' }));
    assert.equal(res.status, 200);
    await assert.rejects(collect(res.body), (err: unknown) => (err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT');
  });

  test('after close() requests get 503', async () => {
    const b = make('http://127.0.0.1:9');
    await b.close();
    await assert.rejects(b.handle(backendRequest({ uri: '/' })), isStatus(503));
  });

  test('a bad URL is refused when the backend is made', () => {
    assert.throws(() => make('ftp://x/'), /scheme must be http or https/);
    assert.throws(() => make('not a url'), /not a URL/);
    assert.throws(() => make('http://h/?q=1'), /query or fragment/);
  });
});
