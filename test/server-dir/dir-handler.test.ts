/** DirHandler.serve() over real temp directories: resolution, responses, conditionals, ranges, keep-alive. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { DirHandler } from '../../src/server/dir/index.js';
import { CONTENT_FILE_MAX } from '../../src/server/dir/cache.js';
import { formatHttpDate } from '../../src/server/dir/http-date.js';
import { MIMETYPES, dirTarget, fetchFrom, makeHandler, request, setMtime, tempDir, writeTree } from './helpers.js';
import type { TestContext } from 'node:test';

const MTIME = 1_600_000_000; // Sun, 13 Sep 2020 12:26:40 GMT
const ETAG = (size: number): string => `"${MTIME.toString(16)}-${size.toString(16)}"`;
const TEN = '0123456789';

/** cwd/static with a few files, all with mtime MTIME. */
async function site(t: TestContext): Promise<{ cwd: string; root: string }> {
  const cwd = await tempDir(t);
  const root = path.join(cwd, 'static');
  await writeTree(root, {
    'ten.txt': TEN,
    'index.html': '<p>index</p>',
    'sub/a.txt': 'in sub',
    'sub/index.html': 'sub index',
    'noindex/x.txt': 'x',
    'a.tar.gz': 'tgz',
    'README': 'no extension',
    'LOUD.TXT': 'upper',
    'a+b.txt': 'plus',
    'empty.txt': '',
  });
  for (const f of ['ten.txt', 'index.html', 'sub/a.txt', 'sub/index.html', 'empty.txt']) await setMtime(path.join(root, f), MTIME);
  await writeTree(cwd, { 'secret.txt': 'secret', 'static2/x.txt': 'sibling' });
  return { cwd, root };
}

describe('200 and HEAD', () => {
  test('GET: Mongrel2 header order plus Accept-Ranges, strong quoted ETag, IMF-fixdates, body', async (t) => {
    const { cwd } = await site(t);
    const now = (MTIME + 100) * 1000;
    const { res, head, body } = await fetchFrom(makeHandler(cwd, { now: () => now }), request('GET', '/static/ten.txt'));
    assert.equal(head.statusLine, 'HTTP/1.1 200 OK');
    assert.deepEqual(head.names(), ['Date', 'Content-Type', 'Content-Length', 'Last-Modified', 'ETag', 'Accept-Ranges', 'Server']);
    assert.equal(head.get('Date'), formatHttpDate(MTIME + 100));
    assert.equal(head.get('Content-Type'), 'text/plain');
    assert.equal(head.get('Content-Length'), '10');
    assert.equal(head.get('Last-Modified'), 'Sun, 13 Sep 2020 12:26:40 GMT');
    assert.equal(head.get('ETag'), ETAG(10));
    assert.equal(head.get('Accept-Ranges'), 'bytes');
    assert.equal(head.get('Server'), 'Mongrel2/1.13.0');
    assert.equal(body.toString(), TEN);
    assert.deepEqual([res.status, res.close, res.logStatus, res.bytes], [200, false, 200, 10]);
  });

  test('HEAD: the same head, no body, 0 bytes logged', async (t) => {
    const { cwd } = await site(t);
    const now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now });
    const get = await h.serve(request('GET', '/static/ten.txt'));
    get.body?.destroy();
    const head = await h.serve(request('HEAD', '/static/ten.txt'));
    assert.deepEqual(head.head, get.head);
    assert.equal(head.body, null);
    assert.deepEqual([head.status, head.bytes, head.close], [200, 0, false]);
  });

  test('Date is built per response even when the record is cached', async (t) => {
    const { cwd } = await site(t);
    let now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now, target: { cacheTtl: 3600 } });
    const a = await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    now += 5000;
    const b = await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    assert.equal(a.head.get('Date'), formatHttpDate(MTIME + 100));
    assert.equal(b.head.get('Date'), formatHttpDate(MTIME + 105));
  });

  test('an empty file: 200, Content-Length 0, no body stream', async (t) => {
    const { cwd } = await site(t);
    const { res, head } = await fetchFrom(makeHandler(cwd), request('GET', '/static/empty.txt'));
    assert.equal(head.get('Content-Length'), '0');
    assert.equal(res.body, null);
  });
});

