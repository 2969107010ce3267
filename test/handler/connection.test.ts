/**
 * The handler-side Connection against an in-process stand-in for Mongrel2
 * (test/support/fake-server.ts): PUSH at send_spec, SUB at recv_spec.
 * References are to /work/shared/reference/handler-protocol.md.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import { Connection, UploadError, type ConnectionOptions, type Request } from '../../src/handler/index.js';
import {
  ProtocolError,
  encodeRequest,
  parseReply,
  type DataReply,
  type HeaderValue,
  type Reply,
  type RequestInit,
} from '../../src/protocol/index.js';
import { FakeServer, unboundEndpoints } from '../support/fake-server.js';

const silent = pino({ level: 'silent' });
const SUITE = { timeout: 15_000 };
const WAIT_MS = 5_000;

// ---- helpers ---------------------------------------------------------------

/** Rejects (failing the test) if `p` does not settle within `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lets every pending promise callback run (no timers involved). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function setup(t: TestContext, options: Partial<ConnectionOptions> = {}): Promise<{ srv: FakeServer; conn: Connection }> {
  const srv = await FakeServer.start();
  const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: silent, ...options });
  t.after(async () => {
    await conn.shutdown(200);
    await srv.close();
  });
  await within(conn.ready(), 'the server subscription');
  return { srv, conn };
}

async function next(conn: Connection): Promise<Request> {
  const req = await within(conn.recv(), 'a request');
  assert.ok(req, 'recv() resolved undefined');
  return req;
}

function httpRequest(
  connId: number,
  extra: ReadonlyArray<readonly [string, HeaderValue]> = [],
  init: { method?: string; version?: string; body?: string | Buffer; sender?: string; protocol?: RequestInit['protocol'] } = {},
): Buffer {
  return encodeRequest({
    sender: init.sender ?? 'S',
    connId,
    path: '/p',
    headers: [['PATH', '/p'], ['METHOD', init.method ?? 'GET'], ['VERSION', init.version ?? 'HTTP/1.1'], ...extra],
    body: init.body ?? '',
    protocol: init.protocol ?? 'json',
  });
}

function disconnectNotice(connId: number, sender = 'S'): Buffer {
  return encodeRequest({ sender, connId, path: '@*', headers: [['METHOD', 'JSON']], body: '{"type":"disconnect"}' });
}

function creditsNotice(connId: number, credits: number, sender = 'S'): Buffer {
  return encodeRequest({
    sender,
    connId,
    path: '@*',
    headers: [['METHOD', 'JSON'], ['DOWNLOAD_CREDITS', String(credits)]],
    body: '{"type":"credits"}',
  });
}

async function nextParsed(srv: FakeServer): Promise<Reply> {
  return parseReply(await srv.nextReply());
}

function asData(reply: Reply): DataReply {
  assert.equal(reply.type, 'data', `expected a data reply, got ${reply.type}`);
  return reply as DataReply;
}

/**
 * Proves that nothing else was published before this point: sends a reply to
 * an id nobody else uses and checks it is the very next one the server sees.
 */
async function assertNothingQueued(conn: Connection, srv: FakeServer, markerId = 999_999): Promise<void> {
  const sent = conn.reply({ sender: 'M', connId: markerId }, 'marker');
  const reply = asData(await nextParsed(srv));
  assert.deepEqual(reply.ids, [markerId], 'another reply was published before the marker');
  assert.equal(reply.body.toString(), 'marker');
  assert.equal(await sent, true);
}

/** A pino logger writing JSON lines into `lines`. */
function memoryLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        for (const line of chunk.split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines };
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) % 251;
  return b;
}

