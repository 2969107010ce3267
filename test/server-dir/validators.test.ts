/** Pure parts of the Dir handler: HTTP-dates, entity-tags, RFC 9110 preconditions, ranges. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHttpDate, parseHttpDate } from '../../src/server/dir/http-date.js';
import { parseEntityTag, parseEntityTagList, strongMatch, weakMatch } from '../../src/server/dir/entity-tags.js';
import { evaluatePreconditions, ifRangeAllows, type Validators } from '../../src/server/dir/conditional.js';
import { evaluateRange } from '../../src/server/dir/range.js';
import { isInside, percentDecode, targetSuffix } from '../../src/server/dir/target-path.js';
import { mimeTypeFor } from '../../src/server/dir/mime.js';
import { MIMETYPES } from './helpers.js';

const T = 784111777; // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)

describe('HTTP-date', () => {
  test('formats IMF-fixdate', () => {
    assert.equal(formatHttpDate(T), 'Sun, 06 Nov 1994 08:49:37 GMT');
    assert.equal(formatHttpDate(0), 'Thu, 01 Jan 1970 00:00:00 GMT');
  });
  test('parses all three formats (RFC 9110 §5.6.7)', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), T);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', T), T);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), T);
    assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT '), T);
  });
  test('rfc850 two-digit years more than 50 years ahead are in the past century', () => {
    const now2026 = Date.UTC(2026, 0, 1) / 1000;
    assert.equal(parseHttpDate('Tuesday, 01-Jan-80 00:00:00 GMT', now2026), Date.UTC(1980, 0, 1) / 1000);
    assert.equal(parseHttpDate('Tuesday, 01-Jan-76 00:00:00 GMT', now2026), Date.UTC(2076, 0, 1) / 1000);
    assert.equal(parseHttpDate('Friday, 01-Jan-30 00:00:00 GMT', now2026), Date.UTC(2030, 0, 1) / 1000);
  });
  test('rejects invalid dates', () => {
    for (const bad of [
      '',
      'yesterday',
      'Sun, 06 Nov 1994 08:49:37 gmt',
      'sun, 06 Nov 1994 08:49:37 GMT',
      'Sun, 6 Nov 1994 08:49:37 GMT',
      'Sun, 06 Nov 1994 08:49:37',
      'Sun, 06 Nov 1994 24:00:00 GMT',
      'Sun, 06 Nov 1994 08:60:00 GMT',
      'Mon, 31 Feb 2020 00:00:00 GMT',
      'Sun, 06 Nov 1994 08:49:37 +0000',
      'Sun,  06 Nov 1994 08:49:37 GMT',
      '784111777',
    ]) {
      assert.equal(parseHttpDate(bad), undefined, bad);
    }
  });
});

describe('entity-tags', () => {
  test('lists: OWS, empty members, commas inside tags, W/', () => {
    assert.deepEqual(parseEntityTagList('"a", W/"b" ,, "c,d"'), {
      any: false,
      tags: [
        { weak: false, opaque: '"a"' },
        { weak: true, opaque: '"b"' },
        { weak: false, opaque: '"c,d"' },
      ],
    });
    assert.deepEqual(parseEntityTagList(' * '), { any: true });
  });
  test('invalid fields', () => {
    for (const bad of ['', ',', 'abc-1', '"a" "b"', '"a', '*, "a"', 'w/"a"', '"a"x', '"a b"']) {
      assert.equal(parseEntityTagList(bad), undefined, bad);
    }
    assert.equal(parseEntityTag('"a", "b"'), undefined);
    assert.deepEqual(parseEntityTag(' W/"x" '), { weak: true, opaque: '"x"' });
  });
  test('strong vs weak comparison (RFC 9110 §8.8.3.2 table)', () => {
    const w1 = { weak: true, opaque: '"1"' };
    const w2 = { weak: true, opaque: '"2"' };
    const s1 = { weak: false, opaque: '"1"' };
    assert.deepEqual([strongMatch(w1, w1), weakMatch(w1, w1)], [false, true]);
    assert.deepEqual([strongMatch(w1, w2), weakMatch(w1, w2)], [false, false]);
    assert.deepEqual([strongMatch(w1, s1), weakMatch(w1, s1)], [false, true]);
    assert.deepEqual([strongMatch(s1, s1), weakMatch(s1, s1)], [true, true]);
  });
});

describe('preconditions (RFC 9110 §13.2.2)', () => {
  const V: Validators = { etag: { weak: false, opaque: '"abc-d"' }, lastModified: T };
  const NOW = T + 3600;
  const before = formatHttpDate(T - 1);
  const at = formatHttpDate(T);
  const after = formatHttpDate(T + 1);
  const future = formatHttpDate(NOW + 60);
  const cases: Array<[string, Parameters<typeof evaluatePreconditions>[0], string]> = [
    ['none', {}, 'proceed'],
    ['If-Match exact', { ifMatch: '"abc-d"' }, 'proceed'],
    ['If-Match *', { ifMatch: '*' }, 'proceed'],
    ['If-Match list', { ifMatch: '"x", "abc-d"' }, 'proceed'],
    ['If-Match weak tag never matches (strong comparison)', { ifMatch: 'W/"abc-d"' }, 'failed'],
    ['If-Match other', { ifMatch: '"other"' }, 'failed'],
    ['If-Match unquoted (Mongrel2-style) is invalid', { ifMatch: 'abc-d' }, 'failed'],
    ['If-Match passes: If-Unmodified-Since not evaluated', { ifMatch: '"abc-d"', ifUnmodifiedSince: before }, 'proceed'],
    ['IUS before mtime', { ifUnmodifiedSince: before }, 'failed'],
    ['IUS equal', { ifUnmodifiedSince: at }, 'proceed'],
    ['IUS after (alone: 200, not Mongrel2 500)', { ifUnmodifiedSince: after }, 'proceed'],
    ['IUS invalid date ignored', { ifUnmodifiedSince: 'garbage' }, 'proceed'],
    ['If-None-Match exact', { ifNoneMatch: '"abc-d"' }, 'not-modified'],
    ['If-None-Match weak (weak comparison)', { ifNoneMatch: 'W/"abc-d"' }, 'not-modified'],
    ['If-None-Match *', { ifNoneMatch: '*' }, 'not-modified'],
    ['If-None-Match list', { ifNoneMatch: '"x", W/"abc-d"' }, 'not-modified'],
    ['If-None-Match other', { ifNoneMatch: '"x"' }, 'proceed'],
    ['If-None-Match invalid', { ifNoneMatch: 'abc-d' }, 'proceed'],
    ['INM no match: IMS not evaluated', { ifNoneMatch: '"x"', ifModifiedSince: after }, 'proceed'],
    ['INM match wins over an older IMS', { ifNoneMatch: '"abc-d"', ifModifiedSince: before }, 'not-modified'],
    ['IMS equal', { ifModifiedSince: at }, 'not-modified'],
    ['IMS later', { ifModifiedSince: after }, 'not-modified'],
    ['IMS earlier', { ifModifiedSince: before }, 'proceed'],
    ['IMS in the future ignored', { ifModifiedSince: future }, 'proceed'],
    ['IMS invalid ignored', { ifModifiedSince: 'Sun, 06 Nov 1994' }, 'proceed'],
    ['IMS rfc850', { ifModifiedSince: 'Sunday, 06-Nov-94 08:49:37 GMT' }, 'not-modified'],
    ['IMS asctime', { ifModifiedSince: 'Sun Nov  6 08:49:37 1994' }, 'not-modified'],
    ['If-Match fails before If-None-Match matches', { ifMatch: '"x"', ifNoneMatch: '"abc-d"' }, 'failed'],
    ['IUS fails before If-None-Match matches', { ifUnmodifiedSince: before, ifNoneMatch: '*' }, 'failed'],
    ['IUS passes, then IMS', { ifUnmodifiedSince: after, ifModifiedSince: at }, 'not-modified'],
    ['If-Match passes, then If-None-Match', { ifMatch: '*', ifNoneMatch: '"abc-d"' }, 'not-modified'],
  ];
  for (const [name, p, expected] of cases) {
    test(name, () => assert.equal(evaluatePreconditions(p, V, NOW), expected));
  }
  test('If-Range', () => {
    assert.equal(ifRangeAllows('"abc-d"', V, NOW), true);
    assert.equal(ifRangeAllows('W/"abc-d"', V, NOW), false);
    assert.equal(ifRangeAllows('"other"', V, NOW), false);
    assert.equal(ifRangeAllows(at, V, NOW), true);
    assert.equal(ifRangeAllows(after, V, NOW), false, 'a date must match exactly');
    assert.equal(ifRangeAllows(at, V, T), false, 'Last-Modified is weak within its own second');
    assert.equal(ifRangeAllows('junk', V, NOW), false);
  });
});

describe('Range (RFC 9110 §14.1.2)', () => {
  const cases: Array<[string, number, ReturnType<typeof evaluateRange>]> = [
    ['bytes=0-0', 10, { kind: 'range', start: 0, end: 0 }],
    ['bytes=0-9', 10, { kind: 'range', start: 0, end: 9 }],
    ['bytes=2-5', 10, { kind: 'range', start: 2, end: 5 }],
    ['bytes=9-', 10, { kind: 'range', start: 9, end: 9 }],
    ['bytes=3-', 10, { kind: 'range', start: 3, end: 9 }],
    ['bytes=5-100', 10, { kind: 'range', start: 5, end: 9 }],
    ['bytes=-1', 10, { kind: 'range', start: 9, end: 9 }],
    ['bytes=-3', 10, { kind: 'range', start: 7, end: 9 }],
    ['bytes=-100', 10, { kind: 'range', start: 0, end: 9 }],
    ['Bytes = 1-2 ,', 10, { kind: 'range', start: 1, end: 2 }],
    ['bytes=10-', 10, { kind: 'unsatisfiable' }],
    ['bytes=10-20', 10, { kind: 'unsatisfiable' }],
    ['bytes=99999999999999999999-', 10, { kind: 'unsatisfiable' }],
    ['bytes=-0', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=-5', 0, { kind: 'ignore' }],
    ['bytes=5-2', 10, { kind: 'ignore' }],
    ['bytes=0-1,3-4', 10, { kind: 'ignore' }],
    ['bytes=0-1, 20-', 10, { kind: 'ignore' }],
    ['items=0-1', 10, { kind: 'ignore' }],
    ['bytes=a-b', 10, { kind: 'ignore' }],
    ['bytes=', 10, { kind: 'ignore' }],
    ['bytes 0-1', 10, { kind: 'ignore' }],
    ['bytes=1 - 2', 10, { kind: 'ignore' }],
  ];
  for (const [value, size, expected] of cases) {
    test(`${JSON.stringify(value)} of ${size}`, () => assert.deepEqual(evaluateRange(value, size), expected));
  }
});

describe('target path', () => {
  test('percent-decoding: %XX only, + untouched, malformed and NUL refused', () => {
    const dec = (s: string): string | undefined => percentDecode(Buffer.from(s, 'latin1'))?.toString('utf8');
    assert.equal(dec('/a%20b+c'), '/a b+c');
    assert.equal(dec('/%E2%82%ACtonn%C3%A4nt%2520.tx%C3%BE'), '/€tonnänt%20.txþ');
    assert.equal(dec('/%2e%2E%2f'), '/../');
    assert.equal(dec('/a%zz'), undefined);
    assert.equal(dec('/a%2'), undefined);
    assert.equal(dec('/a%'), undefined);
    assert.equal(dec('/a%00b'), undefined);
  });
  test("target suffix like dir.c's Dir_resolve_file", () => {
    const s = (p: string, prefix: string): string | undefined => targetSuffix(p, prefix, 'index.html')?.toString();
    assert.equal(s('/static/a.txt', '/static/'), '/a.txt');
    assert.equal(s('/static/', '/static/'), '/index.html');
    assert.equal(s('/static/sub/', '/static/'), '/sub/index.html');
    assert.equal(s('/favicon.ico', '/favicon.ico'), '/favicon.ico');
    assert.equal(s('/', '/'), '/index.html');
  });
  test('containment: base itself or under base/, never a sibling', () => {
    const b = (s: string): Buffer => Buffer.from(s);
    assert.equal(isInside(b('/srv/static'), b('/srv/static')), true);
    assert.equal(isInside(b('/srv/static/a'), b('/srv/static')), true);
    assert.equal(isInside(b('/srv/static2/a'), b('/srv/static')), false);
    assert.equal(isInside(b('/srv'), b('/srv/static')), false);
    assert.equal(isInside(b('/etc/passwd'), b('/')), true);
  });
});

describe('MIME', () => {
  const m = (p: string): string => mimeTypeFor(p, MIMETYPES, 'default/type');
  test('longest registered suffix of the lower-cased path', () => {
    assert.equal(m('/srv/a.tar.gz'), 'application/x-tgz');
    assert.equal(m('/srv/a.gz'), 'application/x-gzip');
    assert.equal(m('/srv/A.TAR.GZ'), 'application/x-tgz');
    assert.equal(m('/srv/x.y.txt'), 'text/plain');
    assert.equal(m('/srv/.txt'), 'text/plain');
  });
  test('default for no or unknown extension', () => {
    assert.equal(m('/srv/README'), 'default/type');
    assert.equal(m('/srv/a.unknown'), 'default/type');
    assert.equal(m('/srv/a.txt.orig'), 'default/type');
    assert.equal(m('/srv.txt/README'), 'default/type');
  });
});
