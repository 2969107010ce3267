/**
 * ONE websocket + JSSocket client suite, run against the real Mongrel2
 * (Debian 1.12.2) and against our core, with our TypeScript Connection as
 * the handler (acceptWebsocket + echo, pong, close echo + close message;
 * socket messages answered with reply). Clients: the `ws` package and raw
 * sockets for what `ws` will not send (fragments with a ping inside,
 * unmasked frames, an upgrade after a request, `@route {json}\0`, XML, the
 * Flash policy request). Where the two servers differ on purpose, the test
 * says so per server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import WebSocket from 'ws';
import { Connection, type Request } from '../../src/handler/connection.js';
import { buildFrame, Opcode } from '../../src/protocol/websocket.js';
import { startMongrel2, type Mongrel2HandlerInfo } from '../support/mongrel2.js';
import { startCore } from '../support/core.js';

type ServerKind = 'mongrel2' | 'core';

interface Peer {
  httpPort: number;
  handler: Mongrel2HandlerInfo;
  stop(): Promise<void>;
}

const peers: Array<[ServerKind, () => Promise<Peer>]> = [
  ['mongrel2', () => startMongrel2({ handlerPaths: ['@handler', '<handler'] })],
  ['core', () => startCore({ handlerPaths: ['@handler', '<handler'] })],
];

const UPGRADE = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
const MASK = Buffer.from([1, 2, 3, 4]);

/** A raw TCP client that keeps everything it receives; waits end on a condition or a deadline. */
class RawClient {
  readonly sock: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  private waiters: Array<() => void> = [];

  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.sock.on('data', (c: Buffer) => {
      this.received = Buffer.concat([this.received, c]);
      this.wake();
    });
    this.sock.on('error', () => undefined);
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(pred: (c: RawClient) => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`raw client: ${what} not within ${ms} ms; got ${JSON.stringify(this.received.toString('latin1').slice(0, 300))}, closed=${this.closed}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(left)]);
    }
  }

  /** Sends the upgrade and waits for the handler's 101; leaves `received` empty. */
  async upgrade(path: string): Promise<void> {
    this.sock.write(UPGRADE(path));
    await this.until((c) => c.received.includes('\r\n\r\n'), '101 response');
    const end = this.received.indexOf('\r\n\r\n') + 4;
    assert.match(this.received.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    this.received = this.received.subarray(end);
  }
}

/** Server frames (unmasked) in `buf`: [first byte, payload]. */
function frames(buf: Buffer): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    let len = buf[at + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      len = buf.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + len > buf.length) break;
    out.push([buf[at]!, buf.subarray(at + head, at + head + len)]);
    at += head + len;
  }
  return out;
}

/** What the handler saw, per connection id. */
interface Seen {
  readonly frames: Map<number, string[]>;
  readonly disconnects: Set<number>;
  readonly socket: Array<{ connId: number; method: string; path: string; body: string }>;
  readonly handshakes: Map<number, Record<string, unknown>>;
  changed(): Promise<void>;
}

function serve(conn: Connection): { seen: Seen; done: Promise<void> } {
  let waiters: Array<() => void> = [];
  const poke = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  const seen: Seen = {
    frames: new Map(),
    disconnects: new Set(),
    socket: [],
    handshakes: new Map(),
    changed: () => new Promise<void>((r) => waiters.push(r)),
  };
  conn.on('disconnect', (n: { connId: number }) => {
    seen.disconnects.add(n.connId);
    poke();
  });
  const done = (async () => {
    for await (const req of conn as AsyncIterable<Request>) {
      if (req.kind === 'websocket-handshake') {
        seen.handshakes.set(req.connId, req.headers as Record<string, unknown>);
        void conn.acceptWebsocket(req);
      } else if (req.kind === 'websocket') {
        const list = seen.frames.get(req.connId) ?? [];
        list.push(`0x${req.flags.toString(16).toUpperCase()} ${req.body.length}`);
        seen.frames.set(req.connId, list);
        if (req.opcode === Opcode.Text || req.opcode === Opcode.Binary) void conn.replyWebsocket(req, req.body, { opcode: req.opcode });
        else if (req.opcode === Opcode.Ping) void conn.replyWebsocket(req, req.body, { opcode: Opcode.Pong });
        else if (req.opcode === Opcode.Close) void conn.reply(req, buildFrame(req.body, { opcode: Opcode.Close })).then(() => conn.close(req));
      } else if (req.kind === 'socket') {
        seen.socket.push({ connId: req.connId, method: req.method, path: req.path, body: req.body.toString('latin1') });
        void conn.reply(req, `got ${req.body.toString('latin1')}\0`);
      } else if (req.kind === 'http') {
        void conn.replyHttp(req, 'plain\n');
      }
      poke();
    }
  })();
  return { seen, done };
}

async function waitSeen(seen: Seen, pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`handler did not see ${what} within ${ms} ms`);
    await Promise.race([seen.changed(), sleep(left)]);
  }
}

for (const [kind, start] of peers) {
  describe(`websockets and socket messages: ${kind === 'mongrel2' ? 'real Mongrel2' : 'our core'}`, { timeout: 60_000 }, () => {
    let peer: Peer;
    let conn: Connection;
    let served: { seen: Seen; done: Promise<void> };
    const clients: WebSocket[] = [];

    before(async () => {
      peer = await start();
      conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
      await conn.ready();
      served = serve(conn);
    });

    after(async () => {
      for (const ws of clients) ws.terminate();
      await conn?.shutdown(200);
      await served?.done;
      await peer?.stop();
    });

    const open = async (): Promise<WebSocket> => {
      const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/handler/ws`);
      clients.push(ws);
      await once(ws, 'open');
      return ws;
    };

    test('text, binary and a 1 MB message echo', async () => {
      const ws = await open();
      ws.send('hello ws');
      const [text, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
      assert.equal(isBinary, false);
      assert.equal(text.toString(), 'hello ws');
      const blob = randomBytes(300);
      ws.send(blob);
      const [bin, binIsBinary] = (await once(ws, 'message')) as [Buffer, boolean];
      assert.equal(binIsBinary, true);
      assert.ok(bin.equals(blob));
      const big = randomBytes(1024 * 1024);
      ws.send(big);
      const [echo] = (await once(ws, 'message')) as [Buffer];
      assert.equal(echo.length, big.length);
      assert.ok(echo.equals(big));
      ws.terminate();
    });

    test('the handshake message carries the upgrade headers and the accept key', async () => {
      const c = new RawClient(peer.httpPort);
      await c.upgrade('/handler/ws?a=b');
      await waitSeen(served.seen, () => [...served.seen.handshakes.values()].some((h) => h.URI === '/handler/ws?a=b'), 'the handshake');
      const h = [...served.seen.handshakes.values()].find((x) => x.URI === '/handler/ws?a=b')!;
      assert.equal(h.METHOD, 'WEBSOCKET_HANDSHAKE');
      assert.equal(h.QUERY, 'a=b');
      assert.equal(h.PATTERN, '/handler');
      assert.equal(h['sec-websocket-key'], 'MDEyMzQ1Njc4OWFiY2RlZg==');
      c.sock.destroy();
    });

    test('a fragmented message with a ping inside: the ping goes first, the message as one (FLAGS 0x81)', async () => {
      const c = new RawClient(peer.httpPort);
      await c.upgrade('/handler/ws');
      c.sock.write(Buffer.concat([
        buildFrame('hel', { opcode: Opcode.Text, fin: false, mask: MASK }),
        buildFrame('pingdata', { opcode: Opcode.Ping, mask: MASK }),
        buildFrame('lo ', { opcode: 0, fin: false, mask: MASK }),
        buildFrame('world', { opcode: 0, fin: true, mask: MASK }),
      ]));
      await c.until((x) => frames(x.received).length >= 2, 'pong and echo');
      const got = frames(c.received).map(([b, p]) => [b, p.toString()]);
      assert.deepEqual(got, [
        [0x8a, 'pingdata'],
        [0x81, 'hello world'],
      ]);
      const ids = [...served.seen.frames.entries()].find(([, f]) => f.includes('0x81 11'));
      assert.ok(ids);
      assert.deepEqual(ids[1], ['0x89 8', '0x81 11']);
      c.sock.destroy();
    });

    test('ping/pong and close with a code', async () => {
      const ws = await open();
      ws.ping(Buffer.from('are you there'));
      const [pong] = (await once(ws, 'pong')) as [Buffer];
      assert.equal(pong.toString(), 'are you there');
      ws.close(4000, 'bye now');
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      assert.equal(code, 4000);
      assert.equal(reason.toString(), 'bye now');
    });

    test('an unmasked frame is a protocol error: the connection closes and the handler gets the disconnect notice', async () => {
      const c = new RawClient(peer.httpPort);
      await c.upgrade('/handler/ws');
      c.sock.write(buildFrame('one', { mask: MASK }));
      await c.until((x) => frames(x.received).length >= 1, 'echo of the masked frame');
      const id = [...served.seen.frames.entries()].find(([i, f]) => f.length === 1 && f[0] === '0x81 3' && !served.seen.disconnects.has(i))?.[0];
      c.sock.write(buildFrame('bad'));
      await c.until((x) => x.closed, 'close');
      const tail = frames(c.received).slice(1);
      // Mongrel2 just drops the socket; the core sends close 1002 first.
      if (kind === 'mongrel2') assert.deepEqual(tail, []);
      else assert.deepEqual(tail.map(([b, p]) => [b, p.readUInt16BE(0)]), [[0x88, 1002]]);
      assert.ok(id !== undefined);
      await waitSeen(served.seen, () => served.seen.disconnects.has(id), `the disconnect notice for ${id}`);
    });

    test('an upgrade as the second request on a keep-alive connection closes it', async () => {
      const c = new RawClient(peer.httpPort);
      c.sock.write('GET /handler/plain HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await c.until((x) => x.received.toString('latin1').endsWith('plain\n'), 'the first response');
      const before = served.seen.handshakes.size;
      c.sock.write(UPGRADE('/handler/ws'));
      await c.until((x) => x.closed, 'close');
      assert.match(c.received.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[^]*plain\n$/);
      assert.equal(served.seen.handshakes.size, before, 'no handshake reached the handler');
    });

    test('JSSocket and XML messages reach the handler; replies come back base64 without a NUL', async () => {
      const c = new RawClient(peer.httpPort);
      c.sock.write('@handler {"type":"join","user":"zed"}\0<handler to="x">hi</handler>\0@handler {"type":"ping"}\0');
      await c.until((x) => x.received.length >= 2, 'two replies');
      const want = [Buffer.from('got {"type":"join","user":"zed"}').toString('base64'), Buffer.from('got <handler to="x">hi</handler>').toString('base64')];
      await c.until((x) => x.received.toString('latin1') === want.join(''), 'both base64 replies');
      const mine = served.seen.socket.slice(-2);
      assert.deepEqual(mine.map((m) => [m.method, m.path, m.body]), [
        ['JSON', '@handler', '{"type":"join","user":"zed"}'],
        ['XML', '<handler', '<handler to="x">hi</handler>'],
      ]);
      assert.equal(served.seen.socket.filter((m) => m.body.includes('ping')).length, 0, 'the ping was swallowed');
      c.sock.destroy();
    });

    test('the Flash policy request is answered by the server and closed', async () => {
      const c = new RawClient(peer.httpPort);
      c.sock.write('<policy-file-request/>\0');
      await c.until((x) => x.closed, 'close');
      const text = c.received.toString('latin1');
      assert.match(text, /^<\?xml version="1\.0"\?><!DOCTYPE cross-domain-policy/);
      assert.match(text, /<allow-access-from domain="\*" to-ports="\*" \/><\/cross-domain-policy>\0$/);
    });
  });
}

