/**
 * Response framing toward Mongrel2 (bridge-anchors.md §3.5): which branch each
 * response takes, the exact head bytes, hop-by-hop removal, Content-Length
 * validation, and chunk encoding.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeChunk, FramingError, LAST_CHUNK, planResponse, type FramingHead, type FramingRequest } from '../../src/bridge/http-framing.js';
import { EncodeError } from '../../src/protocol/index.js';

const GET11: FramingRequest = { method: 'GET', version: 'HTTP/1.1', wantsClose: false };
const GET10: FramingRequest = { method: 'GET', version: 'HTTP/1.0', wantsClose: true };
const HEAD11: FramingRequest = { method: 'HEAD', version: 'HTTP/1.1', wantsClose: false };

const text = (buf: Buffer): string => buf.toString('latin1');
const head = (status: number, headers: Array<[string, string]>, reason?: string): FramingHead => (reason === undefined ? { status, headers } : { status, reason, headers });

/** The header lines of a planned head, without the status line and blank line. */
function lines(buf: Buffer): string[] {
  const all = text(buf).split('\r\n');
  assert.equal(all.at(-1), '');
  assert.equal(all.at(-2), '');
  return all.slice(1, -2);
}

function framingError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FramingError, `expected FramingError, got ${String(err)}`);
    assert.equal(err.status, 502);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('planResponse: exact bytes', () => {
  test('HTTP/1.1 with a Content-Length → length, head passed through', () => {
    const plan = planResponse(GET11, head(200, [['Content-Type', 'text/plain'], ['Content-Length', '5']]));
    assert.equal(text(plan.head), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n');
    assert.equal(plan.framing, 'length');
    assert.equal(plan.contentLength, 5);
    assert.equal(plan.closeAfter, false);
  });

  test('HTTP/1.1 without a length → chunked, Transfer-Encoding added last', () => {
    const plan = planResponse(GET11, head(404, [['Content-Type', 'text/html'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']], 'Not Found'));
    assert.equal(text(plan.head), 'HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n');
    assert.equal(plan.framing, 'chunked');
    assert.ok(!('contentLength' in plan));
    assert.equal(plan.closeAfter, false);
  });

  test('HTTP/1.0 without a length → close, Connection: close once', () => {
    const plan = planResponse(GET10, head(200, [['Content-Type', 'text/plain'], ['Connection', 'keep-alive']]));
    assert.equal(text(plan.head), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n');
    assert.equal(plan.framing, 'close');
    assert.equal(plan.closeAfter, true);
  });

  test('the default reason comes from the status', () => {
    assert.ok(text(planResponse(GET11, head(418, [['Content-Length', '0']])).head).startsWith('HTTP/1.1 418 I\'m a Teapot\r\n'));
    assert.ok(text(planResponse(GET11, head(299, [['Content-Length', '0']])).head).startsWith('HTTP/1.1 299 Unknown\r\n'));
  });
});

describe('planResponse: branches', () => {
  test('HTTP/1.0 even when the caller forgot wantsClose → close framing and closeAfter', () => {
    const plan = planResponse({ method: 'GET', version: 'HTTP/1.0', wantsClose: false }, head(200, []));
    assert.equal(plan.framing, 'close');
    assert.equal(plan.closeAfter, true);
    assert.deepStrictEqual(lines(plan.head), ['Connection: close']);
  });

  test('an unknown version is treated like HTTP/1.0 (chunked is HTTP/1.1 only)', () => {
    assert.equal(planResponse({ method: 'GET', version: 'HTTP/0.9', wantsClose: false }, head(200, [])).framing, 'close');
  });

  test('HTTP/1.0 with a Content-Length → length, still closed after', () => {
    const plan = planResponse(GET10, head(200, [['Content-Length', '3']]));
    assert.equal(plan.framing, 'length');
    assert.equal(plan.contentLength, 3);
    assert.equal(plan.closeAfter, true);
    assert.deepStrictEqual(lines(plan.head), ['Content-Length: 3', 'Connection: close']);
  });

  test('HTTP/1.1 + Connection: close from the client → chunked with Connection: close and closeAfter', () => {
    const plan = planResponse({ method: 'GET', version: 'HTTP/1.1', wantsClose: true }, head(200, []));
    assert.equal(plan.framing, 'chunked');
    assert.equal(plan.closeAfter, true);
    assert.deepStrictEqual(lines(plan.head), ['Transfer-Encoding: chunked', 'Connection: close']);
  });

  test('the backend asking to close its own connection does not close the client', () => {
    const plan = planResponse(GET11, head(200, [['Connection', 'close'], ['Content-Length', '1']]));
    assert.equal(plan.closeAfter, false);
    assert.deepStrictEqual(lines(plan.head), ['Content-Length: 1']);
  });

  test('HEAD → none; the backend Content-Length is kept; nothing is added', () => {
    const withLength = planResponse(HEAD11, head(200, [['Content-Type', 'text/html'], ['Content-Length', '1234']]));
    assert.equal(withLength.framing, 'none');
    assert.ok(!('contentLength' in withLength));
    assert.deepStrictEqual(lines(withLength.head), ['Content-Type: text/html', 'Content-Length: 1234']);
    const without = planResponse(HEAD11, head(200, [['Content-Type', 'text/html']]));
    assert.equal(without.framing, 'none');
    assert.deepStrictEqual(lines(without.head), ['Content-Type: text/html']);
    const head10 = planResponse({ method: 'HEAD', version: 'HTTP/1.0', wantsClose: true }, head(200, []));
    assert.equal(head10.framing, 'none');
    assert.equal(head10.closeAfter, true);
  });

  test('204 and 1xx → none, any Content-Length dropped (even an invalid one)', () => {
    for (const status of [204, 100, 103, 199]) {
      const plan = planResponse(GET11, head(status, [['Content-Length', '10'], ['X-A', '1'], ['content-length', 'junk']]));
      assert.equal(plan.framing, 'none', String(status));
      assert.deepStrictEqual(lines(plan.head), ['X-A: 1']);
    }
  });

  test('304 → none, Content-Length kept (it describes the 200 body)', () => {
    const plan = planResponse(GET11, head(304, [['ETag', '"x"'], ['Content-Length', '99']]));
    assert.equal(plan.framing, 'none');
    assert.deepStrictEqual(lines(plan.head), ['ETag: "x"', 'Content-Length: 99']);
    assert.equal(plan.closeAfter, false);
  });

  test('Content-Length: 0 is a valid length', () => {
    const plan = planResponse(GET11, head(200, [['content-length', '0']]));
    assert.equal(plan.framing, 'length');
    assert.equal(plan.contentLength, 0);
  });
});

describe('planResponse: hop-by-hop headers', () => {
  test('Connection, Keep-Alive, Transfer-Encoding, TE, Trailer, Upgrade, Proxy-Connection are dropped (any case)', () => {
    const plan = planResponse(
      GET11,
      head(200, [
        ['connection', 'keep-alive'],
        ['Keep-Alive', 'timeout=5'],
        ['Transfer-Encoding', 'chunked'],
        ['TE', 'trailers'],
        ['Trailer', 'X-Checksum'],
        ['UPGRADE', 'h2c'],
        ['Proxy-Connection', 'keep-alive'],
        ['X-Kept', 'yes'],
      ]),
    );
    // The backend's chunked coding was decoded away; ours is added exactly once.
    assert.deepStrictEqual(lines(plan.head), ['X-Kept: yes', 'Transfer-Encoding: chunked']);
  });

  test('headers named by Connection are dropped too', () => {
    const plan = planResponse(GET11, head(200, [['Connection', 'X-Backend-Hop, close'], ['X-Backend-Hop', 'secret'], ['connection', ' X-Other '], ['x-other', '1'], ['X-End', 'ok'], ['Content-Length', '2']]));
    assert.deepStrictEqual(lines(plan.head), ['X-End: ok', 'Content-Length: 2']);
  });
});

describe('planResponse: Content-Length validation', () => {
  test('several equal values count as one, at the first one\'s place', () => {
    const plan = planResponse(GET11, head(200, [['X-A', '1'], ['content-length', '5'], ['X-B', '2'], ['Content-Length', '5']]));
    assert.equal(plan.contentLength, 5);
    assert.deepStrictEqual(lines(plan.head), ['X-A: 1', 'content-length: 5', 'X-B: 2']);
  });

  test('a list of equal values in one header counts as one (RFC 9110 §8.6)', () => {
    const plan = planResponse(GET11, head(200, [['Content-Length', '7, 7 ,7']]));
    assert.equal(plan.contentLength, 7);
    assert.deepStrictEqual(lines(plan.head), ['Content-Length: 7']);
  });

  test('leading zeros are one number', () => {
    assert.equal(planResponse(GET11, head(200, [['Content-Length', '007'], ['Content-Length', '7']])).contentLength, 7);
  });

  test('different values → FramingError', () => {
    framingError(() => planResponse(GET11, head(200, [['Content-Length', '5'], ['Content-Length', '6']])), /conflicting Content-Length values 5 and 6/);
    framingError(() => planResponse(GET11, head(200, [['Content-Length', '5, 6']])), /conflicting/);
  });

  test('an invalid value → FramingError', () => {
    for (const v of ['-1', 'abc', '', '1.5', '0x10', '1 2', '+5', '9999999999999999']) {
      framingError(() => planResponse(GET11, head(200, [['Content-Length', v]])), /invalid Content-Length/);
    }
  });

  test('HEAD and 304 validate the Content-Length they keep', () => {
    framingError(() => planResponse(HEAD11, head(200, [['Content-Length', 'x']])), /invalid/);
    framingError(() => planResponse(GET11, head(304, [['Content-Length', '1'], ['Content-Length', '2']])), /conflicting/);
  });
});

describe('planResponse: unsafe heads', () => {
  test('CR/LF/NUL in a value, a bad name or a bad reason → EncodeError from the protocol encoder', () => {
    assert.throws(() => planResponse(GET11, head(200, [['X-A', 'a\r\nSet-Cookie: evil=1']])), EncodeError);
    assert.throws(() => planResponse(GET11, head(200, [['X-A', 'a\0']])), EncodeError);
    assert.throws(() => planResponse(GET11, head(200, [['Bad Name', 'x']])), EncodeError);
    assert.throws(() => planResponse(GET11, head(200, [], 'OK\r\nX: y')), EncodeError);
    assert.throws(() => planResponse(GET11, head(99, [])), EncodeError);
  });

  test('a FramingError is not an EncodeError (callers map both to 502, but log them apart)', () => {
    try {
      planResponse(GET11, head(200, [['Content-Length', 'x']]));
      assert.fail('no error');
    } catch (err) {
      assert.ok(err instanceof FramingError);
      assert.ok(!(err instanceof EncodeError));
    }
  });
});

describe('encodeChunk and LAST_CHUNK', () => {
  test('hex size CRLF data CRLF', () => {
    assert.equal(text(encodeChunk(Buffer.from('hello'))), '5\r\nhello\r\n');
    assert.equal(text(encodeChunk(Buffer.alloc(255, 0x61))).slice(0, 4), 'ff\r\n');
    assert.equal(text(encodeChunk(Buffer.alloc(4096))).slice(0, 6), '1000\r\n');
    const binary = Buffer.from([0x0d, 0x0a, 0x30, 0x0d, 0x0a]);
    assert.ok(encodeChunk(binary).equals(Buffer.concat([Buffer.from('5\r\n'), binary, Buffer.from('\r\n')])));
  });

  test('empty data gives no bytes, never a premature last chunk', () => {
    const out = encodeChunk(Buffer.alloc(0));
    assert.equal(out.length, 0);
  });

  test('LAST_CHUNK is 0 CRLF CRLF', () => {
    assert.equal(text(LAST_CHUNK), '0\r\n\r\n');
  });

  test('property: encoded pieces + LAST_CHUNK decode back to the body', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (pieces) => {
        const wire = Buffer.concat([...pieces.map((p) => encodeChunk(Buffer.from(p))), LAST_CHUNK]);
        assert.ok(decodeChunked(wire).equals(Buffer.concat(pieces.map((p) => Buffer.from(p)))));
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});

/** A strict chunked decoder written independently of the encoder. Throws on leftovers. */
function decodeChunked(wire: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = wire.indexOf('\r\n', at, 'latin1');
    assert.ok(eol > at, 'chunk size line');
    const sizeText = wire.toString('latin1', at, eol);
    assert.match(sizeText, /^[0-9a-f]+$/);
    const size = parseInt(sizeText, 16);
    at = eol + 2;
    if (size === 0) {
      assert.equal(wire.toString('latin1', at), '\r\n', 'empty trailer, nothing after');
      return Buffer.concat(out);
    }
    out.push(wire.subarray(at, at + size));
    at += size;
    assert.equal(wire.toString('latin1', at, at + 2), '\r\n');
    at += 2;
  }
}