describe('methods, prefixes, keep-alive', () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'get', 'TRACE']) {
    test(`${method} → 405 with Allow, connection closes`, async (t) => {
      const { cwd } = await site(t);
      const { res, head, body } = await fetchFrom(makeHandler(cwd), request(method, '/static/ten.txt'));
      assert.equal(head.statusLine, 'HTTP/1.1 405 Method Not Allowed');
      assert.deepEqual(head.names(), ['Content-Type', 'Connection', 'Content-Length', 'Allow', 'Server']);
      assert.equal(head.get('Allow'), 'GET, HEAD');
      assert.equal(body.toString(), 'Method Not Allowed');
      assert.deepEqual([res.close, res.logStatus, res.bytes], [true, 405, 0]);
    });
  }

  test('prefix longer than the path → 404 and close (dir_tests.c: "Should NOT find short paths")', async (t) => {
    const { cwd } = await site(t);
    const res = await makeHandler(cwd, { prefix: '/static/' }).serve(request('GET', '/stat'));
    assert.deepEqual([res.status, res.close], [404, true]);
  });

  test('a prefix without a leading / → 404', async (t) => {
    const { cwd } = await site(t);
    const res = await makeHandler(cwd, { prefix: 'static/' }).serve(request('GET', 'static/ten.txt'));
    assert.equal(res.status, 404);
  });

  test('a path equal to a file-like prefix serves base + path (a "/favicon.ico" route)', async (t) => {
    const { cwd } = await site(t);
    const { res, body } = await fetchFrom(makeHandler(cwd, { prefix: '/ten.txt' }), request('GET', '/ten.txt'));
    assert.equal(res.status, 200);
    assert.equal(body.toString(), TEN);
  });

  const keepAlive: Array<[string, string, Record<string, string>, boolean]> = [
    ['HTTP/1.1', 'no Connection header', {}, false],
    ['HTTP/1.1', 'Connection: close', { Connection: 'close' }, true],
    ['HTTP/1.1', 'Connection: keep-alive, Close', { Connection: 'keep-alive, Close' }, true],
    ['HTTP/1.0', 'no Connection header', {}, true],
    ['HTTP/1.0', 'Connection: keep-alive (Mongrel2 ignores it)', { Connection: 'keep-alive' }, true],
  ];
  for (const [version, what, headers, close] of keepAlive) {
    test(`${version} ${what} → close=${close}`, async (t) => {
      const { cwd } = await site(t);
      const res = await makeHandler(cwd).serve(request('HEAD', '/static/ten.txt', headers, version));
      assert.deepEqual([res.status, res.close], [200, close]);
    });
  }
});

describe('index files, directories, 301', () => {
  test('trailing / serves the index file with its own MIME type', async (t) => {
    const { cwd } = await site(t);
    const h = makeHandler(cwd);
    const top = await fetchFrom(h, request('GET', '/static/'));
    assert.equal(top.body.toString(), '<p>index</p>');
    assert.equal(top.head.get('Content-Type'), 'text/html');
    const sub = await fetchFrom(h, request('GET', '/static/sub/'));
    assert.equal(sub.body.toString(), 'sub index');
  });

  test('a directory without an index file → 404 (no listings)', async (t) => {
    const { cwd } = await site(t);
    const res = await makeHandler(cwd).serve(request('GET', '/static/noindex/'));
    assert.equal(res.status, 404);
  });

  test('an index_file that is a directory → 404, not a redirect loop', async (t) => {
    const { cwd, root } = await site(t);
    await fsp.mkdir(path.join(root, 'noindex', 'index.html'));
    const res = await makeHandler(cwd).serve(request('GET', '/static/noindex/'));
    assert.equal(res.status, 404);
  });

  test('directory without trailing / → 301 to a path-absolute Location with the query', async (t) => {
    const { cwd } = await site(t);
    const h = makeHandler(cwd);
    const { res, head, body } = await fetchFrom(h, request('GET', '/static/sub?x=1&y=%20', { Host: 'evil.example' }));
    assert.equal(head.statusLine, 'HTTP/1.1 301 Moved Permanently');
    assert.deepEqual(head.names(), ['Date', 'Location', 'Content-Length', 'Server']);
    assert.equal(head.get('Location'), '/static/sub/?x=1&y=%20');
    assert.equal(head.get('Content-Length'), '0');
    assert.equal(body.length, 0);
    assert.deepEqual([res.close, res.logStatus, res.bytes], [false, 301, 0]);
    const plain = await fetchFrom(h, request('GET', '/static/sub'));
    assert.equal(plain.head.get('Location'), '/static/sub/');
  });

  test('301 Location can never be scheme-relative (//host or /\\host)', async (t) => {
    const { cwd, root } = await site(t);
    await fsp.mkdir(path.join(root, 'evil.example'));
    await fsp.mkdir(path.join(root, '\\evil.example'));
    const h = makeHandler(cwd, { prefix: '/' });
    const slash = await fetchFrom(h, request('GET', '//evil.example'));
    assert.equal(slash.head.get('Location'), '/evil.example/');
    const backslash = await fetchFrom(h, request('GET', '/\\evil.example'));
    assert.equal(backslash.head.get('Location'), '/%5Cevil.example/');
  });

  test('the route prefix itself is served from the base: /static/ → index, /static/. → 301', async (t) => {
    const { cwd } = await site(t);
    const res = await makeHandler(cwd).serve(request('GET', '/static/.'));
    assert.equal(res.status, 301);
  });
});

