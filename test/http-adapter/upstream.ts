/**
 * A real node:http origin on 127.0.0.1 for the upstream HTTP adapter tests,
 * with a `ws` echo server on the same port, and what it saw recorded.
 *
 * Routes: /echo (the request as JSON), /sha (hash of the body), /stream
 * (one chunk, then waits for `release()`), /big (32 MiB, stops while the
 * reader does not read), /hold (never answers; records
 * when its connection closes), /hold-body (head + one chunk, then waits),
 * /headers (duplicates, Set-Cookie, hop-by-hop), /status/NNN, /hints (a 103
 * before the 200).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { gate } from '../app/helpers.js';

export interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  rawHeaders: string[];
}

export interface Upstream {
  readonly port: number;
  readonly url: string;
  readonly seen: Seen[];
  /** Resolves when a /hold or /hold-body request arrived; then with how its connection ended. */
  held(): { arrived: Promise<void>; closed: Promise<{ aborted: boolean; complete: boolean }> };
  /** Lets the pending /stream response end. */
  release(): void;
  /** Resolves with the bytes /big had written when its first write() returned false. */
  blocked(): Promise<number>;
  /** Upgrade requests the ws server saw. */
  readonly upgrades: Array<{ url: string; rawHeaders: string[] }>;
  /** Resolves when the next ws connection (one not yet open) closes. */
  wsClosed(): Promise<void>;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: Seen[] = [];
  const upgrades: Array<{ url: string; rawHeaders: string[] }> = [];
  let streamGate = gate();
  let arrived = gate();
  let closed = gate<{ aborted: boolean; complete: boolean }>();
  let wsClose = gate();
  let bigBlocked = gate<number>();

  const hold = (req: IncomingMessage, res: ServerResponse): void => {
    // Each hold opens the gates held() handed out, and leaves fresh ones for the next.
    const [a, c] = [arrived, closed];
    arrived = gate();
    closed = gate();
    // 'close' on the response fires when the connection goes before the response ended.
    res.once('close', () => c.open({ aborted: !res.writableFinished, complete: req.complete }));
    a.open();
  };

  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders });
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname.replace(/^\/base/, '');
    switch (true) {
      case p === '/sha': {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => (h.update(c), (n += c.length)));
        req.on('end', () => res.setHeader('Content-Type', 'application/json').end(JSON.stringify({ sha256: h.digest('hex'), length: n, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null })));
        return;
      }
      case p === '/stream':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('first;');
        void streamGate.promise.then(() => res.end('second'));
        return;
      case p === '/big': {
        // 32 MiB in 16 KiB writes, honouring backpressure.
        const total = 32 * 1024 * 1024;
        const chunk = Buffer.alloc(16 * 1024, 0x62);
        let written = 0;
        const blocked = bigBlocked;
        bigBlocked = gate();
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(total) });
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            if (!res.write(chunk)) {
              blocked.open(written);
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      case p === '/hold':
        hold(req, res);
        return;
      case p === '/hold-body':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('partial');
        hold(req, res);
        return;
      case p === '/headers':
        res.writeHead(200, 'Fine Thanks', [
          ['Set-Cookie', 'a=1; Path=/'],
          ['Set-Cookie', 'b=2; HttpOnly'],
          ['X-Dup', 'one'],
          ['X-Dup', 'two'],
          ['Connection', 'X-Secret'],
          ['X-Secret', 'hop'],
          ['Keep-Alive', 'timeout=5'],
          ['Proxy-Authenticate', 'Basic'],
          ['Content-Length', '2'],
        ]);
        res.end('ok');
        return;
      case p.startsWith('/status/'): {
        const status = Number(p.slice('/status/'.length));
        res.writeHead(status, { ETag: '"v1"' });
        res.end();
        return;
      }
      case p === '/hints':
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.end('after hints');
        return;
      default: {
        // /echo and anything else: what arrived, as JSON (also drains a body).
        let size = 0;
        req.on('data', (c: Buffer) => (size += c.length));
        req.on('end', () => {
          res.setHeader('Content-Type', 'application/json');
          res.setHeader('X-Method', req.method ?? '');
          res.end(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, size }));
        });
      }
    }
  });
  const wss = new WebSocketServer({ server });
  wss.on('headers', (_headers, req) => upgrades.push({ url: req.url ?? '', rawHeaders: req.rawHeaders }));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    const closing = wsClose;
    wsClose = gate();
    ws.on('close', () => closing.open());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    upgrades,
    held() {
      return { arrived: arrived.promise, closed: closed.promise };
    },
    release() {
      streamGate.open();
      streamGate = gate();
    },
    blocked() {
      return bigBlocked.promise;
    },
    wsClosed() {
      return wsClose.promise;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A port with nothing listening (bound, then closed). */
export async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** A TCP server that answers every connection with `reply` and closes. */
export async function junkServer(reply: string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.once('data', () => sock.end(reply));
    sock.on('close', () => sockets.delete(sock));
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    url: `http://127.0.0.1:${(s.address() as net.AddressInfo).port}`,
    async close() {
      for (const sock of sockets) sock.destroy();
      s.close();
      await once(s, 'close');
    },
  };
}
