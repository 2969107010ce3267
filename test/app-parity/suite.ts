/**
 * ONE suite of requests, run against an app served directly on node:http
 * (the reference) and the same app served some other way (the target), with
 * identical status, headers and bodies asserted. The target is a parameter:
 * bridge.test.ts runs it through the real Mongrel2 + `m2bridge --app`; a
 * target for our own server core (test/support/core.ts + m2bridge) only needs
 * a `ParityTarget` and one more `paritySuite(target)` call.
 *
 * Headers compared apart from the rest are listed in HOP_BY_HOP with why.
 * SSE steps and aborts are synchronised through the app itself
 * (apps/signals.ts), never with sleeps.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadApp } from '../../adapters/app.js';
import { BIG_BODY, SSE_EVENTS } from './apps/signals.js';

export interface ParityServer {
  /** Where clients connect (127.0.0.1). */
  readonly port: number;
  stop(): Promise<void>;
}

export interface ParityTarget {
  readonly name: string;
  /** Serve the app module `appFile` (its default export). */
  start(appFile: string): Promise<ParityServer>;
}

export const APPS = {
  express: fileURLToPath(new URL('./apps/express-app.ts', import.meta.url)),
  koa: fileURLToPath(new URL('./apps/koa-app.ts', import.meta.url)),
} as const;

/**
 * Headers compared apart from the others, and why:
 * - date: the clock. (Through the bridge it is still the app's own Date.)
 * - connection, keep-alive, transfer-encoding: hop-by-hop (RFC 9110 §7.6.1),
 *   they describe one connection, not the response. They are compared as a
 *   set rather than in order (the bridge re-frames the body and puts
 *   Transfer-Encoding before Connection; Node puts it last). When the client
 *   asks for `Connection: close` both sides send the same values; on a
 *   kept-alive connection Node adds `Connection: keep-alive` and
 *   `Keep-Alive: timeout=5` (its own idle timeout), which the bridge drops
 *   because Mongrel2 owns the client connection and keeps HTTP/1.1 alive by
 *   default with timeouts of its own.
 */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

/** The direct reference: the app's request listener on a plain node:http server. */
export const directTarget: ParityTarget = {
  name: 'node:http',
  async start(appFile) {
    const server = http.createServer(await loadApp(appFile));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as { port: number }).port,
      stop: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  },
};

export interface Answer {
  status: number;
  /** End-to-end headers: [lower-case name, value] in the order sent, without date and HOP_BY_HOP. */
  headers: Array<[string, string]>;
  /** The HOP_BY_HOP headers by lower-case name. */
  hop: Record<string, string>;
  body: Buffer;
}

export interface Ask {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Ask for a kept-alive connection (default: Connection: close). */
  keepAlive?: boolean;
}

export function ask(port: number, a: Ask): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...a.headers, Connection: a.keepAlive ? 'keep-alive' : 'close' };
    const req = http.request({ host: '127.0.0.1', port, method: a.method ?? 'GET', path: a.path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...split(res.rawHeaders), body: Buffer.concat(parts) }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${a.method ?? 'GET'} ${a.path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(a.body);
  });
}

function split(raw: readonly string[]): Pick<Answer, 'headers' | 'hop'> {
  const headers: Array<[string, string]> = [];
  const hop: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name)) hop[name] = raw[i + 1]!;
    else if (name !== 'date') headers.push([name, raw[i + 1]!]);
  }
  return { headers, hop };
}

/** Text received on a streaming response, and a bounded wait for a condition on it. */
class Stream {
  text = '';
  ended = false;
  readonly #waiters = new Set<() => void>();
  constructor(readonly res: http.IncomingMessage) {
    res.setEncoding('utf8');
    res.on('data', (s: string) => {
      this.text += s;
      this.#wake();
    });
    res.on('end', () => {
      this.ended = true;
      this.#wake();
    });
  }
  #wake(): void {
    for (const w of this.#waiters) w();
  }
  async until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
    if (ok()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${what}: not within ${ms} ms; received so far ${JSON.stringify(this.text)}`));
      }, ms);
      const check = (): void => {
        if (!ok()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }
}

function pick(o: Record<string, string>, key: string): Record<string, string> {
  return o[key] === undefined ? {} : { [key]: o[key] };
}

function openStream(port: number, path: string): Promise<{ req: http.ClientRequest; stream: Stream }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { Connection: 'close' } }, (res) => resolve({ req, stream: new Stream(res) }));
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path}: no response head within 10 s`)));
    req.on('error', reject);
  });
}

const FORM = 'name=Zed+Shaw&lang=C%2B%2B&empty=&emoji=%F0%9F%90%B4';
const SOME_KB = Buffer.alloc(300 * 1024, 'abcdefgh');

