/**
 * The CGI header block parser (bridge-anchors.md §3.5): Status/Location rules,
 * nginx's hidden X-Accel headers, limits, line endings, and independence from
 * how STDOUT was split into records.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CgiHeadParser, CgiResponseError, type CgiHead } from '../../src/bridge/cgi-response.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * Pushes the chunks as a caller would; returns the head (with `rest` plus the
 * chunks that followed it, i.e. the whole body) or the thrown error.
 */
function run(chunks: Buffer[], max?: number): CgiHead | Error {
  const parser = new CgiHeadParser(max === undefined ? {} : { maxHeaderBytes: max });
  try {
    for (const [i, chunk] of chunks.entries()) {
      const head = parser.push(chunk);
      if (head) return { ...head, rest: Buffer.concat([head.rest, ...chunks.slice(i + 1)]) };
    }
  } catch (err) {
    return err as Error;
  }
  return new Error('need more');
}

function parse(text: string | Buffer, max?: number): CgiHead {
  const r = run([typeof text === 'string' ? b(text) : text], max);
  if (r instanceof Error) throw r;
  return r;
}

function parseError(text: string, pattern: RegExp, max?: number): void {
  const r = run([b(text)], max);
  assert.ok(r instanceof CgiResponseError, `expected CgiResponseError for ${JSON.stringify(text)}, got ${r instanceof Error ? r.message : JSON.stringify(r)}`);
  assert.equal(r.status, 502);
  assert.match(r.message, pattern);
}

/** A comparable form of a head or error. */
function summary(r: CgiHead | Error): unknown {
  if (r instanceof Error) return { error: r.constructor.name, message: r.message };
  return { ...r, rest: r.rest.toString('latin1') };
}

const SAMPLES = [
  'Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\n<h1>nope</h1>',
  'X-Powered-By: PHP/8.2\nSet-Cookie: a=1\nSet-Cookie: b=2\nContent-Type: text/plain\n\nhello\r\n\r\nworld',
  'Location: /login\r\n\r\n',
  'Status: 302 Found\r\nLocation: https://x/\r\nX-Accel-Redirect: /protected/f.bin\r\nX-Accel-Buffering: no\r\n\r\n',
  '\r\nbody only',
  'Status: 2x0\r\n\r\n',
  'Bad line\r\n\r\n',
  'A: b\r\r\n\r\n',
];

describe('CgiHeadParser: splitting', () => {
  test('split at every byte position gives the same result as one chunk', () => {
    for (const text of SAMPLES) {
      const whole = summary(run([b(text)]));
      for (let at = 0; at <= text.length; at++) {
        assert.deepStrictEqual(summary(run([b(text.slice(0, at)), b(text.slice(at))])), whole, `${JSON.stringify(text)} split at ${at}`);
      }
      assert.deepStrictEqual(summary(run([...b(text)].map((byte) => Buffer.from([byte])))), whole, `${JSON.stringify(text)} one byte per chunk`);
    }
  });

  test('needs more until the blank line, including between its CR and LF', () => {
    const parser = new CgiHeadParser();
    assert.equal(parser.push(b('Content-Type: text/plain\r\n')), null);
    assert.equal(parser.push(b('\r')), null);
    const head = parser.push(b('\nbody'));
    assert.ok(head);
    assert.deepStrictEqual(head.headers, [['Content-Type', 'text/plain']]);
    assert.equal(head.rest.toString(), 'body');
  });

  test('empty chunks are harmless', () => {
    const parser = new CgiHeadParser();
    assert.equal(parser.push(Buffer.alloc(0)), null);
    assert.equal(parser.push(b('A: 1\n')), null);
    assert.equal(parser.push(Buffer.alloc(0)), null);
    assert.ok(parser.push(b('\n')));
  });

  test('push after the head is a programming error', () => {
    const parser = new CgiHeadParser();
    assert.ok(parser.push(b('\r\n')));
    assert.throws(() => parser.push(b('more')), /already returned/);
  });

  test('property: any split of a generated header block parses the same', () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/);
    const value = fc.stringMatching(/^[ -~]{0,16}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), fc.boolean(), fc.array(fc.nat({ max: 400 }), { maxLength: 6 }), fc.uint8Array({ maxLength: 20 }), (headers, crlf, cuts, body) => {
        const eol = crlf ? '\r\n' : '\n';
        const input = Buffer.concat([b(headers.map(([k, v]) => `${k}: ${v}${eol}`).join('') + eol), Buffer.from(body)]);
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
        const chunks: Buffer[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(input.subarray(last, p));
          last = p;
        }
        chunks.push(input.subarray(last));
        assert.deepStrictEqual(summary(run(chunks)), summary(run([input])));
      }),
      { numRuns: 500, seed: 42 },
    );
  });
});

