/**
 * HttpBackend.upgrade(): the websocket handshake forwarded on a raw
 * connection to a `ws` WebSocketServer origin, which answers 101 and then
 * echoes frames; refusals and aborts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { HttpBackend } from '../../adapters/http.js';
import { BackendError } from '../../src/bridge/backend.js';
import { buildFrame, encodeRequest, parseFrame, parseMessage, websocketAccept, type HeaderValue, type WebSocketHandshake } from '../../src/protocol/index.js';
import { memoryLogger } from '../app/helpers.js';
import { deadPort, startUpstream, type Upstream } from './upstream.js';

const KEY = 'MDEyMzQ1Njc4OWFiY2RlZg==';

function handshake(extra: Array<[string, HeaderValue]> = [], uri = '/ws?a=b'): WebSocketHandshake {
  const [p = uri, q] = uri.split('?');
  const headers: Array<[string, HeaderValue]> = [
    ['PATH', p],
    ['x-forwarded-for', '127.0.0.1'],
    ['origin', 'http://site.example'],
    ['connection', 'keep-alive, Upgrade'],
    ['sec-websocket-version', '13'],
    ['sec-websocket-key', KEY],
    ['host', 'site.example:6767'],
    ['upgrade', 'WebSocket'],
    ...extra,
    ['METHOD', 'WEBSOCKET_HANDSHAKE'],
    ['VERSION', 'HTTP/1.1'],
    ['URI', uri],
    ...(q !== undefined ? ([['QUERY', q]] as Array<[string, HeaderValue]>) : []),
    ['PATTERN', '/ws'],
    ['URL_SCHEME', 'http'],
    ['REMOTE_ADDR', '198.51.100.4'],
  ];
  const msg = parseMessage(encodeRequest({ sender: 'srv', connId: 3, path: p, headers, body: websocketAccept(KEY) }));
  if (msg.kind !== 'websocket-handshake') throw new Error(`not a handshake: ${msg.kind}`);
  return msg;
}

/** Reads from the socket until `done(bytes)` holds. */
function readUntil(socket: Duplex, done: (buf: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (done(buf)) {
        cleanup();
        resolve(buf);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`socket ended after ${buf.length} bytes: ${JSON.stringify(buf.toString('latin1'))}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('close', onEnd);
  });
}

const headEnd = (buf: Buffer): boolean => buf.includes('\r\n\r\n');

describe('HttpBackend.upgrade() against a ws origin', () => {
  const { logger } = memoryLogger();
  let up: Upstream;
  let backend: HttpBackend;

  before(async () => {
    up = await startUpstream();
    backend = new HttpBackend({ url: `${up.url}/base`, logger });
  });
  after(async () => {
    await backend?.close();
    await up?.close();
  });

  test('a 101 arrives on the returned socket, with the accept Mongrel2 computed; frames flow both ways', async (t) => {
    const socket = await backend.upgrade({ req: handshake([['sec-websocket-protocol', 'chat, superchat'], ['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits, x-custom; p="a,b"']]), signal: new AbortController().signal });
    t.after(() => socket.destroy());
    const buf = await readUntil(socket, headEnd);
    const head = buf.subarray(0, buf.indexOf('\r\n\r\n')).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head, new RegExp(`\r\nSec-WebSocket-Accept: ${websocketAccept(KEY).replace(/[+/=]/g, '\\$&')}(\r\n|$)`, 'i'));
    assert.match(head, /\r\nSec-WebSocket-Protocol: chat(\r\n|$)/i);
    assert.doesNotMatch(head, /Sec-WebSocket-Extensions/i);

    const seen = up.upgrades.at(-1)?.rawHeaders ?? [];
    const get = (name: string): string[] => seen.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [seen[i + 1]!] : []));
    assert.deepEqual(get('sec-websocket-extensions'), ['x-custom; p="a,b"'], 'permessage-deflate is not offered upstream');
    assert.deepEqual(get('host'), ['site.example:6767']);
    assert.deepEqual(get('x-forwarded-for'), ['198.51.100.4']);
    assert.deepEqual(get('origin'), ['http://site.example']);
    assert.deepEqual(get('upgrade'), ['websocket']);

    // The rest of the stream is frames: a masked client frame is echoed unmasked.
    const rest = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
    socket.write(buildFrame('hello', { mask: Buffer.from([1, 2, 3, 4]) }));
    const echoed = rest.length > 0 ? rest : await readUntil(socket, (b) => parseFrame(b) !== null);
    const frame = parseFrame(echoed);
    assert.equal(frame?.opcode, 1);
    assert.equal(frame?.payload.toString(), 'hello');
  });

  test('the upgrade request carries the base path and the query', async (t) => {
    const socket = await backend.upgrade({ req: handshake([], '/chat/room?x=1'), signal: new AbortController().signal });
    t.after(() => socket.destroy());
    await readUntil(socket, headEnd);
    assert.equal(up.upgrades.at(-1)?.url, '/base/chat/room?x=1');
  });

  test('abort closes the tunnel: the origin sees its websocket close', async () => {
    const ac = new AbortController();
    const closed = up.wsClosed();
    const socket = await backend.upgrade({ req: handshake(), signal: ac.signal });
    await readUntil(socket, headEnd);
    ac.abort(new Error('client gone'));
    await closed;
    assert.equal(socket.destroyed, true);
  });

  test('close() closes open tunnels', async () => {
    const b = new HttpBackend({ url: up.url, logger });
    const closed = up.wsClosed();
    const socket = await b.upgrade({ req: handshake(), signal: new AbortController().signal });
    await readUntil(socket, headEnd);
    await b.close();
    await closed;
    assert.equal(socket.destroyed, true);
  });
});

describe('HttpBackend.upgrade() failures', () => {
  const { logger } = memoryLogger();

  test('nothing listening → BackendError 502', async (t) => {
    const b = new HttpBackend({ url: `http://127.0.0.1:${await deadPort()}`, logger });
    t.after(() => b.close());
    await assert.rejects(b.upgrade({ req: handshake(), signal: new AbortController().signal }), (err: unknown) => err instanceof BackendError && err.status === 502);
  });

  test('already aborted → rejected with the reason, nothing connected', async (t) => {
    const b = new HttpBackend({ url: `http://127.0.0.1:${await deadPort()}`, logger });
    t.after(() => b.close());
    const ac = new AbortController();
    ac.abort(new Error('gone before'));
    await assert.rejects(b.upgrade({ req: handshake(), signal: ac.signal }), /gone before/);
  });
});
