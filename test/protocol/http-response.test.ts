import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildHttpHead, buildHttpResponse, EncodeError, headerEntries } from '../../src/protocol/index.js';
import { assertEncodeError } from './helpers.js';

const text = (b: Buffer): string => b.toString('latin1');

describe('buildHttpResponse: framing', () => {
  test("{body:'hi'} is exactly the m2py reply_http output", () => {
    assert.equal(text(buildHttpResponse({ body: 'hi' })), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
  });

  test('no arguments: 200 with Content-Length 0', () => {
    assert.equal(text(buildHttpResponse()), 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  });

  test('Content-Length counts UTF-8 bytes, not characters', () => {
    const r = buildHttpResponse({ body: 'é' });
    assert.equal(text(r.subarray(0, r.length - 2)), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
    assert.deepStrictEqual([...r.subarray(r.length - 2)], [0xc3, 0xa9]);
    const emoji = buildHttpResponse({ body: '😀x' });
    assert.ok(text(emoji).includes('\r\nContent-Length: 5\r\n'));
  });

  test('Buffer bodies are written verbatim', () => {
    const body = Buffer.from([0, 0xff, 0x0d, 0x0a]);
    const r = buildHttpResponse({ status: 201, body, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.ok(r.equals(Buffer.concat([Buffer.from('HTTP/1.1 201 Created\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\n', 'latin1'), body])));
  });

  test('a given Content-Length is replaced in place (any case), keeping its position', () => {
    const r = buildHttpResponse({
      body: 'abc',
      headers: [
        ['Content-Type', 'text/plain'],
        ['content-length', '999'],
        ['X-B', '1'],
      ],
    });
    assert.equal(text(r), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 3\r\nX-B: 1\r\n\r\nabc');
    const obj = buildHttpResponse({ body: 'abcd', headers: { 'Content-Length': 1, Server: 'm2' } });
    assert.equal(text(obj), 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nServer: m2\r\n\r\nabcd');
  });

  test('duplicate Content-Length headers collapse into the first one', () => {
    const r = buildHttpResponse({
      body: 'abc',
      headers: [
        ['X-A', '1'],
        ['Content-Length', '7'],
        ['X-B', '2'],
        ['CONTENT-LENGTH', '8'],
      ],
    });
    assert.equal(text(r), 'HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 3\r\nX-B: 2\r\n\r\nabc');
  });

  test('204 and 304 get no Content-Length, even when one is given', () => {
    assert.equal(text(buildHttpResponse({ status: 204 })), 'HTTP/1.1 204 No Content\r\n\r\n');
    assert.equal(text(buildHttpResponse({ status: 304, headers: { 'Content-Length': '10', ETag: '"x"' } })), 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
    assert.equal(text(buildHttpResponse({ status: 101, headers: { Upgrade: 'websocket' } })), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
  });

  test('204, 304 and 1xx refuse a body', () => {
    for (const status of [204, 304, 100, 101]) {
      assertEncodeError(() => buildHttpResponse({ status, body: 'x' }), String(status));
      assertEncodeError(() => buildHttpResponse({ status, body: Buffer.from([0]) }), String(status));
    }
  });

  test('omitBody (HEAD) keeps the Content-Length of the full body but drops the body', () => {
    assert.equal(text(buildHttpResponse({ body: 'hello', omitBody: true })), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    assert.equal(text(buildHttpResponse({ body: 'é', omitBody: true, headers: { 'Content-Length': '0' } })), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
  });

  test("framing:'none' leaves the headers alone and adds no Content-Length", () => {
    assert.equal(text(buildHttpResponse({ framing: 'none', body: 'abc', headers: { 'Transfer-Encoding': 'chunked' } })), 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nabc');
    assert.equal(text(buildHttpResponse({ framing: 'none', body: 'abc', headers: [['Content-Length', '100']] })), 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc');
    assert.equal(text(buildHttpResponse({ framing: 'none' })), 'HTTP/1.1 200 OK\r\n\r\n');
  });
});

describe('buildHttpResponse: status line', () => {
  test('default and custom reason phrases', () => {
    assert.equal(text(buildHttpResponse({ status: 404, body: 'no' })), 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno');
    assert.equal(text(buildHttpResponse({ status: 200, reason: 'Fine', framing: 'none' })), 'HTTP/1.1 200 Fine\r\n\r\n');
    assert.equal(text(buildHttpResponse({ status: 599, framing: 'none' })), 'HTTP/1.1 599 Unknown\r\n\r\n');
  });

  test('invalid status codes are refused', () => {
    for (const status of [99, 1000, 200.5, NaN, -200]) assertEncodeError(() => buildHttpResponse({ status }), String(status));
  });

  test('a reason phrase with CR, LF or NUL is refused', () => {
    for (const reason of ['OK\r\nX-Evil: 1', 'OK\n', 'OK\r', 'O\0K']) assertEncodeError(() => buildHttpResponse({ reason }), JSON.stringify(reason));
  });
});

describe('buildHttpResponse: headers', () => {
  test('array values emit repeated headers in order', () => {
    const r = buildHttpResponse({ framing: 'none', headers: { 'Set-Cookie': ['a=1', 'b=2'], Vary: 'Accept' } });
    assert.equal(text(r), 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: Accept\r\n\r\n');
  });

  test('tuple lists keep repeats and order; undefined object values are skipped', () => {
    const r = buildHttpResponse({
      framing: 'none',
      headers: [
        ['B', '1'],
        ['A', 2],
        ['B', '3'],
      ],
    });
    assert.equal(text(r), 'HTTP/1.1 200 OK\r\nB: 1\r\nA: 2\r\nB: 3\r\n\r\n');
    assert.equal(text(buildHttpResponse({ framing: 'none', headers: { A: undefined, B: 'x' } })), 'HTTP/1.1 200 OK\r\nB: x\r\n\r\n');
  });

  test('header values with CR, LF or NUL are refused (object, array and tuple forms)', () => {
    for (const bad of ['a\r\nSet-Cookie: x=1', 'a\nb', 'a\rb', 'a\0b', '\r\n']) {
      assertEncodeError(() => buildHttpResponse({ headers: { 'X-A': bad } }), JSON.stringify(bad));
      assertEncodeError(() => buildHttpResponse({ headers: { 'X-A': ['ok', bad] } }), JSON.stringify(bad));
      assertEncodeError(() => buildHttpResponse({ headers: [['X-A', bad]] }), JSON.stringify(bad));
    }
  });

  test('header names with CR, LF, NUL or other non-token characters are refused', () => {
    for (const bad of ['X-A\r\nEvil', 'X\nA', 'X\rA', 'X\0A', 'X A', 'X:A', '', 'Ä']) {
      assertEncodeError(() => buildHttpResponse({ headers: { [bad]: 'v' } }), JSON.stringify(bad));
      assertEncodeError(() => buildHttpResponse({ headers: [[bad, 'v']] }), JSON.stringify(bad));
    }
  });

  test('headerEntries and buildHttpHead expose the same checks', () => {
    assert.deepStrictEqual(headerEntries({ A: 1, B: ['x', 'y'] }), [
      ['A', '1'],
      ['B', 'x'],
      ['B', 'y'],
    ]);
    assert.deepStrictEqual(headerEntries(undefined), []);
    assert.equal(text(buildHttpHead(200, undefined, [['A', 'b']])), 'HTTP/1.1 200 OK\r\nA: b\r\n\r\n');
    assertEncodeError(() => headerEntries({ A: 'x\ny' }));
  });

  // BUG (src/protocol/http-response.ts): the CR/LF/NUL check runs on UTF-16 code
  // units, but buildHttpHead encodes the head as 'latin1', which keeps only the
  // low byte of every code unit. U+010D becomes 0x0D (CR) and U+010A becomes
  // 0x0A (LF), so a header value or reason phrase can split the response.
  test('characters above U+00FF in header values cannot smuggle CR/LF into the head', () => {
    const value = 'a\u010d\u010aSet-Cookie: evil=1';
    let out: Buffer | undefined;
    try {
      out = buildHttpResponse({ headers: { 'X-A': value }, body: 'hi' });
    } catch (err) {
      assert.ok(err instanceof EncodeError, `expected an EncodeError, got ${String(err)}`);
    }
    if (out !== undefined) {
      assert.ok(!text(out).includes('\r\nSet-Cookie'), `response was split: ${JSON.stringify(text(out))}`);
      // If accepted, the value must be written as UTF-8, not truncated to one byte per char.
      assert.ok(out.includes(Buffer.from(value, 'utf8')), `value was not written as UTF-8: ${JSON.stringify(text(out))}`);
    }
  });

  test('characters above U+00FF in the reason phrase cannot smuggle CR/LF into the head', () => {
    let out: Buffer | undefined;
    try {
      out = buildHttpResponse({ reason: 'OK\u010d\u010aX-Evil: 1' });
    } catch (err) {
      assert.ok(err instanceof EncodeError, `expected an EncodeError, got ${String(err)}`);
    }
    if (out !== undefined) assert.ok(!text(out).includes('\r\nX-Evil'), `response was split: ${JSON.stringify(text(out))}`);
  });
});