describe('MIME', () => {
  const cases: Array<[string, string]> = [
    ['/static/a.tar.gz', 'application/x-tgz'],
    ['/static/LOUD.TXT', 'text/plain'],
    ['/static/README', 'application/x-default'],
  ];
  for (const [p, type] of cases) {
    test(`${p} → ${type}`, async (t) => {
      const { cwd } = await site(t);
      const h = makeHandler(cwd, { target: { defaultCtype: 'application/x-default' } });
      const { head } = await fetchFrom(h, request('HEAD', p));
      assert.equal(head.get('Content-Type'), type);
    });
  }
  test('the MIME type follows the symlink target name', async (t) => {
    const { cwd, root } = await site(t);
    await fsp.symlink('ten.txt', path.join(root, 'link.bin'));
    const { head } = await fetchFrom(makeHandler(cwd), request('HEAD', '/static/link.bin'));
    assert.equal(head.get('Content-Type'), 'text/plain');
  });
});

describe('path resolution and traversal', () => {
  const notFound = [
    ['dot-dot', '/static/../secret.txt'],
    ['encoded dot-dot', '/static/%2e%2e/secret.txt'],
    ['encoded dot-dot and slash', '/static/%2E%2E%2Fsecret.txt'],
    ['deep dot-dot', '/static/sub/../../secret.txt'],
    ['sibling static2 (dir.c serves this)', '/static/../static2/x.txt'],
    ['encoded sibling', '/static/..%2fstatic2%2fx.txt'],
    ['absolute-looking', '/static//etc/passwd'],
    ['NUL', '/static/ten.txt%00.html'],
    ['malformed escape', '/static/ten%zz.txt'],
    ['truncated escape', '/static/ten.txt%2'],
    ['%20 is a space, and a+b.txt is not a b.txt', '/static/a%20b.txt'],
    ['missing file', '/static/nope.txt'],
    ['parent of the base', '/static/..'],
  ];
  for (const [name, p] of notFound) {
    test(`${name}: ${p} → fixed 404`, async (t) => {
      const { cwd } = await site(t);
      const { res, head, body } = await fetchFrom(makeHandler(cwd), request('GET', p!));
      assert.equal(head.statusLine, 'HTTP/1.1 404 Not Found');
      assert.deepEqual(head.names(), ['Content-Type', 'Connection', 'Content-Length', 'Server']);
      assert.equal(body.toString(), 'Not Found');
      assert.deepEqual([res.close, res.logStatus, res.bytes], [true, 404, 0]);
    });
  }

  test('HEAD of a missing file: the 404 head without its body', async (t) => {
    const { cwd } = await site(t);
    const { head } = await fetchFrom(makeHandler(cwd), request('HEAD', '/static/nope.txt'));
    assert.equal(head.status, 404);
    assert.equal(head.get('Content-Length'), '9');
    assert.equal(head.inlineBody.length, 0);
  });

  const served: Array<[string, string, string]> = [
    ['+ stays +', '/static/a+b.txt', 'plus'],
    ['%2B is +', '/static/a%2Bb.txt', 'plus'],
    ['encoded slash is a separator', '/static/sub%2Fa.txt', 'in sub'],
    ['dot-dot that stays inside', '/static/sub/../ten.txt', TEN],
    ['encoded letters', '/static/%74en.txt', TEN],
  ];
  for (const [name, p, content] of served) {
    test(`${name}: ${p} → 200`, async (t) => {
      const { cwd } = await site(t);
      const { res, body } = await fetchFrom(makeHandler(cwd), request('GET', p));
      assert.equal(res.status, 200);
      assert.equal(body.toString(), content);
    });
  }

  test('symlinks: inside the base served, out of the base 404', async (t) => {
    const { cwd, root } = await site(t);
    await fsp.symlink(path.join(cwd, 'secret.txt'), path.join(root, 'out.txt'));
    await fsp.symlink(path.join(cwd, 'static2'), path.join(root, 'outdir'));
    await fsp.symlink('sub/a.txt', path.join(root, 'in.txt'));
    const h = makeHandler(cwd);
    assert.equal((await h.serve(request('GET', '/static/out.txt'))).status, 404);
    assert.equal((await h.serve(request('GET', '/static/outdir/x.txt'))).status, 404);
    const inside = await fetchFrom(h, request('GET', '/static/in.txt'));
    assert.equal(inside.body.toString(), 'in sub');
  });

  test('a symlinked base is resolved once and its contents served', async (t) => {
    const { cwd } = await site(t);
    await fsp.symlink('static', path.join(cwd, 'alias'));
    const { body } = await fetchFrom(makeHandler(cwd, { base: 'alias/' }), request('GET', '/static/ten.txt'));
    assert.equal(body.toString(), TEN);
  });

  test('a FIFO is not served (reading it could block forever)', async (t) => {
    const { cwd, root } = await site(t);
    execFileSync('mkfifo', [path.join(root, 'pipe.txt')]);
    assert.equal((await makeHandler(cwd).serve(request('GET', '/static/pipe.txt'))).status, 404);
  });

  test('a missing base 404s until it exists (resolved lazily, retried)', async (t) => {
    const cwd = await tempDir(t);
    const h = makeHandler(cwd, { base: 'later/' });
    assert.equal((await h.serve(request('GET', '/static/a.txt'))).status, 404);
    await writeTree(cwd, { 'later/a.txt': 'now here' });
    const { body } = await fetchFrom(h, request('GET', '/static/a.txt'));
    assert.equal(body.toString(), 'now here');
  });

  test('an absolute base ignores cwd', async (t) => {
    const { root } = await site(t);
    const { body } = await fetchFrom(makeHandler('/nonexistent', { base: root + '/' }), request('GET', '/static/ten.txt'));
    assert.equal(body.toString(), TEN);
  });
});

