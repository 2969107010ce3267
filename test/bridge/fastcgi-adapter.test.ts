/**
 * The FastCGI adapter on its own, against the real PHP-FPM: what it hands the
 * bridge for X-Accel-Redirect / X-Sendfile, for stderr, and for bad paths.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FastCgiBackend } from '../../adapters/fastcgi.js';
import { FastCgiClient } from '../../src/fastcgi/client.js';
import { BackendError } from '../../src/bridge/backend.js';
import { encodeRequest, parseMessage, type HttpRequest } from '../../src/protocol/index.js';
import { startPhpFpm, PHP_DOCROOT, type PhpFpm } from '../support/php-fpm.js';

function httpRequest(uri: string): HttpRequest {
  const [p = uri, q] = uri.split('?');
  const msg = parseMessage(
    encodeRequest({ sender: 's', connId: 1, path: p, headers: [['PATH', p], ['host', 'localhost'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', uri], ...(q ? ([['QUERY', q]] as Array<[string, string]>) : []), ['URL_SCHEME', 'http'], ['REMOTE_ADDR', '127.0.0.1']] }),
  );
  if (msg.kind !== 'http') throw new Error('not http');
  return msg;
}

describe('FastCgiBackend with the real PHP-FPM', () => {
  let fpm: PhpFpm;
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const backends: FastCgiBackend[] = [];
  // One client for all: with one FPM worker, a second client's idle kept
  // connection would hold that worker.
  let client: FastCgiClient;
  const make = (opts: { sendfile?: boolean; chroot?: string } = {}): FastCgiBackend => new FastCgiBackend({ client, root: PHP_DOCROOT, logger, ...opts });
  const signal = new AbortController().signal;

  before(async () => {
    fpm = await startPhpFpm({ workers: 1 });
    client = new FastCgiClient({ address: fpm.address, logger });
  });
  after(async () => {
    await client?.close();
    await Promise.all(backends.map((b) => b.close()));
    await fpm?.stop();
  });

  test('X-Accel-Redirect becomes a sendfile answer with the file length, when enabled', async () => {
    const res = await make({ sendfile: true }).handle({ req: httpRequest('/sendfile.php'), body: null, bodyLength: 0, signal });
    assert.equal(res.sendfile, `${PHP_DOCROOT}/static.txt`);
    assert.equal(res.body, null);
    assert.deepEqual(res.headers.filter(([k]) => k === 'Content-Length'), [['Content-Length', String('static file served by sendfile\n'.length)]]);
    assert.equal(res.headers.some(([k]) => /x-accel|x-sendfile/i.test(k)), false);
  });

  test('X-Sendfile too; the path is given as the server sees it inside its chroot', async () => {
    const res = await make({ sendfile: true, chroot: PHP_DOCROOT }).handle({ req: httpRequest('/sendfile.php?via=sendfile'), body: null, bodyLength: 0, signal });
    assert.equal(res.sendfile, '/static.txt');
  });

  test('a sendfile target outside the root is refused with 404', async () => {
    await assert.rejects(
      make({ sendfile: true }).handle({ req: httpRequest('/sendfile.php?target=/../../../etc/passwd'), body: null, bodyLength: 0, signal }),
      (err: unknown) => err instanceof BackendError && err.status === 404,
    );
  });

  test('without --sendfile the header is dropped and PHP’s own body is served', async () => {
    const res = await make().handle({ req: httpRequest('/sendfile.php'), body: null, bodyLength: 0, signal });
    assert.equal(res.sendfile, undefined);
    let text = '';
    for await (const c of res.body ?? []) text += (c as Buffer).toString();
    assert.equal(text, 'this body is replaced by the file\n');
  });

  test('a missing script is our 404 and never reaches FPM; a NUL in the path is a 400', async () => {
    const b = make();
    await assert.rejects(b.handle({ req: httpRequest('/missing.php'), body: null, bodyLength: 0, signal }), (e: unknown) => e instanceof BackendError && e.status === 404);
    await assert.rejects(b.handle({ req: httpRequest('/a%00.php'), body: null, bodyLength: 0, signal }), (e: unknown) => e instanceof BackendError && e.status === 400);
  });

  test("FPM's stderr becomes warn log lines", async () => {
    const res = await make().handle({ req: httpRequest('/stderr.php'), body: null, bodyLength: 0, signal });
    let text = '';
    for await (const c of res.body ?? []) text += (c as Buffer).toString();
    assert.equal(text, 'ok');
    const line = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.includes('bridge-stderr-check'));
    assert.ok(line, 'a log line carries the stderr text');
    assert.equal(line.level, 40);
    assert.match(line.msg, /^FPM stderr: /);
  });

  test('FPM down: a BackendError 502', async () => {
    const b = new FastCgiBackend({ client: new FastCgiClient({ address: { host: '127.0.0.1', port: 1 }, logger }), root: PHP_DOCROOT, logger });
    backends.push(b);
    await assert.rejects(b.handle({ req: httpRequest('/hello.php'), body: null, bodyLength: 0, signal }), (e: unknown) => e instanceof BackendError && e.status === 502);
  });
});