describe('CgiHeadParser: status', () => {
  test('Status: 404 Not Found → 404 with the reason, Status removed from the headers', () => {
    const head = parse('Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\n');
    assert.equal(head.status, 404);
    assert.equal(head.reason, 'Not Found');
    assert.deepStrictEqual(head.headers, [['Content-Type', 'text/html']]);
  });

  test('Status without a reason (PHP: "Status: 418")', () => {
    const head = parse('Status: 418\r\n\r\n');
    assert.equal(head.status, 418);
    assert.equal(head.reason, undefined);
    assert.ok(!('reason' in head));
  });

  test('the reason keeps inner spaces; the status name is case-insensitive', () => {
    const head = parse('status:   503   Service  Unavailable  \r\n\r\n');
    assert.equal(head.status, 503);
    assert.equal(head.reason, 'Service  Unavailable');
  });

  test('no Status but a Location → 302', () => {
    const head = parse('Location: /login\r\n\r\n');
    assert.equal(head.status, 302);
    assert.deepStrictEqual(head.headers, [['Location', '/login']]);
  });

  test('Status wins over Location (PHP sends "Status: 302 Found" or a 301 it was told)', () => {
    assert.equal(parse('Status: 301 Moved Permanently\r\nLocation: /new\r\n\r\n').status, 301);
    assert.equal(parse('Location: /new\r\nStatus: 201 Created\r\n\r\n').status, 201);
  });

  test('no Status, no Location → 200', () => {
    const head = parse('Content-type: text/html; charset=UTF-8\r\n\r\n');
    assert.equal(head.status, 200);
    assert.equal(head.reason, undefined);
  });

  test('a Status without 3 valid digits (100-999) → CgiResponseError "invalid status" (nginx: 502)', () => {
    for (const v of ['abc', '99', '099', '1000', '20', '', '200x', '2 00', '-200', '200\tOK\u0000']) {
      parseError(`Status: ${v}\r\n\r\n`, /invalid status|NUL/);
    }
  });

  test('100 and 999 are the bounds', () => {
    assert.equal(parse('Status: 100\n\n').status, 100);
    assert.equal(parse('Status: 999 Odd\n\n').status, 999);
  });

  test('two Status headers are ambiguous → error', () => {
    parseError('Status: 200\r\nStatus: 404\r\n\r\n', /duplicate Status/);
  });
});

