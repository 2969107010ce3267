/**
 * The parser for Node's serialized responses, fed every way Node's writes
 * can be split: whole, byte by byte, and at every split point.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseParser, ResponseParseError, type ParsedHead } from '../../adapters/app/response-parser.js';

interface Result {
  heads: ParsedHead[];
  body: string;
  ended: boolean;
}

function parse(method: string, pieces: Buffer[], finish = false): Result {
  const r: Result = { heads: [], body: '', ended: false };
  const p = new ResponseParser({ method }, { head: (h) => r.heads.push(h), data: (c) => (r.body += c.toString('latin1')), end: () => (r.ended = true) });
  for (const piece of pieces) p.push(piece);
  if (finish) p.finish();
  return r;
}

/** The response split at every position into two writes, and one byte at a time. */
function splits(text: string): Buffer[][] {
  const all = Buffer.from(text, 'latin1');
  const out: Buffer[][] = [[all], [...all].map((b) => Buffer.from([b]))];
  for (let i = 1; i < all.length; i++) out.push([all.subarray(0, i), all.subarray(i)]);
  return out;
}

describe('ResponseParser', () => {
  test('chunked with chunk extensions and trailers, however the bytes are split', () => {
    const wire = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n';
    for (const pieces of splits(wire)) {
      const r = parse('GET', pieces);
      assert.equal(r.body, 'hello, world');
      assert.equal(r.ended, true);
      assert.deepEqual(r.heads, [{ status: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['Transfer-Encoding', 'chunked']], bodyless: false }]);
    }
  });

  test('Content-Length: exactly that many bytes', () => {
    for (const pieces of splits('HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nabcd')) {
      const r = parse('POST', pieces);
      assert.equal(r.body, 'abcd');
      assert.equal(r.ended, true);
      assert.equal(r.heads[0]?.status, 201);
    }
  });

  test('close-delimited: the body ends when the connection ends cleanly', () => {
    const r = parse('GET', [Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil'), Buffer.from(' the end')], true);
    assert.equal(r.body, 'until the end');
    assert.equal(r.ended, true);
  });

  test('no body for HEAD, 204 and 304, whatever the framing headers say', () => {
    for (const [method, status] of [['HEAD', 200], ['GET', 204], ['GET', 304]] as const) {
      const r = parse(method, [Buffer.from(`HTTP/1.1 ${status} X\r\nTransfer-Encoding: chunked\r\n\r\n`)]);
      assert.equal(r.heads[0]?.bodyless, true);
      assert.equal(r.ended, true);
    }
  });

  test('interim 1xx responses are skipped; the final head follows', () => {
    const r = parse('POST', [Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')]);
    assert.deepEqual(
      r.heads.map((h) => h.status),
      [200],
    );
    assert.equal(r.body, 'ok');
  });

  test('header values are latin1 (as Node writes them), names keep their case, an empty reason is allowed', () => {
    const r = parse('GET', [Buffer.concat([Buffer.from('HTTP/1.1 299 \r\nX-Name:  caf'), Buffer.from([0xe9]), Buffer.from(' \r\nContent-Length: 0\r\n\r\n')])]);
    assert.deepEqual(r.heads[0], { status: 299, reason: '', headers: [['X-Name', 'café'], ['Content-Length', '0']], bodyless: false });
    assert.equal(r.ended, true);
  });

  test('errors: 101, bad status line, bad chunk size, bytes after the end, a cut body', () => {
    const bad = (text: string, finish = false): void => assert.throws(() => parse('GET', [Buffer.from(text, 'latin1')], finish), ResponseParseError);
    bad('HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n');
    bad('HTTP/2 200 OK\r\n\r\n');
    bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n');
    bad('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab');
    bad('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab', true);
    bad('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    bad('HTTP/1.1 200 OK\r\nContent', true);
  });
});
