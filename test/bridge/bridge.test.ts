/**
 * The bridge core with an in-memory backend, behind an in-process stand-in
 * for Mongrel2's sockets: framing, error pages, in-flight limits, uploads and
 * disconnects, without a network peer.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, PassThrough } from 'node:stream';
import { mkdtemp, writeFile, rm, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Connection } from '../../src/handler/connection.js';
import { Bridge } from '../../src/bridge/bridge.js';
import { BackendError, type Backend, type BackendRequest, type BackendResponse } from '../../src/bridge/backend.js';
import { encodeRequest, parseReply, type HeaderValue } from '../../src/protocol/index.js';
import { FakeServer } from '../support/fake-server.js';

const SENDER = 'srv-1';

function request(connId: number, opts: { method?: string; path?: string; version?: string; headers?: Array<[string, HeaderValue]>; body?: string | Buffer } = {}): Buffer {
  const p = opts.path ?? '/app';
  return encodeRequest({
    sender: SENDER,
    connId,
    path: p,
    headers: [['PATH', p], ['host', 'localhost'], ...(opts.headers ?? []), ['METHOD', opts.method ?? 'GET'], ['VERSION', opts.version ?? 'HTTP/1.1'], ['URI', p], ['PATTERN', '/'], ['URL_SCHEME', 'http'], ['REMOTE_ADDR', '127.0.0.1']],
    body: opts.body,
  });
}

function notice(connId: number, type: 'disconnect'): Buffer {
  return encodeRequest({ sender: SENDER, connId, path: '@*', headers: [['METHOD', 'JSON']], body: JSON.stringify({ type }) });
}

/** A scripted backend: each test sets `respond`. */
class ScriptedBackend implements Backend {
  readonly name = 'scripted';
  seen: BackendRequest[] = [];
  closed = false;
  respond: (r: BackendRequest) => Promise<BackendResponse> = async () => ({ status: 200, headers: [['Content-Type', 'text/plain']], body: Readable.from([Buffer.from('ok')]) });
  handle(r: BackendRequest): Promise<BackendResponse> {
    this.seen.push(r);
    return this.respond(r);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Collects the bytes a connection id receives until `done(text)` says the response is complete. */
async function collect(srv: FakeServer, until: (text: string, closed: boolean) => boolean): Promise<{ text: string; closed: boolean; messages: number }> {
  let text = '';
  let closed = false;
  let messages = 0;
  while (!until(text, closed)) {
    const r = parseReply(await srv.nextReply());
    messages++;
    if (r.type === 'close') closed = true;
    else if (r.type === 'data') text += r.body.toString('latin1');
  }
  return { text, closed, messages };
}

describe('Bridge', () => {
  let srv: FakeServer;
  let conn: Connection;
  let backend: ScriptedBackend;
  let bridge: Bridge;
  let uploadDir: string;

  beforeEach(async () => {
    srv = await FakeServer.start();
    uploadDir = await mkdtemp(path.join(os.tmpdir(), 'm2b-up-'));
    conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: pino({ level: 'silent' }), uploads: { dir: uploadDir } });
    await conn.ready();
    backend = new ScriptedBackend();
    bridge = new Bridge({ connection: conn, backend, maxInflight: 2, logger: pino({ level: 'silent' }) });
    void bridge.run();
  });

  afterEach(async () => {
    await bridge.drain(1000);
    await srv.close();
    await rm(uploadDir, { recursive: true, force: true });
  });

  test('a response with Content-Length passes through in one message', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Length', '5']], body: Readable.from([Buffer.from('hello')]) });
    await srv.send(request(1));
    const r = parseReply(await srv.nextReply());
    assert.equal(r.type, 'data');
    assert.equal(r.type === 'data' && r.body.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  });

  test('no Content-Length on HTTP/1.1: chunked, ending in the last chunk', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Type', 'text/plain']], body: Readable.from([Buffer.from('ab'), Buffer.from('cde')]) });
    await srv.send(request(2));
    const { text } = await collect(srv, (t) => t.endsWith('0\r\n\r\n'));
    assert.match(text, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain\r\nTransfer-Encoding: chunked\r\n\r\n/);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    assert.ok(body === '2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n' || body === '5\r\nabcde\r\n0\r\n\r\n' || body.replace(/\r\n/g, '|').length > 0);
    assert.match(body, /0\r\n\r\n$/);
    // De-chunk and compare.
    let rest = body;
    let out = '';
    for (;;) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      if (size === 0) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    assert.equal(out, 'abcde');
  });

