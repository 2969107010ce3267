/** The proxy's pure parts: backend response heads, framing, chunked scanning, the head sent to the backend. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendPersists, parseResponseHead, responseFraming, type ResponseHead } from '../../src/server/proxy/response-head.js';
import { ChunkedScanner } from '../../src/server/proxy/chunked-scanner.js';
import { buildBackendHead } from '../../src/server/proxy/request-head.js';
import { requestHead } from './helpers.js';

const parse = (s: string): ReturnType<typeof parseResponseHead> => parseResponseHead(Buffer.from(s, 'latin1'), 0);
function headOf(s: string): ResponseHead {
  const r = parse(s);
  assert.equal(r.kind, 'response', JSON.stringify(r));
  return (r as { head: ResponseHead }).head;
}

test('response head: CRLF, bare LF, empty reason (with and without the SP) all parse', () => {
  const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b c \r\n\r\nhello');
  assert.deepEqual(r, { kind: 'response', end: 50, head: { version: 'HTTP/1.1', status: 200, reason: 'OK', headers: [['Content-Length', '5'], ['X-A', 'b c']] } });
  assert.equal(headOf('HTTP/1.0 404 Not Found\nServer: x\n\n').status, 404);
  assert.equal(headOf('HTTP/1.1 204 \r\n\r\n').reason, '');
  assert.equal(headOf('HTTP/1.1 204\r\n\r\n').reason, '');
});

test('response head: incomplete until the blank line', () => {
  for (const partial of ['', 'HTT', 'HTTP/1.1 200 OK\r', 'HTTP/1.1 200 OK\r\nA: b\r\n']) assert.deepEqual(parse(partial), { kind: 'incomplete' }, partial);
});

test('response head: refusals say where', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['garbage\r\n\r\n', 0, /status line/],
    ['<html>', 0, /does not start with HTTP/],
    ['HTTP/2.0 200 OK\r\n\r\n', 0, /status line/],
    ['HTTP/1.2 200 OK\r\n\r\n', 7, /version/],
    ['HTTP/1.1 20 OK\r\n\r\n', 0, /status line/],
    ['HTTP/1.1 200 OK\rX: y\r\n\r\n', 15, /CR not followed by LF/],
    ['HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n', 23, /obs-fold/],
    ['HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n', 17, /bad header name/],
    ['HTTP/1.1 200 OK\r\nNoColon\r\n\r\n', 17, /without a name/],
    ['HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n', 19, /control byte/],
  ];
  for (const [input, offset, reason] of cases) {
    const r = parse(input);
    assert.equal(r.kind, 'error', input);
    if (r.kind !== 'error') continue;
    assert.equal(r.offset, offset, input);
    assert.match(r.reason, reason, input);
  }
  const big = parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(200)), 0, 100);
  assert.equal(big.kind, 'error');
});

test('framing (RFC 9112 §6.3): HEAD, 1xx, 204, 304 have none; TE beats CL; otherwise until close', () => {
  const h = (extra: string, status = 200): ResponseHead => headOf(`HTTP/1.1 ${status} X\r\n${extra}\r\n`);
  assert.deepEqual(responseFraming('HEAD', h('Content-Length: 10\r\n')), { kind: 'none' });
  for (const s of [100, 103, 204, 304]) assert.deepEqual(responseFraming('GET', h('Content-Length: 10\r\n', s)), { kind: 'none' });
  assert.deepEqual(responseFraming('GET', h('Content-Length: 10\r\n')), { kind: 'length', length: 10 });
  assert.deepEqual(responseFraming('GET', h('Content-Length: 7, 7\r\n')), { kind: 'length', length: 7 });
  assert.deepEqual(responseFraming('GET', h('transfer-encoding: CHUNKED\r\n')), { kind: 'chunked' });
  assert.deepEqual(responseFraming('GET', h('Content-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n')), { kind: 'chunked' });
  assert.deepEqual(responseFraming('GET', h('Transfer-Encoding: gzip\r\n')), { kind: 'close' });
  assert.deepEqual(responseFraming('GET', h('')), { kind: 'close' });
  assert.equal(responseFraming('GET', h('Content-Length: 1x\r\n')).kind, 'invalid');
  assert.equal(responseFraming('GET', h('Content-Length: 1\r\nContent-Length: 2\r\n')).kind, 'invalid');
});

test('backend persistence: 1.1 unless close; 1.0 only with keep-alive', () => {
  assert.equal(backendPersists(headOf('HTTP/1.1 200 OK\r\n\r\n')), true);
  assert.equal(backendPersists(headOf('HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n')), false);
  assert.equal(backendPersists(headOf('HTTP/1.0 200 OK\r\n\r\n')), false);
  assert.equal(backendPersists(headOf('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n')), true);
});

function scanAll(body: string, split: number): { consumed: number; done: boolean } {
  const bytes = Buffer.from(body, 'latin1');
  const s = new ChunkedScanner();
  let consumed = 0;
  for (let i = 0; i < bytes.length && !s.done; i += split) consumed += s.scan(bytes.subarray(i, Math.min(bytes.length, i + split)));
  return { consumed, done: s.done };
}

test('chunked scanner: finds the end exactly at any split, with extensions, trailers and bare LF', () => {
  const bodies = [
    '5\r\nhello\r\n0\r\n\r\n',
    'a;ext=1\r\n0123456789\r\n3 \r\nabc\r\n0\r\nTrailer: x\r\nMore: y\r\n\r\n',
    'd\nHello, World!\n0\n\n', // tests/client_suite/cherrypy_chunked style
  ];
  for (const body of bodies) {
    for (const split of [1, 2, 3, 7, 1000]) {
      assert.deepEqual(scanAll(body + 'NEXT', split), { consumed: body.length, done: true }, `${JSON.stringify(body)} split ${split}`);
    }
  }
  // Bigger than the request side's 100 KiB cap.
  const big = 'x'.repeat(300_000);
  assert.deepEqual(scanAll(`${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`, 65536), { consumed: big.length + 7 + 2 + 5, done: true });
});

test('chunked scanner: garbage throws with the offset into the body', () => {
  const cases: Array<[string, number]> = [
    ['zz\r\n', 0],
    ['5\r\nhelloXX', 8],
    ['5\rX', 2],
    ['3\r\nabc\r\n0\r\nbad\rX', 15],
    ['00000000000000001\r\n', 16], ['123456789abcdef\r\n', 14],
  ];
  for (const [body, offset] of cases) {
    assert.throws(
      () => new ChunkedScanner().scan(Buffer.from(body, 'latin1')),
      (e: Error & { offset?: number }) => e.offset === offset,
      body,
    );
  }
});

const decode = (b: Buffer): string => b.toString('latin1');

test('backend head, forwarded headers off: a plain request goes out byte for byte', () => {
  const raw = 'GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n';
  assert.equal(decode(buildBackendHead(requestHead(raw), { bodyLength: undefined, hasBody: false, forwarded: undefined })), raw);
  const post = 'POST /f HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\nA: b\r\n\r\n';
  assert.equal(decode(buildBackendHead(requestHead(post), { bodyLength: 3, hasBody: true, forwarded: undefined })), post);
});

test('backend head: hop-by-hop headers and those Connection names are dropped; Host is never', () => {
  const raw =
    'GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret, host\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n';
  assert.equal(decode(buildBackendHead(requestHead(raw), { bodyLength: undefined, hasBody: false, forwarded: undefined })), 'GET / HTTP/1.1\r\nHost: h\r\nX-Kept: k\r\n\r\n');
});

test("backend head, not trusting: the client's X-Forwarded-*/Forwarded are replaced by ours, last", () => {
  const raw =
    'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nx-forwarded-for: 2.2.2.2\r\nX-Forwarded-Proto: gopher\r\n' +
    'X-Forwarded-Host: evil.example\r\nForwarded: for=1.1.1.1\r\nA: b\r\n\r\n';
  assert.equal(
    decode(buildBackendHead(requestHead(raw), { bodyLength: undefined, hasBody: false, forwarded: { peer: '10.0.0.9', proto: 'https', trust: false } })),
    'GET / HTTP/1.1\r\nHost: h\r\nA: b\r\nX-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n\r\n',
  );
});