// Captured frames from the real server (handler-protocol.md §1.2, §1.3, §2, §6, §8).
const CAPTURED_JSON_GET = Buffer.from(
  'aaaa-json-ident 1 /json 322:{"PATH":"/json","x-forwarded-for":"127.0.0.1","x-mongrel2-upload-done":"/etc/passwd","x-tab":"a\tb","x-quote":"say \\"hi\\" \\\\ ok","accept":["a/b","c/d"],"host":"localhost:16767","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/json?x=1&y=%20z","QUERY":"x=1&y=%20z","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},0:,',
  'latin1',
);
const CAPTURED_JSON_POST = Buffer.from(
  'aaaa-json-ident 1 /json 222:{"PATH":"/json","x-forwarded-for":"127.0.0.1","connection":"close","content-length":"5","host":"localhost","METHOD":"POST","VERSION":"HTTP/1.1","URI":"/json","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},5:hello,',
  'latin1',
);
const CAPTURED_TNET_GET = Buffer.from(
  'bbbb-tnet-ident 2 /tnet/abc 246:11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tnet,8:FRAGMENT,4:frag,5:QUERY,3:q=1,3:URI,13:/tnet/abc?q=1,7:VERSION,8:HTTP/1.1,4:PATH,9:/tnet/abc,4:host,9:localhost,6:accept,8:1:a,1:b,]15:x-forwarded-for,9:127.0.0.1,}0:,',
  'latin1',
);
const CAPTURED_WS_HANDSHAKE = Buffer.from(
  'aaaa-json-ident 3 /ws 360:{"PATH":"/ws","x-forwarded-for":"127.0.0.1","origin":"http://x","connection":"keep-alive, Upgrade","sec-websocket-version":"13","sec-websocket-key":"MDEyMzQ1Njc4OWFiY2RlZg==","host":"localhost","upgrade":"WebSocket","METHOD":"WEBSOCKET_HANDSHAKE","VERSION":"HTTP/1.1","URI":"/ws?a=b","QUERY":"a=b","PATTERN":"/ws","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},28:BACScCJPNqyz+UBoqMH89VmURoA=,',
  'latin1',
);
const CAPTURED_JSSOCKET = Buffer.from(
  'aaaa-json-ident 1 @chat 126:{"PATH":"@chat","x-forwarded-for":"127.0.0.1","METHOD":"JSON","PATTERN":"@chat","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},28:{"type":"join","user":"zed"},',
  'latin1',
);
const CAPTURED_JSON_DISCONNECT = Buffer.from('aaaa-json-ident 3 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},', 'latin1');
const CAPTURED_TNET_DISCONNECT = Buffer.from('bbbb-tnet-ident 2 @* 16:6:METHOD,4:JSON,}21:{"type":"disconnect"},', 'latin1');
const CAPTURED_TNET_CREDITS = Buffer.from('bbbb-tnet-ident 2 @* 44:16:DOWNLOAD_CREDITS,5:12345,6:METHOD,4:JSON,}18:{"type":"credits"},', 'latin1');

// ---- receiving -----------------------------------------------------------------

