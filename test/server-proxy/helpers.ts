/** Backends (node:http and raw node:net) and request/response helpers for the proxy tests. */
import * as http from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { parseHead, type RequestHead } from '../../src/server/http/request-parser.js';
import { ProxyHandler, type ProxyOptions, type ProxyRequest, type ProxyResponse } from '../../src/server/proxy/index.js';

/** A client request head, parsed by the core's own parser from raw bytes. */
export function requestHead(raw: string): RequestHead {
  const r = parseHead(Buffer.from(raw, 'latin1'), 0);
  if (r.kind !== 'request') throw new Error(`test request does not parse: ${JSON.stringify(r)}`);
  return r.head;
}

export function get(uri = '/', extra = '', version = 'HTTP/1.1'): RequestHead {
  return requestHead(`GET ${uri} ${version}\r\nHost: example.com\r\n${extra}\r\n`);
}

export function request(head: RequestHead, more: Partial<ProxyRequest> = {}): ProxyRequest {
  return { head, remoteAddr: '10.1.2.3', scheme: 'http', body: null, bodyLength: undefined, ...more };
}

export interface Backend {
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
  readonly sockets: Set<net.Socket>;
}

function track(t: TestContext, server: net.Server, backend: { connections: number; sockets: Set<net.Socket> }): void {
  server.on('connection', (s: net.Socket) => {
    backend.connections++;
    backend.sockets.add(s);
    s.on('close', () => backend.sockets.delete(s));
    s.on('error', () => undefined);
  });
  t.after(async () => {
    for (const s of backend.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

/** A node:http backend. */
export async function httpBackend(t: TestContext, handler: http.RequestListener): Promise<Backend & { server: http.Server }> {
  const server = http.createServer(handler);
  const backend = { port: 0, connections: 0, sockets: new Set<net.Socket>(), server };
  track(t, server, backend);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.port = (server.address() as net.AddressInfo).port;
  return backend;
}

/**
 * A raw TCP backend: `onRequest` runs for every complete request head
 * (`\r\n\r\n`) that arrives on a connection, with that head's text.
 */
export async function rawBackend(t: TestContext, onRequest: (socket: net.Socket, head: string, index: number) => void): Promise<Backend & { heads: string[] }> {
  const backend = { port: 0, connections: 0, sockets: new Set<net.Socket>(), heads: [] as string[] };
  const server = net.createServer((socket) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        backend.heads.push(head);
        onRequest(socket, head, backend.heads.length - 1);
      }
    });
  });
  track(t, server, backend);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  backend.port = (server.address() as net.AddressInfo).port;
  return backend;
}

export function proxyTo(t: TestContext, port: number, options: Partial<ProxyOptions> = {}): ProxyHandler {
  const proxy = new ProxyHandler({ type: 'proxy', id: 1, addr: '127.0.0.1', port }, { forwardedHeaders: true, ...options });
  t.after(() => proxy.close());
  return proxy;
}

/** Reads the whole response: head text and body bytes. */
export async function collect(res: ProxyResponse): Promise<{ head: string; body: Buffer }> {
  const chunks: Buffer[] = [];
  if (res.whole) chunks.push(res.whole.subarray(res.head.length));
  if (res.body) for await (const c of res.body) chunks.push(c as Buffer);
  return { head: res.head.toString('latin1'), body: Buffer.concat(chunks) };
}

/** Resolves when `cond()` holds, checked on every event-loop turn (bounded). */
export async function until(cond: () => boolean, what: string, limitMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A free port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
