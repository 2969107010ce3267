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
