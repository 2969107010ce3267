/**
 * FastCgiClient against a mock FastCGI server (test/fastcgi/mock-fpm.ts) that
 * cuts its records at arbitrary points and never pads them.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { FastCgiClient, parseFastCgiAddress, type FastCgiClientOptions } from '../../src/fastcgi/client.js';
import { startMockFpm, record, T, type MockFpm, type MockOptions, type MockRequest } from './mock-fpm.js';
import { countingBody, md5, readAll, rejectsWith, waitStable, waitUntil } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(mockOpts: MockOptions, clientOpts: Partial<FastCgiClientOptions> = {}): Promise<{ mock: MockFpm; client: FastCgiClient }> {
  const mock = await startMockFpm(mockOpts);
  const client = new FastCgiClient({ address: mock.address, connectTimeoutMs: 2000, readTimeoutMs: 5000, ...clientOpts });
  cleanups.push(async () => {
    await client.close({ timeoutMs: 0 });
    assert.equal(client.stats().open, 0, 'client sockets left open');
    await mock.close();
  });
  return { mock, client };
}

function param(req: MockRequest, name: string): string | undefined {
  return req.params.find(([k]) => k === name)?.[1];
}

/** Answers with a CGI head + `body`, then END_REQUEST. */
function respond(body: (req: MockRequest) => string | Buffer, appStatus = 0): (req: MockRequest) => Promise<void> {
  return async (req) => {
    await req.conn.stdout(Buffer.concat([Buffer.from('Content-Type: text/plain\r\n\r\n'), Buffer.from(body(req))]));
    await req.conn.end(appStatus);
  };
}

const HEAD = 'Content-Type: text/plain\r\n\r\n';

/** STDERR `before`, then HEAD + 'body' on STDOUT, STDERR `after`, END_REQUEST with `appStatus`. */
function stderrAround(before: string, after: string, appStatus: number): (req: MockRequest) => Promise<void> {
  return async (req) => {
    await req.conn.stderr(before);
    await req.conn.stdout(HEAD + 'body');
    await req.conn.stderr(after);
    await req.conn.end(appStatus);
  };
}

/** The 'slow' mock request waits on this until the test has looked at the unfinished reply. */
function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
let asked = gate();
async function sleepUntilAsked(_req: MockRequest): Promise<void> {
  await asked.promise;
  asked = gate();
}

function endBody(appStatus: number, protocolStatus: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(appStatus, 0);
  b[4] = protocolStatus;
  return b;
}

