/**
 * loadApp: what each kind of module export is detected as, and that a module
 * with nothing to serve is refused with a message naming the file and what
 * it found. Each detected handler is then served a request.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AppBackend, AppLoadError, loadApp, type AppKind } from '../../adapters/app.js';
import { backendRequest, collect } from './helpers.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string): string => path.join(FIXTURES, name);

describe('loadApp', () => {
  const cases: Array<[file: string, kind: AppKind, answer: string]> = [
    ['express-app.ts', 'express', 'express'],
    ['koa-app.ts', 'koa', 'koa'],
    ['listener.ts', 'listener', 'listener'],
    ['server.ts', 'server', 'server'],
    ['cjs-listener.cjs', 'listener', 'cjs-listener'],
  ];
  for (const [file, kind, answer] of cases) {
    test(`${file} is detected as ${kind} and serves a request`, async () => {
      const handler = await loadApp(fixture(file));
      assert.equal(handler.kind, kind);
      assert.equal(typeof handler, 'function');
      const backend = new AppBackend({ handler, logger: pino({ level: 'silent' }) });
      try {
        const res = await backend.handle(backendRequest({ uri: '/who', remoteAddr: '198.51.100.23' }));
        assert.equal(res.status, 200);
        assert.deepEqual(JSON.parse((await collect(res.body)).toString()), { kind: answer, ip: '198.51.100.23' });
      } finally {
        await backend.close();
      }
    });
  }

  test('a relative path is resolved against the working directory', async () => {
    const handler = await loadApp(path.relative(process.cwd(), fixture('listener.ts')));
    assert.equal(handler.kind, 'listener');
  });

  test('a module with nothing to serve: the error names the file and what was found', async () => {
    await assert.rejects(loadApp(fixture('bad.ts')), (err: Error) => {
      assert.ok(err instanceof AppLoadError);
      assert.ok(err.message.includes(fixture('bad.ts')), err.message);
      assert.match(err.message, /the default export is an object with keys port, host/);
      assert.match(err.message, /the named export 'app' is a function "createApp" taking 0 arguments/);
      assert.match(err.message, /Expected an Express app, a Koa app, a \(req, res\) listener or an http\.Server/);
      return true;
    });
  });

  test('an http.Server without a request listener is refused', async () => {
    await assert.rejects(loadApp(fixture('no-listener-server.ts')), /the default export is a Server with no 'request' listener/);
  });

  test('a missing file and a module that throws on import are AppLoadErrors naming the file', async () => {
    await assert.rejects(loadApp(fixture('missing.js')), (err: Error) => err instanceof AppLoadError && err.message.includes(fixture('missing.js')));
    await assert.rejects(loadApp(fixture('throws-on-import.ts')), (err: Error) => err instanceof AppLoadError && /DATABASE_URL is not set/.test(err.message) && err.message.includes('throws-on-import.ts'));
  });
});