describe('Connection: receiving requests', SUITE, () => {
  test('for await yields a JSON-header request with every field (raw TAB, duplicate header as a list)', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(CAPTURED_JSON_GET);
    let req: Request | undefined;
    for await (const r of conn) {
      req = r;
      break;
    }
    assert.ok(req);
    assert.equal(req.kind, 'http');
    assert.equal(req.protocol, 'json');
    assert.equal(req.sender, 'aaaa-json-ident');
    assert.equal(req.connId, 1);
    assert.equal(req.path, '/json');
    assert.equal(req.kind === 'http' ? req.method : undefined, 'GET');
    assert.equal(req.headers['x-tab'], 'a\tb');
    assert.equal(req.headers['x-quote'], 'say "hi" \\ ok');
    assert.deepEqual(req.headers.accept, ['a/b', 'c/d']);
    assert.equal(req.headers.QUERY, 'x=1&y=%20z');
    assert.equal(req.headers.VERSION, 'HTTP/1.1');
    assert.equal(req.headers.REMOTE_ADDR, '127.0.0.1');
    assert.equal(req.body.length, 0);
  });

  test('recv() returns a TNET-header request; a POST body arrives as bytes', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(CAPTURED_TNET_GET);
    await srv.send(CAPTURED_JSON_POST);
    const tnet = await next(conn);
    assert.equal(tnet.kind, 'http');
    assert.equal(tnet.protocol, 'tnetstring');
    assert.equal(tnet.sender, 'bbbb-tnet-ident');
    assert.equal(tnet.connId, 2);
    assert.equal(tnet.path, '/tnet/abc');
    assert.equal(tnet.kind === 'http' ? tnet.method : undefined, 'GET');
    assert.equal(tnet.headers.FRAGMENT, 'frag');
    assert.equal(tnet.headers.URI, '/tnet/abc?q=1');
    assert.deepEqual(tnet.headers.accept, ['a', 'b']);
    assert.equal(tnet.headers.host, 'localhost');

    const post = await next(conn);
    assert.equal(post.kind, 'http');
    assert.equal(post.kind === 'http' ? post.method : undefined, 'POST');
    assert.equal(post.headers['content-length'], '5');
    assert.deepEqual(post.body, Buffer.from('hello'));
  });

  test('websocket handshakes, websocket frames, JSSocket messages and upload chunks get their own kinds', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(CAPTURED_WS_HANDSHAKE);
    await srv.send(
      encodeRequest({ sender: 'S', connId: 3, path: '/ws', headers: [['PATH', '/ws'], ['METHOD', 'WEBSOCKET'], ['FLAGS', '0x82']], body: Buffer.from([0, 1, 2]) }),
    );
    await srv.send(CAPTURED_JSSOCKET);
    await srv.send(encodeRequest({ sender: 'S', connId: 4, path: '/up', headers: [['UPLOAD_STREAM', '100'], ['UPLOAD_STREAM_DONE', '1']], body: 'tail' }));

    const hs = await next(conn);
    assert.equal(hs.kind, 'websocket-handshake');
    assert.equal(hs.kind === 'websocket-handshake' ? hs.accept : undefined, 'BACScCJPNqyz+UBoqMH89VmURoA=');
    assert.equal(hs.connId, 3);

    const frame = await next(conn);
    assert.equal(frame.kind, 'websocket');
    if (frame.kind === 'websocket') {
      assert.equal(frame.flags, 0x82);
      assert.equal(frame.opcode, 2);
    }
    assert.deepEqual(frame.body, Buffer.from([0, 1, 2]));

    const sock = await next(conn);
    assert.equal(sock.kind, 'socket');
    assert.equal(sock.path, '@chat');
    assert.equal(sock.body.toString(), '{"type":"join","user":"zed"}');

    const chunk = await next(conn);
    assert.equal(chunk.kind, 'upload-chunk');
    if (chunk.kind === 'upload-chunk') {
      assert.equal(chunk.offset, 100);
      assert.equal(chunk.done, true);
    }
    assert.equal(chunk.body.toString(), 'tail');
  });

  test('requests are delivered in order to recv() and the iterator alike, including ones that arrived before anyone waited', async (t) => {
    const { srv, conn } = await setup(t);
    // Readers that wait before anything arrived are served in call order.
    const r1 = conn.recv();
    const r2 = conn.recv();
    await srv.send(httpRequest(9));
    await srv.send(httpRequest(10));
    assert.equal((await within(r1, 'the first waiting recv()'))?.connId, 9);
    assert.equal((await within(r2, 'the second waiting recv()'))?.connId, 10);
    for (const id of [11, 12, 13, 14]) await srv.send(httpRequest(id));
    // 11 and 12 may already be buffered; 13 and 14 may not: either way the order holds.
    assert.equal((await next(conn)).connId, 11);
    const it = conn[Symbol.asyncIterator]();
    const second = await within(it.next(), 'the iterator');
    assert.equal(second.done, false);
    assert.equal(second.value?.connId, 12);
    assert.equal((await next(conn)).connId, 13);
    // recv() calls are served in call order, whether or not 14 is already buffered.
    const waiting = conn.recv();
    const after = conn.recv();
    await srv.send(httpRequest(15));
    assert.equal((await within(waiting, 'the first recv()'))?.connId, 14);
    assert.equal((await within(after, 'the second recv()'))?.connId, 15);
  });

  test('onMessage(): queued requests first, then each as it arrives, synchronously and in order; a throwing callback is logged and delivery goes on; it resolves when receiving stops', async (t) => {
    const { logger, lines } = memoryLogger();
    const { srv, conn } = await setup(t, { logger });
    await srv.send(httpRequest(21));
    await srv.send(httpRequest(22));
    // 21 is queued for sure once recv() has it; 22 may or may not be.
    assert.equal((await next(conn)).connId, 21);
    const seen: number[] = [];
    let all: () => void = () => undefined;
    const got = new Promise<void>((resolve) => (all = resolve));
    const stopped = conn.onMessage((req) => {
      seen.push(req.connId);
      if (req.connId === 23) throw new Error('callback boom');
      if (seen.length === 3) all();
    });
    assert.throws(() => conn.onMessage(() => undefined), /already set/);
    await srv.send(httpRequest(23));
    await srv.send(httpRequest(24));
    await within(got, 'three requests through onMessage');
    assert.deepEqual(seen, [22, 23, 24]);
    assert.ok(lines.some((l) => l.level === 50 && /onMessage callback threw/.test(String(l.msg))), JSON.stringify(lines));
    await conn.stopReceiving();
    await within(stopped, 'onMessage() resolving after stopReceiving()');
  });

  test('a multi-part message is skipped with a warning and the next request is delivered', async (t) => {
    const { logger, lines } = memoryLogger();
    const { srv, conn } = await setup(t, { logger });
    await srv.send([httpRequest(1), httpRequest(2)]);
    await srv.send(httpRequest(3));
    assert.equal((await next(conn)).connId, 3);
    assert.ok(
      lines.some((l) => l.level === 40),
      `no warning about the 2-part message: ${JSON.stringify(lines)}`,
    );
  });
});

// ---- HTTP replies --------------------------------------------------------------

