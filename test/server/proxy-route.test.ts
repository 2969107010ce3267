/** Proxy routes through the core: node:http and `ws` backends behind '/app/', raw client sockets in front. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import WebSocket, { WebSocketServer } from 'ws';
import { startCore, type CorePeer } from '../support/core.js';
import { freePorts } from '../support/process.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  md5: string;
  length: number;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Reads one response with Content-Length (or none for HEAD / until close) off a socket. */
function readResponse(sock: net.Socket, opts: { head?: boolean } = {}): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (head: string, body: Buffer): void => {
      sock.off('data', onData).off('close', onClose);
      resolve({ head, body });
    };
    const check = (closed: boolean): void => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return closed ? reject(new Error(`closed before a response head: ${buf.toString('latin1')}`)) : undefined;
      const head = buf.subarray(0, end + 4).toString('latin1');
      const m = /content-length: *(\d+)/i.exec(head);
      if (opts.head) return done(head, Buffer.alloc(0));
      if (m) {
        const len = Number(m[1]);
        if (buf.length >= end + 4 + len) return done(head, buf.subarray(end + 4, end + 4 + len));
      } else if (closed) return done(head, buf.subarray(end + 4));
      if (closed) reject(new Error('closed mid-body'));
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      check(false);
    };
    const onClose = (): void => check(true);
    sock.on('data', onData).on('close', onClose);
  });
}

describe('core: Proxy routes', { timeout: 60_000 }, () => {
  let peer: CorePeer;
  let backend: http.Server;
  let wss: WebSocketServer;
  const seen: Seen[] = [];
  let backendConnections = 0;

  before(async () => {
    backend = http.createServer((req, res) => {
      const hash = createHash('md5');
      let length = 0;
      req.on('data', (d: Buffer) => {
        hash.update(d);
        length += d.length;
      });
      req.on('end', () => {
        const md5 = hash.digest('hex');
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, md5, length });
        const body = `${req.method} ${req.url} ${length} ${md5}`;
        res.writeHead(201, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    });
    backend.on('connection', () => backendConnections++);
    wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as net.AddressInfo).port;
    const [deadPort] = (await freePorts(1)) as [number];
    peer = await startCore({
      routes: [
        { path: '/app/', target: { type: 'proxy', id: 7, addr: '127.0.0.1', port } },
        { path: '/down/', target: { type: 'proxy', id: 8, addr: '127.0.0.1', port: deadPort } },
      ],
    });
  });
  after(async () => {
    await peer?.stop();
    for (const c of wss?.clients ?? []) c.terminate();
    wss?.close();
    backend?.closeAllConnections();
    await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
  });

  test('GET, HEAD and a keep-alive client reusing its connection (and the backend one)', async () => {
    const before = backendConnections;
    const sock = await connect(peer.httpPort);
    sock.write('GET /app/one?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const a = await readResponse(sock);
    assert.match(a.head, /^HTTP\/1\.1 201 Created\r\n/);
    assert.equal(a.body.toString().split(' ').slice(0, 3).join(' '), 'GET /app/one?x=1 0');
    sock.write('HEAD /app/two HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const b = await readResponse(sock, { head: true });
    assert.match(b.head, /^HTTP\/1\.1 201 Created\r\n/);
    sock.write('GET /app/three HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const c = await readResponse(sock);
    assert.match(c.body.toString(), /^GET \/app\/three 0 /);
    sock.destroy();
    assert.equal(backendConnections - before, 1, 'one pooled backend connection served all three');
    const last = seen.at(-1)!;
    assert.equal(last.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(last.headers['x-forwarded-proto'], 'http');
    const logged = peer.accessLog.filter((e) => e.path.startsWith('/app/'));
    const three = logged.find((e) => e.path === '/app/three')!;
    assert.equal(three.status, 201);
    assert.equal(three.size, c.body.length, 'access log has the backend status and body bytes');
  });

  test("a client's X-Forwarded-* are replaced, unless proxy.trust_forwarded=1 keeps them and appends the peer", async () => {
    const forged = 'GET /app/fwd HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n';
    const ask = async (port: number): Promise<http.IncomingHttpHeaders> => {
      const sock = await connect(port);
      sock.write(forged);
      await readResponse(sock);
      sock.destroy();
      return seen.filter((x) => x.url === '/app/fwd').at(-1)!.headers;
    };
    const strict = await ask(peer.httpPort);
    assert.equal(strict['x-forwarded-for'], '127.0.0.1');
    assert.equal(strict['x-forwarded-host'], 'localhost');
    const backendPort = (backend.address() as net.AddressInfo).port;
    const trusting = await startCore({ settings: { 'proxy.trust_forwarded': '1' }, routes: [{ path: '/app/', target: { type: 'proxy', id: 7, addr: '127.0.0.1', port: backendPort } }] });
    try {
      const trusted = await ask(trusting.httpPort);
      assert.equal(trusted['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
      assert.equal(trusted['x-forwarded-host'], 'evil.example');
    } finally {
      await trusting.stop();
    }
  });

  test('POST with Content-Length: 8 MB streamed, md5 intact', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const sock = await connect(peer.httpPort);
    sock.write(`POST /app/up HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
    const r = await readResponse(sock);
    sock.destroy();
    assert.equal(r.body.toString(), `POST /app/up ${body.length} ${createHash('md5').update(body).digest('hex')}`);
  });

  test('chunked POST is de-chunked and re-framed for the backend', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('POST /app/chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    sock.write('6\r\n world\r\n0\r\n\r\n');
    const r = await readResponse(sock);
    sock.destroy();
    assert.equal(r.body.toString(), `POST /app/chunked 11 ${createHash('md5').update('hello world').digest('hex')}`);
    assert.equal(seen.at(-1)!.headers['transfer-encoding'], 'chunked');
  });

  test('a bad chunked body is a 400 and never a complete request at the backend', async () => {
    const count = seen.length;
    const sock = await connect(peer.httpPort);
    sock.write('POST /app/bad HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
    const r = await readResponse(sock);
    assert.match(r.head, /^HTTP\/1\.1 400 /);
    assert.equal(seen.length, count);
  });

  test('backend down: 502 and close', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('GET /down/x HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const r = await readResponse(sock);
    assert.match(r.head, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    await new Promise((resolve) => (sock.destroyed ? resolve(undefined) : sock.once('close', resolve)));
  });

  test('websocket upgrade through the proxy: echo both ways', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/app/ws`, { headers: { Host: 'localhost' } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
    const payload = randomBytes(200_000);
    ws.send(payload);
    assert.ok((await echoed).equals(payload));
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.close();
    await closed;
  });
});
