/**
 * The websocket tunnel inside the bridge, behind an in-process stand-in for
 * Mongrel2 (FakeServer) and a scripted backend server on a local TCP socket:
 * the handshake, frames both ways, close in every direction, failures.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { pino } from 'pino';
import { Connection } from '../../src/handler/connection.js';
import { Bridge } from '../../src/bridge/bridge.js';
import { BackendError } from '../../src/bridge/backend.js';
import { FrameScanner } from '../../src/bridge/websocket-tunnel.js';
import { Opcode, parseClosePayload, websocketAccept } from '../../src/protocol/index.js';
import { FakeServer } from '../support/fake-server.js';
import { ClientView, FakeUpgradeBackend, closePayload, frame, handshake, keyFor, notice, untilIdle, wsMessage, type Upstream } from './helpers.js';

describe('websocket tunnel through the bridge', () => {
  let srv: FakeServer;
  let conn: Connection;
  let backend: FakeUpgradeBackend;
  let bridge: Bridge;

  beforeEach(async () => {
    srv = await FakeServer.start();
    conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: pino({ level: 'silent' }) });
    await conn.ready();
    backend = await new FakeUpgradeBackend().start();
    bridge = new Bridge({ connection: conn, backend, maxInflight: 4, logger: pino({ level: 'silent' }), websocket: { handshakeTimeoutMs: 1000 } });
    void bridge.run();
  });

  afterEach(async () => {
    await bridge.drain(1000);
    await srv.close();
  });

  /** Handshake on `connId`, answered 101 by the backend server; returns both ends. */
  async function open(connId: number, extra = ''): Promise<{ client: ClientView; up: Upstream }> {
    await srv.send(handshake(connId));
    const up = await backend.next();
    await up.until((u) => u.requestEnd >= 0);
    up.accept(keyFor(connId), extra);
    const client = await new ClientView(srv, connId).until((v) => v.headEnd >= 0);
    return { client, up };
  }

  test('101: the accept value Mongrel2 computed, the subprotocol forwarded; server frames pass through byte-exact', async () => {
    const { client, up } = await open(1, 'Sec-WebSocket-Protocol: chat\r\nSet-Cookie: a=1\r\n');
    assert.match(client.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(client.head, new RegExp(`\r\nSec-WebSocket-Accept: ${websocketAccept(keyFor(1)).replace(/[+/]/g, '\\$&')}\r\n`));
    assert.match(client.head, /\r\nSec-WebSocket-Protocol: chat\r\n/);
    assert.match(client.head, /\r\nSet-Cookie: a=1\r\n/);
    assert.equal(backend.upgrades[0]!.req.kind, 'websocket-handshake');
    const server = Buffer.concat([frame(Opcode.Text, 'hello'), frame(Opcode.Binary, Buffer.alloc(70_000, 7)), frame(Opcode.Ping, 'p')]);
    up.socket.write(server);
    await client.frameCount(3);
    assert.deepEqual(client.bytes.subarray(client.headEnd), server);
    assert.equal(client.closed, false);
  });

  test("101: hop-by-hop headers and those the backend's Connection names are not relayed", async () => {
    const { client } = await open(11, 'Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nX-End: 2\r\n');
    assert.match(client.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.doesNotMatch(client.head, /x-hop|keep-alive|proxy-authenticate/i);
    assert.match(client.head, /\r\nX-End: 2\r\n/);
  });

  test('client frames reach the backend masked, with their opcode, RSV bits and payload', async () => {
    const { up } = await open(2);
    const big = Buffer.alloc(200_000, 0xab);
    await srv.send(wsMessage(2, 0x81, 'héllo'));
    await srv.send(wsMessage(2, 0x82, big));
    await srv.send(wsMessage(2, 0xc1, 'deflated?'));
    await srv.send(wsMessage(2, 0x89, 'ping!'));
    await srv.send(wsMessage(2, 0x8a, ''));
    const frames = (await up.frameCount(5)).frames;
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.rsv, f.fin, f.masked]),
      [
        [Opcode.Text, 0, true, true],
        [Opcode.Binary, 0, true, true],
        [Opcode.Text, 4, true, true],
        [Opcode.Ping, 0, true, true],
        [Opcode.Pong, 0, true, true],
      ],
    );
    assert.equal(frames[0]!.payload.toString(), 'héllo');
    assert.deepEqual(frames[1]!.payload, big);
    assert.equal(frames[3]!.payload.toString(), 'ping!');
    // Each frame has its own mask (the masked bytes differ from the payload).
    const rawAt = up.requestEnd;
    assert.notDeepEqual(up.received.subarray(rawAt + 2 + 4, rawAt + 2 + 4 + 6), Buffer.from('héllo'));
  });

  test('client-initiated close: forwarded with its code, the echo comes back, then the close message and the backend stream ends', async () => {
    const { client, up } = await open(3);
    await srv.send(wsMessage(3, 0x88, closePayload(4000, 'done')));
    const [closeFrame] = (await up.frameCount(1)).frames;
    assert.equal(closeFrame!.opcode, Opcode.Close);
    assert.deepEqual(parseClosePayload(closeFrame!.payload), { code: 4000, reason: 'done' });
    up.socket.end(frame(Opcode.Close, closePayload(4000, 'done')));
    await client.until((v) => v.closed);
    assert.equal(client.frames.length, 1);
    assert.deepEqual(parseClosePayload(client.frames[0]!.payload), { code: 4000, reason: 'done' });
    await up.until((u) => u.ended);
    await untilIdle(bridge);
  });

  test('server-initiated close: forwarded; the client echo goes to the backend; then the close message', async () => {
    const { client, up } = await open(4);
    up.socket.write(frame(Opcode.Close, closePayload(1000, 'bye')));
    await client.frameCount(1);
    assert.deepEqual(parseClosePayload(client.frames[0]!.payload), { code: 1000, reason: 'bye' });
    assert.equal(client.closed, false);
    await srv.send(wsMessage(4, 0x88, closePayload(1000, 'bye')));
    await client.until((v) => v.closed);
    const [echo] = (await up.frameCount(1)).frames;
    assert.equal(echo!.opcode, Opcode.Close);
    await up.until((u) => u.ended);
  });

  test('a non-101 answer is forwarded as the HTTP response, then the connection is closed', async () => {
    await srv.send(handshake(5));
    const up = await backend.next();
    await up.until((u) => u.requestEnd >= 0);
    up.socket.write('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n4\r\nnope\r\n0\r\n\r\n');
    const client = await new ClientView(srv, 5).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(client.head, /\r\nContent-Length: 4\r\n/i);
    assert.doesNotMatch(client.head, /transfer-encoding|keep-alive/i);
    assert.equal(client.bytes.subarray(client.headEnd).toString(), 'nope');
    await up.until((u) => u.closed);
  });

  test("a 101 whose Sec-WebSocket-Accept is not Mongrel2's is a 502", async () => {
    await srv.send(handshake(6));
    const up = await backend.next();
    await up.until((u) => u.requestEnd >= 0);
    up.accept('some-other-key=');
    const client = await new ClientView(srv, 6).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    await up.until((u) => u.closed);
  });

  test('a backend that closes before answering is a 502; upgrade() failing with BackendError(501) is a 501', async () => {
    await srv.send(handshake(7));
    (await backend.next()).socket.destroy();
    assert.match((await new ClientView(srv, 7).until((v) => v.closed)).head, /^HTTP\/1\.1 502 /);
    backend.failWith = new BackendError(501, 'no upgrade listener');
    await srv.send(handshake(8));
    const client = await new ClientView(srv, 8).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  });

  test('a backend that never answers the upgrade: 504 after the handshake timeout', async () => {
    await srv.send(handshake(17));
    const up = await backend.next();
    const client = await new ClientView(srv, 17).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
    await up.until((u) => u.closed);
  });

  test('the backend ends without a close frame: a 1001 close frame on its behalf, then the close message', async () => {
    const { client, up } = await open(9);
    up.socket.end(frame(Opcode.Text, 'last words'));
    await client.until((v) => v.closed);
    assert.deepEqual(
      client.frames.map((f) => f.opcode),
      [Opcode.Text, Opcode.Close],
    );
    assert.equal(parseClosePayload(client.frames[1]!.payload).code, 1001);
  });

  test('the backend dies inside a frame: no close frame can follow, only the close message', async () => {
    const { client, up } = await open(10);
    up.socket.write(frame(Opcode.Text, 'x'.repeat(300)).subarray(0, 100));
    await client.until((v) => v.bytes.length >= v.headEnd + 100);
    up.socket.resetAndDestroy();
    await client.until((v) => v.closed);
    assert.equal(client.bytes.length, client.headEnd + 100);
    await untilIdle(bridge);
  });

  test('the backend sends a masked (client) frame: 1011 to the client at the frame boundary', async () => {
    const { client, up } = await open(11);
    up.socket.write(Buffer.concat([frame(Opcode.Text, 'ok'), frame(Opcode.Text, 'bad', { masked: true })]));
    await client.until((v) => v.closed);
    assert.deepEqual(
      client.frames.map((f) => [f.opcode, f.masked]),
      [
        [Opcode.Text, false],
        [Opcode.Close, false],
      ],
    );
    assert.equal(parseClosePayload(client.frames[1]!.payload).code, 1011);
    await up.until((u) => u.closed);
  });

  test('a disconnect notice destroys the backend stream and nothing more is sent', async () => {
    const { up } = await open(12);
    assert.equal(bridge.inflight, 1);
    await srv.send(notice(12, 'disconnect'));
    await up.until((u) => u.closed);
    await untilIdle(bridge);
    assert.equal(srv.pending, 0);
  });

  test('download credits pace server frames', async () => {
    await srv.send(handshake(13, { credits: 300 }));
    const up = await backend.next();
    await up.until((u) => u.requestEnd >= 0);
    up.accept(keyFor(13));
    const client = await new ClientView(srv, 13).until((v) => v.headEnd >= 0);
    const head = client.bytes.length;
    up.socket.write(frame(Opcode.Binary, Buffer.alloc(1000, 1)));
    await client.until((v) => v.bytes.length === 300);
    assert.ok(head < 300);
    await new Promise((r) => setImmediate(r));
    assert.equal(srv.pending, 0, 'nothing beyond the credits');
    await srv.send(notice(13, 'credits', 5000));
    await client.frameCount(1);
    assert.equal(client.frames[0]!.payload.length, 1000);
  });

  test('drain closes open websockets with 1001 both ways', async () => {
    const { client, up } = await open(14);
    const started = Date.now();
    const draining = bridge.drain(20_000);
    await client.until((v) => v.closed);
    assert.equal(parseClosePayload(client.frames[0]!.payload).code, 1001);
    const [toBackend] = (await up.frameCount(1)).frames;
    assert.equal(parseClosePayload(toBackend!.payload).code, 1001);
    up.socket.end();
    await draining;
    assert.ok(Date.now() - started < 10_000, 'drain did not wait for its timeout');
  });

  test('drain while the backend has not answered yet: once open, closed with 1001', async () => {
    await srv.send(handshake(16));
    const up = await backend.next();
    await up.until((u) => u.requestEnd >= 0);
    const draining = bridge.drain(20_000);
    up.accept(keyFor(16));
    const client = await new ClientView(srv, 16).until((v) => v.closed);
    assert.match(client.head, /^HTTP\/1\.1 101 /);
    assert.equal(parseClosePayload(client.frames[0]!.payload).code, 1001);
    up.socket.end();
    await draining;
  });

  test('a backend that stops reading: past the bound the tunnel closes with 1008', async () => {
    // A stream that takes the request and answers 101, then never completes a write.
    backend.stream = () => {
      let first = true;
      const d: Duplex = new Duplex({
        read() {},
        write(_chunk, _enc, cb) {
          if (first) {
            first = false;
            cb();
          }
        },
      });
      d.push(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(keyFor(15))}\r\n\r\n`);
      return d;
    };
    await srv.send(handshake(15));
    const client = await new ClientView(srv, 15).until((v) => v.headEnd >= 0);
    const mib = Buffer.alloc(1024 * 1024, 1);
    for (let i = 0; i < 10; i++) await srv.send(wsMessage(15, 0x82, mib));
    await client.until((v) => v.closed);
    assert.equal(parseClosePayload(client.frames[0]!.payload).code, 1008);
    await untilIdle(bridge);
  });
});

describe('FrameScanner', () => {
  test('follows frames split anywhere, and stops at the end of a close frame', () => {
    const stream = Buffer.concat([frame(Opcode.Text, 'a'.repeat(130)), frame(Opcode.Binary, Buffer.alloc(70_000)), frame(Opcode.Close, closePayload(1000)), frame(Opcode.Text, 'after')]);
    const closeEnd = stream.length - frame(Opcode.Text, 'after').length;
    for (const step of [1, 3, 7, 1000, stream.length]) {
      const s = new FrameScanner();
      let forwarded = 0;
      let closed = false;
      for (let at = 0; at < stream.length; at += step) {
        const r = s.scan(stream.subarray(at, at + step));
        assert.equal(r.error, undefined);
        if (!closed) forwarded += r.forward;
        else assert.equal(r.forward, 0);
        closed ||= r.close;
        assert.equal(s.atBoundary, closed || at + step === 134 || at + step === 134 + 70_010);
      }
      assert.equal(closed, true, `step ${step}`);
      assert.equal(forwarded, closeEnd, `step ${step}`);
    }
  });

  test('a bad frame stops the stream at its start; begun in an earlier chunk, the boundary is lost', () => {
    const good = frame(Opcode.Text, 'ok');
    for (const bad of [frame(Opcode.Text, 'x', { masked: true }), Buffer.from([0x83, 0]), frame(Opcode.Ping, 'x', { fin: false }), frame(Opcode.Ping, Buffer.alloc(126))]) {
      const whole = new FrameScanner().scan(Buffer.concat([good, bad]));
      assert.equal(whole.forward, good.length);
      assert.ok(whole.error);
      const s = new FrameScanner();
      assert.equal(s.scan(Buffer.concat([good, bad.subarray(0, 1)])).forward, good.length + 1);
      const r = s.scan(bad.subarray(1));
      assert.equal(r.forward, 0);
      assert.ok(r.error);
      assert.equal(s.atBoundary, false);
    }
  });
});