describe('Connection: replyHttp', SUITE, () => {
  test('writes exactly `SENDER 1:5, HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nhi` and no close for HTTP/1.1', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    const raw = await srv.nextReply();
    assert.equal(raw.toString('latin1'), 'S 1:5, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    const parsed = asData(parseReply(raw));
    assert.equal(parsed.sender, 'S');
    assert.deepEqual(parsed.ids, [5]);
    await assertNothingQueued(conn, srv);
  });

  test('Content-Length counts UTF-8 bytes; status, reason and headers are written as given', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(6));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'héllo', { status: 404, reason: 'Nope', headers: { 'Content-Type': 'text/plain' } }), true);
    const raw = await srv.nextReply();
    assert.deepEqual(raw, Buffer.concat([Buffer.from('S 1:6, HTTP/1.1 404 Nope\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n'), Buffer.from('héllo', 'utf8')]));
  });

  test('HEAD: the body is left out but Content-Length is kept', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5, [], { method: 'HEAD' }));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n');
    await assertNothingQueued(conn, srv);
  });

  test('HTTP/1.0: the close message `SENDER 1:5, ` follows the response', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5, [], { version: 'HTTP/1.0' }));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    const close = await srv.nextReply();
    assert.equal(close.toString('latin1'), 'S 1:5, ');
    assert.deepEqual(parseReply(close), { type: 'close', sender: 'S', ids: [5] });
    await assertNothingQueued(conn, srv);
  });

  test('`Connection: close`: the close message follows the response', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5, [['connection', 'close']]));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, ');
    await assertNothingQueued(conn, srv);
  });

  test('`close: false` keeps an HTTP/1.0 connection open; `close: true` closes an HTTP/1.1 one', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5, [], { version: 'HTTP/1.0' }));
    await srv.send(httpRequest(6));
    const old = await next(conn);
    const cur = await next(conn);
    assert.equal(await conn.replyHttp(old, 'a', { close: false }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na');
    await assertNothingQueued(conn, srv);
    assert.equal(await conn.replyHttp(cur, 'b', { close: true }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:6, HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:6, ');
  });

  test('replyWebsocket sends an unmasked frame; acceptWebsocket sends the 101 with the server-computed key', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(CAPTURED_WS_HANDSHAKE);
    const hs = await next(conn);
    assert.equal(hs.kind, 'websocket-handshake');
    if (hs.kind !== 'websocket-handshake') return;
    assert.equal(await conn.acceptWebsocket(hs), true);
    assert.equal(
      (await srv.nextReply()).toString('latin1'),
      'aaaa-json-ident 1:3, HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: BACScCJPNqyz+UBoqMH89VmURoA=\r\n\r\n',
    );
    assert.equal(await conn.replyWebsocket(hs, 'hello'), true);
    assert.deepEqual(await srv.nextReply(), Buffer.concat([Buffer.from('aaaa-json-ident 1:3, '), Buffer.from([0x81, 0x05]), Buffer.from('hello')]));
  });
});

// ---- sender ids ----------------------------------------------------------------

describe('Connection: reply sender ids', SUITE, () => {
  test('a send_ident outside [A-Za-z0-9-]+ (my_handler) is replaced by a valid id, also on the close message', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(5, [], { sender: 'my_handler', version: 'HTTP/1.0' }));
    const req = await next(conn);
    assert.equal(req.sender, 'my_handler');
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    const data = asData(parseReply(await srv.nextReply()));
    assert.match(data.sender, /^[A-Za-z0-9-]+$/);
    assert.notEqual(data.sender, 'my_handler');
    assert.deepEqual(data.ids, [5]);
    assert.equal(data.body.toString('latin1'), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    const close = parseReply(await srv.nextReply());
    assert.equal(close.type, 'close');
    assert.match(close.sender, /^[A-Za-z0-9-]+$/);
  });

  test('the senderId option wins over a valid request sender', async (t) => {
    const { srv, conn } = await setup(t, { senderId: 'handler-7' });
    await srv.send(httpRequest(5, [], { sender: 'aaaa-json-ident' }));
    const req = await next(conn);
    assert.equal(await conn.reply(req, 'x'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'handler-7 1:5, x');
    assert.equal(await conn.close(req), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'handler-7 1:5, ');
  });

  test('an invalid senderId option is refused', () => {
    assert.throws(
      () => new Connection({ sendSpec: 'tcp://127.0.0.1:1', recvSpec: 'tcp://127.0.0.1:2', senderId: 'a_b', logger: silent }),
      TypeError,
    );
  });
});

// ---- deliver / close -----------------------------------------------------------