  test('HTTP/1.0: close-delimited body, then the close message', async () => {
    backend.respond = async () => ({ status: 200, headers: [], body: Readable.from([Buffer.from('old client')]) });
    await srv.send(request(3, { version: 'HTTP/1.0' }));
    const { text, closed } = await collect(srv, (_t, c) => c);
    assert.equal(closed, true);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\nConnection: close\r\n\r\nold client$/);
  });

  test('HEAD: head only, the backend body is not sent', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Length', '5']], body: Readable.from([Buffer.from('hello')]) });
    await srv.send(request(4, { method: 'HEAD' }));
    const r = parseReply(await srv.nextReply());
    assert.equal(r.type === 'data' && r.body.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
  });

  test('Connection: close gets the close message after a complete response', async () => {
    await srv.send(request(5, { headers: [['connection', 'close']] }));
    const { text, closed } = await collect(srv, (_t, c) => c);
    assert.equal(closed, true);
    assert.match(text, /Connection: close\r\n/);
  });

  test('a backend error becomes its status; any other failure a 502', async () => {
    backend.respond = async () => {
      throw new BackendError(504, 'too slow');
    };
    await srv.send(request(6));
    let r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
    backend.respond = async () => {
      throw new Error('boom');
    };
    await srv.send(request(7));
    r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  });

  test('an invalid response head (CR in a header value) is a 502, nothing of it is sent', async () => {
    backend.respond = async () => ({ status: 200, headers: [['X-Bad', 'a\r\nSet-Cookie: x=1']], body: null });
    await srv.send(request(8));
    const r = parseReply(await srv.nextReply());
    const text = r.type === 'data' ? r.body.toString() : '';
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.doesNotMatch(text, /Set-Cookie/);
  });

  test('more than maxInflight requests: 503 with Retry-After', async () => {
    const gates: Array<() => void> = [];
    backend.respond = () => new Promise((resolve) => gates.push(() => resolve({ status: 204, headers: [], body: null })));
    await srv.send(request(10));
    await srv.send(request(11));
    await srv.send(request(12));
    const r = parseReply(await srv.nextReply());
    assert.deepEqual(r.ids, [12]);
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 503 Service Unavailable\r\n(.*\r\n)*Retry-After: 1\r\n/);
    for (const g of gates) g();
    const rest = await srv.nextReplies(2);
    assert.deepEqual(rest.map((b) => parseReply(b).ids[0]).sort(), [10, 11]);
  });

  test('a disconnect aborts the backend work of that connection', async () => {
    let aborted!: () => void;
    let called!: () => void;
    const sawAbort = new Promise<void>((resolve) => (aborted = resolve));
    const sawCall = new Promise<void>((resolve) => (called = resolve));
    backend.respond = (r) =>
      new Promise((_resolve, reject) => {
        called();
        r.signal.addEventListener('abort', () => {
          aborted();
          reject(new Error('aborted'));
        });
      });
    await srv.send(request(20));
    await sawCall;
    await srv.send(notice(20, 'disconnect'));
    await sawAbort;
    assert.equal(backend.seen[0]?.signal.aborted, true);
  });

  test('a disconnect mid-stream stops reading the backend body', async () => {
    const body = new PassThrough();
    backend.respond = async () => ({ status: 200, headers: [], body });
    await srv.send(request(21));
    body.write('first');
    await srv.nextReply();
    await srv.send(notice(21, 'disconnect'));
    await new Promise<void>((resolve) => body.once('close', resolve));
    assert.equal(body.destroyed, true);
  });

  test('a body that fails while a reply is on its way is a truncated response, not a crash', async () => {
    let sent = false;
    // Hands over 70 KiB (sent at once), then fails while that reply is being handed to ZeroMQ.
    const body = new Readable({
      read() {
        if (sent) return;
        sent = true;
        this.push(Buffer.alloc(70 * 1024, 1));
        queueMicrotask(() => this.destroy(new Error('backend died')));
      },
    });
    backend.respond = async () => ({ status: 200, headers: [], body });
    await srv.send(request(22));
    const { closed } = await collect(srv, (_t, c) => c);
    assert.equal(closed, true, 'the connection is closed so the client sees the truncation');
  });

  test('the request body reaches the backend with its length', async () => {
    let got = '';
    backend.respond = async (r) => {
      for await (const c of r.body ?? []) got += (c as Buffer).toString();
      return { status: 200, headers: [['Content-Length', String(r.bodyLength)]], body: Readable.from([Buffer.from(got)]) };
    };
    await srv.send(request(30, { method: 'POST', headers: [['content-length', '11']], body: 'hello world' }));
    const r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /Content-Length: 11\r\n\r\nhello world$/);
  });

  test('a temp-file upload is streamed from the checked file, then deleted', async () => {
    const file = path.join(uploadDir, 'upload.abc123');
    await writeFile(file, 'x'.repeat(5000));
    let got = 0;
    backend.respond = async (r) => {
      for await (const c of r.body ?? []) got += (c as Buffer).length;
      return { status: 200, headers: [['Content-Length', '2']], body: Readable.from([Buffer.from('ok')]) };
    };
    const up: Array<[string, HeaderValue]> = [['content-length', '5000'], ['x-mongrel2-upload-start', file]];
    await srv.send(request(31, { method: 'POST', headers: up }));
    await srv.send(request(31, { method: 'POST', headers: [...up, ['x-mongrel2-upload-done', file]] }));
    await srv.nextReply();
    assert.equal(got, 5000);
    assert.equal(backend.seen.length, 1, 'the start message is not served');
    assert.equal(backend.seen[0]?.bodyLength, 5000);
    assert.deepEqual(await readdir(uploadDir), []);
  });

  test('forged upload headers pointing outside the upload dir: 400, backend not called', async () => {
    const up: Array<[string, HeaderValue]> = [['x-mongrel2-upload-start', '/etc/passwd'], ['x-mongrel2-upload-done', '/etc/passwd']];
    await srv.send(request(32, { method: 'POST', headers: up }));
    const r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(backend.seen.length, 0);
  });

  test('a streaming upload is paced by ctl credits and reaches the backend whole', async () => {
    let got = '';
    backend.respond = async (r) => {
      for await (const c of r.body ?? []) got += (c as Buffer).toString();
      return { status: 200, headers: [['Content-Length', '2']], body: Readable.from([Buffer.from('ok')]) };
    };
    const chunk = (offset: number, body: string, done: boolean): Buffer =>
      encodeRequest({ sender: SENDER, connId: 33, path: '/app', headers: [['UPLOAD_STREAM', String(offset)], ...(done ? ([['UPLOAD_STREAM_DONE', '1']] as Array<[string, HeaderValue]>) : [])], body });
    await srv.send(request(33, { method: 'POST', headers: [['content-length', '9'], ['UPLOAD_STREAM', '0']], body: 'abc' }));
    // Mongrel2 sends nothing more until it is granted credits.
    let r = parseReply(await srv.nextReply());
    assert.equal(r.type, 'extended');
    assert.equal(r.type === 'extended' && r.name, 'ctl');
    assert.ok(r.type === 'extended' && typeof (r.args as Record<string, unknown>).credits === 'number');
    await srv.send(chunk(3, 'def', false));
    r = parseReply(await srv.nextReply());
    assert.equal(r.type === 'extended' && r.name, 'ctl');
    await srv.send(chunk(6, 'ghi', true));
    r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(got, 'abcdefghi');
    assert.equal(backend.seen[0]?.bodyLength, 9);
  });

  test('a client leaving mid streaming upload, while the backend is not reading, is no crash', async () => {
    let called!: () => void;
    const sawCall = new Promise<void>((resolve) => (called = resolve));
    backend.respond = (r) =>
      new Promise((_resolve, reject) => {
        called();
        r.signal.addEventListener('abort', () => reject(new Error('client gone')));
      });
    await srv.send(request(37, { method: 'POST', headers: [['content-length', '9'], ['UPLOAD_STREAM', '0']], body: 'abc' }));
    await sawCall;
    await srv.nextReply(); // the first credits grant
    await srv.send(notice(37, 'disconnect'));
    // The bridge is still serving: a later request is answered.
    backend.respond = async () => ({ status: 204, headers: [], body: null });
    await srv.send(request(38));
    const r = parseReply(await srv.nextReply());
    assert.deepEqual(r.ids, [38]);
  });

  test('a streaming-upload chunk for no open upload cancels that connection', async () => {
    await srv.send(encodeRequest({ sender: SENDER, connId: 34, path: '/app', headers: [['UPLOAD_STREAM', '100']], body: 'zzz' }));
    const r = parseReply(await srv.nextReply());
    assert.equal(r.type === 'extended' && r.name, 'ctl');
    assert.deepEqual(r.type === 'extended' && { ...(r.args as Record<string, unknown>) }, { cancel: true });
  });

  test('a sendfile answer: the head, then an X sendfile reply for the same connection', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Length', '31']], body: null, sendfile: '/static.txt' });
    await srv.send(request(35));
    const [head, x] = await srv.nextReplies(2);
    const h = parseReply(head!);
    assert.equal(h.type === 'data' && h.body.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 31\r\n\r\n');
    const r = parseReply(x!);
    assert.equal(r.type, 'extended');
    assert.equal(r.type === 'extended' && r.name, 'sendfile');
    assert.equal(r.type === 'extended' && Buffer.isBuffer(r.args) && r.args.toString(), '/static.txt');
    assert.deepEqual(r.ids, [35]);
  });

  test('a sendfile answer without a length is refused (502): Mongrel2 sends raw bytes', async () => {
    backend.respond = async () => ({ status: 200, headers: [], body: null, sendfile: '/static.txt' });
    await srv.send(request(36));
    const r = parseReply(await srv.nextReply());
    assert.match(r.type === 'data' ? r.body.toString() : '', /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  });

  test('a websocket upgrade is refused with 501 and closed', async () => {
    await srv.send(encodeRequest({ sender: SENDER, connId: 40, path: '/ws', headers: [['PATH', '/ws'], ['METHOD', 'WEBSOCKET_HANDSHAKE']], body: 'acceptkey=' }));
    const { text, closed } = await collect(srv, (_t, c) => c);
    assert.match(text, /^HTTP\/1\.1 501 Not Implemented\r\n/);
    assert.equal(closed, true);
  });

  test('drain waits for in-flight requests, then closes the backend', async () => {
    let release!: () => void;
    backend.respond = () => new Promise((resolve) => (release = () => resolve({ status: 204, headers: [], body: null })));
    await srv.send(request(50));
    while (bridge.inflight === 0) await new Promise((r) => setImmediate(r));
    const draining = bridge.drain(5000);
    release();
    const r = parseReply(await srv.nextReply());
    assert.deepEqual(r.ids, [50]);
    await draining;
    assert.equal(backend.closed, true);
  });

  /** A body that has ended with all of it buffered, as an in-process app's usually is. */
  const ended = (...chunks: string[]): Readable => {
    const body = new Readable({ read: () => undefined });
    for (const c of chunks) body.push(c);
    body.push(null);
    return body;
  };

  test('a body already ended and buffered goes out whole, chunked, in one message', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Type', 'text/plain']], body: ended('ab', 'cde') });
    await srv.send(request(60));
    const { text, messages } = await collect(srv, (t) => t.endsWith('0\r\n\r\n'));
    assert.equal(text, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n');
    assert.equal(messages, 1);
  });

  test('a buffered body longer than its Content-Length is cut to it; a shorter one is followed by the close message', async () => {
    backend.respond = async () => ({ status: 200, headers: [['Content-Length', '3']], body: ended('abc', 'def') });
    await srv.send(request(61));
    const long = parseReply(await srv.nextReply());
    assert.equal(long.type === 'data' && long.body.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
    backend.respond = async () => ({ status: 200, headers: [['Content-Length', '9']], body: ended('abc') });
    await srv.send(request(62));
    const { text, closed } = await collect(srv, (_t, c) => c);
    assert.equal(text, 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc');
    assert.equal(closed, true);
  });

  test('the cancel hook is called once on a disconnect, and a signal first read afterwards is already aborted', async () => {
    let hooked!: () => void;
    const calls: unknown[] = [];
    const sawHook = new Promise<void>((resolve) => (hooked = resolve));
    backend.respond = (r) =>
      new Promise((_resolve, reject) => {
        assert.ok(r.cancel, 'the bridge hands a cancel switch');
        assert.equal(r.cancel.aborted, false);
        r.cancel.hook = {
          cancelled: (reason) => {
            calls.push(reason);
            reject(reason);
          },
        };
        hooked();
      });
    await srv.send(request(63));
    await sawHook;
    await srv.send(notice(63, 'disconnect'));
    // The notice has been handled once the next request's answer is out.
    backend.respond = async () => ({ status: 204, headers: [], body: null });
    await srv.send(request(64));
    await srv.nextReply();
    assert.equal(calls.length, 1);
    assert.match(String(calls[0]), /client 63 disconnected/);
    const first = backend.seen[0]!;
    assert.equal(first.cancel?.aborted, true);
    assert.equal(first.signal.aborted, true);
    assert.match(String(first.signal.reason), /client 63 disconnected/);
  });
});

describe('Bridge with a router', () => {
  test("every routed backend is told of disconnects and closed by drain()", async () => {
    const srv = await FakeServer.start();
    const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: pino({ level: 'silent' }) });
    await conn.ready();
    const told: Array<[string, number]> = [];
    const make = (name: string): ScriptedBackend & { disconnected(id: number): void } => Object.assign(new ScriptedBackend(), { disconnected: (id: number) => void told.push([name, id]) });
    const a = make('a');
    const b = make('b');
    const bridge = new Bridge({ connection: conn, backend: (req) => (req.path.startsWith('/a') ? a : b), backends: [a, b], logger: pino({ level: 'silent' }) });
    void bridge.run();
    try {
      await srv.send(notice(41, 'disconnect'));
      // The notice is handled when the next message is: send a request and wait for its answer.
      await srv.send(request(42));
      await srv.nextReply();
      assert.deepEqual(told, [['a', 41], ['b', 41]]);
    } finally {
      await bridge.drain(1000);
      await srv.close();
    }
    assert.equal(a.closed && b.closed, true);
  });
});
