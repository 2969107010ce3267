/**
 * CGI params and PATH_INFO splitting against nginx's fastcgi_params +
 * fastcgi.conf (bridge-anchors.md §3.1–3.3). Requests are built with
 * encodeRequest + parseMessage, or read from the captured Mongrel2 fixtures,
 * so they carry exactly the header shapes a real server sends.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { buildCgiParams, CgiParamsError, splitScriptPath, type CgiLocation, type SplitResult } from '../../src/bridge/cgi-params.js';
import { encodeRequest, parseMessage, type HeaderProtocol, type HeaderValue, type HttpRequest } from '../../src/protocol/index.js';
import { WIRE_FIXTURE_DIR } from '../support/fixtures.js';

// ---------------------------------------------------------------------------
// helpers

interface RequestSpec {
  method?: string;
  path?: string;
  query?: string;
  version?: string;
  scheme?: string;
  remoteAddr?: string | null;
  headers?: ReadonlyArray<readonly [string, HeaderValue]>;
  body?: string;
  protocol?: HeaderProtocol;
}

/** A request as Mongrel2 would send it: client headers lower-case, then its own upper-case keys. */
function request(spec: RequestSpec = {}): HttpRequest {
  const p = spec.path ?? '/index.php';
  const server: Array<[string, string]> = [
    ['PATH', p],
    ['METHOD', spec.method ?? 'GET'],
    ['VERSION', spec.version ?? 'HTTP/1.1'],
    ['URI', spec.query === undefined ? p : `${p}?${spec.query}`],
  ];
  if (spec.query !== undefined) server.push(['QUERY', spec.query]);
  server.push(['PATTERN', '/'], ['URL_SCHEME', spec.scheme ?? 'http']);
  if (spec.remoteAddr !== null) server.push(['REMOTE_ADDR', spec.remoteAddr ?? '127.0.0.1']);
  const msg = parseMessage(
    encodeRequest({
      sender: 'S',
      connId: 7,
      path: p,
      headers: [['x-forwarded-for', '127.0.0.1'], ...(spec.headers ?? [['host', 'localhost:6767']]), ...server],
      body: spec.body ?? '',
      protocol: spec.protocol ?? 'json',
    }),
  );
  assert.equal(msg.kind, 'http');
  return msg as HttpRequest;
}

function fixture(name: string): HttpRequest {
  const msg = parseMessage(readFileSync(path.join(WIRE_FIXTURE_DIR, `${name}.bin`)));
  assert.equal(msg.kind, 'http');
  return msg as HttpRequest;
}

const ROOT = '/srv/www';
function loc(scriptName = '/index.php', pathInfo = ''): CgiLocation {
  return { scriptName, pathInfo, scriptFilename: ROOT + scriptName, documentRoot: ROOT };
}

const asMap = (params: Array<[string, string]>): Map<string, string> => new Map(params);
const httpNames = (params: Array<[string, string]>): string[] => params.map(([k]) => k).filter((k) => k.startsWith('HTTP_'));

function candidates(raw: string, extension?: string): Array<[string, string]> {
  const r = splitScriptPath(raw, extension === undefined ? { index: 'index.php' } : { index: 'index.php', extension });
  assert.ok(r.ok, `expected ${raw} to split, got ${JSON.stringify(r)}`);
  return r.candidates.map((c) => [c.scriptName, c.pathInfo]);
}

function rejected(raw: string, status: 400 | 404): string {
  const r: SplitResult = splitScriptPath(raw, { index: 'index.php' });
  assert.ok(!r.ok, `expected ${JSON.stringify(raw)} to be refused, got ${JSON.stringify(r)}`);
  assert.equal(r.status, status, `${JSON.stringify(raw)}: ${r.reason}`);
  assert.ok(r.reason.length > 0);
  return r.reason;
}