describe('Connection: deliver and close', SUITE, () => {
  test('deliver to 300 ids sends 3 messages of 128, 128 and 44 ids', async (t) => {
    const { srv, conn } = await setup(t);
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    assert.equal(await conn.deliver('S', ids, 'news'), true);
    const replies = (await srv.nextReplies(3)).map((r) => asData(parseReply(r)));
    assert.deepEqual(replies.map((r) => r.ids.length), [128, 128, 44]);
    assert.deepEqual(replies.flatMap((r) => r.ids), ids);
    for (const r of replies) {
      assert.equal(r.sender, 'S');
      assert.equal(r.body.toString(), 'news');
    }
    await assertNothingQueued(conn, srv);
  });

  test('duplicate ids are sent once', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.deliver('S', [3, 1, 3, 2, 1, 3], 'x'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 5:3 1 2, x');
    await assertNothingQueued(conn, srv);
  });

  test('the maxTargets option caps the ids per message', async (t) => {
    const { srv, conn } = await setup(t, { maxTargets: 2 });
    assert.equal(await conn.deliver('S', [1, 2, 3, 4, 5], 'y'), true);
    const raw = await srv.nextReplies(3);
    assert.deepEqual(raw.map((r) => r.toString('latin1')), ['S 3:1 2, y', 'S 3:3 4, y', 'S 1:5, y']);
  });

  test('close() and deliverClose() send the close message', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.close({ sender: 'S', connId: 5 }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:5, ');
    assert.equal(await conn.deliverClose('S', [1, 2, 2, 3]), true);
    const raw = await srv.nextReply();
    assert.equal(raw.toString('latin1'), 'S 5:1 2 3, ');
    assert.deepEqual(parseReply(raw), { type: 'close', sender: 'S', ids: [1, 2, 3] });
    await assertNothingQueued(conn, srv);
  });

  test('an empty body is refused (it would be the close message) and nothing is sent', async (t) => {
    const { srv, conn } = await setup(t);
    await assert.rejects(conn.deliver('S', [1, 2], ''), TypeError);
    await assert.rejects(conn.reply({ sender: 'S', connId: 1 }, Buffer.alloc(0)), TypeError);
    await assertNothingQueued(conn, srv);
  });

  test('replyJson and deliverJson send JSON text', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.replyJson({ sender: 'S', connId: 4 }, { type: 'userList', users: ['zed'] }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:4, {"type":"userList","users":["zed"]}');
    assert.equal(await conn.deliverJson('S', [4, 5], { a: 1 }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 3:4 5, {"a":1}');
  });
});

// ---- extended replies ------------------------------------------------------------

describe('Connection: ctl, sendfile and upload credits (§4.1, §4.2)', SUITE, () => {
  const to = { sender: 'UUID', connId: 7 };

  test('grantUploadCredits(65536)', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.grantUploadCredits(to, 65536), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'UUID 3:X 7, 28:3:ctl,18:7:credits,5:65536#}]');
  });

  test('ctl keep-alive and cancel', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.ctl(to, { keepAlive: true }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'UUID 3:X 7, 31:3:ctl,21:10:keep-alive,4:true!}]');
    assert.equal(await conn.ctl(to, { cancel: true }), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'UUID 3:X 7, 26:3:ctl,16:6:cancel,4:true!}]');
  });

  test('sendfile', async (t) => {
    const { srv, conn } = await setup(t);
    assert.equal(await conn.sendfile({ sender: 'UUID', connId: 5 }, '/data/big.iso'), true);
    const raw = await srv.nextReply();
    assert.equal(raw.toString('latin1'), 'UUID 3:X 5, 28:8:sendfile,13:/data/big.iso,]');
    const parsed = parseReply(raw);
    assert.equal(parsed.type, 'extended');
    assert.deepEqual(parsed.ids, [5]);
  });

  test('invalid ctl/sendfile arguments make the returned promise reject, and nothing is sent', async (t) => {
    const { srv, conn } = await setup(t);
    // A float in an X body crashes Mongrel2 (§4.3); an empty path is meaningless.
    // These methods return promises, so a bad argument must reject them, not throw
    // synchronously past a caller's `.catch()`.
    let credits: Promise<boolean> | undefined;
    assert.doesNotThrow(() => {
      credits = conn.grantUploadCredits(to, 1.5);
      credits.catch(() => undefined);
    }, 'grantUploadCredits threw synchronously instead of rejecting');
    await assert.rejects(credits!, ProtocolError);
    let file: Promise<boolean> | undefined;
    assert.doesNotThrow(() => {
      file = conn.sendfile(to, '');
      file.catch(() => undefined);
    }, 'sendfile threw synchronously instead of rejecting');
    await assert.rejects(file!, ProtocolError);
    await assertNothingQueued(conn, srv);
  });
});

// ---- malformed input -------------------------------------------------------------

describe('Connection: malformed messages from the server', SUITE, () => {
  const header = '{"PATH":"/p","METHOD":"GET"}';
  const good = Buffer.from(`S 1 /p ${header.length}:${header},0:,`, 'latin1');
  const cases: Array<[string, Buffer]> = [
    ['garbage', Buffer.from('garbage', 'latin1')],
    ['a truncated netstring', good.subarray(0, good.length - 12)],
    ['a header netstring with the wrong length', Buffer.from(`S 1 /p ${header.length + 1}:${header},0:,`, 'latin1')],
    ['a body netstring with the wrong length', Buffer.from(`S 1 /p ${header.length}:${header},5:hi,`, 'latin1')],
    ['trailing bytes after the body', Buffer.concat([good, Buffer.from('xx')])],
  ];

  for (const [name, bad] of cases) {
    test(`${name} is skipped with a 'malformed' event and an error log naming the offset`, async (t) => {
      const { logger, lines } = memoryLogger();
      const { srv, conn } = await setup(t, { logger });
      const malformed = once(conn, 'malformed');
      await srv.send(bad);
      await srv.send(httpRequest(42));
      const [err, raw] = (await within(malformed, "the 'malformed' event")) as [unknown, unknown];
      assert.ok(err instanceof ProtocolError, 'the event carries a ProtocolError');
      assert.equal(typeof err.offset, 'number');
      assert.ok(Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= bad.length, `offset ${err.offset} is inside the message`);
      assert.deepEqual(raw, bad);
      const logged = lines.find((l) => l.level === 50 && (l.offset === err.offset || String(l.msg).includes(`byte ${err.offset}`)));
      assert.ok(logged, `no error-level log line with offset ${err.offset}: ${JSON.stringify(lines)}`);
      const req = await next(conn);
      assert.equal(req.connId, 42, 'the next valid request is delivered');
    });
  }
});