describe('dir_tests.c fixtures', () => {
  /** tests/ as in the Mongrel2 repo: base "tests/", index sample.html, default type "test/plain". */
  async function testsDir(t: TestContext): Promise<string> {
    const cwd = await tempDir(t);
    await writeTree(path.join(cwd, 'tests'), {
      'sample.json': '{"a": 1}\n',
      'sample.html': '<html>sample</html>\n',
      '€tonnänt%20.txþ': 'euro file',
      '€tonnänt%20/present.txt': 'present',
    });
    return cwd;
  }
  const handler = (cwd: string, base = 'tests/', prefix = '/'): DirHandler =>
    new DirHandler(dirTarget(base, { indexFile: 'sample.html', defaultCtype: 'test/plain' }), prefix, MIMETYPES, { cwd });

  test('Dir_resolve_file cases', async (t) => {
    const cwd = await testsDir(t);
    const h = handler(cwd);
    assert.equal((await h.serve(request('GET', '/sample.json'))).status, 200, 'file that should be there');
    assert.equal((await fetchFrom(h, request('GET', '/'))).body.toString(), '<html>sample</html>\n', 'default file');
    assert.equal((await h.serve(request('GET', '/../../../../../etc/passwd'))).status, 404, 'HACK! should not find this');
    assert.equal((await handler(cwd, 'tests/', '/tests/').serve(request('GET', '/test'))).status, 404, 'short path');
    const euro = await fetchFrom(h, request('GET', '/%E2%82%ACtonn%C3%A4nt%2520.tx%C3%BE'));
    assert.equal(euro.body.toString(), 'euro file', 'percent-encoded name');
    assert.equal(euro.head.get('Content-Type'), 'test/plain');
    const inside = await fetchFrom(h, request('GET', '/%E2%82%ACtonn%C3%A4nt%2520/present.txt'));
    assert.equal(inside.body.toString(), 'present', 'file inside a percent-encoded path');
    assert.equal((await handler(cwd, 'foobar/').serve(request('GET', '/sample.json'))).status, 404, 'bad base');
  });

  test('Dir_serve_file cases', async (t) => {
    const cwd = await testsDir(t);
    const h = handler(cwd);
    const get = await fetchFrom(h, request('GET', '/sample.json'));
    assert.equal(get.head.get('Content-Type'), 'application/json');
    assert.equal(get.body.toString(), '{"a": 1}\n');
    assert.equal((await h.serve(request('HEAD', '/sample.json'))).status, 200);
    assert.equal((await h.serve(request('POST', '/sample.json'))).status, 405);
    assert.equal((await handler(cwd, 'tests/', '/tests/').serve(request('GET', '/test'))).status, 404);
  });

  test('a name that is not UTF-8 is served byte for byte', async (t) => {
    const cwd = await testsDir(t);
    await fsp.writeFile(Buffer.concat([Buffer.from(path.join(cwd, 'tests') + '/'), Buffer.from([0xff, 0x41])]), 'latin');
    const { body } = await fetchFrom(handler(cwd), request('GET', '/%FFA'));
    assert.equal(body.toString(), 'latin');
  });
});