describe('CgiHeadParser: headers', () => {
  test('repeated headers (Set-Cookie) are kept in order, names keep their case', () => {
    const head = parse('Set-Cookie: a=1; Path=/\r\nX-A: 1\r\nset-cookie: b=2\r\nSet-Cookie: c=3\r\n\r\n');
    assert.deepStrictEqual(head.headers, [
      ['Set-Cookie', 'a=1; Path=/'],
      ['X-A', '1'],
      ['set-cookie', 'b=2'],
      ['Set-Cookie', 'c=3'],
    ]);
  });

  test('values: outer spaces and tabs trimmed, inner ones kept, colons in values kept', () => {
    const head = parse('X-A: \t a  b \t\r\nX-B:nospace\r\nX-C:\r\nX-Time: 12:30:00\r\n\r\n');
    assert.deepStrictEqual(head.headers, [
      ['X-A', 'a  b'],
      ['X-B', 'nospace'],
      ['X-C', ''],
      ['X-Time', '12:30:00'],
    ]);
  });

  test('bare LF line ends, and a mix of LF and CRLF', () => {
    assert.deepStrictEqual(parse('A: 1\nB: 2\n\nrest').headers, [
      ['A', '1'],
      ['B', '2'],
    ]);
    const mixed = parse('A: 1\r\nB: 2\n\r\nrest');
    assert.deepStrictEqual(mixed.headers, [
      ['A', '1'],
      ['B', '2'],
    ]);
    assert.equal(mixed.rest.toString(), 'rest');
  });

  test('an empty header block (the blank line first) → 200 with no headers', () => {
    for (const text of ['\r\nbody', '\nbody']) {
      const head = parse(text);
      assert.equal(head.status, 200);
      assert.deepStrictEqual(head.headers, []);
      assert.equal(head.rest.toString(), 'body');
    }
  });

  test('rest: the body bytes after the head, binary-safe, empty when none; only the first blank line counts', () => {
    const body = Buffer.from([0, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x41]);
    const head = parse(Buffer.concat([b('A: 1\r\n\r\n'), body]));
    assert.ok(head.rest.equals(body));
    assert.equal(parse('A: 1\r\n\r\n').rest.length, 0);
  });

  test('bytes above 0x7f in values survive as latin1 (written back byte for byte)', () => {
    const raw = Buffer.concat([b('X-Name: '), Buffer.from('héllo', 'utf8'), b('\r\n\r\n')]);
    const value = parse(raw).headers[0]![1];
    assert.ok(Buffer.from(value, 'latin1').equals(Buffer.from('héllo', 'utf8')));
  });

  test('a line without a colon → CgiResponseError', () => {
    parseError('Content-Type text/html\r\n\r\n', /line 1 has no colon/);
    parseError('A: 1\r\nHTTP/1.1 200 OK\r\n\r\n', /line 2 has no colon/);
    parseError('A: 1\r\r\n\r\n', /NUL or a bare CR/);
    parseError('\r\r\n\r\n', /no colon/);
  });

  test('an invalid header name → CgiResponseError (space before the colon, folding, empty, non-token)', () => {
    parseError('Content-Type : text/html\r\n\r\n', /invalid name/);
    parseError('A: 1\r\n  folded\r\n\r\n', /no colon|invalid name/);
    parseError('A: 1\r\n folded: x\r\n\r\n', /invalid name/);
    parseError(': x\r\n\r\n', /invalid name/);
    parseError('X(y): 1\r\n\r\n', /invalid name/);
    parseError('X\u00e9: 1\r\n\r\n', /invalid name/);
  });

  test('NUL in a value → CgiResponseError', () => {
    parseError('X-A: a\u0000b\r\n\r\n', /X-A contains NUL/);
  });
});