// ---- notices -------------------------------------------------------------------

describe('Connection: disconnect and credits notices (§2)', SUITE, () => {
  test('a disconnect is not yielded; it emits "disconnect" and aborts signals taken before and after it', async (t) => {
    const { srv, conn } = await setup(t);
    const before = conn.signal(3);
    assert.equal(before.aborted, false);
    const other = conn.signal(4);
    let abortEvents = 0;
    before.addEventListener('abort', () => abortEvents++);
    const disconnected = once(conn, 'disconnect');
    await srv.send(disconnectNotice(3));
    await srv.send(httpRequest(4));

    const it = conn[Symbol.asyncIterator]();
    const first = await within(it.next(), 'the iterator');
    assert.equal(first.done, false);
    assert.equal(first.value?.connId, 4, 'the disconnect notice was yielded');
    assert.equal(first.value?.kind, 'http');

    const [notice] = await within(disconnected, "the 'disconnect' event");
    assert.equal(notice.kind, 'disconnect');
    assert.equal(notice.connId, 3);
    assert.equal(before.aborted, true);
    assert.equal(abortEvents, 1);
    assert.equal(conn.isGone(3), true);
    assert.equal(conn.signal(3).aborted, true, 'a signal taken after the notice is already aborted');
    assert.equal(other.aborted, false);
    assert.equal(conn.signal(4).aborted, false);
    assert.equal(conn.isGone(4), false);
  });

  test('the captured JSON and TNET disconnect notices are recognised', async (t) => {
    const { srv, conn } = await setup(t);
    const seen: number[] = [];
    conn.on('disconnect', (n) => seen.push(n.connId));
    const jsonSignal = conn.signal(3);
    const tnetSignal = conn.signal(2);
    await srv.send(CAPTURED_JSON_DISCONNECT);
    await srv.send(CAPTURED_TNET_DISCONNECT);
    await srv.send(httpRequest(9));
    assert.equal((await next(conn)).connId, 9);
    assert.deepEqual(seen, [3, 2]);
    assert.equal(jsonSignal.aborted, true);
    assert.equal(tnetSignal.aborted, true);
  });

  test('a credits notice emits "credits" and is not yielded', async (t) => {
    const { srv, conn } = await setup(t);
    const credited = once(conn, 'credits');
    await srv.send(CAPTURED_TNET_CREDITS);
    await srv.send(httpRequest(9));
    assert.equal((await next(conn)).connId, 9);
    const [notice] = await within(credited, "the 'credits' event");
    assert.equal(notice.connId, 2);
    assert.equal(notice.credits, 12345);
  });
});

// ---- download flow control ------------------------------------------------------