describe('conditional requests through serve()', () => {
  const NOW = (MTIME + 3600) * 1000;
  const before = formatHttpDate(MTIME - 1);
  const at = formatHttpDate(MTIME);
  const cases: Array<[string, string, Record<string, string>, number]> = [
    ['GET', 'no conditionals', {}, 200],
    ['GET', 'If-None-Match strong', { 'If-None-Match': ETAG(10) }, 304],
    ['HEAD', 'If-None-Match strong', { 'If-None-Match': ETAG(10) }, 304],
    ['GET', 'If-None-Match weak', { 'If-None-Match': `W/${ETAG(10)}` }, 304],
    ['GET', 'If-None-Match *', { 'If-None-Match': '*' }, 304],
    ['GET', 'If-None-Match Mongrel2 unquoted form', { 'If-None-Match': ETAG(10).replace(/"/g, '') }, 200],
    ['GET', 'If-None-Match other', { 'If-None-Match': '"nope"' }, 200],
    ['GET', 'If-Modified-Since = Last-Modified', { 'If-Modified-Since': at }, 304],
    ['GET', 'If-Modified-Since earlier', { 'If-Modified-Since': before }, 200],
    ['GET', 'If-Modified-Since bad date', { 'If-Modified-Since': 'not a date' }, 200],
    ['GET', 'If-Match matching', { 'If-Match': ETAG(10) }, 200],
    ['GET', 'If-Match *', { 'If-Match': '*' }, 200],
    ['GET', 'If-Match other', { 'If-Match': '"nope"' }, 412],
    ['HEAD', 'If-Match weak', { 'If-Match': `W/${ETAG(10)}` }, 412],
    ['GET', 'If-Unmodified-Since earlier', { 'If-Unmodified-Since': before }, 412],
    ['GET', 'If-Unmodified-Since alone, passing (Mongrel2: 500)', { 'If-Unmodified-Since': at }, 200],
    ['GET', 'If-Unmodified-Since bad date', { 'If-Unmodified-Since': 'Mon, 99 Foo 2020' }, 200],
    ['GET', 'If-Match fails before If-None-Match', { 'If-Match': '"nope"', 'If-None-Match': '*' }, 412],
  ];
  for (const [method, name, headers, status] of cases) {
    test(`${method} ${name} → ${status}`, async (t) => {
      const { cwd } = await site(t);
      const { res, head, body } = await fetchFrom(makeHandler(cwd, { now: () => NOW }), request(method, '/static/ten.txt', headers));
      assert.equal(res.status, status);
      assert.equal(head.status, status);
      if (status === 304) {
        assert.deepEqual(head.names(), ['Date', 'Last-Modified', 'ETag', 'Server']);
        assert.equal(head.get('ETag'), ETAG(10));
        assert.equal(head.get('Last-Modified'), at);
        assert.equal(head.get('Date'), formatHttpDate(MTIME + 3600));
        assert.deepEqual([body.length, res.close, res.bytes], [0, false, 0]);
      } else if (status === 412) {
        assert.equal(head.statusLine, 'HTTP/1.1 412 Precondition Failed');
        assert.equal(res.close, true);
      } else {
        assert.equal(body.toString(), method === 'HEAD' ? '' : TEN);
      }
    });
  }

  test('preconditions are ignored when the answer would be 404 or 301', async (t) => {
    const { cwd } = await site(t);
    const h = makeHandler(cwd);
    assert.equal((await h.serve(request('GET', '/static/nope.txt', { 'If-Match': '"x"' }))).status, 404);
    assert.equal((await h.serve(request('GET', '/static/sub', { 'If-None-Match': '*' }))).status, 301);
  });
});

describe('byte ranges through serve()', () => {
  const NOW = (MTIME + 3600) * 1000;
  const cases: Array<[string, Record<string, string>, number, string | undefined, string]> = [
    ['first byte', { Range: 'bytes=0-0' }, 206, 'bytes 0-0/10', '0'],
    ['last byte', { Range: 'bytes=-1' }, 206, 'bytes 9-9/10', '9'],
    ['suffix', { Range: 'bytes=-4' }, 206, 'bytes 6-9/10', '6789'],
    ['open-ended', { Range: 'bytes=7-' }, 206, 'bytes 7-9/10', '789'],
    ['middle, end clamped', { Range: 'bytes=2-99' }, 206, 'bytes 2-9/10', '23456789'],
    ['multi-range ignored', { Range: 'bytes=0-1,4-5' }, 200, undefined, TEN],
    ['invalid ignored', { Range: 'bytes=5-1' }, 200, undefined, TEN],
    ['If-Range matching ETag', { Range: 'bytes=1-2', 'If-Range': ETAG(10) }, 206, 'bytes 1-2/10', '12'],
    ['If-Range other ETag → whole file', { Range: 'bytes=1-2', 'If-Range': '"old"' }, 200, undefined, TEN],
    ['If-Range weak ETag → whole file', { Range: 'bytes=1-2', 'If-Range': `W/${ETAG(10)}` }, 200, undefined, TEN],
    ['If-Range = Last-Modified', { Range: 'bytes=1-2', 'If-Range': formatHttpDate(MTIME) }, 206, 'bytes 1-2/10', '12'],
    ['If-Range other date → whole file', { Range: 'bytes=1-2', 'If-Range': formatHttpDate(MTIME + 1) }, 200, undefined, TEN],
    ['If-Range without Range', { 'If-Range': '"old"' }, 200, undefined, TEN],
  ];
  for (const [name, headers, status, contentRange, content] of cases) {
    test(`${name} → ${status}`, async (t) => {
      const { cwd } = await site(t);
      const { res, head, body } = await fetchFrom(makeHandler(cwd, { now: () => NOW }), request('GET', '/static/ten.txt', headers));
      assert.equal(res.status, status);
      assert.equal(head.get('Content-Range'), contentRange);
      assert.equal(body.toString(), content);
      assert.equal(head.get('Content-Length'), String(content.length));
      assert.equal(res.bytes, content.length);
      if (status === 206) {
        assert.equal(head.statusLine, 'HTTP/1.1 206 Partial Content');
        assert.deepEqual(head.names(), ['Date', 'Content-Type', 'Content-Length', 'Content-Range', 'Last-Modified', 'ETag', 'Accept-Ranges', 'Server']);
      }
    });
  }

  test('unsatisfiable → 416 with Content-Range: bytes */len, connection kept', async (t) => {
    const { cwd } = await site(t);
    const { res, head, body } = await fetchFrom(makeHandler(cwd), request('GET', '/static/ten.txt', { Range: 'bytes=10-' }));
    assert.equal(head.statusLine, 'HTTP/1.1 416 Range Not Satisfiable');
    assert.equal(head.get('Content-Range'), 'bytes */10');
    assert.equal(head.get('Content-Length'), '0');
    assert.deepEqual([body.length, res.close, res.logStatus], [0, false, 416]);
  });

  test('HEAD ignores Range (ranges are defined for GET only)', async (t) => {
    const { cwd } = await site(t);
    const { res, head } = await fetchFrom(makeHandler(cwd), request('HEAD', '/static/ten.txt', { Range: 'bytes=0-1' }));
    assert.equal(res.status, 200);
    assert.equal(head.get('Content-Length'), '10');
  });

  test('a failed precondition beats the range: If-None-Match match + Range → 304', async (t) => {
    const { cwd } = await site(t);
    const res = await makeHandler(cwd).serve(request('GET', '/static/ten.txt', { Range: 'bytes=0-1', 'If-None-Match': '*' }));
    assert.equal(res.status, 304);
  });
});

describe('stat cache', () => {
  test('within cache_ttl the cached record answers; after it the file is re-stat\'ed', async (t) => {
    const { cwd, root } = await site(t);
    let now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now, target: { cacheTtl: 60 } });
    const first = await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    await fsp.writeFile(path.join(root, 'ten.txt'), 'now twenty bytes....');
    now += 30_000;
    const cached = await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    assert.equal(cached.head.get('Content-Length'), first.head.get('Content-Length'));
    now += 31_000;
    const fresh = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(fresh.head.get('Content-Length'), '20');
    assert.equal(fresh.body.toString(), 'now twenty bytes....');
  });

  test('cache_ttl 0: a path is re-stat\'ed once a whole second has passed (dir.c\'s time(NULL) granularity)', async (t) => {
    const { cwd, root } = await site(t);
    let now = (MTIME + 100) * 1000 + 100;
    const h = makeHandler(cwd, { now: () => now });
    await fetchFrom(h, request('GET', '/static/ten.txt'));
    await fsp.rm(path.join(root, 'ten.txt'));
    now += 800; // same second: the record answers
    assert.equal((await h.serve(request('HEAD', '/static/ten.txt'))).status, 200);
    now += 200; // the next second
    assert.equal((await h.serve(request('GET', '/static/ten.txt'))).status, 404);
  });

  test('a file is served from memory once read whole, for ranges too', async (t) => {
    const { cwd } = await site(t);
    const h = makeHandler(cwd, { now: () => (MTIME + 100) * 1000 });
    const first = await h.serve(request('GET', '/static/ten.txt'));
    assert.ok(first.body !== null, 'the first answer streams the file');
    assert.equal((await fetchFrom(h, request('GET', '/static/ten.txt'))).body.toString(), TEN);
    const second = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(second.res.body, null);
    assert.equal(second.res.content?.toString(), TEN);
    assert.equal(second.res.bytes, 10);
    assert.equal(second.head.get('Content-Length'), '10');
    assert.equal(second.body.toString(), TEN);
    const range = await fetchFrom(h, request('GET', '/static/ten.txt', { Range: 'bytes=2-4' }));
    assert.equal(range.res.status, 206);
    assert.equal(range.res.body, null);
    assert.equal(range.res.content?.toString(), '234');
    assert.equal(range.res.bytes, 3);
    assert.equal(range.body.toString(), '234');
    const head = await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    assert.equal(head.res.bytes, 0);
    assert.equal(head.res.content, undefined);
    assert.equal(head.body.length, 0);
  });

  test('a 1 MiB file is read in one chunk and then served from memory', async (t) => {
    const { cwd, root } = await site(t);
    const bytes = Buffer.alloc(CONTENT_FILE_MAX, 0x62);
    bytes.write('start');
    await fsp.writeFile(path.join(root, 'mib.bin'), bytes);
    const h = makeHandler(cwd, { now: () => (MTIME + 100) * 1000 });
    const first = await fetchFrom(h, request('GET', '/static/mib.bin'));
    assert.ok(first.res.body !== null);
    assert.ok(first.body.equals(bytes));
    const second = await fetchFrom(h, request('GET', '/static/mib.bin'));
    assert.equal(second.res.body, null);
    assert.ok(second.body.equals(bytes));
  });

  test('the in-memory Date still changes every second', async (t) => {
    const { cwd } = await site(t);
    let now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now, target: { cacheTtl: 3600 } });
    await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal((await fetchFrom(h, request('GET', '/static/ten.txt'))).head.get('Date'), formatHttpDate(MTIME + 100));
    now += 1000;
    const later = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(later.res.body, null);
    assert.equal(later.head.get('Date'), formatHttpDate(MTIME + 101));
  });

  test('a file above CONTENT_FILE_MAX is always streamed', async (t) => {
    const { cwd, root } = await site(t);
    await fsp.writeFile(path.join(root, 'big.bin'), Buffer.alloc(CONTENT_FILE_MAX + 1, 0x61));
    const h = makeHandler(cwd, { now: () => (MTIME + 100) * 1000 });
    for (let i = 0; i < 2; i++) {
      const { res, body } = await fetchFrom(h, request('GET', '/static/big.bin'));
      assert.ok(res.body !== null);
      assert.equal(body.length, CONTENT_FILE_MAX + 1);
    }
  });

  test('a file changed after it was cached in memory: the next second serves the new bytes', async (t) => {
    const { cwd, root } = await site(t);
    let now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now });
    await fetchFrom(h, request('GET', '/static/ten.txt'));
    await fetchFrom(h, request('GET', '/static/ten.txt'));
    await fsp.writeFile(path.join(root, 'ten.txt'), 'eleven.....');
    // Within the second the cached version answers whole and consistent: its head and its bytes.
    const old = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(old.head.get('Content-Length'), '10');
    assert.equal(old.body.toString(), TEN);
    now += 1000;
    const fresh = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(fresh.head.get('Content-Length'), '11');
    assert.equal(fresh.body.toString(), 'eleven.....');
  });

  test('a cached record whose file changed is not streamed with a stale body', async (t) => {
    const { cwd, root } = await site(t);
    const now = (MTIME + 100) * 1000;
    const h = makeHandler(cwd, { now: () => now, target: { cacheTtl: 60 } });
    // HEAD: the record is cached, the file's bytes are not.
    await fetchFrom(h, request('HEAD', '/static/ten.txt'));
    await fsp.writeFile(path.join(root, 'ten.txt'), 'changed!!!');
    const res = await h.serve(request('GET', '/static/ten.txt'));
    assert.equal(res.status, 200);
    await assert.rejects(fetchFrom(h, request('GET', '/static/ten.txt')), /changed between stat and read/);
    // The failed body dropped the stale record: the retry sees the new file at once.
    const retry = await fetchFrom(h, request('GET', '/static/ten.txt'));
    assert.equal(retry.body.toString(), 'changed!!!');
    assert.notEqual(retry.head.get('Last-Modified'), formatHttpDate(MTIME));
  });
});

describe('configuration errors', () => {
  const bad: Array<[string, Partial<Parameters<typeof dirTarget>[1]> & { base?: string }, RegExp]> = [
    ['base without trailing /', { base: 'static' }, /: Dir \d+: base "static" must end in '\/'$/],
    ['negative cache_ttl', { cacheTtl: -1 }, /: Dir \d+: cache_ttl -1 must be >= 0$/],
    ['default_ctype with CRLF', { defaultCtype: 'text/plain\r\nX-Evil: 1' }, /default_ctype .* is not a valid header value/],
  ];
  for (const [name, extra, re] of bad) {
    test(name, () => {
      const { base = 'static/', ...rest } = extra;
      assert.throws(() => new DirHandler(dirTarget(base, rest), '/static/', MIMETYPES), re);
    });
  }
  test('a mimetype value with a newline', () => {
    assert.throws(
      () => new DirHandler(dirTarget('static/'), '/static/', new Map([['.x', 'a\nb']])),
      /mimetypes\[".x"\]: "a\\nb" is not a valid header value/,
    );
  });
});