async function freeClosedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('parseFastCgiAddress', () => {
  test('HOST:PORT, [IPv6]:PORT, hostname:port, unix:/path', () => {
    assert.deepStrictEqual(parseFastCgiAddress('127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
    assert.deepStrictEqual(parseFastCgiAddress('[::1]:9001'), { host: '::1', port: 9001 });
    assert.deepStrictEqual(parseFastCgiAddress('[fe80::1:2]:1'), { host: 'fe80::1:2', port: 1 });
    assert.deepStrictEqual(parseFastCgiAddress('localhost:65535'), { host: 'localhost', port: 65535 });
    assert.deepStrictEqual(parseFastCgiAddress('php-fpm.internal:9000'), { host: 'php-fpm.internal', port: 9000 });
    assert.deepStrictEqual(parseFastCgiAddress('unix:/run/php/php8.2-fpm.sock'), { path: '/run/php/php8.2-fpm.sock' });
  });

  test('anything else throws an Error naming the text', () => {
    for (const bad of ['', '9000', '127.0.0.1', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:9e3', '::1:9000', '[::1]', '[zz]:80', '300.1.1.1:80', 'host name:80', '-bad-:80', 'http://x:80', 'unix:relative.sock', 'unix:', ':9000']) {
      assert.throws(
        () => parseFastCgiAddress(bad),
        (err: Error) => err.message.includes(JSON.stringify(bad)) && /expected HOST:PORT/.test(err.message),
        bad,
      );
    }
  });
});

describe('FastCgiClient: request and response', () => {
  test('params arrive intact: 80 KB of HTTP_X_*, a 60 KB cookie, UTF-8, empty values; no pair split', async () => {
    const params: Array<[string, string]> = [
      ['SCRIPT_FILENAME', '/srv/www/index.php'],
      ['REQUEST_METHOD', 'POST'],
      ['CONTENT_LENGTH', '5'],
      ['HTTP_X_UNICODE', 'héllo wörld ☃ 𝄞'],
      ['QUERY_STRING', ''],
    ];
    for (let i = 0; i < 400; i++) params.push([`HTTP_X_H${i}`, `${i}-`.padEnd(200, 'v')]);
    params.push(['HTTP_COOKIE', 'c=' + 'k'.repeat(60 * 1024)]);
    const { mock, client } = await setup({ onRequest: respond(() => 'ok') });
    const res = await client.request({ params, stdin: Buffer.from('hello') });
    assert.equal((await readAll(res.stdout)).toString(), HEAD + 'ok');
    assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
    const req = mock.requests[0]!;
    assert.deepStrictEqual(req.params, params);
    assert.ok(req.paramRecords >= 3, `${req.paramRecords} PARAMS records`);
    assert.equal(req.requestId, 1);
    assert.equal(req.role, 1);
    assert.equal(req.keepConn, true);
    assert.equal(req.stdin().toString(), 'hello');
    assert.deepStrictEqual(mock.violations, []);
  });

  test('the promise resolves at the first STDOUT record and stdout streams before END_REQUEST', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { mock, client } = await setup({
      onRequest: async (req) => {
        await req.conn.stdout('part1');
        await gate;
        await req.conn.stdout('part2');
        await req.conn.end();
      },
    });
    const res = await client.request({ params: [['A', 'b']] });
    const it = res.stdout[Symbol.asyncIterator]();
    const first = (await it.next()) as IteratorResult<Buffer>;
    assert.equal(first.value.toString(), 'part1');
    assert.equal(mock.requests[0]!.conn.isClosed, false);
    release();
    const rest: Buffer[] = [];
    for (let r = (await it.next()) as IteratorResult<Buffer>; !r.done; r = (await it.next()) as IteratorResult<Buffer>) rest.push(r.value);
    assert.equal(Buffer.concat(rest).toString(), 'part2');
    assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
  });

  test('stderr surfaces as its own stream; appStatus comes through done', async () => {
    const { client } = await setup({ onRequest: stderrAround('PHP Warning:  oops', ' in /x.php', 3) });
    const res = await client.request({ params: [] });
    const [out, err] = await Promise.all([readAll(res.stdout), readAll(res.stderr)]);
    assert.equal(out.toString(), HEAD + 'body');
    assert.equal(err.toString(), 'PHP Warning:  oops in /x.php');
    assert.deepStrictEqual(await res.done, { appStatus: 3, protocolStatus: 0 });
  });

  test('stderr and done asked for only after the end still hold every byte and the statuses', async () => {
    const { client } = await setup({ onRequest: stderrAround('early', ' late', 4) });
    const res = await client.request({ params: [] });
    assert.equal((await readAll(res.stdout)).toString(), HEAD + 'body');
    assert.equal((await readAll(res.stderr)).toString(), 'early late');
    assert.deepStrictEqual(await res.done, { appStatus: 4, protocolStatus: 0 });
  });

  test('onStderr gets the STDERR bytes instead of the stream; a throwing callback changes nothing', async () => {
    const { client } = await setup({ onRequest: stderrAround('one', 'two', 0) });
    const seen: string[] = [];
    const res = await client.request({ params: [], onStderr: (chunk) => seen.push(chunk.toString()) });
    assert.equal((await readAll(res.stdout)).toString(), HEAD + 'body');
    assert.equal(seen.join(''), 'onetwo');
    assert.equal((await readAll(res.stderr)).length, 0);
    const res2 = await client.request({
      params: [],
      onStderr: () => {
        throw new Error('boom');
      },
    });
    assert.equal((await readAll(res2.stdout)).toString(), HEAD + 'body');
    assert.deepStrictEqual(await res2.done, { appStatus: 0, protocolStatus: 0 });
  });

  test('done asked for after a failure rejects with that failure', async () => {
    const { client } = await setup({
      onRequest: async (req) => {
        await req.conn.stdout(HEAD + 'part');
        req.conn.socket.destroy();
      },
    });
    const res = await client.request({ params: [] });
    await assert.rejects(readAll(res.stdout), (err: Error & { code?: string }) => err.code === 'RESET');
    await rejectsWith(res.done, 'RESET');
    assert.equal((await readAll(res.stderr)).length, 0);
  });

  test('takeWhole: a finished, untouched reply hands its STDOUT over as chunks; otherwise undefined', async () => {
    const { client } = await setup({
      onRequest: async (req) => {
        if (param(req, 'X') === 'fail') {
          await req.conn.stdout(HEAD + 'cut');
          req.conn.socket.destroy();
          return;
        }
        await req.conn.stdout(HEAD);
        await req.conn.stdout('two parts');
        if (param(req, 'X') === 'slow') await sleepUntilAsked(req);
        await req.conn.end(0);
      },
    });
    const res = await client.request({ params: [['X', 'whole']] });
    await res.done; // END_REQUEST is in: the reply is complete
    const chunks = res.takeWhole();
    assert.ok(chunks);
    assert.equal(Buffer.concat(chunks).toString(), HEAD + 'two parts');
    assert.equal(res.takeWhole()?.length, 0, 'taken once: nothing left');
    assert.equal((await readAll(res.stdout)).length, 0, 'stdout ends empty after takeWhole');

    const touched = await client.request({ params: [['X', 'whole']] });
    await touched.done;
    const stream = touched.stdout;
    assert.equal(touched.takeWhole(), undefined, 'stdout was touched first');
    assert.equal((await readAll(stream)).toString(), HEAD + 'two parts');

    const slow = await client.request({ params: [['X', 'slow']] });
    assert.equal(slow.takeWhole(), undefined, 'not finished yet');
    asked.resolve();
    assert.equal((await readAll(slow.stdout)).toString(), HEAD + 'two parts');

    const failed = await client.request({ params: [['X', 'fail']] });
    await rejectsWith(failed.done, 'RESET');
    assert.equal(failed.takeWhole(), undefined, 'a failed reply is never whole');
    await assert.rejects(readAll(failed.stdout), (err: Error & { code?: string }) => err.code === 'RESET');
  });

  test('END_REQUEST without any STDOUT resolves with an empty stdout', async () => {
    const { client } = await setup({ onRequest: async (req) => {
        await req.conn.send(record(T.END, 1, endBody(0, 0)));
        req.conn.socket.end();
      },
    });
    const res = await client.request({ params: [] });
    assert.equal((await readAll(res.stdout)).length, 0);
    assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
  });

  test('FCGI_OVERLOADED and FCGI_CANT_MPX_CONN → OVERLOADED; FCGI_UNKNOWN_ROLE → PROTOCOL', async () => {
    for (const [status, code] of [
      [2, 'OVERLOADED'],
      [1, 'OVERLOADED'],
      [3, 'PROTOCOL'],
    ] as const) {
      const { client } = await setup({ onRequest: (req) => req.conn.send(record(T.END, 1, endBody(0, status))) });
      await rejectsWith(client.request({ params: [] }), code, `protocolStatus ${status}`);
      await waitUntil(() => client.stats().open === 0, 'the socket is closed');
    }
  });

  test('OVERLOADED after output: stdout errors and done rejects', async () => {
    const { client } = await setup({
      onRequest: async (req) => {
        await req.conn.stdout('x');
        await req.conn.send(record(T.END, 1, endBody(0, 2)));
      },
    });
    const res = await client.request({ params: [] });
    await rejectsWith(readAll(res.stdout), 'OVERLOADED');
    await rejectsWith(res.done, 'OVERLOADED');
  });

  test('a 20 MB Buffer body and a 20 MB streamed body arrive intact', async () => {
    const { mock, client } = await setup({ onRequest: respond((req) => `${req.stdinLength} ${req.md5()}`) });
    const big = randomBytes(20 * 1024 * 1024);
    const res = await client.request({ params: [['CONTENT_LENGTH', String(big.length)]], stdin: big });
    assert.equal((await readAll(res.stdout)).toString(), `${HEAD}${big.length} ${md5(big)}`);
    await res.done;

    const body = countingBody(20 * 1024 * 1024 + 3, 100_003);
    const res2 = await client.request({ params: [], stdin: Readable.from(body.iterable) });
    assert.equal((await readAll(res2.stdout)).toString(), `${HEAD}${20 * 1024 * 1024 + 3} ${body.md5}`);
    await res2.done;

    async function* mixed(): AsyncGenerator<Buffer | Uint8Array | string> {
      yield Buffer.from('a');
      yield Buffer.alloc(0);
      yield new Uint8Array([0x62, 0x63]);
      yield 'é';
    }
    const res3 = await client.request({ params: [], stdin: mixed() });
    assert.equal((await readAll(res3.stdout)).toString(), `${HEAD}5 ${md5(Buffer.from('abcé'))}`);
    assert.deepStrictEqual(mock.violations, []);
    assert.equal(mock.conns.length, 1, 'all three on one kept connection');
  });

  test('stdin is streamed with backpressure: a stalled server stalls the body source', async () => {
    const total = 64 * 1024 * 1024;
    const body = countingBody(total);
    const { mock, client } = await setup({
      onBegin: (req) => req.conn.socket.pause(),
      onRequest: respond((req) => `${req.stdinLength} ${req.md5()}`),
    });
    const pending = client.request({ params: [['CONTENT_LENGTH', String(total)]], stdin: body.iterable });
    await waitUntil(() => mock.conns.length === 1, 'the connection');
    const stalled = await waitStable(body.pulled, 'bytes pulled from the body');
    assert.ok(stalled > 0 && stalled < total / 2, `pulled ${stalled} of ${total} bytes while the server read nothing`);
    mock.conns[0]!.socket.resume();
    const res = await pending;
    assert.equal((await readAll(res.stdout)).toString(), `${HEAD}${total} ${body.md5}`);
  });

  test('a slow body source does not count as FPM silence (no read timeout while we wait for the body)', async () => {
    const { mock, client } = await setup({ onRequest: respond((req) => req.stdin().toString()) }, { readTimeoutMs: 1000 });
    async function* slowUpload(): AsyncGenerator<Buffer> {
      yield Buffer.from('first ');
      await sleep(1500); // the scenario itself: a client uploading slowly (longer than readTimeoutMs)
      yield Buffer.from('second');
    }
    const res = await client.request({ params: [], stdin: slowUpload() });
    assert.equal((await readAll(res.stdout)).toString(), HEAD + 'first second');
    assert.deepStrictEqual(mock.violations, []);
  });

  test('stdout has real backpressure: an unread stdout pauses the socket (and the read timer)', async () => {
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          for (let i = 0; i < total / chunk.length; i++) await req.conn.stdout(chunk);
          await req.conn.end();
        },
      },
      { readTimeoutMs: 1000 },
    );
    const res = await client.request({ params: [] });
    // Longer than readTimeoutMs: a paused socket is our consumer's doing, not FPM's silence.
    const stalled = await waitStable(() => mock.conns[0]!.stdoutWritten, 'bytes the server got onto the wire', 1500);
    assert.ok(stalled < total / 2, `server wrote ${stalled} of ${total} bytes while nobody read stdout`);
    assert.ok(res.stdout.readableLength <= 256 * 1024, `stdout buffered ${res.stdout.readableLength} bytes`);
    const out = await readAll(res.stdout);
    assert.equal(out.length, total);
    assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
  });
});