describe('Connection: download credits (§7)', SUITE, () => {
  async function flowControlled(t: TestContext, extra: ReadonlyArray<readonly [string, HeaderValue]> = [], version = 'HTTP/1.1') {
    const env = await setup(t);
    await env.srv.send(httpRequest(7, [['DOWNLOAD_CREDITS', '100'], ...extra], { version }));
    const req = await next(env.conn);
    assert.equal(req.kind === 'http' ? req.downloadCredits : undefined, 100);
    assert.equal(env.conn.credits(7), 100);
    return { ...env, req };
  }

  test('a 250-byte reply goes out as 100, then 100, then 50 bytes, each only after a credits notice', async (t) => {
    const { srv, conn, req } = await flowControlled(t);
    const body = pattern(250);
    const done = conn.reply(req, body);

    const c1 = asData(await nextParsed(srv));
    assert.deepEqual(c1.ids, [7]);
    assert.equal(c1.body.length, 100);
    assert.equal(conn.credits(7), 0);
    await assertNothingQueued(conn, srv);

    await srv.send(creditsNotice(7, 100));
    const c2 = asData(await nextParsed(srv));
    assert.deepEqual(c2.ids, [7]);
    assert.equal(c2.body.length, 100);
    assert.equal(conn.credits(7), 0);
    await assertNothingQueued(conn, srv);

    await srv.send(creditsNotice(7, 100));
    const c3 = asData(await nextParsed(srv));
    assert.deepEqual(c3.ids, [7]);
    assert.equal(c3.body.length, 50);
    assert.equal(await within(done, 'the reply promise'), true);
    assert.equal(conn.credits(7), 50);
    assert.deepEqual(Buffer.concat([c1.body, c2.body, c3.body]), body);
    await assertNothingQueued(conn, srv);
  });

  test('a connection without DOWNLOAD_CREDITS has no window and gets big replies in one piece', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(8));
    const req = await next(conn);
    assert.equal(conn.credits(8), undefined);
    const body = pattern(250);
    assert.equal(await conn.reply(req, body), true);
    assert.deepEqual(asData(await nextParsed(srv)).body, body);
  });

  test('a second reply queued behind the first does not overtake it', async (t) => {
    const { srv, conn, req } = await flowControlled(t);
    const body = pattern(250);
    const first = conn.reply(req, body);
    const second = conn.reply(req, 'second');

    const got: Buffer[] = [asData(await nextParsed(srv)).body];
    assert.equal(got[0]!.length, 100);
    await assertNothingQueued(conn, srv);
    await srv.send(creditsNotice(7, 100));
    got.push(asData(await nextParsed(srv)).body);
    await assertNothingQueued(conn, srv);
    await srv.send(creditsNotice(7, 100));
    got.push(asData(await nextParsed(srv)).body);
    got.push(asData(await nextParsed(srv)).body);
    assert.deepEqual(got.map((b) => b.length), [100, 100, 50, 6]);
    assert.deepEqual(Buffer.concat(got.slice(0, 3)), body);
    assert.equal(got[3]!.toString(), 'second');
    assert.equal(await within(first, 'the first reply'), true);
    assert.equal(await within(second, 'the second reply'), true);
    assert.equal(conn.credits(7), 44);
  });

  test('replyHttp on an HTTP/1.0 flow-controlled connection: the close message comes after the last byte', async (t) => {
    const { srv, conn, req } = await flowControlled(t, [], 'HTTP/1.0');
    const body = pattern(150);
    const done = conn.replyHttp(req, body);
    const got: Buffer[] = [asData(await nextParsed(srv)).body];
    assert.equal(got[0]!.length, 100);
    await assertNothingQueued(conn, srv);
    await srv.send(creditsNotice(7, 1000));
    for (;;) {
      const r = await nextParsed(srv);
      if (r.type === 'close') {
        assert.deepEqual(r.ids, [7]);
        break;
      }
      got.push(asData(r).body);
    }
    const full = Buffer.concat(got);
    const head = `HTTP/1.1 200 OK\r\nContent-Length: 150\r\n\r\n`;
    assert.deepEqual(full, Buffer.concat([Buffer.from(head, 'latin1'), body]));
    assert.equal(await within(done, 'replyHttp'), true);
  });

  test('close() queued behind a waiting reply is sent after its last byte', async (t) => {
    const { srv, conn, req } = await flowControlled(t);
    const body = pattern(250);
    const data = conn.reply(req, body);
    const closed = conn.close(req);
    const got: Buffer[] = [asData(await nextParsed(srv)).body];
    await assertNothingQueued(conn, srv);
    await srv.send(creditsNotice(7, 1000));
    got.push(asData(await nextParsed(srv)).body);
    assert.deepEqual(Buffer.concat(got), body);
    assert.deepEqual(await nextParsed(srv), { type: 'close', sender: 'S', ids: [7] });
    assert.equal(await within(data, 'the reply'), true);
    assert.equal(await within(closed, 'the close'), true);
  });

  test('a flow-controlled id listed twice in deliver() is written once', async (t) => {
    const { srv, conn } = await flowControlled(t);
    assert.equal(await conn.deliver('S', [7, 7], 'abc'), true);
    const r = asData(await nextParsed(srv));
    assert.deepEqual(r.ids, [7]);
    assert.equal(r.body.toString(), 'abc');
    assert.equal(conn.credits(7), 97);
    await assertNothingQueued(conn, srv);
  });

  test('a disconnect makes the pending reply (and one queued behind it) resolve false', async (t) => {
    const { srv, conn, req } = await flowControlled(t);
    const first = conn.reply(req, pattern(250));
    const second = conn.reply(req, 'second');
    assert.equal(asData(await nextParsed(srv)).body.length, 100);
    await srv.send(disconnectNotice(7));
    assert.equal(await within(first, 'the pending reply'), false);
    assert.equal(await within(second, 'the queued reply'), false);
    assert.equal(conn.credits(7), undefined);
    await assertNothingQueued(conn, srv);
  });
});

// ---- the slow joiner ----------------------------------------------------------------

describe('Connection: replies before the server subscribed', SUITE, () => {
  test('a reply sent before the server SUB is bound is delivered once it is', async (t) => {
    const [sendSpec, recvSpec] = await unboundEndpoints(t);
    const conn = new Connection({ sendSpec, recvSpec, logger: silent });
    let srv: FakeServer | undefined;
    t.after(async () => {
      await conn.shutdown(200);
      await srv?.close();
    });
    let ready = false;
    void conn.ready().then(() => (ready = true));
    const early = conn.reply({ sender: 'S', connId: 1 }, 'early');
    let earlySettled = false;
    void early.then(() => (earlySettled = true));
    await flush();
    assert.equal(ready, false);
    assert.equal(earlySettled, false, 'the reply was let out with no subscriber (it would be lost)');

    srv = await FakeServer.start({ sendSpec, recvSpec });
    await within(conn.ready(), 'the server subscription');
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:1, early');
    assert.equal(await early, true);

    await srv.send(httpRequest(2));
    const req = await next(conn);
    assert.equal(await conn.replyHttp(req, 'hi'), true);
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:2, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
  });

  test('with no server, replies beyond maxOutbox resolve false at once and shutdown gives up on the rest', async (t) => {
    const [sendSpec, recvSpec] = await unboundEndpoints(t);
    const conn = new Connection({ sendSpec, recvSpec, logger: silent, maxOutbox: 2 });
    let closed = false;
    t.after(async () => {
      if (!closed) await conn.shutdown(0);
    });
    const a = conn.reply({ sender: 'S', connId: 1 }, 'a');
    const b = conn.reply({ sender: 'S', connId: 1 }, 'b');
    assert.equal(await conn.reply({ sender: 'S', connId: 1 }, 'c'), false);
    await within(conn.shutdown(20), 'shutdown');
    closed = true;
    assert.equal(await a, false);
    assert.equal(await b, false);
  });
});