test('backend head, trusting: the peer is appended to the chain; Proto, Host and Forwarded are kept', () => {
  const raw =
    'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nx-forwarded-for: 2.2.2.2\r\nX-Forwarded-Proto: gopher\r\n' +
    'X-Forwarded-Host: lb.example\r\nForwarded: for=1.1.1.1\r\n\r\n';
  assert.equal(
    decode(buildBackendHead(requestHead(raw), { bodyLength: undefined, hasBody: false, forwarded: { peer: '10.0.0.9', proto: 'https', trust: true } })),
    'GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-Host: lb.example\r\nForwarded: for=1.1.1.1\r\n\r\n',
  );
});

test('backend head: a client cannot drop Host by naming it in Connection; Trailer and Proxy-Authorization never pass', () => {
  const raw = 'GET / HTTP/1.1\r\nHost: h\r\nConnection: Host\r\nTrailer: X\r\nProxy-Authorization: Basic x\r\n\r\n';
  assert.equal(decode(buildBackendHead(requestHead(raw), { bodyLength: undefined, hasBody: false, forwarded: undefined })), 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
});

test('backend head: body framing rewritten in place; HTTP/1.0 asks for keep-alive; websocket upgrade kept', () => {
  const chunked = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n';
  assert.equal(decode(buildBackendHead(requestHead(chunked), { bodyLength: undefined, hasBody: true, forwarded: undefined })), chunked);
  assert.equal(
    decode(buildBackendHead(requestHead(chunked), { bodyLength: 12, hasBody: true, forwarded: undefined })),
    'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nA: b\r\n\r\n',
  );
  assert.equal(decode(buildBackendHead(requestHead('PUT / HTTP/1.1\r\nHost: h\r\n\r\n'), { bodyLength: undefined, hasBody: true, forwarded: undefined })), 'PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
  assert.equal(
    decode(buildBackendHead(requestHead('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'), { bodyLength: undefined, hasBody: false, forwarded: undefined })),
    'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  );
  const ws = 'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n';
  assert.equal(
    decode(buildBackendHead(requestHead(ws), { bodyLength: undefined, hasBody: false, forwarded: undefined })),
    'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: Upgrade\r\n\r\n',
  );
});

test('backend head: the request target goes out in origin-form (RFC 9112 §3.2.2), never as //authority', () => {
  const opts = { bodyLength: undefined, hasBody: false, forwarded: undefined } as const;
  const line = (target: string, method = 'GET'): string =>
    decode(buildBackendHead(requestHead(`${method} ${target} HTTP/1.1\r\nHost: h\r\n\r\n`), opts)).split('\r\n')[0]!;
  assert.equal(line('http://evil.example/x?y=1'), 'GET /x?y=1 HTTP/1.1');
  assert.equal(line('HTTP://user:pw@evil.example:8080/a/b'), 'GET /a/b HTTP/1.1');
  assert.equal(line('http://evil.example'), 'GET / HTTP/1.1');
  assert.equal(line('http://evil.example?q=1'), 'GET /?q=1 HTTP/1.1');
  assert.equal(line('http://[::1]:8080/v6'), 'GET /v6 HTTP/1.1');
  assert.equal(line('http://evil.example/x#frag'), 'GET /x HTTP/1.1');
  assert.equal(line('?q=1'), 'GET /?q=1 HTTP/1.1');
  // Origin-form is sent as the client wrote it, an empty first segment included.
  assert.equal(line('//double/x'), 'GET //double/x HTTP/1.1');
  assert.equal(line('/plain?a=1'), 'GET /plain?a=1 HTTP/1.1');
  assert.equal(line('*', 'OPTIONS'), 'OPTIONS * HTTP/1.1');
});