function assertParamsError(fn: () => unknown, status: 400 | 500, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CgiParamsError, `expected CgiParamsError, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.match(err.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------
// splitScriptPath

describe('splitScriptPath: candidates', () => {
  test('/index.php/foo/bar → /index.php + /foo/bar', () => {
    assert.deepStrictEqual(candidates('/index.php/foo/bar'), [['/index.php', '/foo/bar']]);
  });

  test('a script without path info has PATH_INFO ""', () => {
    assert.deepStrictEqual(candidates('/dir/x.php'), [['/dir/x.php', '']]);
  });

  test('/a.PHP/x: the extension matches ASCII case-insensitively, the name keeps its case', () => {
    assert.deepStrictEqual(candidates('/a.PHP/x'), [['/a.PHP', '/x']]);
    assert.deepStrictEqual(candidates('/a.pHp'), [['/a.pHp', '']]);
  });

  test('/dir/ and / get the index appended', () => {
    assert.deepStrictEqual(candidates('/dir/'), [['/dir/index.php', '']]);
    assert.deepStrictEqual(candidates('/'), [['/index.php', '']]);
    assert.deepStrictEqual(candidates('/a/.'), [['/a/index.php', '']]);
    assert.deepStrictEqual(candidates('/a/b/..'), [['/a/index.php', '']]);
  });

  test('/index.php/foo/ keeps PATH_INFO /foo/ first, the index split second', () => {
    assert.deepStrictEqual(candidates('/index.php/foo/'), [
      ['/index.php', '/foo/'],
      ['/index.php/foo/index.php', ''],
    ]);
  });

  test('a directory named x.php: /x.php/ tries the file x.php, then x.php/index.php', () => {
    assert.deepStrictEqual(candidates('/x.php/'), [
      ['/x.php', '/'],
      ['/x.php/index.php', ''],
    ]);
  });

  test('double .php segments give two candidates, first occurrence first (nginx ^(.+?\\.php)(/.*)$)', () => {
    assert.deepStrictEqual(candidates('/a.php/b.php/c'), [
      ['/a.php', '/b.php/c'],
      ['/a.php/b.php', '/c'],
    ]);
    assert.deepStrictEqual(candidates('/a.php/b.php'), [
      ['/a.php', '/b.php'],
      ['/a.php/b.php', ''],
    ]);
  });

  test('/x.jpg/y.php: the only candidate is the whole path, so x.jpg is never a script (cgi.fix_pathinfo)', () => {
    assert.deepStrictEqual(candidates('/x.jpg/y.php'), [['/x.jpg/y.php', '']]);
    assert.deepStrictEqual(candidates('/uploads/x.jpg/y.php'), [['/uploads/x.jpg/y.php', '']]);
  });

  test('.php must end a segment: /a.phpx/b and /a.php5 have no script', () => {
    rejected('/a.phpx/b', 404);
    rejected('/a.php5', 404);
    assert.deepStrictEqual(candidates('/a.phpx/b.php'), [['/a.phpx/b.php', '']]);
  });

  test('no .php anywhere → 404, like nginx try_files', () => {
    assert.match(rejected('/static/logo.png', 404), /\.php/);
    rejected('/a.jpg/b', 404);
  });

  test('a custom extension and index', () => {
    const r = splitScriptPath('/app/', { index: 'main.phtml', extension: '.phtml' });
    assert.deepStrictEqual(r, { ok: true, candidates: [{ scriptName: '/app/main.phtml', pathInfo: '' }] });
    assert.deepStrictEqual(candidates('/x.PHTML/y', '.phtml'), [['/x.PHTML', '/y']]);
  });

  test('an index without the extension gives no candidate for a directory', () => {
    const r = splitScriptPath('/dir/', { index: 'index.html' });
    assert.deepStrictEqual(r.ok, false);
  });
});

describe('splitScriptPath: decoding and normalising', () => {
  test('percent-escapes are decoded once; %2e/%2E/%2f count as . and /', () => {
    assert.deepStrictEqual(candidates('/a%2Ephp'), [['/a.php', '']]);
    assert.deepStrictEqual(candidates('/a%2fb.php'), [['/a/b.php', '']]);
    assert.deepStrictEqual(candidates('/a%252e.php'), [['/a%2e.php', '']]);
    assert.deepStrictEqual(candidates('/my%20app/index.php/x%20y'), [['/my app/index.php', '/x y']]);
  });

  test('/b/../a.php → /a.php; ./ and // collapse', () => {
    assert.deepStrictEqual(candidates('/b/../a.php'), [['/a.php', '']]);
    assert.deepStrictEqual(candidates('/./a.php'), [['/a.php', '']]);
    assert.deepStrictEqual(candidates('//a//b.php//c'), [['/a/b.php', '/c']]);
    assert.deepStrictEqual(candidates('/a/b/%2e%2e/c.php'), [['/a/c.php', '']]);
    assert.deepStrictEqual(candidates('/index.php/a/../b'), [['/index.php', '/b']]);
  });

  test('/../a.php and /%2e%2e/etc/passwd climb above / → 400', () => {
    assert.match(rejected('/../a.php', 400), /above/);
    rejected('/%2e%2e/etc/passwd', 400);
    rejected('/%2E%2E%2Fetc/passwd.php', 400);
    rejected('/a/../../b.php', 400);
    rejected('/..', 400);
  });

  test('NUL, LF, CR after decoding → 400 (CVE-2019-11043)', () => {
    assert.match(rejected('/a%00.php', 400), /NUL/);
    rejected('/a%0a.php', 400);
    rejected('/a%0A.php', 400);
    rejected('/a%0d.php', 400);
    rejected('/index.php/%0a', 400);
  });

  test('invalid percent-escapes → 400', () => {
    for (const raw of ['/a%zz.php', '/a%.php', '/a%4', '/a%', '/%g0.php', '/a%-1.php']) assert.match(rejected(raw, 400), /percent/, raw);
  });

  test('non-UTF-8 after decoding → 400; valid UTF-8 is kept', () => {
    rejected('/a%ff.php', 400);
    rejected('/a%c3.php', 400);
    rejected('/a%c0%af.php', 400); // overlong "/"
    rejected('/a%ed%a0%80.php', 400); // a surrogate
    rejected('/a\ufffd.php', 400); // bytes the message parser already replaced
    assert.deepStrictEqual(candidates('/caf%C3%A9.php'), [['/café.php', '']]);
    assert.deepStrictEqual(candidates('/café.php/ü'), [['/café.php', '/ü']]);
  });

  test('a path that does not start with / → 400', () => {
    rejected('index.php', 400);
    rejected('', 400);
    rejected('@chat', 400);
  });

  test('Unicode case folding never makes an extension match (Caddy GHSA-3g8v-8r37-cgjm)', () => {
    // U+212A KELVIN SIGN lower-cases to ASCII "k": a toLowerCase() search would match it.
    assert.ok('/a.\u212Ait'.toLowerCase().endsWith('.kit'));
    const r = splitScriptPath('/a.\u212Ait', { index: 'index.kit', extension: '.kit' });
    assert.equal(r.ok, false);
    assert.deepStrictEqual(candidates('/a.KIT', '.kit'), [['/a.KIT', '']]);
    // U+0130 (İ) lower-cases to two chars and would shift indexes.
    assert.deepStrictEqual(candidates('/\u0130\u0130/a.php/b'), [['/\u0130\u0130/a.php', '/b']]);
  });

  test('bad options are programming errors (TypeError)', () => {
    assert.throws(() => splitScriptPath('/a.php', { index: 'a/b.php' }), TypeError);
    assert.throws(() => splitScriptPath('/a.php', { index: '' }), TypeError);
    assert.throws(() => splitScriptPath('/a.php', { index: '..' }), TypeError);
    assert.throws(() => splitScriptPath('/a.php', { index: 'i.php', extension: '.ph\u212A' }), TypeError);
    assert.throws(() => splitScriptPath('/a.php', { index: 'i.php', extension: '' }), TypeError);
    assert.throws(() => splitScriptPath('/a.php', { index: 'i.php', extension: '/.php' }), TypeError);
  });

  test('property: every candidate is a clean absolute path ending in the extension', () => {
    const alphabet = fc.constantFrom('/', '.', 'a', 'p', 'h', 'P', 'H', '%', '2', 'e', 'E', 'f', 'F', '0', 'x', 'é', '\u212A');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 24 }), (chars) => {
        const raw = '/' + chars.join('');
        const r = splitScriptPath(raw, { index: 'index.php' });
        if (!r.ok) {
          assert.ok(r.status === 400 || r.status === 404);
          return;
        }
        assert.ok(r.candidates.length > 0);
        const names = new Set<string>();
        for (const { scriptName, pathInfo } of r.candidates) {
          assert.ok(scriptName.startsWith('/'), scriptName);
          assert.ok(/\.php$/i.test(scriptName), scriptName);
          assert.ok(pathInfo === '' || pathInfo.startsWith('/'), pathInfo);
          const full = scriptName + pathInfo;
          assert.ok(!full.includes('//'), full);
          assert.ok(!/(^|\/)\.\.?(\/|$)/.test(full), full);
          assert.ok(!/[\0\r\n]/.test(full));
          assert.ok(!names.has(scriptName), `duplicate ${scriptName}`);
          names.add(scriptName);
        }
        // First occurrence first; the index candidates (whole path, no path info) may follow.
        for (let i = 1; i < r.candidates.length; i++) {
          const a = r.candidates[i - 1]!;
          const b = r.candidates[i]!;
          assert.ok(b.scriptName.length > a.scriptName.length || (b.pathInfo === '' && b.scriptName.endsWith('/index.php')), JSON.stringify(r.candidates));
        }
      }),
      { numRuns: 2000, seed: 20240611 },
    );
  });
});

// ---------------------------------------------------------------------------
// buildCgiParams

describe('buildCgiParams: nginx parity for whole requests', () => {
  test('GET with a query (captured get-query fixture), exact params in nginx order', () => {
    const req = fixture('get-query');
    const params = buildCgiParams(req, { scriptName: '/handlertest/some/path.php', pathInfo: '', scriptFilename: '/srv/www/handlertest/some/path.php', documentRoot: '/srv/www' });
    assert.deepStrictEqual(params, [
      ['SCRIPT_FILENAME', '/srv/www/handlertest/some/path.php'],
      ['QUERY_STRING', 'a=1&b=two%20words&c='],
      ['REQUEST_METHOD', 'GET'],
      ['CONTENT_TYPE', ''],
      ['CONTENT_LENGTH', ''],
      ['SCRIPT_NAME', '/handlertest/some/path.php'],
      ['REQUEST_URI', '/handlertest/some/path?a=1&b=two%20words&c='],
      ['DOCUMENT_URI', '/handlertest/some/path.php'],
      ['DOCUMENT_ROOT', '/srv/www'],
      ['SERVER_PROTOCOL', 'HTTP/1.1'],
      ['REQUEST_SCHEME', 'http'],
      ['GATEWAY_INTERFACE', 'CGI/1.1'],
      ['SERVER_SOFTWARE', 'm2bridge'],
      ['REMOTE_ADDR', '127.0.0.1'],
      ['REMOTE_PORT', ''],
      ['REMOTE_USER', ''],
      ['SERVER_ADDR', ''],
      ['SERVER_PORT', '6767'],
      ['SERVER_NAME', 'localhost'],
      ['REDIRECT_STATUS', '200'],
      ['PATH_INFO', ''],
      ['HTTP_X_FORWARDED_FOR', '127.0.0.1'],
      ['HTTP_ACCEPT', '*/*'],
      ['HTTP_USER_AGENT', 'm2capture/1'],
      ['HTTP_HOST', 'localhost:6767'],
    ]);
  });

  test('POST with a body (captured post-form fixture): CONTENT_TYPE and CONTENT_LENGTH, and as HTTP_* like nginx', () => {
    const p = asMap(buildCgiParams(fixture('post-form'), loc('/handlertest/form.php')));
    assert.equal(p.get('REQUEST_METHOD'), 'POST');
    assert.equal(p.get('CONTENT_TYPE'), 'application/x-www-form-urlencoded');
    assert.equal(p.get('CONTENT_LENGTH'), '34');
    assert.equal(p.get('QUERY_STRING'), '');
    assert.equal(p.get('HTTP_CONTENT_TYPE'), 'application/x-www-form-urlencoded');
    assert.equal(p.get('HTTP_CONTENT_LENGTH'), '34');
  });

  test('duplicate headers (captured dup-headers fixture): ", " joins, cookie "; " joins', () => {
    const p = asMap(buildCgiParams(fixture('dup-headers'), loc()));
    assert.equal(p.get('HTTP_X_FOO'), 'first, second, third');
    assert.equal(p.get('HTTP_COOKIE'), 'a=1; b=2');
    assert.equal(p.get('HTTP_X_MIXED_CASE'), 'Value');
  });

  test('the same request in tnetstring form gives the same params', () => {
    const spec: RequestSpec = { query: 'q=1', headers: [['host', 'example.com'], ['accept', ['a/b', 'c/d']], ['cookie', ['x=1', 'y=2']]] };
    assert.deepStrictEqual(
      asMap(buildCgiParams(request({ ...spec, protocol: 'tnetstring' }), loc())),
      asMap(buildCgiParams(request(spec), loc())),
    );
  });

  test('HTTPS: REQUEST_SCHEME https, HTTPS=on, SERVER_PORT 443 by default', () => {
    const p = asMap(buildCgiParams(request({ scheme: 'https', headers: [['host', 'secure.example']] }), loc()));
    assert.equal(p.get('REQUEST_SCHEME'), 'https');
    assert.equal(p.get('HTTPS'), 'on');
    assert.equal(p.get('SERVER_PORT'), '443');
    assert.equal(p.get('SERVER_NAME'), 'secure.example');
  });

  test('plain http: no HTTPS param at all (nginx "HTTPS $https if_not_empty"), SERVER_PORT 80', () => {
    const p = asMap(buildCgiParams(request({ headers: [['host', 'example.com']] }), loc()));
    assert.equal(p.has('HTTPS'), false);
    assert.equal(p.get('REQUEST_SCHEME'), 'http');
    assert.equal(p.get('SERVER_PORT'), '80');
  });

  test('a missing URL_SCHEME means http', () => {
    const msg = parseMessage(encodeRequest({ sender: 'S', connId: 1, path: '/a.php', headers: [['PATH', '/a.php'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.0'], ['URI', '/a.php']] }));
    const p = asMap(buildCgiParams(msg as HttpRequest, loc('/a.php')));
    assert.equal(p.get('REQUEST_SCHEME'), 'http');
    assert.equal(p.get('SERVER_PROTOCOL'), 'HTTP/1.0');
    assert.equal(p.get('REMOTE_ADDR'), '');
    assert.equal(p.get('SERVER_NAME'), '');
    assert.equal(p.get('SERVER_PORT'), '80');
  });
});

describe('buildCgiParams: each param', () => {
  test('SCRIPT_FILENAME, SCRIPT_NAME, DOCUMENT_ROOT come from the location', () => {
    const p = asMap(buildCgiParams(request(), { scriptName: '/app/i.php', pathInfo: '', scriptFilename: '/var/www/app/i.php', documentRoot: '/var/www' }));
    assert.equal(p.get('SCRIPT_FILENAME'), '/var/www/app/i.php');
    assert.equal(p.get('SCRIPT_NAME'), '/app/i.php');
    assert.equal(p.get('DOCUMENT_ROOT'), '/var/www');
  });

  test('PATH_INFO is always present; PATH_TRANSLATED only when PATH_INFO is non-empty', () => {
    const none = asMap(buildCgiParams(request(), loc('/index.php', '')));
    assert.equal(none.get('PATH_INFO'), '');
    assert.equal(none.has('PATH_TRANSLATED'), false);
    const some = asMap(buildCgiParams(request({ path: '/index.php/foo/bar' }), loc('/index.php', '/foo/bar')));
    assert.equal(some.get('PATH_INFO'), '/foo/bar');
    assert.equal(some.get('PATH_TRANSLATED'), '/srv/www/foo/bar');
  });

  test('PATH_TRANSLATED does not double the slash of a root ending in /', () => {
    const p = asMap(buildCgiParams(request(), { scriptName: '/i.php', pathInfo: '/x', scriptFilename: '/srv/www/i.php', documentRoot: '/srv/www/' }));
    assert.equal(p.get('PATH_TRANSLATED'), '/srv/www/x');
    assert.equal(p.get('DOCUMENT_ROOT'), '/srv/www/');
  });

  test('REQUEST_URI is raw; DOCUMENT_URI is the decoded script name (as after nginx try_files)', () => {
    const raw = '/my%20app/index.php/x%2Fy';
    const split = splitScriptPath(raw, { index: 'index.php' });
    assert.ok(split.ok);
    const c = split.candidates[0]!;
    const p = asMap(buildCgiParams(request({ path: raw, query: 'a=%20b' }), { ...c, scriptFilename: ROOT + c.scriptName, documentRoot: ROOT }));
    assert.equal(p.get('REQUEST_URI'), '/my%20app/index.php/x%2Fy?a=%20b');
    assert.equal(p.get('DOCUMENT_URI'), '/my app/index.php');
    assert.equal(p.get('SCRIPT_NAME'), '/my app/index.php');
    assert.equal(p.get('PATH_INFO'), '/x/y');
    assert.equal(p.get('QUERY_STRING'), 'a=%20b');
  });

  test('QUERY_STRING is raw and "" when there is none', () => {
    assert.equal(asMap(buildCgiParams(request({ query: 'x=%41&y=+' }), loc())).get('QUERY_STRING'), 'x=%41&y=+');
    assert.equal(asMap(buildCgiParams(request(), loc())).get('QUERY_STRING'), '');
  });

  test('REQUEST_METHOD and SERVER_PROTOCOL', () => {
    const p = asMap(buildCgiParams(request({ method: 'DELETE', version: 'HTTP/1.0' }), loc()));
    assert.equal(p.get('REQUEST_METHOD'), 'DELETE');
    assert.equal(p.get('SERVER_PROTOCOL'), 'HTTP/1.0');
  });

  test('CONTENT_TYPE and CONTENT_LENGTH are always present, "" for a GET', () => {
    const p = asMap(buildCgiParams(request(), loc()));
    assert.equal(p.get('CONTENT_TYPE'), '');
    assert.equal(p.get('CONTENT_LENGTH'), '');
  });

  test('CONTENT_LENGTH: "0" when the client sent Content-Length: 0', () => {
    const p = asMap(buildCgiParams(request({ method: 'POST', headers: [['content-length', '0']] }), loc()));
    assert.equal(p.get('CONTENT_LENGTH'), '0');
  });

  test('CONTENT_LENGTH: the body bytes when there is a body (UTF-8 bytes, not characters)', () => {
    const p = asMap(buildCgiParams(request({ method: 'POST', body: 'héllo', headers: [['content-type', 'text/plain; charset=utf-8'], ['content-length', '6']] }), loc()));
    assert.equal(p.get('CONTENT_LENGTH'), '6');
    assert.equal(p.get('CONTENT_TYPE'), 'text/plain; charset=utf-8');
  });

  test('CONTENT_LENGTH: opts.contentLength wins (temp-file upload)', () => {
    const req = fixture('upload-done');
    assert.equal(req.body.length, 0);
    const p = asMap(buildCgiParams(req, loc(), { contentLength: 10000 }));
    assert.equal(p.get('CONTENT_LENGTH'), '10000');
    assert.equal(p.get('CONTENT_TYPE'), 'application/octet-stream');
    assert.equal(p.get('HTTP_X_MONGREL2_UPLOAD_DONE'), undefined);
    assert.equal(p.get('HTTP_X_MONGREL2_UPLOAD_START'), undefined);
  });

  test('CONTENT_LENGTH: an upload without opts.contentLength is refused (the body is not all there)', () => {
    assertParamsError(() => buildCgiParams(fixture('upload-done'), loc()), 500, /upload needs opts\.contentLength/);
  });

  test('a chunked request (always spooled by Mongrel2): no content-length header; caller gives the size; no HTTP_TRANSFER_ENCODING', () => {
    const req = fixture('chunked-start');
    assert.equal(req.headers['content-length'], undefined);
    assertParamsError(() => buildCgiParams(req, loc()), 500, /file upload/);
    const p = asMap(buildCgiParams(req, loc(), { contentLength: 11 }));
    assert.equal(p.get('CONTENT_LENGTH'), '11');
    assert.equal(p.get('CONTENT_TYPE'), 'text/plain');
    assert.equal(p.get('HTTP_TRANSFER_ENCODING'), undefined);
  });

  test('a bad opts.contentLength is refused', () => {
    for (const n of [-1, 1.5, Number.NaN, 2 ** 60]) assertParamsError(() => buildCgiParams(request(), loc(), { contentLength: n }), 500, /contentLength/);
  });

  test('SERVER_SOFTWARE defaults to m2bridge; GATEWAY_INTERFACE and REDIRECT_STATUS are fixed', () => {
    const p = asMap(buildCgiParams(request(), loc()));
    assert.equal(p.get('SERVER_SOFTWARE'), 'm2bridge');
    assert.equal(p.get('GATEWAY_INTERFACE'), 'CGI/1.1');
    assert.equal(p.get('REDIRECT_STATUS'), '200');
    assert.equal(asMap(buildCgiParams(request(), loc(), { software: 'm2bridge/0.1.0' })).get('SERVER_SOFTWARE'), 'm2bridge/0.1.0');
  });

  test('REMOTE_ADDR: the trusted upper-case key first', () => {
    const p = asMap(buildCgiParams(request({ remoteAddr: '10.0.0.9', headers: [['x-forwarded-for', '1.2.3.4']] }), loc()));
    assert.equal(p.get('REMOTE_ADDR'), '10.0.0.9');
    assert.equal(p.get('REMOTE_PORT'), '');
  });

  test('REMOTE_ADDR: else the last x-forwarded-for hop (string list or repeated header)', () => {
    const one = (xff: HeaderValue): string | undefined => {
      const msg = parseMessage(encodeRequest({ sender: 'S', connId: 1, path: '/a.php', headers: [['x-forwarded-for', xff], ['PATH', '/a.php'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', '/a.php']] }));
      return asMap(buildCgiParams(msg as HttpRequest, loc())).get('REMOTE_ADDR');
    };
    assert.equal(one('9.9.9.9'), '9.9.9.9');
    assert.equal(one('1.1.1.1, 2.2.2.2 '), '2.2.2.2');
    assert.equal(one(['1.1.1.1', '3.3.3.3']), '3.3.3.3');
  });

  test('SERVER_ADDR / SERVER_PORT / SERVER_NAME from options', () => {
    const p = asMap(buildCgiParams(request({ headers: [['host', 'evil.example:1234']] }), loc(), { serverAddr: '192.0.2.1', serverPort: 8080, serverName: 'www.example.org' }));
    assert.equal(p.get('SERVER_ADDR'), '192.0.2.1');
    assert.equal(p.get('SERVER_PORT'), '8080');
    assert.equal(p.get('SERVER_NAME'), 'www.example.org');
    assert.equal(p.get('HTTP_HOST'), 'evil.example:1234');
  });

  test('SERVER_NAME / SERVER_PORT from the Host header (name lower-cased, IPv6 literal kept)', () => {
    const hostParams = (host: HeaderValue | null, scheme = 'http'): [string | undefined, string | undefined] => {
      const p = asMap(buildCgiParams(request({ scheme, headers: host === null ? [] : [['host', host]] }), loc()));
      return [p.get('SERVER_NAME'), p.get('SERVER_PORT')];
    };
    assert.deepStrictEqual(hostParams('Example.COM'), ['example.com', '80']);
    assert.deepStrictEqual(hostParams('example.com:8443', 'https'), ['example.com', '8443']);
    assert.deepStrictEqual(hostParams('[::1]:8080'), ['[::1]', '8080']);
    assert.deepStrictEqual(hostParams('[2001:db8::1]'), ['[2001:db8::1]', '80']);
    assert.deepStrictEqual(hostParams(null), ['', '80']);
    assert.deepStrictEqual(hostParams(null, 'https'), ['', '443']);
    // Malformed, out-of-range or repeated Host headers are not trusted for anything.
    assert.deepStrictEqual(hostParams('a b'), ['', '80']);
    assert.deepStrictEqual(hostParams('a/b:81'), ['', '80']);
    assert.deepStrictEqual(hostParams('example.com:99999'), ['example.com', '80']);
    assert.deepStrictEqual(hostParams('example.com:'), ['', '80']);
    assert.deepStrictEqual(hostParams(['a.example:81', 'b.example:82']), ['', '80']);
  });

  test('a bad opts.serverPort is refused', () => {
    for (const port of [0, 65536, 80.5]) assertParamsError(() => buildCgiParams(request(), loc(), { serverPort: port }), 500, /serverPort/);
  });

  test('a location that is not absolute is refused', () => {
    assertParamsError(() => buildCgiParams(request(), loc('index.php')), 500, /scriptName/);
    assertParamsError(() => buildCgiParams(request(), loc('/index.php', 'x')), 500, /pathInfo/);
  });
});

describe('buildCgiParams: HTTP_* headers', () => {
  test('name upper-cased with - → _; Authorization kept; x-forwarded-for kept', () => {
    const p = asMap(
      buildCgiParams(
        request({
          headers: [
            ['host', 'h'],
            ['authorization', 'Basic dXNlcjpwYXNz'],
            ['accept-language', 'en'],
            ['x-requested-with', 'XMLHttpRequest'],
          ],
        }),
        loc(),
      ),
    );
    assert.equal(p.get('HTTP_AUTHORIZATION'), 'Basic dXNlcjpwYXNz');
    assert.equal(p.get('HTTP_ACCEPT_LANGUAGE'), 'en');
    assert.equal(p.get('HTTP_X_REQUESTED_WITH'), 'XMLHttpRequest');
    assert.equal(p.get('HTTP_X_FORWARDED_FOR'), '127.0.0.1');
    assert.equal(p.get('HTTP_HOST'), 'h');
  });

  test('names with "_" are dropped, so X_Forwarded_For cannot impersonate X-Forwarded-For', () => {
    const params = buildCgiParams(request({ headers: [['x_forwarded_for', '6.6.6.6'], ['x_real_ip', '6.6.6.6'], ['x-ok', '1']] }), loc());
    assert.deepStrictEqual(httpNames(params), ['HTTP_X_FORWARDED_FOR', 'HTTP_X_OK']);
    assert.equal(asMap(params).get('HTTP_X_FORWARDED_FOR'), '127.0.0.1');
  });

  test('Proxy is dropped: HTTP_PROXY is never emitted (httpoxy)', () => {
    const params = buildCgiParams(request({ headers: [['proxy', 'http://evil:8080'], ['host', 'h']] }), loc());
    assert.ok(!params.some(([k]) => k === 'HTTP_PROXY'));
  });

  test('x-mongrel2-* and every upper-case server key are skipped', () => {
    const msg = parseMessage(
      encodeRequest({
        sender: 'S',
        connId: 1,
        path: '/a.php',
        headers: [
          ['x-mongrel2-upload-start', '/etc/passwd'],
          ['x-mongrel2-anything', 'x'],
          ['host', 'h'],
          ...['PATH', 'URI', 'QUERY', 'FRAGMENT', 'PATTERN', 'URL_SCHEME', 'REMOTE_ADDR', 'FLAGS', 'PEER_CERT_SHA1', 'X-Custom-Upper'].map((k) => [k, 'v'] as [string, string]),
          ['METHOD', 'GET'],
          ['VERSION', 'HTTP/1.1'],
          ['DOWNLOAD_CREDITS', '100'],
        ],
      }),
    ) as HttpRequest;
    assert.equal(msg.kind, 'http');
    assert.deepStrictEqual(httpNames(buildCgiParams(msg, loc(), { contentLength: 0 })), ['HTTP_HOST']);
  });

  test('UPLOAD_STREAM keys are skipped too', () => {
    const msg = parseMessage(
      encodeRequest({ sender: 'S', connId: 1, path: '/a.php', headers: [['host', 'h'], ['content-length', '99'], ['PATH', '/a.php'], ['METHOD', 'POST'], ['VERSION', 'HTTP/1.1'], ['UPLOAD_STREAM', '0'], ['UPLOAD_STREAM_DONE', '0']], body: 'abc' }),
    ) as HttpRequest;
    assert.equal(msg.upload?.mode, 'stream');
    const params = buildCgiParams(msg, loc(), { contentLength: 99 });
    assert.deepStrictEqual(httpNames(params), ['HTTP_HOST', 'HTTP_CONTENT_LENGTH']);
    assert.equal(asMap(params).get('CONTENT_LENGTH'), '99');
  });

  test('outer whitespace Mongrel2 kept is trimmed; inner whitespace kept', () => {
    const p = asMap(buildCgiParams(request({ headers: [['x-tab', 'v\t'], ['x-inner', 'a  b'], ['x-list', ['a ', ' b']]] }), loc()));
    assert.equal(p.get('HTTP_X_TAB'), 'v');
    assert.equal(p.get('HTTP_X_INNER'), 'a  b');
    assert.equal(p.get('HTTP_X_LIST'), 'a, b');
  });

  test('an empty header value gives an empty param', () => {
    assert.equal(asMap(buildCgiParams(request({ headers: [['x-empty', '']] }), loc())).get('HTTP_X_EMPTY'), '');
  });

  test('NUL in a header value → CgiParamsError 400 naming the param', () => {
    assertParamsError(() => buildCgiParams(request({ headers: [['x-bad', 'a\0b']] }), loc()), 400, /HTTP_X_BAD/);
  });

  test('property: names are unique, valid env names, and values free of NUL/CR/LF', () => {
    const name = fc.stringMatching(/^[a-z0-9_-]{1,12}$/);
    const value = fc.string({ maxLength: 20 }).filter((v) => !/[\0\r\n]/.test(v));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, fc.oneof(value, fc.array(value, { minLength: 1, maxLength: 3 }))), { selector: ([k]) => k, maxLength: 10 }), (headers) => {
        const params = buildCgiParams(request({ headers }), loc());
        const names = params.map(([k]) => k);
        assert.equal(new Set(names).size, names.length);
        for (const [k, v] of params) {
          assert.match(k, /^[A-Z0-9_]+$/);
          assert.ok(!/[\0\r\n]/.test(v));
        }
        assert.ok(!names.includes('HTTP_PROXY'));
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

test('REMOTE_USER is the user of a Basic Authorization header, as nginx sets it', () => {
  const req = parseMessage(
    encodeRequest({ sender: 's', connId: 1, path: '/a.php', headers: [['PATH', '/a.php'], ['authorization', 'Basic ' + Buffer.from('zed:secret').toString('base64')], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', '/a.php']] }),
  );
  assert.equal(req.kind, 'http');
  if (req.kind !== 'http') return;
  const params = new Map(buildCgiParams(req, { scriptName: '/a.php', pathInfo: '', scriptFilename: '/srv/a.php', documentRoot: '/srv' }));
  assert.equal(params.get('REMOTE_USER'), 'zed');
  assert.equal(params.get('HTTP_AUTHORIZATION'), 'Basic ' + Buffer.from('zed:secret').toString('base64'));
});