// ---- shutdown --------------------------------------------------------------------

describe('Connection: shutdown', SUITE, () => {
  test('ends the iterator, resolves recv() with undefined, later replies resolve false, and is idempotent', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(1));
    const seen: number[] = [];
    const loop = (async () => {
      for await (const req of conn) {
        seen.push(req.connId);
        await conn.reply(req, 'ok');
      }
    })();
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:1, ok');
    const waiting = conn.recv();
    await within(conn.shutdown(), 'shutdown');
    await within(loop, 'the for-await loop to end');
    assert.deepEqual(seen, [1]);
    assert.equal(await within(waiting, 'the pending recv()'), undefined);
    assert.equal(await within(conn.recv(), 'recv() after shutdown'), undefined);
    const again = await within(conn[Symbol.asyncIterator]().next(), 'a new iterator');
    assert.equal(again.done, true);
    assert.equal(await conn.reply({ sender: 'S', connId: 1 }, 'late'), false);
    assert.equal(await conn.replyHttp({ sender: 'S', connId: 1 }, 'late'), false);
    assert.equal(await conn.deliver('S', [1, 2], 'late'), false);
    assert.equal(await conn.close({ sender: 'S', connId: 1 }), false);
    assert.equal(await conn.ctl({ sender: 'S', connId: 1 }, { keepAlive: true }), false);
    await within(conn.shutdown(), 'a second shutdown');
    await within(conn.shutdown(), 'a third shutdown');
  });

  test('replies queued before shutdown are still sent', async (t) => {
    const { srv, conn } = await setup(t);
    const sent = [conn.reply({ sender: 'S', connId: 1 }, 'one'), conn.reply({ sender: 'S', connId: 2 }, 'two')];
    await within(conn.shutdown(), 'shutdown');
    assert.deepEqual(await Promise.all(sent), [true, true]);
    assert.deepEqual((await srv.nextReplies(2)).map((r) => r.toString('latin1')), ['S 1:1, one', 'S 1:2, two']);
  });

  test('shutdown waits (up to drainMs) for the server to take replies queued while it was away', async (t) => {
    const [sendSpec, recvSpec] = await unboundEndpoints(t);
    const conn = new Connection({ sendSpec, recvSpec, logger: silent });
    let srv: FakeServer | undefined;
    t.after(async () => {
      await conn.shutdown(0);
      await srv?.close();
    });
    const sent = conn.reply({ sender: 'S', connId: 1 }, 'one');
    let finished = false;
    const stopping = conn.shutdown(4_000).then(() => (finished = true));
    await flush();
    assert.equal(finished, false, 'shutdown returned before the queued reply was sent');
    srv = await FakeServer.start({ sendSpec, recvSpec });
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:1, one');
    assert.equal(await within(sent, 'the queued reply'), true);
    await within(stopping, 'shutdown()', 2_500);
  });

  test('concurrent shutdown calls both finish as soon as the outbox is drained', async (t) => {
    // No server yet, so the reply waits in the outbox while both calls wait for it to drain.
    const [sendSpec, recvSpec] = await unboundEndpoints(t);
    const conn = new Connection({ sendSpec, recvSpec, logger: silent });
    let srv: FakeServer | undefined;
    t.after(async () => {
      await conn.shutdown(0);
      await srv?.close();
    });
    const sent = conn.reply({ sender: 'S', connId: 1 }, 'one');
    let finished = 0;
    const first = conn.shutdown(4_000).then(() => finished++);
    const second = conn.shutdown(4_000).then(() => finished++);
    await flush();
    assert.equal(finished, 0, 'shutdown returned before the queued reply was sent');
    srv = await FakeServer.start({ sendSpec, recvSpec });
    assert.equal((await srv.nextReply()).toString('latin1'), 'S 1:1, one');
    assert.equal(await within(sent, 'the queued reply'), true);
    // Both must finish once the reply is out, long before their 4 s drain limit.
    await within(second, 'the second shutdown()', 2_500);
    await within(first, 'the first shutdown()', 2_500);
  });

  test('openUpload without an uploads option rejects with UploadError', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(httpRequest(1, [['x-mongrel2-upload-start', '/tmp/upload.X'], ['x-mongrel2-upload-done', '/tmp/upload.X']], { method: 'POST' }));
    const req = await next(conn);
    assert.equal(req.kind, 'http');
    if (req.kind !== 'http') return;
    await assert.rejects(conn.openUpload(req), UploadError);
  });
});
