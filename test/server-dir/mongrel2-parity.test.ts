/**
 * Parity with the REAL Mongrel2 (Debian 1.12.2) for a Dir route. The shared
 * harness's conf already has one ('/static/' → Dir(base='static/',
 * index_file='index.html', default_ctype='text/plain')), so we start that and
 * point our DirHandler at the very same directory; extra files are added on
 * disk after start (Mongrel2 does not cache misses). Compared: status line,
 * header names in order, the values that must agree, and body bytes. Allowed
 * differences (docs/differences.md): our Accept-Ranges and 405 Allow headers,
 * the quoted ETag, the Server version.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { rawHttp, startMongrel2, untilCompleteResponse, type Mongrel2Peer } from '../support/mongrel2.js';
import { DirHandler } from '../../src/server/dir/index.js';
import type { DirResponse } from '../../src/server/dir/index.js';
import { MIMETYPES, dirTarget, parseHead, readBody, request, type ParsedHead } from './helpers.js';

const OUR_EXTRA_HEADERS = new Set(['Accept-Ranges', 'Allow']);
const EURO_NAME = '€tonnänt%20.txþ';
const EURO_PATH = '/static/%E2%82%ACtonn%C3%A4nt%2520.tx%C3%BE';

interface Seen {
  head: ParsedHead;
  body: Buffer;
}

let peer: Mongrel2Peer | undefined;
let ours: DirHandler;

before(async () => {
  peer = await startMongrel2();
  await fsp.writeFile(path.join(peer.staticDir, EURO_NAME), 'euro\n');
  await fsp.mkdir(path.join(peer.staticDir, 'sub'));
  await fsp.writeFile(path.join(peer.staticDir, 'sub', 'index.html'), '<p>sub</p>\n');
  await fsp.mkdir(path.join(peer.home, 'static2'));
  await fsp.writeFile(path.join(peer.home, 'static2', 'x.txt'), 'sibling\n');
  ours = new DirHandler(dirTarget('static/'), '/static/', MIMETYPES, { cwd: peer.home });
});
after(() => peer?.stop());

/**
 * One request on a fresh connection. With `awaitClose` we wait for mongrel2 to
 * close the connection (rawHttp rejects on its timeout if it never does);
 * otherwise we stop at the first complete response.
 */
async function theirs(
  method: string,
  uri: string,
  opts: { headers?: string; body?: string; awaitClose?: boolean } = {},
): Promise<Seen> {
  const raw = `${method} ${uri} HTTP/1.1\r\nHost: localhost\r\n${opts.headers ?? ''}\r\n${opts.body ?? ''}`;
  const got = await rawHttp(
    peer!.httpPort,
    Buffer.from(raw, 'latin1'),
    opts.awaitClose ? { timeoutMs: 3000 } : { until: untilCompleteResponse(1, { head: method === 'HEAD' }) },
  );
  const head = parseHead(got);
  return { head, body: method === 'HEAD' ? Buffer.alloc(0) : head.inlineBody };
}

async function mine(method: string, uri: string, headers: Record<string, string> = {}): Promise<Seen & { res: DirResponse }> {
  const res = await ours.serve(request(method, uri, { Host: 'localhost', ...headers }));
  const head = parseHead(res.head);
  return { res, head, body: res.body || res.content ? await readBody(res) : head.inlineBody };
}

function assertSameShape(a: Seen, b: Seen): void {
  assert.equal(b.head.statusLine, a.head.statusLine);
  assert.deepEqual(
    b.head.names().filter((n) => !OUR_EXTRA_HEADERS.has(n)),
    a.head.names(),
  );
  for (const name of ['Content-Type', 'Content-Length', 'Last-Modified', 'Connection']) {
    assert.equal(b.head.get(name), a.head.get(name), name);
  }
  const etag = a.head.get('ETag');
  if (etag !== undefined) assert.equal(b.head.get('ETag'), `"${etag}"`);
  assert.match(a.head.get('Server') ?? '', /^Mongrel2\/1\./);
  assert.match(b.head.get('Server') ?? '', /^Mongrel2\/1\./);
  assert.deepEqual(b.body, a.body);
}

describe('Dir route: ours vs the real mongrel2', () => {
  const same: Array<[string, string, string]> = [
    ['GET', '/static/hello.txt', 'plain GET'],
    ['HEAD', '/static/hello.txt', 'HEAD'],
    ['GET', '/static/', 'index file'],
    ['GET', '/static/sub/', 'index file in a subdirectory'],
    ['GET', '/static/nope.txt', '404 for a missing file'],
    ['GET', '/static/../config.sqlite', '404 for traversal'],
    ['GET', '/static/%2e%2e/config.sqlite', '404 for encoded traversal'],
    ['GET', EURO_PATH, 'percent-encoded UTF-8 name (dir_tests.c)'],
  ];
  for (const [method, uri, what] of same) {
    test(`${what}: ${method} ${uri}`, async () => {
      const a = await theirs(method, uri);
      const b = await mine(method, uri);
      assertSameShape(a, b);
    });
  }

  test('405 for POST: same bytes apart from Allow, both close the connection', async () => {
    // Resolving at all (rather than timing out) means mongrel2 closed the connection.
    const a = await theirs('POST', '/static/hello.txt', { headers: 'Content-Length: 3\r\n', body: 'abc', awaitClose: true });
    const b = await mine('POST', '/static/hello.txt');
    assertSameShape(a, b);
    assert.equal(b.res.close, true);
    assert.equal(b.head.get('Allow'), 'GET, HEAD');
  });

  test('documented difference: the sibling directory hole (Mongrel2 serves static2/, we 404)', async () => {
    const a = await theirs('GET', '/static/../static2/x.txt');
    const b = await mine('GET', '/static/../static2/x.txt');
    assert.equal(a.head.status, 200);
    assert.equal(a.body.toString(), 'sibling\n');
    assert.equal(b.head.status, 404);
  });

  test("documented difference: If-None-Match with the server's own ETag → 304 on both, ours with validators", async () => {
    const etagA = (await theirs('HEAD', '/static/hello.txt')).head.get('ETag')!;
    const etagB = (await mine('HEAD', '/static/hello.txt')).head.get('ETag')!;
    const a = await theirs('GET', '/static/hello.txt', { headers: `If-None-Match: ${etagA}\r\n` });
    const b = await mine('GET', '/static/hello.txt', { 'If-None-Match': etagB });
    assert.equal(a.head.status, 304);
    assert.equal(b.head.status, 304);
    assert.deepEqual(a.head.names(), ['Connection', 'Content-Length', 'Server']);
    assert.deepEqual(b.head.names(), ['Date', 'Last-Modified', 'ETag', 'Server']);
  });
});