describe('FastCgiClient: failures', () => {
  test('connection refused → CONNECT (TCP and unix)', async () => {
    const port = await freeClosedPort();
    const client = new FastCgiClient({ address: { host: '127.0.0.1', port } });
    const err = await rejectsWith(client.request({ params: [] }), 'CONNECT');
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    await rejectsWith(client.getValues(['FCGI_MPXS_CONNS']), 'CONNECT');
    const unix = new FastCgiClient({ address: 'unix:/nonexistent-m2bridge-dir/php.sock' });
    await rejectsWith(unix.request({ params: [] }), 'CONNECT');
    for (const c of [client, unix]) {
      await c.close();
      assert.deepStrictEqual(c.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 2 - (c === unix ? 1 : 0) });
    }
  });

  test('connect timeout → TIMEOUT (a listener whose accept queue is full)', async () => {
    // python3 listens with backlog 0 and never accepts; once its queue is full the kernel drops SYNs.
    const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const fillers: net.Socket[] = [];
    cleanups.push(async () => {
      for (const s of fillers) s.destroy();
      py.stdin.end();
      if (py.exitCode === null && py.signalCode === null) {
        const exited = once(py, 'exit');
        const t = setTimeout(() => py.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    });
    const [line] = (await once(py.stdout, 'data')) as [Buffer];
    const port = Number(line.toString().trim());
    assert.ok(port > 0);
    for (let i = 0; i < 16; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      fillers.push(s);
      const connected = await Promise.race([once(s, 'connect').then(() => true), sleep(300).then(() => false)]);
      if (!connected) break;
    }
    const client = new FastCgiClient({ address: { host: '127.0.0.1', port }, connectTimeoutMs: 200 });
    cleanups.push(() => client.close());
    const started = Date.now();
    const err = await rejectsWith(client.request({ params: [] }), 'TIMEOUT');
    assert.match(err.message, /connect/);
    assert.ok(Date.now() - started < 900, `took ${Date.now() - started} ms`);
    await waitUntil(() => client.stats().open === 0, 'the socket is closed');
  });

  test('a server that never answers → TIMEOUT after readTimeoutMs; the socket is closed', async () => {
    const { mock, client } = await setup({ onRequest: () => undefined }, { readTimeoutMs: 200 });
    const started = Date.now();
    const err = await rejectsWith(client.request({ params: [] }), 'TIMEOUT');
    assert.match(err.message, /200 ms/);
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    await waitUntil(() => mock.conns[0]!.isClosed, 'the server sees the socket close');
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 1 });
  });

  test('silence after output → stdout errors with TIMEOUT and done rejects', async () => {
    const { client } = await setup({ onRequest: (req) => req.conn.stdout('partial') }, { readTimeoutMs: 200 });
    const res = await client.request({ params: [] });
    await rejectsWith(readAll(res.stdout), 'TIMEOUT');
    await rejectsWith(res.done, 'TIMEOUT');
  });

  test('server closes before END_REQUEST and before output → request() rejects RESET (a fresh socket is not retried)', async () => {
    const { mock, client } = await setup({ onRequest: (req) => req.conn.destroy() });
    await rejectsWith(client.request({ params: [] }), 'RESET');
    assert.equal(mock.conns.length, 1);
  });

  test('server closes after output → stdout errors with RESET and done rejects RESET', async () => {
    const { client } = await setup({
      onRequest: async (req) => {
        await req.conn.stdout('partial');
        req.conn.socket.end();
      },
    });
    const res = await client.request({ params: [] });
    const chunks: Buffer[] = [];
    const err = await rejectsWith(
      (async () => {
        for await (const c of res.stdout) chunks.push(c as Buffer);
      })(),
      'RESET',
    );
    assert.match(err.message, /before END_REQUEST/);
    assert.equal(Buffer.concat(chunks).toString(), 'partial');
    await rejectsWith(res.done, 'RESET');
  });

  test('server closes while the body is still being sent → RESET, and the body source is released', async () => {
    const body = countingBody(64 * 1024 * 1024);
    const source = Readable.from(body.iterable);
    const { client } = await setup({ onParams: (req) => req.conn.destroy() });
    await rejectsWith(client.request({ params: [], stdin: source }), 'RESET');
    await waitUntil(() => source.destroyed, 'the body stream is destroyed');
    assert.ok(body.pulled() < 64 * 1024 * 1024);
  });

  test('bytes that are not FastCGI → PROTOCOL naming the stream offset', async () => {
    const { client } = await setup({ onRequest: (req) => req.conn.send(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')) });
    const err = await rejectsWith(client.request({ params: [] }), 'PROTOCOL');
    assert.equal(err.offset, 0);

    const { client: c2 } = await setup({
      onRequest: async (req) => {
        await req.conn.send(record(T.STDOUT, 1, 'abc'));
        await req.conn.send(Buffer.from([2, 6, 0, 1, 0, 0, 0, 0]));
      },
    });
    const res = await c2.request({ params: [] });
    const err2 = await rejectsWith(readAll(res.stdout), 'PROTOCOL');
    assert.equal(err2.offset, 11);
    assert.match(err2.message, /at byte 11/);
  });

  test('a record for another request id → PROTOCOL', async () => {
    const { client } = await setup({ onRequest: (req) => req.conn.send(record(T.STDOUT, 2, 'x')) });
    await rejectsWith(client.request({ params: [] }), 'PROTOCOL');
  });

  test('a pair that cannot fit one record → PARAMS_TOO_LARGE before any connection', async () => {
    const { mock, client } = await setup({ onRequest: respond(() => 'no') });
    await rejectsWith(client.request({ params: [['HTTP_COOKIE', 'x'.repeat(70 * 1024)]] }), 'PARAMS_TOO_LARGE');
    assert.equal(mock.conns.length, 0);
    assert.equal(client.stats().created, 0);
  });

  test('bytes after END_REQUEST: the response stands, the connection is not reused', async () => {
    const { client } = await setup({
      onRequest: async (req) => {
        await req.conn.stdout('ok');
        await req.conn.send(Buffer.concat([record(T.END, 1, endBody(0, 0)), record(T.STDOUT, 1, 'junk')]));
      },
    });
    const res = await client.request({ params: [] });
    assert.equal((await readAll(res.stdout)).toString(), 'ok');
    await res.done;
    await waitUntil(() => client.stats().open === 0, 'the connection is dropped');
    assert.equal(client.stats().idle, 0);
  });

  test('a failing body stream → ABORTED, socket closed', async () => {
    const { mock, client } = await setup({ onRequest: respond(() => 'no') });
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.from('abc');
      throw new Error('client went away');
    }
    const err = await rejectsWith(client.request({ params: [], stdin: broken() }), 'ABORTED');
    assert.match(err.message, /client went away/);
    await waitUntil(() => mock.conns[0]?.isClosed === true, 'the server sees the close');
  });
});

describe('FastCgiClient: abort', () => {
  test('abort mid-stream closes the server-side socket and frees the slot for a queued request', async () => {
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          if (param(req, 'X') === 'first') await req.conn.stdout('partial'); // ...and never ends
          else await respond(() => 'second')(req);
        },
      },
      { maxConnections: 1 },
    );
    const ac = new AbortController();
    const first = await client.request({ params: [['X', 'first']], signal: ac.signal });
    const secondPending = client.request({ params: [['X', 'second']] });
    assert.deepStrictEqual(client.stats(), { active: 1, idle: 0, queued: 1, open: 1, created: 1 });
    const it = first.stdout[Symbol.asyncIterator]();
    assert.equal(((await it.next()) as IteratorResult<Buffer>).value.toString(), 'partial');
    ac.abort(new Error('mongrel2 disconnect'));
    // The slot is released at once: the queued request has started.
    assert.equal(client.stats().queued, 0);
    assert.equal(client.stats().active, 1);
    await rejectsWith(it.next(), 'ABORTED');
    const doneErr = await rejectsWith(first.done, 'ABORTED');
    assert.match(doneErr.message, /mongrel2 disconnect/);
    await waitUntil(() => mock.conns[0]!.isClosed, 'the server sees the aborted socket close');
    const second = await secondPending;
    assert.equal((await readAll(second.stdout)).toString(), HEAD + 'second');
    await second.done;
    assert.equal(mock.conns.length, 2);
  });

  test('abort before any output rejects request() with ABORTED and closes the socket', async () => {
    const { mock, client } = await setup({ onRequest: () => undefined });
    const ac = new AbortController();
    const pending = client.request({ params: [], signal: ac.signal });
    await waitUntil(() => mock.requests[0]?.stdinDone === true, 'the server has the request');
    ac.abort();
    await rejectsWith(pending, 'ABORTED');
    await waitUntil(() => mock.conns[0]!.isClosed, 'the server sees the close');
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 1 });
  });

  test('abort of a queued request: it never reaches the server; an already-aborted signal rejects at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          await gate;
          await respond(() => 'ok')(req);
        },
      },
      { maxConnections: 1 },
    );
    const first = client.request({ params: [['X', '1']] });
    const ac = new AbortController();
    const queued = client.request({ params: [['X', '2']], signal: ac.signal });
    assert.equal(client.stats().queued, 1);
    ac.abort();
    await rejectsWith(queued, 'ABORTED');
    assert.equal(client.stats().queued, 0);
    await rejectsWith(client.request({ params: [], signal: AbortSignal.abort() }), 'ABORTED');
    release();
    await (await first).done;
    assert.equal(mock.requests.length, 1);
  });

  test('a cancel switch aborts like a signal: its hook is set while the request runs and cleared after', async () => {
    const { mock, client } = await setup({
      onRequest: async (req) => {
        if (param(req, 'X') === 'hang') await req.conn.stdout('partial'); // ...and never ends
        else await respond(() => 'ok')(req);
      },
    });
    const switchOf = (): { aborted: boolean; reason: unknown; hook: { cancelled(reason: unknown): void } | undefined; pull(reason: Error): void } => {
      const sw = {
        aborted: false,
        reason: undefined as unknown,
        hook: undefined as { cancelled(reason: unknown): void } | undefined,
        pull(reason: Error): void {
          sw.aborted = true;
          sw.reason = reason;
          const hook = sw.hook;
          sw.hook = undefined;
          hook?.cancelled(reason);
        },
      };
      return sw;
    };
    // Finished normally: the hook is taken back.
    const done = switchOf();
    const ok = await client.request({ params: [['X', 'ok']], cancel: done });
    assert.notEqual(done.hook, undefined);
    assert.equal((await readAll(ok.stdout)).toString(), HEAD + 'ok');
    assert.equal(done.hook, undefined);
    // Pulled mid-stream: ABORTED with the reason, and FPM's socket closes.
    const sw = switchOf();
    const hung = await client.request({ params: [['X', 'hang']], cancel: sw });
    const it = hung.stdout[Symbol.asyncIterator]();
    assert.equal(((await it.next()) as IteratorResult<Buffer>).value.toString(), 'partial');
    sw.pull(new Error('mongrel2 disconnect'));
    await rejectsWith(it.next(), 'ABORTED');
    assert.match((await rejectsWith(hung.done, 'ABORTED')).message, /mongrel2 disconnect/);
    await waitUntil(() => mock.conns.some((c) => c.isClosed), 'the server sees the cancelled socket close');
    assert.equal(client.stats().active, 0);
    // Already pulled: rejected at once, nothing sent.
    const before = mock.requests.length;
    await rejectsWith(client.request({ params: [], cancel: sw }), 'ABORTED');
    assert.equal(mock.requests.length, before);
  });

  test('destroying stdout aborts the request and closes the socket', async () => {
    const { mock, client } = await setup({ onRequest: (req) => req.conn.stdout('head') });
    const res = await client.request({ params: [] });
    res.stdout.destroy();
    await rejectsWith(res.done, 'ABORTED');
    await waitUntil(() => mock.conns[0]!.isClosed, 'the server sees the close');
    assert.equal(client.stats().active, 0);
  });
});

