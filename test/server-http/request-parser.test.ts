/** parseHead: one test group per rule of server-core.md §8.1, limits, and byte-at-a-time feeding. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHead, type HeadResult, type RequestHead } from '../../src/server/http/request-parser.js';
import { bytes, parse, splitProblem } from './helpers.js';

function head(r: HeadResult): RequestHead {
  assert.equal(r.kind, 'request', JSON.stringify(r));
  return (r as Extract<HeadResult, { kind: 'request' }>).head;
}

function error(r: HeadResult, offset: number, reason?: string | RegExp): void {
  assert.equal(r.kind, 'error', JSON.stringify(r));
  const e = r as Extract<HeadResult, { kind: 'error' }>;
  assert.equal(e.offset, offset, e.reason);
  assert.match(e.reason, new RegExp(`at byte ${offset}$`));
  if (typeof reason === 'string') assert.equal(e.reason, reason);
  else if (reason !== undefined) assert.match(e.reason, reason);
}

describe('line ends and the request line', () => {
  test('CRLF, bare LF and a mix all work; end is just after the blank line', () => {
    for (const s of ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'GET / HTTP/1.1\nHost: a\n\n', 'GET / HTTP/1.1\r\nHost: a\n\r\n']) {
      const r = parse(s + 'NEXT');
      assert.equal(r.kind, 'request');
      assert.equal((r as { end: number }).end, s.length);
      assert.deepEqual(head(r).headers, [['Host', 'a']]);
    }
  });
  test('a leading blank line is refused', () => {
    error(parse('\r\nGET / HTTP/1.1\r\n\r\n'), 0, 'blank line before the request line at byte 0');
    error(parse('\nGET / HTTP/1.1\r\n\r\n'), 0);
  });
  test('method: 1-20 of [A-Z0-9]', () => {
    error(parse('get / HTTP/1.1\r\n\r\n'), 0, 'lower-case method at byte 0');
    error(parse('GeT / HTTP/1.1\r\n\r\n'), 1, 'lower-case method at byte 1');
    error(parse('G@T / HTTP/1.1\r\n\r\n'), 1, /'@' in method/);
    error(parse('M-SEARCH * HTTP/1.1\r\n\r\n'), 1);
    assert.equal(head(parse('ABCDEFGHIJKLMNOPQRST / HTTP/1.1\r\n\r\n')).method, 'ABCDEFGHIJKLMNOPQRST');
    error(parse('ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n\r\n'), 20, 'method longer than 20 characters at byte 20');
    assert.equal(head(parse('B2B / HTTP/1.0\r\n\r\n')).method, 'B2B');
    error(parse(' / HTTP/1.1\r\n\r\n'), 0);
  });
  test('exactly one space between the parts', () => {
    error(parse('GET  / HTTP/1.1\r\n\r\n'), 5);
    error(parse('GET /  HTTP/1.1\r\n\r\n'), 6);
    error(parse('GET / HTTP/1.1 \r\n\r\n'), 14, "space after the HTTP version (expected the line end) at byte 14");
  });
  test('version: HTTP/1.0 and HTTP/1.1 only, case-sensitive', () => {
    assert.equal(head(parse('GET / HTTP/1.0\r\n\r\n')).version, 'HTTP/1.0');
    assert.equal(head(parse('GET / HTTP/1.1\r\n\r\n')).version, 'HTTP/1.1');
    error(parse('GET / HTTP/1.2\r\n\r\n'), 13, /in HTTP version/);
    error(parse('GET / HTTP/2.0\r\n\r\n'), 11);
    error(parse('GET / http/1.1\r\n\r\n'), 6);
    error(parse('GET /\r\n\r\n'), 5, 'request line ends without an HTTP version at byte 5');
  });
  test('a lone CR is refused at the byte after it', () => {
    error(parse('GET / HTTP/1.1\rX'), 15, "CR not followed by LF (got 'X') at byte 15");
  });
});

describe('request target', () => {
  test('RFC 3986 characters are accepted, query and fragment are split out', () => {
    const h = head(parse("GET /a-._~!$&'()*+,;=:@/%2F%aa?x=/?#f/? HTTP/1.1\r\n\r\n"));
    assert.equal(h.path, "/a-._~!$&'()*+,;=:@/%2F%aa");
    assert.equal(h.query, 'x=/?');
    assert.equal(h.fragment, 'f/?');
    assert.equal(h.uri, "/a-._~!$&'()*+,;=:@/%2F%aa?x=/?");
  });
  test('no query / empty query / empty fragment', () => {
    const none = head(parse('GET /a HTTP/1.1\r\n\r\n'));
    assert.equal(none.query, undefined);
    assert.equal(none.fragment, undefined);
    const empty = head(parse('GET /a?# HTTP/1.1\r\n\r\n'));
    assert.equal(empty.query, '');
    assert.equal(empty.fragment, '');
    assert.equal(empty.uri, '/a?');
  });
  for (const [c, at] of [[' x', 7], ['"', 6], ['<', 6], ['>', 6], ['\\', 6], ['|', 6], ['`', 6], ['[', 6], [']', 6]] as const) {
    test(`${JSON.stringify(c)} is refused in the path`, () => error(parse(`GET /a${c} HTTP/1.1\r\n\r\n`), at));
  }
  test('{ } ^ only with request.relaxed', () => {
    error(parse('GET /{x}^ HTTP/1.1\r\n\r\n'), 5, "'{' in request URI (allowed only with request.relaxed=1) at byte 5");
    error(parse('GET /^ HTTP/1.1\r\n\r\n'), 5);
    assert.equal(head(parse('GET /{x}^?{ HTTP/1.1\r\n\r\n', { relaxed: true })).path, '/{x}^');
  });
  test('bytes >= 0x80 are refused, even with relaxed', () => {
    error(parse('GET /\xc3\xa9 HTTP/1.1\r\n\r\n'), 5, 'non-ASCII byte 0xc3 in request URI at byte 5');
    error(parse('GET /\xc3\xa9 HTTP/1.1\r\n\r\n', { relaxed: true }), 5);
  });
  test('percent escapes need two hex digits', () => {
    error(parse('GET /%zz HTTP/1.1\r\n\r\n'), 6, /invalid percent-escape/);
    error(parse('GET /%4 HTTP/1.1\r\n\r\n'), 7, /invalid percent-escape/);
  });
  test('absolute form: PATH and URI start after the scheme', () => {
    const h = head(parse('GET http://user:pw@h.com:80/p?q HTTP/1.1\r\n\r\n'));
    assert.deepEqual([h.path, h.uri, h.query], ['//user:pw@h.com:80/p', '//user:pw@h.com:80/p?q', 'q']);
    assert.equal(h.absoluteForm, true);
    assert.equal(head(parse('GET //user:pw@h.com:80/p?q HTTP/1.1\r\n\r\n')).absoluteForm, false);
    assert.equal(head(parse('CONNECT example.com:443 HTTP/1.1\r\n\r\n')).path, '443');
    assert.equal(head(parse('GET mailto:a@b HTTP/1.1\r\n\r\n')).path, 'a@b');
    assert.equal(head(parse('GET http: HTTP/1.1\r\n\r\n')).path, '');
    error(parse('GET http://h:8a/ HTTP/1.1\r\n\r\n'), 15); // the port must be digits
  });
  test('*, an empty path and a network-path reference', () => {
    assert.equal(head(parse('OPTIONS * HTTP/1.1\r\n\r\n')).path, '*');
    const q = head(parse('GET ?q=1 HTTP/1.1\r\n\r\n'));
    assert.deepEqual([q.path, q.query, q.uri], ['', 'q=1', '?q=1']);
    assert.equal(head(parse('GET //double/x HTTP/1.1\r\n\r\n')).path, '//double/x');
  });
  test("IPv6 literals follow the real grammar, quirks included", () => {
    assert.equal(head(parse('GET http://[::1]:8080/x HTTP/1.1\r\n\r\n')).path, '//[::1]:8080/x');
    assert.equal(head(parse('GET //[v1.a:b]/x HTTP/1.1\r\n\r\n')).path, '//[v1.a:b]/x');
    // Ragel reads `6( h16 ":" )` as the byte 0x06 then one group, so the plain 8-group form is refused.
    const full = 'GET http://[1:2:3:4:5:6:7:8]/ HTTP/1.1\r\n\r\n';
    error(parse(full), full.indexOf(']'));
    assert.equal(head(parse('GET http://[\x061:2:3]/ HTTP/1.1\r\n\r\n')).path, '//[\x061:2:3]/');
  });
});

describe('headers', () => {
  test('names are token characters, kept as sent, in order, duplicates kept', () => {
    const h = head(parse("GET / HTTP/1.1\r\nX_Y.z~!#$%&'*+-^`|: 1\r\nHost: a\r\nhost: b\r\n\r\n"));
    assert.deepEqual(h.headers, [["X_Y.z~!#$%&'*+-^`|", '1'], ['Host', 'a'], ['host', 'b']]);
  });
  test('space before the colon, an empty name and a line without a colon are refused', () => {
    error(parse('GET / HTTP/1.1\r\nX-Foo : bar\r\n\r\n'), 21, "space before ':' in header name at byte 21");
    error(parse('GET / HTTP/1.1\r\n: x\r\n\r\n'), 16, 'empty header name at byte 16');
    error(parse('GET / HTTP/1.1\r\nNoColon\r\n\r\n'), 23, "header line without ':' at byte 23");
    error(parse('GET / HTTP/1.1\r\nX{y: 1\r\n\r\n'), 17, /'\{' in header name/);
    error(parse('GET / HTTP/1.1\r\nX\xe9: 1\r\n\r\n'), 17);
  });
  test('values: leading blanks stripped, trailing kept, HT and high bytes allowed, empty ok', () => {
    const h = head(parse('GET / HTTP/1.1\r\nA:    a  \r\nB:\t1\tx\r\nC: caf\xc3\xa9\r\nD:\r\nE:   \r\n\r\n'));
    assert.deepEqual(h.headers, [['A', 'a  '], ['B', '1\tx'], ['C', 'caf\xc3\xa9'], ['D', ''], ['E', '']]);
  });
  test('DEL, control bytes and a lone CR in a value are refused', () => {
    error(parse('GET / HTTP/1.1\r\nX: \x7f\r\n\r\n'), 19, 'DEL in header value at byte 19');
    error(parse('GET / HTTP/1.1\r\nX: a\x01\r\n\r\n'), 20, 'control byte 0x01 in header value at byte 20');
    error(parse('GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'), 21, "CR not followed by LF (got 'b') at byte 21");
  });
  test('obsolete line folding is refused', () => {
    error(parse('GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'), 22, 'obsolete line folding (continuation line) at byte 22');
    error(parse('GET / HTTP/1.1\r\nX: 1\r\n\t2\r\n\r\n'), 22);
    error(parse('GET / HTTP/1.1\r\nX:\r\n b\r\n\r\n'), 20);
  });
  test('no Host header is required', () => {
    assert.deepEqual(head(parse('GET / HTTP/1.1\r\n\r\n')).headers, []);
  });
});

describe('socket messages', () => {
  test('@path {json}\\0: path keeps the @, body is the JSON without the NUL', () => {
    const r = parse('@chat/room {"type":"ping"}\0GET');
    assert.deepEqual(r.kind === 'json' ? [r.path, r.body.toString(), r.end] : r, ['@chat/room', '{"type":"ping"}', 27]);
  });
  test('a JSON path has no query; the body must start with {', () => {
    error(parse('@chat/room?x=1 {}\0'), 10, /JSON message path/);
    error(parse('@chat x\0'), 6, "JSON message body must start with '{', got 'x' at byte 6");
  });
  test('JSON ends at the first }\\0', () => {
    const r = parse('@a {"x":"}"}\0@a {}\0');
    assert.equal(r.kind === 'json' ? r.body.toString() : r.kind, '{"x":"}"}');
  });
  test('the Flash policy request, with or without attributes', () => {
    assert.deepEqual(parse('<policy-file-request/>\0'), { kind: 'policy', end: 23 });
    assert.deepEqual(parse('<policy-file-request foo="1">\0'), { kind: 'policy', end: 30 });
  });
  test('other XML messages', () => {
    const r = parse('<msg to="x">hi</msg>\0');
    assert.deepEqual(r.kind === 'xml' ? [r.path, r.body.toString(), r.end] : r, ['<msg', '<msg to="x">hi</msg>', 21]);
    error(parse('<!x>\0'), 1, /XML message tag/);
  });
  test('a message after a request in the same buffer (parsed from its start)', () => {
    const buf = bytes('GET / HTTP/1.1\r\n\r\n@chat {}\0');
    const first = parseHead(buf, 0);
    assert.equal(first.kind, 'request');
    const second = parseHead(buf, (first as { end: number }).end);
    assert.equal(second.kind, 'json');
    assert.equal((second as { end: number }).end, buf.length);
  });
  test('anything else is refused at byte 0', () => {
    error(parse('\x16\x03\x01\x00'), 0, "byte 0x16 cannot start a request (expected a method, '@' or '<') at byte 0");
    error(parse('\x00'), 0);
  });
});

describe('limits', () => {
  const req = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
  test('a head of exactly maxHeadBytes fits; one byte more is a 400 at the last byte that fits', () => {
    assert.equal(parse(req, { maxHeadBytes: req.length }).kind, 'request');
    error(parse(req, { maxHeadBytes: req.length - 1 }), req.length - 2, `request head does not fit in ${req.length - 1} bytes (limits.buffer_size) at byte ${req.length - 2}`);
  });
  test('below the limit an unfinished head is incomplete', () => {
    assert.deepEqual(parse(req.slice(0, 20), { maxHeadBytes: 21 }), { kind: 'incomplete' });
    assert.equal(parse(req.slice(0, 21), { maxHeadBytes: 21 }).kind, 'error');
  });
  test('the default limit is 4096 bytes', () => {
    const big = `GET / HTTP/1.1\r\nX: ${'a'.repeat(5000)}\r\n\r\n`;
    error(parse(big), 4095, /does not fit in 4096 bytes/);
    const fits = `GET / HTTP/1.1\r\nX: ${'a'.repeat(4096 - 23)}\r\n\r\n`;
    assert.equal(fits.length, 4096);
    assert.equal(parse(fits).kind, 'request');
  });
  test('the limit counts from start (pipelined heads)', () => {
    const buf = bytes(req + req);
    const r = parseHead(buf, req.length, { maxHeadBytes: req.length });
    assert.equal(r.kind === 'request' ? r.end : r.kind, buf.length);
  });
  test('an error before the limit wins over the limit', () => {
    error(parse('GET / HTTP/1.1\r\nX : 1\r\n' + 'x'.repeat(100), { maxHeadBytes: 30 }), 17);
  });
  test('maxHeaderCount keeps the first N distinct names; once full every further line is dropped and counted', () => {
    const r = parse('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\na: 3\r\nC: 4\r\nA: 5\r\nD: 6\r\n\r\n', { maxHeaderCount: 2 });
    assert.equal(r.kind, 'request');
    const ok = r as Extract<HeadResult, { kind: 'request' }>;
    assert.deepEqual(ok.head.headers, [['A', '1'], ['B', '2']]);
    assert.equal(ok.dropped, 4);
    const all = parse('GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n');
    assert.equal(all.kind === 'request' ? all.dropped : -1, 0);
  });
  test('the default header count is 1280 names', () => {
    const lines = Array.from({ length: 1300 }, (_, i) => `h${i}:`).join('\n');
    const r = parse(`GET / HTTP/1.1\n${lines}\n\n`, { maxHeadBytes: 1 << 20 });
    assert.equal(r.kind === 'request' ? `${r.head.headers.length}+${r.dropped}` : r.kind, '1280+20');
  });
});

describe('byte-at-a-time feeding gives incomplete until the deciding byte, then the same answer', () => {
  const samples: Array<[string, string]> = [
    ['request with CRLF', 'POST /p?q=1#f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc'],
    ['request with LF', 'GET http://h:80/x HTTP/1.0\nA:  b \n\n'],
    ['json', '@chat {"type":"ping"}\0'],
    ['policy', '<policy-file-request/>\0'],
    ['xml', '<m a="1">x</m>\0'],
    ['bad method', 'GeT / HTTP/1.1\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
    ['lone CR', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'],
    ['bad version', 'GET / HTTP/1.2\r\n\r\n'],
  ];
  for (const [name, s] of samples) test(name, () => assert.equal(splitProblem(bytes(s)), undefined));
  test('the size limit', () => assert.equal(splitProblem(bytes('GET / HTTP/1.1\r\nX: 123456789\r\n\r\n'), { maxHeadBytes: 24 }), undefined));
});