const flowPeers: Array<[ServerKind, () => Promise<Peer>]> = [
  ['mongrel2', () => startMongrel2({ flowControl: true })],
  ['core', () => startCore({ settings: { 'download.flow_control': '1' } })],
];

for (const [kind, start] of flowPeers) {
  test(`download.flow_control on a websocket (${kind === 'mongrel2' ? 'real Mongrel2' : 'our core'}): DOWNLOAD_CREDITS in the handshake and every frame, a credits notice per echo`, { timeout: 60_000 }, async (t) => {
    const peer = await start();
    t.after(() => peer.stop());
    const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
    t.after(() => conn.shutdown(200));
    const announced: unknown[] = [];
    const credits: number[] = [];
    conn.on('credits', (n: { credits: number }) => credits.push(n.credits));
    const served = (async () => {
      for await (const req of conn as AsyncIterable<Request>) {
        if (req.kind === 'websocket-handshake') {
          announced.push((req.headers as Record<string, unknown>).DOWNLOAD_CREDITS);
          void conn.acceptWebsocket(req);
        } else if (req.kind === 'websocket') {
          announced.push((req.headers as Record<string, unknown>).DOWNLOAD_CREDITS);
          if (req.opcode === Opcode.Text) void conn.replyWebsocket(req, req.body);
        }
      }
    })();
    await conn.ready();
    const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/handler/ws`);
    t.after(() => ws.terminate());
    await once(ws, 'open');
    for (const text of ['one', 'two']) {
      ws.send(text);
      const [echo] = (await once(ws, 'message')) as [Buffer];
      assert.equal(echo.toString(), text);
    }
    const deadline = Date.now() + 5000;
    // 101 response + two 5-byte frames, each written and credited.
    while (credits.reduce((a, b) => a + b, 0) < 129 + 10 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(announced, ['102400', '102400', '102400']);
    assert.deepEqual(credits.slice(-2), [5, 5]);
    assert.equal(credits.reduce((a, b) => a + b, 0), 129 + 10);
    ws.terminate();
    await conn.shutdown(200);
    await served;
  });
}