describe('FastCgiClient: keep-alive pool', () => {
  test('sequential requests reuse one socket (FCGI_KEEP_CONN)', async () => {
    const { mock, client } = await setup({ onRequest: respond((req) => `n=${param(req, 'N')}`) });
    for (let i = 0; i < 10; i++) {
      const res = await client.request({ params: [['N', String(i)]], stdin: Buffer.from(`body${i}`) });
      assert.equal((await readAll(res.stdout)).toString(), `${HEAD}n=${i}`);
      await res.done;
    }
    assert.equal(mock.conns.length, 1);
    assert.deepStrictEqual(
      mock.requests.map((r) => [r.seq, r.keepConn, r.stdin().toString()]),
      Array.from({ length: 10 }, (_, i) => [i + 1, true, `body${i}`]),
    );
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 1, queued: 0, open: 1, created: 1 });
  });

  test('keepAlive: false opens a socket per request and keeps none', async () => {
    const { mock, client } = await setup({ onRequest: respond(() => 'x') }, { keepAlive: false });
    for (let i = 0; i < 3; i++) await (await client.request({ params: [] })).done;
    assert.equal(mock.conns.length, 3);
    assert.ok(mock.requests.every((r) => !r.keepConn));
    await waitUntil(() => client.stats().open === 0, 'no socket left open');
    assert.equal(client.stats().idle, 0);
  });

  test('maxConnections bounds concurrency; the rest waits in FIFO order', async () => {
    const order: string[] = [];
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          order.push(param(req, 'N')!);
          await sleep(5);
          await respond((r) => `n=${param(r, 'N')}`)(req);
        },
      },
      { maxConnections: 2 },
    );
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => client.request({ params: [['N', String(i)]] }).then(async (r) => (await readAll(r.stdout)).toString())));
    assert.deepStrictEqual(all, Array.from({ length: 8 }, (_, i) => `${HEAD}n=${i}`));
    assert.ok(mock.maxConcurrent <= 2, `max ${mock.maxConcurrent} concurrent connections`);
    assert.equal(mock.conns.length, 2);
    assert.deepStrictEqual(order.slice(2), ['2', '3', '4', '5', '6', '7']);
  });

  for (const kind of ['stream', 'buffer'] as const) {
    test(`a reused socket that the server closed gets one retry on a fresh socket (${kind} body)`, async () => {
      const { mock, client } = await setup({
        // A recycled worker: the kept connection dies when the next request starts.
        onBegin: (req) => {
          if (req.conn.index === 0 && req.seq === 2) req.conn.destroy();
        },
        onRequest: respond((req) => `${req.stdinLength} ${req.md5()}`),
      });
      await (await client.request({ params: [] })).done;
      assert.equal(client.stats().idle, 1);
      const size = 300 * 1024;
      const body = countingBody(size, 10_000);
      const bytes = await readAll(Readable.from(countingBody(size, 10_000).iterable));
      const res = await client.request({ params: [['CONTENT_LENGTH', String(size)]], stdin: kind === 'stream' ? body.iterable : bytes });
      assert.equal((await readAll(res.stdout)).toString(), `${HEAD}${size} ${body.md5}`);
      assert.equal(mock.conns.length, 2);
      assert.equal(mock.requests.length, 3);
      assert.deepStrictEqual(client.stats(), { active: 0, idle: 1, queued: 0, open: 1, created: 2 });
    });
  }

  test('the retry happens once: a second failure is RESET', async () => {
    const { mock, client } = await setup({
      onBegin: (req) => {
        if (req.conn.index > 0 || req.seq > 1) req.conn.destroy();
      },
      onRequest: respond(() => 'ok'),
    });
    await (await client.request({ params: [] })).done;
    await rejectsWith(client.request({ params: [] }), 'RESET');
    assert.equal(mock.conns.length, 2);
    await waitUntil(() => client.stats().open === 0, 'sockets closed');
  });

  test('idle sockets the server closes are dropped from the pool', async () => {
    const { mock, client } = await setup({
      onRequest: async (req) => {
        await respond(() => 'ok')(req);
        req.conn.socket.end(); // pm.max_requests reached: the worker exits
      },
    });
    await (await client.request({ params: [] })).done;
    await waitUntil(() => client.stats().open === 0, 'the closed idle socket is dropped');
    assert.equal(client.stats().idle, 0);
    await (await client.request({ params: [] })).done;
    assert.equal(mock.conns.length, 2);
    assert.equal(client.stats().created, 2);
  });

  test('a new socket stuck behind our idle sockets (one-worker server) is rescued by closing an idle one', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          if (req.conn.index === 0) await gate;
          // One worker: the second connection is served only once the first is closed.
          else await mock.conns[0]!.closed;
          await respond(() => `conn ${req.conn.index}`)(req);
        },
      },
      { maxConnections: 2, idleRescueMs: 50, readTimeoutMs: 3000 },
    );
    const a = client.request({ params: [['X', 'a']] });
    const b = client.request({ params: [['X', 'b']] });
    await waitUntil(() => mock.requests.length === 2, 'both requests reach the server');
    release();
    assert.equal((await readAll((await a).stdout)).toString(), HEAD + 'conn 0');
    const started = Date.now();
    assert.equal((await readAll((await b).stdout)).toString(), HEAD + 'conn 1');
    assert.ok(Date.now() - started < 2000, `b waited ${Date.now() - started} ms`);
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 1, queued: 0, open: 1, created: 2 });
  });

  test('idle sockets are closed after idleTimeoutMs', async () => {
    const { mock, client } = await setup({ onRequest: respond(() => 'ok') }, { idleTimeoutMs: 100 });
    await (await client.request({ params: [] })).done;
    assert.equal(client.stats().idle, 1);
    await waitUntil(() => mock.conns[0]!.isClosed, 'the idle socket is closed', 3000);
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 1 });
  });
});

