/**
 * The core's reply routing and connection rules, driven by a raw 0MQ
 * handler (PULL + PUB, like a Mongrel2 handler) on loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Publisher, Pull } from 'zeromq';
import { parseMessage } from '../../src/protocol/request.js';
import { WIRE_FIXTURE_DIR } from '../support/fixtures.js';
import { rawHttp, untilCompleteResponse } from '../support/mongrel2.js';
import { rawHandler, startCore, type CorePeer, type RawHandler } from '../support/core.js';

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function once(sock: net.Socket, event: 'data' | 'close'): Promise<Buffer | undefined> {
  return new Promise((resolve) => sock.once(event, (d?: Buffer) => resolve(d)));
}

function logged(peer: CorePeer, text: RegExp): boolean {
  return peer.logs().some((r) => text.test(String(r.msg)));
}

describe('core: replies and connection rules', { timeout: 30_000 }, () => {
  let peer: CorePeer;
  let h: RawHandler;
  before(async () => {
    peer = await startCore({ settings: { 'limits.header_timeout': '1', 'limits.deliver_queue_bytes': '65536' } });
    h = await rawHandler(peer);
  });
  after(async () => {
    h?.close();
    await peer?.stop();
  });

  test('a malformed reply is logged and dropped; the next good one is delivered', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('GET /handler/a HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req = await h.next();
    const data = once(sock, 'data');
    await h.send(`bad_uuid 1:${req.connId}, nope`);
    await h.send(`ab 9:${req.connId}, nope`);
    await h.send(`ab ${String(req.connId).length}:${req.connId}, HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
    assert.equal((await data)!.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.ok(logged(peer, /skipped invalid message from handler/));
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('a reply to an unknown id gets a disconnect notice back; ctl cancel to it does not', async () => {
    await h.send('ab 9:X 9999998, 26:3:ctl,16:6:cancel,4:true!}]');
    await h.send('ab 7:9999999, X');
    const notice = await h.next();
    assert.equal(notice.kind, 'disconnect');
    assert.equal(notice.connId, 9999999);
  });

  test('ctl cancel and control kill drop the client with no notice', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('GET /handler/c HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req = await h.next();
    const closed = once(sock, 'close');
    const id = String(req.connId);
    await h.send(`ab ${id.length + 2}:X ${id}, 26:3:ctl,16:6:cancel,4:true!}]`);
    await closed;
    const sock2 = await connect(peer.httpPort);
    sock2.write('GET /handler/k HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req2 = await h.next();
    const closed2 = once(sock2, 'close');
    assert.equal(peer.server.kill(req2.connId), true);
    assert.equal(peer.server.kill(req2.connId + 1000), false);
    await closed2;
    // The next message the handler sees is the next request, not a notice.
    const sock3 = await connect(peer.httpPort);
    sock3.write('GET /handler/after HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const next = await h.next();
    assert.equal(next.kind, 'http');
    assert.equal(next.path, '/handler/after');
    sock3.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('a client that does not read is killed once its unsent replies pass limits.deliver_queue_bytes', async () => {
    const sock = await connect(peer.httpPort);
    sock.pause();
    sock.write('GET /handler/flood HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req = await h.next();
    const closed = once(sock, 'close');
    const id = String(req.connId);
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    // Stop once it is gone: every further reply to the dead id would come back as a disconnect notice.
    const isLive = (): boolean => [...peer.server.clients()].some((c) => c.id === req.connId);
    for (let i = 0; i < 64 && isLive(); i++) await h.send(Buffer.concat([Buffer.from(`ab ${id.length}:${id}, `), chunk]));
    let alive = true;
    for (let i = 0; i < 200 && alive; i++) {
      alive = [...peer.server.clients()].some((c) => c.id === req.connId);
      if (alive) await sleep(20);
    }
    assert.equal(alive, false, 'the client was dropped');
    assert.ok(logged(peer, /deliver_queue_bytes/));
    sock.destroy();
    await closed;
  });

  test('body over limits.content_length: 413 and close; a websocket upgrade goes to the handler as WEBSOCKET_HANDSHAKE', async () => {
    const big = await rawHttp(peer.httpPort, 'POST /handler/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n');
    assert.match(big.toString('latin1'), /^HTTP\/1\.1 413 Request Entity Too Large\r\n/);
    const sock = await connect(peer.httpPort);
    sock.write('GET /handler/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    let req = await h.next();
    while (req.kind === 'disconnect') req = await h.next();
    assert.equal(req.kind, 'websocket-handshake');
    assert.equal(req.body.toString(), 'BACScCJPNqyz+UBoqMH89VmURoA=');
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('a request head that does not complete within limits.header_timeout is dropped', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('GET /handler/slow HTTP/1.1\r\nHost: local');
    const started = Date.now();
    await once(sock, 'close');
    assert.ok(Date.now() - started >= 900, 'not before the timeout');
    assert.ok(logged(peer, /header_timeout/));
  });

  test('clients() reports each open connection with its counters', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('GET /handler/info HTTP/1.1\r\nHost: localhost\r\n\r\n');
    let req = await h.next();
    // Notices for replies that raced a kill in the flood test may still be queued.
    while (req.kind === 'disconnect') req = await h.next();
    const me = [...peer.server.clients()].find((c) => c.id === req.connId);
    assert.ok(me);
    assert.equal(me.type, 1);
    assert.ok(me.bytesRead > 0);
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('access log: handler requests are logged with status 200 and the request body length', async () => {
    const got = await rawHttp(peer.httpPort, 'GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse(1) });
    assert.match(got.toString('latin1'), /^HTTP\/1\.1 200 OK/);
    const entry = peer.accessLog.find((e) => e.path === '/handler/info');
    assert.ok(entry);
    assert.equal(entry.status, 200);
    assert.equal(entry.size, 0);
    assert.equal(entry.host, 'localhost');
    assert.ok(peer.accessLog.some((e) => e.path === '/static/hello.txt' && e.status === 200));
  });

  test('never crashes on the parser corpus (And-httpd suite, odd and hand-written inputs)', async () => {
    const root = path.join(WIRE_FIXTURE_DIR, '../mongrel2-parser-inputs');
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(root);
    assert.ok(files.length > 100);
    await Promise.all(
      files.map((f) =>
        rawHttp(peer.httpPort.valueOf(), readFileSync(f), { timeoutMs: 3000 }).catch((err: Error) => assert.fail(`${f}: ${err.message}`)),
      ),
    );
    const after = await rawHttp(peer.httpPort, 'GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse(1) });
    assert.match(after.toString('latin1'), /^HTTP\/1\.1 200 OK/);
  });
});
