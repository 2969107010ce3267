/**
 * Filters through the core end to end: examples/filters/header-access.ts
 * (a key header and an IP allowlist, on handler and Dir routes),
 * examples/filters/null.ts (closes HANDLER and PROXY), a filter that throws
 * or answers late, and a filter module that cannot load.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FilterConfig } from '../../src/config/types.js';
import { FilterLoadError } from '../../src/server/filters/loader.js';
import { rawHttp, untilCompleteResponse } from '../support/mongrel2.js';
import { pino } from 'pino';
import { Connection } from '../../src/handler/connection.js';
import { startCore, type CorePeer } from '../support/core.js';

const example = (name: string): string => fileURLToPath(new URL(`../../examples/filters/${name}`, import.meta.url));
const GET = (p: string, extra = ''): string => `GET ${p} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`;

/** A handler answering every request with 200 "handled". */
async function answering(peer: CorePeer): Promise<{ conn: Connection; done: Promise<void> }> {
  const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
  await conn.ready();
  const done = (async () => {
    for await (const req of conn) if (req.kind === 'http') void conn.replyHttp(req, 'handled');
  })();
  return { conn, done };
}

/** Sends one request and reads until the server closes (or one complete response arrives). */
const once = (peer: CorePeer, head: string, keepAlive = false): Promise<string> =>
  rawHttp(peer.httpPort, head, keepAlive ? { until: untilCompleteResponse(1) } : {}).then((b) => b.toString('latin1'));

describe('header-access filter', () => {
  let peer: CorePeer;
  let h: { conn: Connection; done: Promise<void> };
  before(async () => {
    const filters: FilterConfig[] = [{ id: 1, name: example('header-access.ts'), settings: { header: Buffer.from('x-api-key'), allow: [Buffer.from('k1'), Buffer.from('k2')] } }];
    peer = await startCore({ filters });
    h = await answering(peer);
  });
  after(async () => {
    await h?.conn.shutdown(200);
    await h?.done;
    await peer?.stop();
  });

  test('an allowed key reaches the handler and the Dir', async () => {
    assert.match(await once(peer, GET('/handler/x', 'X-Api-Key: k2\r\n'), true), /^HTTP\/1\.1 200 OK\r\n[^]*handled$/);
    assert.match(await once(peer, GET('/static/hello.txt', 'X-Api-Key: k1\r\n'), true), /^HTTP\/1\.1 200 OK\r\n[^]*hello static\n$/);
  });

  test('a missing or wrong key gets 403 and the connection closes (handler and Dir)', async () => {
    for (const head of [GET('/handler/x'), GET('/handler/x', 'X-Api-Key: k3\r\n'), GET('/static/hello.txt', 'X-Api-Key: K1\r\n')]) {
      // rawHttp without `until` resolves only when the core closes the connection.
      const got = await once(peer, head);
      assert.match(got, /^HTTP\/1\.1 403 Forbidden\r\n/);
      assert.match(got, /Connection: close\r\n/);
      assert.match(got, /\r\n\r\nForbidden$/);
    }
  });
});

describe('header-access filter: an IP allowlist', () => {
  test('127.0.0.1 outside the list gets 403; inside it gets through', async (t) => {
    const deny = await startCore({ filters: [{ id: 1, name: example('header-access.ts'), settings: { ips: [Buffer.from('10.0.0.0/8')], status: 451 } }] });
    t.after(() => deny.stop());
    assert.match(await once(deny, GET('/static/hello.txt')), /^HTTP\/1\.1 451 /);
    const allow = await startCore({ filters: [{ id: 1, name: example('header-access.ts'), settings: { ips: [Buffer.from('10.0.0.0/8'), Buffer.from('127.0.0.1')] } }] });
    t.after(() => allow.stop());
    assert.match(await once(allow, GET('/static/hello.txt'), true), /^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe('null filter', () => {
  let peer: CorePeer;
  let backend: http.Server;
  before(async () => {
    backend = http.createServer((_req, res) => res.end('from backend'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as { port: number }).port;
    peer = await startCore({
      filters: [{ id: 1, name: example('null.ts'), settings: { any: Buffer.from('thing') } }],
      routes: [{ path: '/app/', target: { type: 'proxy', id: 7, addr: '127.0.0.1', port } }],
    });
  });
  after(async () => {
    await peer?.stop();
    await new Promise((r) => backend?.close(r));
  });

  test('HANDLER and PROXY requests are closed with no answer; Dir still serves', async () => {
    assert.equal(await once(peer, GET('/handler/x')), '');
    assert.equal(await once(peer, GET('/app/x')), '');
    assert.match(await once(peer, GET('/static/hello.txt'), true), /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(peer.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('CONFIG: 14:3:any,5:thing,}')));
  });
});

describe('filters that fail or answer late', () => {
  let dir: string;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2filters-'));
    await fsp.writeFile(path.join(dir, 'throws.mjs'), "export const init = () => ['DIRECTORY'];\nexport function transition() { throw new Error('boom'); }\n");
    await fsp.writeFile(
      path.join(dir, 'late.mjs'),
      "export const init = () => ['REQ_RECV', 'RESP_SENT', 'CLOSE'];\n" +
        'export const seen = [];\n' +
        "export async function transition(event, conn) { seen.push(event); await new Promise((r) => setImmediate(r)); if (event === 'REQ_RECV' && conn.request.path.endsWith('deny.txt')) { conn.respond(404, 'no such thing'); return 'CLOSE'; } return event; }\n",
    );
    await fsp.writeFile(path.join(dir, 'no-transition.mjs'), "export const init = () => ['HANDLER'];\n");
  });
  after(() => fsp.rm(dir, { recursive: true, force: true }));

  test('a throwing transition fails closed', async (t) => {
    const peer = await startCore({ filters: [{ id: 1, name: path.join(dir, 'throws.mjs'), settings: {} }] });
    t.after(() => peer.stop());
    assert.equal(await once(peer, GET('/static/hello.txt')), '');
    assert.ok(peer.logs().some((l) => typeof l.msg === 'string' && /throws\.mjs threw: boom; closing/.test(l.msg)));
  });

  test('async transitions: pipelined requests wait for them, in order; respond() then CLOSE', async (t) => {
    const peer = await startCore({ filters: [{ id: 1, name: path.join(dir, 'late.mjs'), settings: {} }] });
    t.after(() => peer.stop());
    const got = await once(peer, GET('/static/hello.txt') + GET('/static/index.html') + GET('/static/deny.txt') + GET('/static/hello.txt'));
    const statuses = [...got.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '404']);
    assert.match(got, /no such thing$/);
    const mod = (await import(path.join(dir, 'late.mjs'))) as { seen: string[] };
    assert.deepEqual(mod.seen.slice(0, 5), ['REQ_RECV', 'RESP_SENT', 'REQ_RECV', 'RESP_SENT', 'REQ_RECV']);
  });

  test('a module that does not load fails startup with its path in the error', async () => {
    const bad = path.join(dir, 'no-transition.mjs');
    await assert.rejects(startCore({ filters: [{ id: 3, name: bad, settings: {} }] }), (err: Error) => err instanceof FilterLoadError && err.message.includes(bad) && /no transition/.test(err.message));
    const missing = path.join(dir, 'missing.mjs');
    await assert.rejects(startCore({ filters: [{ id: 4, name: missing, settings: {} }] }), (err: Error) => err instanceof FilterLoadError && err.message.includes(missing));
  });
});