describe('FastCgiClient: queue, close, getValues', () => {
  test('QUEUE_FULL beyond maxQueue', async () => {
    const { client } = await setup({ onRequest: () => undefined }, { maxConnections: 1, maxQueue: 1 });
    const active = rejectsWith(client.request({ params: [] }), 'CLOSED', 'active');
    const queued = rejectsWith(client.request({ params: [] }), 'CLOSED', 'queued');
    await rejectsWith(client.request({ params: [] }), 'QUEUE_FULL');
    assert.deepStrictEqual({ ...client.stats(), open: 0, created: 0 }, { active: 1, idle: 0, queued: 1, open: 0, created: 0 });
    await client.close({ timeoutMs: 0 });
    await active;
    await queued;
  });

  test('close(): queued → CLOSED, active requests finish, idle sockets close, then nothing is open', async () => {
    const gates = new Map<string, () => void>();
    const held = (name: string): Promise<void> => new Promise((resolve) => gates.set(name, resolve));
    const { mock, client } = await setup(
      {
        onRequest: async (req) => {
          const x = param(req, 'X');
          if (x) await held(x);
          await respond(() => `done ${x ?? ''}`)(req);
        },
      },
      { maxConnections: 3 },
    );
    await (await client.request({ params: [] })).done; // leaves one idle socket
    const a = client.request({ params: [['X', 'a']] });
    const b = client.request({ params: [['X', 'b']] });
    await waitUntil(() => gates.size === 2, 'both requests held by the server');
    await (await client.request({ params: [] })).done; // a third socket, idle
    const c = client.request({ params: [['X', 'c']] });
    const d = client.request({ params: [['X', 'd']] });
    await waitUntil(() => gates.size === 3, 'three requests held');
    assert.deepStrictEqual(client.stats(), { active: 3, idle: 0, queued: 1, open: 3, created: 3 });
    const closing = client.close();
    await rejectsWith(d, 'CLOSED', 'queued request');
    await rejectsWith(client.request({ params: [] }), 'CLOSED');
    await rejectsWith(client.getValues(['FCGI_MPXS_CONNS']), 'CLOSED');
    for (const [name, p] of [['a', a], ['b', b], ['c', c]] as const) {
      gates.get(name)!();
      assert.equal((await readAll((await p).stdout)).toString(), `${HEAD}done ${name}`);
    }
    await closing;
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 3 });
    await waitUntil(() => mock.conns.every((conn) => conn.isClosed), 'the server sees every socket close');
  });

  test('close() destroys idle sockets', async () => {
    const { mock, client } = await setup({ onRequest: respond(() => 'ok') });
    await (await client.request({ params: [] })).done;
    assert.equal(client.stats().idle, 1);
    await client.close();
    assert.deepStrictEqual(client.stats(), { active: 0, idle: 0, queued: 0, open: 0, created: 1 });
    await waitUntil(() => mock.conns[0]!.isClosed, 'the server sees the close');
  });

  test('close({ timeoutMs: 0 }) fails active requests with CLOSED', async () => {
    const { client } = await setup({ onRequest: (req) => req.conn.stdout('partial') });
    const res = await client.request({ params: [] });
    await client.close({ timeoutMs: 0 });
    await rejectsWith(res.done, 'CLOSED');
    await rejectsWith(readAll(res.stdout), 'CLOSED');
    assert.equal(client.stats().open, 0);
  });

  test('getValues on a short-lived socket of its own', async () => {
    const { mock, client } = await setup({ values: { FCGI_MPXS_CONNS: '0', FCGI_MAX_CONNS: '10' } });
    assert.deepStrictEqual(await client.getValues(['FCGI_MPXS_CONNS', 'FCGI_MAX_CONNS', 'FCGI_NOT_A_VAR']), { FCGI_MPXS_CONNS: '0', FCGI_MAX_CONNS: '10' });
    await waitUntil(() => client.stats().open === 0, 'the GET_VALUES socket is closed');
    assert.equal(mock.conns.length, 1);
    assert.equal(client.stats().idle, 0);
  });
});
