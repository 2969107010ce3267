/** ProxyHandler against node:http and raw TCP backends: forwarding, pooling, framing, the tests/client_suite responses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { fixedResponse } from '../../src/server/http/responses.js';
import { collect, get, httpBackend, proxyTo, rawBackend, request, requestHead } from './helpers.js';

test('GET through node:http: response relayed, X-Forwarded-* added, one backend socket for two requests', async (t) => {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const backend = await httpBackend(t, (req, res) => {
    seen.push(req.headers);
    res.setHeader('Content-Type', 'text/plain');
    res.end(`hello ${req.url}`);
  });
  const proxy = proxyTo(t, backend.port);
  for (const uri of ['/one', '/two?x=1']) {
    const res = await proxy.forward(request(get(uri, 'X-Forwarded-For: 192.0.2.1\r\n'), { scheme: 'https' }));
    const { head, body } = await collect(res);
    assert.equal(res.status, 200);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /Content-Length: \d+\r\n/);
    assert.equal(body.toString(), `hello ${uri}`);
    assert.equal(res.bytes, body.length);
    assert.equal(res.close, false);
    assert.equal(res.error, undefined);
  }
  assert.equal(backend.connections, 1, 'the second request reused the pooled socket');
  assert.equal(proxy.idleConnections, 1);
  assert.equal(seen[0]!['x-forwarded-for'], '10.1.2.3', "the client's X-Forwarded-For is replaced");
  assert.equal(seen[0]!['x-forwarded-proto'], 'https');
  assert.equal(seen[0]!['x-forwarded-host'], 'example.com');
  assert.equal(seen[1]!.host, 'example.com');
});

test('trustForwarded: the peer is appended to the client chain and its X-Forwarded-Proto/-Host are kept', async (t) => {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const backend = await httpBackend(t, (req, res) => {
    seen.push(req.headers);
    res.end('ok');
  });
  const proxy = proxyTo(t, backend.port, { trustForwarded: true });
  const extra = 'X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: lb.example\r\n';
  await collect(await proxy.forward(request(get('/', extra))));
  assert.equal(seen[0]!['x-forwarded-for'], '192.0.2.1, 10.1.2.3');
  assert.equal(seen[0]!['x-forwarded-proto'], 'https');
  assert.equal(seen[0]!['x-forwarded-host'], 'lb.example');
});

test('forwardedHeaders off: the backend receives the client head unchanged', async (t) => {
  const backend = await rawBackend(t, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const proxy = proxyTo(t, backend.port, { forwardedHeaders: false });
  const raw = 'GET /x?y HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 1.2.3.4\r\nCookie: c=1\r\n\r\n';
  const res = await proxy.forward(request(requestHead(raw)));
  assert.equal((await collect(res)).body.toString(), 'ok');
  assert.equal(backend.heads[0], raw);
});

test('HEAD with Content-Length: no body expected, no hang, socket reused (Mongrel2 hangs here)', async (t) => {
  const backend = await rawBackend(t, (s, head) => {
    if (head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
  });
  const proxy = proxyTo(t, backend.port);
  const res = await proxy.forward(request(requestHead('HEAD / HTTP/1.1\r\nHost: h\r\n\r\n')));
  const { head, body } = await collect(res);
  assert.equal(head, 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
  assert.equal(body.length, 0);
  assert.equal((await collect(await proxy.forward(request(get())))).body.toString(), 'abc');
  assert.equal(backend.connections, 1);
});

test('1xx interim responses are skipped; 204 and 304 carry no body; the socket stays pooled', async (t) => {
  const answers = [
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
  ];
  const backend = await rawBackend(t, (s, _h, i) => s.write(answers[i]!));
  const proxy = proxyTo(t, backend.port);
  const r1 = await collect(await proxy.forward(request(get())));
  assert.equal(r1.head, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
  assert.equal(r1.body.toString(), 'hi');
  for (const status of [204, 304]) {
    const res = await proxy.forward(request(get()));
    assert.equal(res.status, status);
    assert.equal((await collect(res)).body.length, 0);
  }
  assert.equal(backend.connections, 1);
});

test('an empty reason phrase is accepted (Mongrel2 refuses it)', async (t) => {
  const backend = await rawBackend(t, (s) => s.write('HTTP/1.1 201 \r\nContent-Length: 1\r\n\r\nx'));
  const res = await proxyTo(t, backend.port).forward(request(get()));
  assert.equal(res.status, 201);
  assert.equal((await collect(res)).head, 'HTTP/1.1 201 \r\nContent-Length: 1\r\n\r\n');
});

test('chunked responses are relayed byte for byte, and the socket is reused after the last chunk', async (t) => {
  const chunked = '4\r\nWiki\r\n6;x=y\r\npedia \r\n0\r\nExpires: never\r\n\r\n';
  const backend = await rawBackend(t, (s) => {
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    // Trickled byte by byte so the scanner must carry state across reads.
    const bytes = Buffer.from(chunked);
    let i = 0;
    const next = (): void => {
      if (i < bytes.length) s.write(bytes.subarray(i, ++i), next);
    };
    next();
  });
  const proxy = proxyTo(t, backend.port);
  for (let n = 0; n < 2; n++) {
    const res = await proxy.forward(request(get()));
    const { body } = await collect(res);
    assert.equal(body.toString(), chunked);
    assert.equal(res.close, false);
  }
  assert.equal(backend.connections, 1);
});

test('the tests/client_suite backend responses (LF-only heads and chunks, chunked, CL, CL + close)', async (t) => {
  const filler = (n: number): string => 'g'.repeat(n);
  // Same shapes as mongrel2 tests/client_suite: cherrypy_chunked, google_chunked_encoding, nginx_test, simple_test_ex.
  const suite = [
    { response: 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nServer: CherryPy/3.1.2 WSGI Server\n\nd\nHello, World!\n0\n\n', body: 'd\nHello, World!\n0\n\n', close: false },
    {
      response: `HTTP/1.1 200 OK\nContent-Type: text/html; charset=ISO-8859-1\nSet-Cookie: a=b; path=/\nSet-Cookie: c=d; HttpOnly\nServer: gws\nTransfer-Encoding: chunked\n\n1000\n${filler(0x1000)}\n1000\n${filler(0x1000)}\n178\n${filler(0x178)}\n565\n${filler(0x565)}\n0\n\n`,
      body: `1000\n${filler(0x1000)}\n1000\n${filler(0x1000)}\n178\n${filler(0x178)}\n565\n${filler(0x565)}\n0\n\n`,
      close: false,
    },
    { response: 'HTTP/1.1 200 OK\nServer: nginx/0.7.67\nContent-Type: text/html\nContent-Length: 10\nConnection: keep-alive\n\n0123456789', body: '0123456789', close: false },
    { response: 'HTTP/1.1 200 OK\r\nContent-Length: 23\r\nConnection: close\r\n\r\nthis is a simple test\r\n', body: 'this is a simple test\r\n', close: true },
  ];
  for (const { response, body, close } of suite) {
    const backend = await rawBackend(t, (s) => s.write(response));
    const res = await proxyTo(t, backend.port).forward(request(get()));
    const got = await collect(res);
    assert.equal(res.status, 200);
    assert.equal(got.head + got.body.toString('latin1'), response, response.slice(0, 60));
    assert.equal(got.body.toString('latin1'), body);
    assert.equal(res.close, close);
  }
});

test('no length: read until the backend closes; the client is told Connection: close', async (t) => {
  const backend = await rawBackend(t, (s) => s.end('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\n\r\nuntil the end'));
  const res = await proxyTo(t, backend.port).forward(request(get()));
  const { head, body } = await collect(res);
  assert.equal(head, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n');
  assert.equal(body.toString(), 'until the end');
  assert.equal(res.close, true);
});

test("the client's Connection: close and HTTP/1.0 close the client (Mongrel2 ignores both); 1.0 still keeps the backend alive", async (t) => {
  const seen: string[] = [];
  const backend = await httpBackend(t, (req, res) => {
    seen.push(`${req.httpVersion} ${String(req.headers.connection)}`);
    res.end('x');
  });
  const proxy = proxyTo(t, backend.port);
  const r1 = await proxy.forward(request(get('/', 'Connection: close\r\n')));
  assert.equal(r1.close, true);
  assert.match(r1.head.toString(), /\r\nConnection: close\r\n\r\n$/);
  assert.doesNotMatch(r1.head.toString(), /keep-alive/i);
  await collect(r1);
  const r2 = await proxy.forward(request(get('/', '', 'HTTP/1.0')));
  assert.equal(r2.close, true);
  assert.match(r2.head.toString(), /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(r2.head.toString(), /\r\nConnection: close\r\n\r\n$/);
  await collect(r2);
  assert.deepEqual(seen, ['1.1 undefined', '1.0 keep-alive']);
  assert.equal(backend.connections, 1, 'client-side close does not cost a backend connection');
});

test('a backend Connection: close is relayed and closes the client; the socket is not pooled', async (t) => {
  const backend = await httpBackend(t, (_req, res) => {
    res.setHeader('Connection', 'close');
    res.end('bye');
  });
  const proxy = proxyTo(t, backend.port);
  const res = await proxy.forward(request(get()));
  assert.match(res.head.toString(), /Connection: close\r\n/);
  assert.equal((await collect(res)).body.toString(), 'bye');
  assert.equal(res.close, true);
  assert.equal(proxy.idleConnections, 0);
});

test('connection refused → the fixed 502; garbage or a reset before the response → 502', async (t) => {
  const { closedPort } = await import('./helpers.js');
  const refused = await proxyTo(t, await closedPort()).forward(request(get()));
  assert.deepEqual(refused.head, fixedResponse(502));
  assert.equal(refused.close, true);
  assert.equal(refused.body, null);
  assert.match(refused.error ?? '', /cannot connect/);

  const garbage = await rawBackend(t, (s) => s.write('SSH-2.0-OpenSSH_9.6\r\n'));
  const g = await proxyTo(t, garbage.port).forward(request(get()));
  assert.equal(g.status, 502);
  assert.match(g.error ?? '', /bad response head .* byte 0/);

  const reset = await rawBackend(t, (s) => s.resetAndDestroy());
  const r = await proxyTo(t, reset.port).forward(request(get()));
  assert.equal(r.status, 502);
  assert.deepEqual(r.head, fixedResponse(502));
});

test('no response head in time → 504 (Gateway Timeout), and the backend socket is closed', async (t) => {
  let closed = false;
  const backend = await rawBackend(t, (s) => s.on('close', () => (closed = true)));
  const res = await proxyTo(t, backend.port, { responseTimeoutMs: 100 }).forward(request(get()));
  assert.equal(res.status, 504);
  assert.equal(
    res.head.toString(),
    'HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 15\r\nServer: Mongrel2/1.13.0\r\n\r\nGateway Timeout',
  );
  assert.equal(res.close, true);
  const { until } = await import('./helpers.js');
  await until(() => closed, 'the backend to see its socket closed');
});

test('garbage or a close mid-body → the body errors (the caller closes the client)', async (t) => {
  const cases = ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part'];
  for (const reply of cases) {
    const backend = await rawBackend(t, (s) => s.end(reply));
    const res = await proxyTo(t, backend.port).forward(request(get()));
    assert.equal(res.status, 200);
    await assert.rejects(collect(res), /chunked|before the end/);
  }
});

test('a pooled socket that dies before answering: GET is retried once on a fresh connection, POST gets 502', async (t) => {
  // Every connection answers its first request, then drops dead on the next one.
  const served = new WeakSet<object>();
  const backend = await rawBackend(t, (s) => {
    if (served.has(s)) return void s.destroy();
    served.add(s);
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const proxy = proxyTo(t, backend.port);
  await collect(await proxy.forward(request(get())));
  const retried = await proxy.forward(request(get()));
  assert.equal(retried.status, 200);
  assert.equal((await collect(retried)).body.toString(), 'ok');
  assert.equal(backend.connections, 2);

  const post = requestHead('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n');
  const res = await proxy.forward(request(post, { body: Readable.from([Buffer.from('abc')]), bodyLength: 3 }));
  assert.equal(res.status, 502, 'a request with a body is not replayed');
  assert.equal(backend.connections, 2);
});

test('request bodies: Content-Length streamed, unknown length sent chunked; node:http sees both', async (t) => {
  const backend = await httpBackend(t, async (req, res) => {
    const parts: Buffer[] = [];
    for await (const c of req) parts.push(c as Buffer);
    res.end(`${req.headers['content-length'] ?? '-'} ${req.headers['transfer-encoding'] ?? '-'} ${Buffer.concat(parts).toString()}`);
  });
  const proxy = proxyTo(t, backend.port);
  const head = requestHead('POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n');
  const a = await proxy.forward(request(head, { body: Readable.from([Buffer.from('hello '), Buffer.from('world')]), bodyLength: 11 }));
  assert.equal((await collect(a)).body.toString(), '11 - hello world');
  const chunkedHead = requestHead('POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
  const b = await proxy.forward(request(chunkedHead, { body: Readable.from([Buffer.from('chunk '), Buffer.from('by chunk')]), bodyLength: undefined }));
  assert.equal((await collect(b)).body.toString(), '- chunked chunk by chunk');
  assert.equal(b.close, false);
  assert.equal(backend.connections, 1);
});

test('close() destroys idle backend connections', async (t) => {
  const backend = await httpBackend(t, (_req, res) => res.end('x'));
  const proxy = proxyTo(t, backend.port);
  await collect(await proxy.forward(request(get())));
  assert.equal(backend.sockets.size, 1);
  await proxy.close();
  const { until } = await import('./helpers.js');
  await until(() => backend.sockets.size === 0, 'the backend socket to close');
  assert.equal((await proxy.forward(request(get()))).status, 502);
});
