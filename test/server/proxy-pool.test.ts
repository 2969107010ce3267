/** The Proxy's backend connection pool: reuse, the idle bound, idle expiry, and idle sockets the backend closes or talks on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import type { TestContext } from 'node:test';
import { ConnectionPool } from '../../src/server/proxy/pool.js';

/** A backend that keeps its accepted sockets (in order) for the test to drive. */
async function backend(t: TestContext): Promise<{ port: number; accepted: net.Socket[]; next: () => Promise<net.Socket> }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => undefined);
    server.emit('accepted', s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  const next = async (): Promise<net.Socket> => (await once(server, 'accepted'))[0] as net.Socket;
  return { port: (server.address() as net.AddressInfo).port, accepted, next };
}

/** A pooled connection and the backend's end of it. */
async function dialled(p: ConnectionPool, b: { next: () => Promise<net.Socket> }): Promise<[net.Socket, net.Socket]> {
  const accepted = b.next();
  const ours = await p.connect(undefined);
  return [ours, await accepted];
}

function pool(t: TestContext, port: number, over: { idleTimeoutMs?: number; maxIdle?: number } = {}): ConnectionPool {
  const p = new ConnectionPool('127.0.0.1', port, { connectTimeoutMs: 2000, idleTimeoutMs: over.idleTimeoutMs ?? 60_000, maxIdle: over.maxIdle ?? 4 });
  t.after(() => p.close());
  return p;
}

test('a released socket is reused, newest first; beyond maxIdle they are closed', async (t) => {
  const b = await backend(t);
  const p = pool(t, b.port, { maxIdle: 2 });
  const socks = await Promise.all([p.connect(undefined), p.connect(undefined), p.connect(undefined)]);
  for (const s of socks) p.release(s);
  assert.equal(p.idleCount, 2);
  assert.ok(socks[2]!.destroyed, 'the third one found no room');
  assert.equal(p.take(), socks[1]);
  assert.equal(p.take(), socks[0]);
  assert.equal(p.take(), undefined);
});

test('idle sockets expire after idleTimeoutMs, each on its own clock', async (t) => {
  const b = await backend(t);
  const p = pool(t, b.port, { idleTimeoutMs: 100 });
  const first = await p.connect(undefined);
  const second = await p.connect(undefined);
  p.release(first);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 50));
  p.release(second);
  await once(first, 'close');
  assert.ok(Date.now() - t0 >= 95, 'not before its time');
  assert.equal(p.idleCount, 1);
  assert.ok(!second.destroyed, 'the younger one is still kept');
  await once(second, 'close');
  assert.equal(p.idleCount, 0);
});

test('an idle socket the backend closes, or sends unasked bytes on, is dropped', async (t) => {
  const b = await backend(t);
  const p = pool(t, b.port);
  const [a, aServer] = await dialled(p, b);
  const [c, cServer] = await dialled(p, b);
  p.release(a);
  p.release(c);
  aServer.end();
  await once(a, 'close');
  assert.equal(p.idleCount, 1);
  cServer.write('HTTP/1.1 200 OK\r\n\r\n');
  await once(c, 'close');
  assert.equal(p.idleCount, 0);
});

test('a socket in use is not touched by the idle watch: its data is the caller\'s', async (t) => {
  const b = await backend(t);
  const p = pool(t, b.port);
  const [s, server] = await dialled(p, b);
  p.release(s);
  assert.equal(p.take(), s);
  server.write('answer');
  const [chunk] = (await once(s, 'data')) as [Buffer];
  assert.equal(chunk.toString(), 'answer');
  assert.ok(!s.destroyed);
  // Released again and used again: still one socket, still alive.
  p.release(s);
  assert.equal(p.take(), s);
  assert.ok(!s.destroyed);
});

test('close() destroys idle and lent-out sockets and keeps nothing', async (t) => {
  const b = await backend(t);
  const p = pool(t, b.port);
  const idle = await p.connect(undefined);
  const lent = await p.connect(undefined);
  p.release(idle);
  p.close();
  assert.ok(idle.destroyed && lent.destroyed);
  assert.equal(p.idleCount, 0);
  await assert.rejects(p.connect(undefined), /proxy is closed/);
});