/** The requests compared one by one (same request to both servers at once). */
export const CASES: ReadonlyArray<[string, Ask]> = [
  ['JSON', { path: '/json' }],
  ['JSON on a kept-alive connection', { path: '/json', keepAlive: true }],
  ['HEAD of a JSON route', { method: 'HEAD', path: '/json' }],
  ['302 redirect', { path: '/redirect' }],
  ['301 redirect to another site', { path: '/moved' }],
  ['Set-Cookie twice, and a Cookie header in', { path: '/cookies', headers: { Cookie: 'a=1; b=two words' } }],
  ['the framework 404', { path: '/no/such/route' }],
  ['a thrown error: 500', { path: '/error' }],
  ['a query string with repeats and escapes', { path: '/query?a=1&b=two&b=three&c=%C3%A9%20x&d' }],
  ['POST JSON', { method: 'POST', path: '/echo-json', headers: { 'Content-Type': 'application/json' }, body: '{"x":[1,2,{"y":null}],"s":"é"}' }],
  ['POST urlencoded', { method: 'POST', path: '/echo-form', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: FORM }],
  ['POST 300 KiB (a Mongrel2 temp-file upload)', { method: 'POST', path: '/echo-size', headers: { 'Content-Type': 'application/octet-stream' }, body: SOME_KB }],
  ['res.write() streaming', { path: '/stream' }],
  ['res.write() streaming on a kept-alive connection', { path: '/stream', keepAlive: true }],
  ['a 1 MiB body', { path: '/big' }],
];

/** The whole suite for every app: `target` against node:http. */
export function paritySuite(target: ParityTarget, apps: Readonly<Record<string, string>> = APPS): void {
  for (const [appName, appFile] of Object.entries(apps)) {
    describe(`${appName}: ${target.name} answers as node:http does`, () => {
      let direct: ParityServer;
      let other: ParityServer;
      before(async () => {
        [direct, other] = await Promise.all([directTarget.start(appFile), target.start(appFile)]);
      });
      after(async () => {
        await Promise.all([direct?.stop(), other?.stop()]);
      });

      for (const [name, a] of CASES) {
        test(name, async () => {
          const [want, got] = await Promise.all([ask(direct.port, a), ask(other.port, a)]);
          assert.equal(got.status, want.status, 'status');
          assert.deepEqual(got.headers, want.headers, 'end-to-end headers, in order');
          if (a.keepAlive) {
            // Node's own keep-alive announcement is not the app's; Mongrel2 keeps the connection (HTTP/1.1).
            assert.deepEqual(want.hop, { connection: 'keep-alive', 'keep-alive': 'timeout=5', ...pick(want.hop, 'transfer-encoding') });
            assert.deepEqual(got.hop, pick(want.hop, 'transfer-encoding'), 'hop-by-hop headers');
          } else assert.deepEqual(got.hop, want.hop, 'hop-by-hop headers');
          assert.ok(got.body.equals(want.body), `body: ${got.body.length} bytes vs ${want.body.length}: ${got.body.subarray(0, 200).toString()} | ${want.body.subarray(0, 200).toString()}`);
          // Sanity: the reference really answered what the case is about.
          if (a.path === '/big') assert.ok(want.body.equals(BIG_BODY));
          if (a.path === '/echo-size') assert.deepEqual(JSON.parse(want.body.toString()), { bytes: SOME_KB.length });
          if (a.method === 'HEAD') assert.equal(got.body.length, 0);
        });
      }

      test('SSE: each event reaches the client before the app may write the next', async () => {
        const run = async (port: number): Promise<{ head: Pick<Answer, 'headers' | 'hop'>; text: string }> => {
          const id = randomUUID();
          const { stream } = await openStream(port, `/sse?id=${id}`);
          let expected = '';
          for (const [i, event] of SSE_EVENTS.entries()) {
            expected += event;
            // The app writes event i+1 only after /sse-next (below): if it arrives, nothing held it back.
            await stream.until(`event ${i + 1}`, () => stream.text.length >= expected.length);
            assert.equal(stream.text, expected, `exactly events 1..${i + 1} so far`);
            if (i + 1 < SSE_EVENTS.length) {
              assert.equal(stream.ended, false, 'the stream is still open');
              const r = await ask(port, { path: `/sse-next?id=${id}` });
              assert.deepEqual(JSON.parse(r.body.toString()), { released: i + 1 });
            }
          }
          await stream.until('the end of the stream', () => stream.ended);
          return { head: split(stream.res.rawHeaders), text: stream.text };
        };
        const [want, got] = await Promise.all([run(direct.port), run(other.port)]);
        assert.deepEqual(got, want);
      });

      test("a client that leaves mid-stream: the app sees 'close' on req and res", async () => {
        const run = async (port: number): Promise<{ req: boolean; res: boolean }> => {
          const id = randomUUID();
          const { req, stream } = await openStream(port, `/hold?id=${id}`);
          await stream.until('the first chunk', () => stream.text === 'started');
          req.destroy();
          const r = await ask(port, { path: `/closed?id=${id}` });
          return JSON.parse(r.body.toString()) as { req: boolean; res: boolean };
        };
        const [want, got] = await Promise.all([run(direct.port), run(other.port)]);
        assert.deepEqual(want, { req: true, res: true }, 'node:http itself');
        assert.deepEqual(got, { req: true, res: true });
      });
    });
  }
}
