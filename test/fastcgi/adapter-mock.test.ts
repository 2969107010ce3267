/**
 * FastCgiBackend against the mock FastCGI server: the same reply must give the
 * same head and body whether it was complete when the adapter looked (taken
 * whole, no STDOUT stream) or still arriving (STDOUT streamed), with the CGI
 * head cut across records either way.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FastCgiBackend } from '../../adapters/fastcgi.js';
import { FastCgiClient } from '../../src/fastcgi/client.js';
import { BackendError, type BackendResponse } from '../../src/bridge/backend.js';
import { encodeRequest, parseMessage, type HttpRequest } from '../../src/protocol/index.js';
import { PHP_DOCROOT } from '../support/php-fpm.js';
import { startMockFpm, record, T, type MockRequest } from './mock-fpm.js';
import { readAll } from './helpers.js';

function httpRequest(p: string): HttpRequest {
  const msg = parseMessage(encodeRequest({ sender: 's', connId: 1, path: p, headers: [['PATH', p], ['host', 'localhost'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', p], ['URL_SCHEME', 'http']] }));
  if (msg.kind !== 'http') throw new Error('not http');
  return msg;
}

const END = (() => {
  const b = Buffer.alloc(8);
  return Buffer.concat([record(T.STDOUT, 1), record(T.END, 1, b)]);
})();

/** STDOUT records cut inside the head ("Sta|tus", between CR and LF of the blank line). */
const PIECES = ['X-One: 1\r\nSta', 'tus: 201 Made\r\nX-Two:  2 \r\n\r', '\nbody-a', '', 'body-b'];
const RECORDS = Buffer.concat(PIECES.map((p) => record(T.STDOUT, 1, p)));

describe('FastCgiBackend: a reply taken whole and the same reply streamed', async () => {
  let stall: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;
  const mock = await startMockFpm({
    fragment: false,
    onRequest: async (req: MockRequest) => {
      const mode = new URLSearchParams(req.params.find(([k]) => k === 'QUERY_STRING')?.[1] ?? '').get('mode');
      if (mode === 'whole') req.conn.socket.write(Buffer.concat([RECORDS, END])); // one write: complete on arrival
      else if (mode === 'headless') req.conn.socket.write(Buffer.concat([record(T.STDOUT, 1, 'X-A: 1\r\n'), END]));
      else {
        req.conn.socket.write(RECORDS);
        await stall;
        req.conn.socket.write(END);
      }
    },
  });
  const logger = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));
  const client = new FastCgiClient({ address: mock.address, logger });
  const backend = new FastCgiBackend({ client, root: PHP_DOCROOT, logger });
  after(async () => {
    await backend.close();
    await mock.close();
  });

  const get = (mode: string): Promise<BackendResponse> => {
    const req = httpRequest('/hello.php');
    const withQuery = { ...req, headers: { ...req.headers, QUERY: `mode=${mode}` } } as HttpRequest;
    return backend.handle({ req: withQuery, body: null, bodyLength: undefined, signal: new AbortController().signal });
  };

  const summary = async (res: BackendResponse): Promise<unknown> => ({ status: res.status, reason: res.reason, headers: res.headers, body: (await readAll(res.body!)).toString() });
  const expected = { status: 201, reason: 'Made', headers: [['X-One', '1'], ['X-Two', '2']], body: 'body-abody-b' };

  await test('complete before the adapter looks: the same head and body', async () => {
    assert.deepStrictEqual(await summary(await get('whole')), expected);
  });

  await test('still arriving: the streamed STDOUT gives the same', async () => {
    stall = new Promise<void>((resolve) => (release = resolve));
    const pending = get('stream');
    const res = await pending;
    const text = summary(res);
    release();
    assert.deepStrictEqual(await text, expected);
  });

  await test('END_REQUEST before the end of the head is a 502', async () => {
    await assert.rejects(get('headless'), (err: unknown) => err instanceof BackendError && err.status === 502 && /header block/.test(err.message));
  });
});