describe('CgiHeadParser: nginx controls', () => {
  test('X-Accel-* and X-Sendfile are removed; redirect, sendfile and buffering are reported', () => {
    const head = parse(
      [
        'Content-Type: application/pdf',
        'X-Accel-Redirect: /protected/report.pdf',
        'X-Accel-Buffering: no',
        'X-Accel-Expires: 60',
        'X-Accel-Limit-Rate: 1024',
        'X-Accel-Charset: utf-8',
        'X-Sendfile: /srv/files/report.pdf',
        'Content-Disposition: attachment',
        '',
        '',
      ].join('\r\n'),
    );
    assert.deepStrictEqual(head.headers, [
      ['Content-Type', 'application/pdf'],
      ['Content-Disposition', 'attachment'],
    ]);
    assert.equal(head.accelRedirect, '/protected/report.pdf');
    assert.equal(head.sendfile, '/srv/files/report.pdf');
    assert.equal(head.noBuffering, true);
  });

  test('none of them: noBuffering false and no redirect fields', () => {
    const head = parse('A: 1\r\n\r\n');
    assert.equal(head.noBuffering, false);
    assert.ok(!('accelRedirect' in head));
    assert.ok(!('sendfile' in head));
  });

  test('X-Accel-Buffering: case-insensitive "no"; "yes" or anything else buffers; the last one wins', () => {
    assert.equal(parse('x-accel-buffering: NO\n\n').noBuffering, true);
    assert.equal(parse('X-Accel-Buffering: yes\n\n').noBuffering, false);
    assert.equal(parse('X-Accel-Buffering: no\nX-Accel-Buffering: yes\n\n').noBuffering, false);
  });

  test('empty X-Accel-Redirect / X-Sendfile values are ignored', () => {
    const head = parse('X-Accel-Redirect:\r\nX-Sendfile:  \r\n\r\n');
    assert.equal(head.accelRedirect, undefined);
    assert.equal(head.sendfile, undefined);
    assert.deepStrictEqual(head.headers, []);
  });

  test('path values are UTF-8 decoded; invalid UTF-8 is an error', () => {
    const raw = Buffer.concat([b('X-Sendfile: /files/'), Buffer.from('café.txt', 'utf8'), b('\r\n\r\n')]);
    assert.equal(parse(raw).sendfile, '/files/café.txt');
    parseError('X-Accel-Redirect: /a\u00ff\r\n\r\n', /X-Accel-Redirect is not valid UTF-8/);
  });

  test('duplicate X-Accel-Redirect or X-Sendfile → error (which file?)', () => {
    parseError('X-Accel-Redirect: /a\r\nX-Accel-Redirect: /b\r\n\r\n', /duplicate X-Accel-Redirect/);
    parseError('X-Sendfile: /a\r\nx-sendfile: /b\r\n\r\n', /duplicate x-sendfile/);
  });
});

describe('CgiHeadParser: size limit', () => {
  const block = (size: number): string => {
    // "X: " + filler + "\r\n\r\n" is exactly `size` bytes.
    return `X: ${'a'.repeat(size - 7)}\r\n\r\n`;
  };

  test('the default limit is 64 KiB, blank line included', () => {
    assert.equal(block(65536).length, 65536);
    assert.equal(parse(block(65536) + 'body').rest.toString(), 'body');
    parseError(block(65537), /header block too large \(over 65536 bytes\)/);
  });

  test('a block over the limit fails even before its end arrives, over many chunks', () => {
    const parser = new CgiHeadParser({ maxHeaderBytes: 100 });
    const line = b('X-Filler: 0123456789012345678901234567890123456789\r\n'); // 52 bytes
    assert.equal(parser.push(line), null);
    assert.throws(
      () => parser.push(line),
      (err: unknown) => err instanceof CgiResponseError && /too large/.test(err.message),
    );
  });

  test('whether the limit trips does not depend on the splitting', () => {
    for (const text of [block(100), block(101)]) {
      const whole = summary(run([b(text)], 100));
      for (let at = 0; at <= text.length; at++) assert.deepStrictEqual(summary(run([b(text.slice(0, at)), b(text.slice(at))], 100)), whole);
    }
    assert.ok(!(run([b(block(100))], 100) instanceof Error));
    assert.ok(run([b(block(101))], 100) instanceof CgiResponseError);
  });

  test('body bytes after the head do not count toward the limit', () => {
    const head = parse(block(100) + 'x'.repeat(1000), 100);
    assert.equal(head.rest.length, 1000);
  });

  test('a bad limit is refused', () => {
    assert.throws(() => new CgiHeadParser({ maxHeaderBytes: 0 }), RangeError);
    assert.throws(() => new CgiHeadParser({ maxHeaderBytes: 1.5 }), RangeError);
  });
});
