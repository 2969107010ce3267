/**
 * ONE HTTP client suite, run against the real Mongrel2 (Debian 1.12.2) and
 * against our core, each with (a) handler.py, a plain-pyzmq handler in the
 * style of the manual's demos, and (b) our TypeScript Connection. Where the
 * real server differs on purpose (pipelined answers reordered, Server
 * version), the test says so per server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Connection, type Request } from '../../src/handler/connection.js';
import { HeaderTable } from '../../src/server/header-table.js';
import { rawHttp, startMongrel2, untilCompleteResponse, type Mongrel2HandlerInfo } from '../support/mongrel2.js';
import { startCore } from '../support/core.js';

type ServerKind = 'mongrel2' | 'core';
type HandlerKind = 'python' | 'ts';
type Event = Record<string, unknown> & { event: string };

interface Peer {
  httpPort: number;
  handler: Mongrel2HandlerInfo;
  stop(): Promise<void>;
}

interface HandlerRun {
  readonly events: Event[];
  waitFor(pred: (e: Event) => boolean, what: string, ms?: number): Promise<Event>;
  stop(): Promise<void>;
}

/** An event log with waiters (no sleeps: each wait ends on the event or a deadline). */
function eventLog(): { events: Event[]; push(e: Event): void; waitFor: HandlerRun['waitFor'] } {
  const events: Event[] = [];
  const waiters: Array<() => void> = [];
  return {
    events,
    push(e) {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
    async waitFor(pred, what, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = events.find(pred);
        if (hit) return hit;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`handler event not seen within ${ms} ms: ${what}; saw ${JSON.stringify(events.slice(-5))}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(left)]);
      }
    },
  };
}

function responseBytes(body: Buffer, headOnly: boolean): Buffer {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), headOnly ? Buffer.alloc(0) : body]);
}

const HANDLER_PY = fileURLToPath(new URL('./handler.py', import.meta.url));
/** Debian's python3 has python3-zmq; a pyenv shim earlier on PATH may not. */
const PYTHON = '/usr/bin/python3';

async function startPython(h: Mongrel2HandlerInfo): Promise<HandlerRun> {
  const log = eventLog();
  const child: ChildProcess = spawn(PYTHON, [HANDLER_PY, h.sendSpec, h.recvSpec], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => log.push(JSON.parse(line) as Event));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await log.waitFor((e) => e.event === 'ready', `handler.py start (${stderr})`, 10_000);
  return {
    events: log.events,
    waitFor: log.waitFor,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The same behaviour as handler.py, on our Connection. Requests are answered one at a time, in order. */
async function startTs(h: Mongrel2HandlerInfo): Promise<HandlerRun> {
  const log = eventLog();
  const conn = new Connection({ sendSpec: h.sendSpec, recvSpec: h.recvSpec, logger: pino({ level: 'silent' }) });
  conn.on('disconnect', (n) => log.push({ event: 'notice', conn: String(n.connId), body: n.body.toString() }));
  const held: Request[] = [];
  const loop = (async () => {
    for (;;) {
      const req = await conn.recv();
      if (!req) return;
      if (req.kind !== 'http') continue;
      const keys = Object.keys(req.headers);
      log.push({ event: 'request', conn: String(req.connId), path: req.path, method: req.method, keys });
      const info = Buffer.from(JSON.stringify({ method: req.method, path: req.path, query: req.headers.QUERY, headers: req.headers, keys, body: req.body.toString(), conn: String(req.connId) }));
      if (req.path.endsWith('/silent')) continue;
      if (req.path.endsWith('/multi')) {
        held.push(req);
        if (held.length === 2) await conn.deliver(req.sender, held.splice(0).map((r) => r.connId), responseBytes(Buffer.from('multi\n'), false));
        continue;
      }
      if (req.path.endsWith('/delay')) await sleep(300); // the handler's own work, not test synchronisation
      await conn.reply(req, responseBytes(info, req.method === 'HEAD'));
      if (req.path.endsWith('/close')) await conn.close(req);
    }
  })();
  await conn.ready();
  return {
    events: log.events,
    waitFor: log.waitFor,
    stop: async () => {
      await conn.shutdown(200);
      await loop;
    },
  };
}

/** Bounded readiness poll: the first replies can be lost until the server's SUB has the handler's subscription. */
async function warmUp(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      const got = await rawHttp(port, 'GET /handler/warmup HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse(1), timeoutMs: 400 });
      if (got.toString('latin1').startsWith('HTTP/1.1 200')) return;
    } catch {
      // not yet
    }
  }
  throw new Error('handler never answered the warm-up request');
}

interface Parsed {
  status: number;
  headers: string;
  body: Buffer;
}

/** Splits a buffer holding complete responses with Content-Length (what these handlers send). */
function splitResponses(buf: Buffer, headOnly = false): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) break;
    const headers = buf.toString('latin1', at, end);
    const status = Number(headers.slice(9, 12));
    const len = status === 100 || headOnly ? 0 : Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0);
    out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
  return out;
}

function info(p: Parsed): { method: string; path: string; query: string | null; headers: Record<string, string | string[]>; keys: string[]; body: string; conn: string } {
  return JSON.parse(p.body.toString('utf8')) as ReturnType<typeof info>;
}

function get(port: number, path: string, agent?: http.Agent, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', agent: agent ?? false, headers: { Host: 'localhost' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), socket: res.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** `Server: Mongrel2/1.12.2` (the Debian peer) vs our `Mongrel2/1.13.0`. */
const sameVersion = (s: string): string => s.replace(/Mongrel2\/1\.1[23]\.\d/, 'Mongrel2/x');

for (const serverKind of ['mongrel2', 'core'] as const satisfies readonly ServerKind[]) {
  for (const handlerKind of ['python', 'ts'] as const satisfies readonly HandlerKind[]) {
    describe(`${serverKind} with the ${handlerKind} handler`, { timeout: 60_000 }, () => {
      let peer: Peer | undefined;
      let h: HandlerRun | undefined;
      let port = 0;
      before(async () => {
        peer = serverKind === 'mongrel2' ? await startMongrel2() : await startCore();
        port = peer.httpPort;
        h = handlerKind === 'python' ? await startPython(peer.handler) : await startTs(peer.handler);
        await warmUp(port);
      });
      after(async () => {
        await h?.stop();
        await peer?.stop();
      });

      test('GET with a query: Mongrel2 headers reach the handler', async () => {
        const res = await get(port, '/handler/q?a=1&b=two%20words');
        assert.equal(res.status, 200);
        const got = JSON.parse(res.body) as ReturnType<typeof info>;
        assert.equal(got.method, 'GET');
        assert.equal(got.path, '/handler/q');
        assert.equal(got.query, 'a=1&b=two%20words');
        assert.equal(got.headers.URI, '/handler/q?a=1&b=two%20words');
        assert.equal(got.headers.PATTERN, '/handler');
        assert.equal(got.headers.URL_SCHEME, 'http');
        assert.equal(got.headers.REMOTE_ADDR, '127.0.0.1');
        assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(got.headers.host, 'localhost');
      });

      test('POST body arrives whole', async () => {
        const res = await get(port, '/handler/post', undefined, { method: 'POST', body: 'name=alice&n=42' });
        const got = JSON.parse(res.body) as ReturnType<typeof info>;
        assert.equal(got.method, 'POST');
        assert.equal(got.body, 'name=alice&n=42');
        assert.equal(got.headers['content-length'], '15');
      });

      test('duplicate headers become lists, in Mongrel2 key order; X-Forwarded-For is overwritten', async () => {
        const raw = 'GET /handler/dup HTTP/1.1\r\nHost: localhost\r\nCookie: a=1\r\nX-Foo: first\r\nCookie: b=2\r\nX-Forwarded-For: 6.6.6.6\r\nX-Mixed-Case: V\r\n\r\n';
        const got = info(splitResponses(await rawHttp(port, raw, { until: untilCompleteResponse(1) }))[0]!);
        assert.deepEqual(got.headers.cookie, ['a=1', 'b=2']);
        assert.equal(got.headers['x-forwarded-for'], '127.0.0.1');
        const ev = await h!.waitFor((e) => e.event === 'request' && e.path === '/handler/dup', 'dup request');
        const table = new HeaderTable(1280);
        for (const [k, v] of [['Host', 'localhost'], ['Cookie', 'a=1'], ['X-Foo', 'first'], ['Cookie', 'b=2'], ['X-Forwarded-For', '6.6.6.6'], ['X-Mixed-Case', 'V']] as const) table.add(k, v);
        const expected = ['PATH', ...table.keys(), 'METHOD', 'VERSION', 'URI', 'PATTERN', 'URL_SCHEME', 'REMOTE_ADDR'];
        // JS objects list insertion order; the python handler keeps the wire order too.
        assert.deepEqual(ev.keys, expected);
      });

      test('HEAD: the handler sends no body and the connection stays usable', async () => {
        const raw = 'HEAD /handler/head HTTP/1.1\r\nHost: localhost\r\n\r\nGET /handler/after HTTP/1.1\r\nHost: localhost\r\n\r\n';
        const buf = await rawHttp(port, raw, { until: (b) => b.includes('/handler/after') && untilCompleteResponse(1)(b.subarray(b.indexOf('\r\n\r\n') + 4)) });
        const first = buf.toString('latin1', 0, buf.indexOf('\r\n\r\n'));
        assert.match(first, /^HTTP\/1\.1 200 OK/);
        const rest = splitResponses(buf.subarray(buf.indexOf('\r\n\r\n') + 4));
        assert.equal(info(rest[0]!).path, '/handler/after');
      });

      test('keep-alive: two requests on one connection keep the connection id', async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const a = await get(port, '/handler/ka1', agent);
          const b = await get(port, '/handler/ka2', agent);
          assert.equal(a.socket, b.socket);
          assert.equal((JSON.parse(a.body) as { conn: string }).conn, (JSON.parse(b.body) as { conn: string }).conn);
        } finally {
          agent.destroy();
        }
      });

      test('HTTP/1.0 without Host reaches the default host; the handler decides about closing', async () => {
        const got = info(splitResponses(await rawHttp(port, 'GET /handler/v10 HTTP/1.0\r\n\r\n', { until: untilCompleteResponse(1) }))[0]!);
        assert.equal(got.headers.VERSION, 'HTTP/1.0');
        assert.equal(got.headers.host, undefined);
      });

      test('Expect: 100-continue gets 100 before the body is sent', async () => {
        const sock = net.connect({ host: '127.0.0.1', port });
        try {
          const chunks: Buffer[] = [];
          sock.on('data', (c: Buffer) => chunks.push(c));
          const seen = (done: (b: Buffer) => boolean): Promise<void> =>
            new Promise((resolve, reject) => {
              const check = (): void => {
                if (!done(Buffer.concat(chunks))) return;
                sock.off('data', check);
                resolve();
              };
              sock.on('data', check);
              sock.once('error', reject);
              check();
            });
          await new Promise<void>((r) => sock.once('connect', () => r()));
          sock.write('POST /handler/expect HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
          await seen((b) => b.includes('HTTP/1.1 100 Continue\r\n\r\n'));
          sock.write('hello');
          await seen(untilCompleteResponse(2));
          const parts = splitResponses(Buffer.concat(chunks));
          assert.deepEqual(parts.map((p) => p.status), [100, 200]);
          assert.equal(info(parts[1]!).body, 'hello');
        } finally {
          sock.destroy();
        }
      });

      test('no route: the fixed 404, then close', async () => {
        const buf = await rawHttp(port, 'GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n');
        assert.equal(sameVersion(buf.toString('latin1')), 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 9\r\nServer: Mongrel2/x\r\n\r\nNot Found');
      });

      test('bad request: the fixed 400, then close', async () => {
        for (const bad of ['get /handler HTTP/1.1\r\n\r\n', 'GET /handler/a b HTTP/1.1\r\n\r\n', 'GET /handler HTTP/2.0\r\n\r\n']) {
          const buf = await rawHttp(port, bad);
          assert.equal(sameVersion(buf.toString('latin1')), 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 11\r\nServer: Mongrel2/x\r\n\r\nBad Request', JSON.stringify(bad));
        }
      });

      test('pipelined handler requests are answered in order', async () => {
        const raw = 'GET /handler/p1/delay HTTP/1.1\r\nHost: localhost\r\n\r\nGET /handler/p2 HTTP/1.1\r\nHost: localhost\r\n\r\n';
        const parts = splitResponses(await rawHttp(port, raw, { until: untilCompleteResponse(2) }));
        assert.deepEqual(parts.map((p) => info(p).path), ['/handler/p1/delay', '/handler/p2']);
      });

      test('pipelined handler then Dir request: ours keeps the order, Mongrel2 answers the Dir one first', async () => {
        const raw = 'GET /handler/p3/delay HTTP/1.1\r\nHost: localhost\r\n\r\nGET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n';
        const parts = splitResponses(await rawHttp(port, raw, { until: untilCompleteResponse(2) }));
        const order = parts.map((p) => (p.body.toString() === 'hello static\n' ? 'dir' : 'handler'));
        assert.deepEqual(order, serverKind === 'core' ? ['handler', 'dir'] : ['dir', 'handler']);
      });

      test('the close message ends the connection after the response', async () => {
        const buf = await rawHttp(port, 'GET /handler/x/close HTTP/1.1\r\nHost: localhost\r\n\r\n');
        const parts = splitResponses(buf);
        assert.equal(parts.length, 1);
        assert.equal(info(parts[0]!).path, '/handler/x/close');
      });

      test('one reply to two connections reaches both', async () => {
        const send = (): Promise<Buffer> => rawHttp(port, 'GET /handler/m/multi HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse(1) });
        const [a, b] = await Promise.all([send(), send()]);
        for (const r of [a, b]) assert.equal(splitResponses(r)[0]!.body.toString(), 'multi\n');
      });

      test('a client that goes away while its request is pending: the handler gets a disconnect notice', async () => {
        const sock = net.connect({ host: '127.0.0.1', port });
        await new Promise<void>((r) => sock.once('connect', () => r()));
        sock.write('GET /handler/gone/silent HTTP/1.1\r\nHost: localhost\r\n\r\n');
        const req = await h!.waitFor((e) => e.event === 'request' && e.path === '/handler/gone/silent', 'silent request');
        sock.destroy();
        const notice = await h!.waitFor((e) => e.event === 'notice' && e.conn === req.conn, 'disconnect notice');
        assert.equal(notice.body, '{"type":"disconnect"}');
      });
    });
  }
}
