import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseTracker } from '../../src/server/response-tracker.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Feeds `parts` one by one; returns the part index and offset where the response ended. */
function endOf(tracker: ResponseTracker, parts: string[]): [number, number] | undefined {
  for (let i = 0; i < parts.length; i++) {
    const at = tracker.feed(b(parts[i]!));
    if (at >= 0) return [i, at];
  }
  return undefined;
}

test('Content-Length response ends after its body, in any split', () => {
  const whole = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA';
  for (let cut = 1; cut < whole.length; cut++) {
    const r = endOf(new ResponseTracker(false), [whole.slice(0, cut), whole.slice(cut)]);
    const end = whole.indexOf('EXTRA');
    assert.deepEqual(r, cut >= end ? [0, end] : [1, end - cut], `cut at ${cut}`);
  }
});

test('HEAD, 204 and 304 responses have no body', () => {
  assert.deepEqual(endOf(new ResponseTracker(true), ['HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n']), [0, 39]);
  assert.deepEqual(endOf(new ResponseTracker(false), ['HTTP/1.1 204 No Content\r\n\r\n']), [0, 27]);
  assert.deepEqual(endOf(new ResponseTracker(false), ['HTTP/1.1 304 Not Modified\nETag: x\n\n']), [0, 35]);
});

test('chunked responses end after the last chunk and trailers', () => {
  const t = new ResponseTracker(false);
  assert.equal(t.feed(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel')), -1);
  assert.equal(t.feed(b('lo\r\n0\r\n')), -1);
  assert.equal(t.feed(b('X-T: 1\r\n\r\nnext')), 10);
});

test('1xx interim responses are skipped; 101 and bodies until close never complete', () => {
  assert.deepEqual(endOf(new ResponseTracker(false), ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']), [0, 63]);
  const up = new ResponseTracker(false);
  assert.equal(up.feed(b('HTTP/1.1 101 Switching Protocols\r\n\r\n')), -1);
  assert.equal(up.status, 'never');
  const close = new ResponseTracker(false);
  assert.equal(close.feed(b('HTTP/1.1 200 OK\r\n\r\nstreamed body')), -1);
  assert.equal(close.status, 'never');
});

test('bytes that are not an HTTP response never complete', () => {
  const t = new ResponseTracker(false);
  assert.equal(t.feed(b('\x00\x01garbage, not http\n')), -1);
  assert.equal(t.status, 'never');
  const bad = new ResponseTracker(false);
  assert.equal(bad.feed(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')), -1);
  assert.equal(bad.status, 'never');
});

const CHUNKED_HEAD = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';

test('chunked: the end is found exactly at every split, with extensions, bare LF ends and trailers', () => {
  const bodies = [
    '5\r\nhello\r\n0\r\n\r\n',
    'a;name=value\r\n0123456789\r\n3 \t;x\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n',
    'd\nHello, World!\n0\n\n',
    '000000000005\r\nhello\r\n0\r\n\r\n', // 12 digits: the most
  ];
  for (const body of bodies) {
    const whole = CHUNKED_HEAD + body + 'NEXT';
    const end = whole.length - 4;
    for (let cut = 1; cut < whole.length; cut++) {
      const r = endOf(new ResponseTracker(false), [whole.slice(0, cut), whole.slice(cut)]);
      assert.deepEqual(r, cut >= end ? [0, end] : [1, end - cut], `${JSON.stringify(body)} cut at ${cut}`);
    }
    const bytewise = endOf(new ResponseTracker(false), Array.from(whole));
    assert.deepEqual(bytewise, [end - 1, 1], `${JSON.stringify(body)} byte by byte`);
  }
});

test('chunked: bad framing never completes, however it is split', () => {
  const bad = [
    ' 5\r\nhello\r\n0\r\n\r\n', // leading blank
    '0000000000005\r\nhello\r\n0\r\n\r\n', // 13 digits
    '5 x\r\nhello\r\n0\r\n\r\n', // junk after the size
    '5\rxhello\r\n0\r\n\r\n', // CR not followed by LF
    '5;a\rb\r\nhello\r\n0\r\n\r\n', // CR inside an extension
    '5\r\nhelloXX\r\n0\r\n\r\n', // data longer than its size
    '5\r\nhello\rX0\r\n\r\n', // CR after the data not followed by LF
    `5;${'e'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`, // endless size line
    '\r\n5\r\nhello\r\n0\r\n\r\n', // empty size line
  ];
  for (const body of bad) {
    for (const parts of [[CHUNKED_HEAD + body], [CHUNKED_HEAD, ...Array.from(body)]]) {
      const t = new ResponseTracker(false);
      assert.equal(endOf(t, parts), undefined, JSON.stringify(body));
      assert.equal(t.status, 'never', JSON.stringify(body));
    }
  }
});
