/**
 * The app examples, run exactly as examples/README.md says, behind the real
 * Mongrel2 ('/' routed to the handler): `m2bridge --fcgi` with examples/php
 * on PHP-FPM, `m2bridge --app` with examples/express and examples/koa, and
 * `m2bridge --config` with examples/migrate/bridge.json (its FastCGI
 * address pointed at the test's PHP-FPM).
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMongrel2, rawHttp, untilCompleteResponse, type Mongrel2Peer } from '../support/mongrel2.js';
import { startPhpFpm, type PhpFpm } from '../support/php-fpm.js';
import { startBridge, type BridgeProcess } from '../support/m2bridge.js';
import { parseBridgeConfig } from '../../src/bridge/route-map.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Answer {
  status: number;
  head: string;
  body: string;
}

async function get(peer: Mongrel2Peer, target: string, init: { method?: string; body?: string; type?: string } = {}): Promise<Answer> {
  const body = init.body ?? '';
  const extra = init.body === undefined ? '' : `Content-Type: ${init.type ?? 'application/x-www-form-urlencoded'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  const raw = (await rawHttp(peer.httpPort, `${init.method ?? 'GET'} ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n${body}`)).toString();
  const end = raw.indexOf('\r\n\r\n');
  let payload = raw.slice(end + 4);
  const head = raw.slice(0, end);
  // Koa's streamed body arrives chunked: undo the framing.
  if (/\r\ntransfer-encoding: chunked/i.test(head)) {
    let out = '';
    for (let rest = payload; ; ) {
      const nl = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    payload = out;
  }
  return { status: Number(head.slice(9, 12)), head, body: payload };
}

describe('examples/php, express, koa and migrate behind the real Mongrel2', () => {
  let fpm: PhpFpm;
  const peers: Record<string, Mongrel2Peer> = {};
  const bridges: BridgeProcess[] = [];
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'm2-examples-'));
    fpm = await startPhpFpm({ docRoot: path.join(EXAMPLES, 'migrate/legacy') });
    const names = ['php', 'express', 'koa', 'migrate'];
    await Promise.all(names.map(async (n) => (peers[n] = await startMongrel2({ rootRoute: true }))));

    // The shipped bridge.json, with PHP-FPM's real address and paths made absolute.
    const shipped = path.join(EXAMPLES, 'migrate/bridge.json');
    const parsed = parseBridgeConfig(await readFile(shipped, 'utf8'), shipped);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.deepEqual(parsed.warnings, []);
    const config = JSON.parse(await readFile(shipped, 'utf8')) as { backends: Record<string, Record<string, unknown>> };
    config.backends.legacy!.address = fpm.addressText;
    config.backends.legacy!.root = path.join(EXAMPLES, 'migrate/legacy');
    config.backends.new!.file = path.join(EXAMPLES, 'migrate/new-app.ts');
    const configFile = path.join(tmp, 'bridge.json');
    await writeFile(configFile, JSON.stringify(config));

    const specs = (n: string): string[] => ['--send-spec', peers[n]!.handler.sendSpec, '--recv-spec', peers[n]!.handler.recvSpec];
    bridges.push(
      ...(await Promise.all([
        startBridge(['--fcgi', fpm.addressText, '--root', path.join(EXAMPLES, 'php'), ...specs('php')]),
        startBridge(['--app', path.join(EXAMPLES, 'express/app.ts'), ...specs('express')]),
        startBridge(['--app', path.join(EXAMPLES, 'koa/app.ts'), ...specs('koa')]),
        startBridge(['--config', configFile, ...specs('migrate')]),
      ])),
    );
  });

  after(async () => {
    await Promise.all(bridges.map((b) => b.stop()));
    await Promise.all(Object.values(peers).map((p) => p.stop()));
    await fpm?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('php: the form posts back and the page escapes it', async () => {
    const page = await get(peers.php!, '/', { method: 'POST', body: 'name=%3Cb%3EZed%3C%2Fb%3E' });
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Hello, &lt;b&gt;Zed&lt;\/b&gt;!<\/h1>/);
    assert.match(page.body, /answered <code>POST \/<\/code>/);
  });

  test('express: page, JSON API with a body, 400 on a bad body', async () => {
    const p = peers.express!;
    assert.match((await get(p, '/')).body, /Express behind Mongrel2/);
    const created = await get(p, '/notes', { method: 'POST', type: 'application/json', body: '{"text":" buy milk "}' });
    assert.equal(created.status, 201);
    assert.deepEqual(JSON.parse(created.body), { id: 1, text: 'buy milk' });
    assert.deepEqual(JSON.parse((await get(p, '/notes')).body), { notes: ['buy milk'] });
    assert.equal((await get(p, '/notes', { method: 'POST', type: 'application/json', body: '{}' })).status, 400);
  });

  test('koa: query string and a streamed body', async () => {
    const p = peers.koa!;
    assert.deepEqual(JSON.parse((await get(p, '/greet?name=mongrel')).body), { hello: 'mongrel', from: 'koa', path: '/greet' });
    assert.equal((await get(p, '/count?to=4')).body, '1\n2\n3\n4\n');
  });

  test('migrate: /report.php moved to Express, everything else still PHP', async () => {
    const p = peers.migrate!;
    const report = await get(p, '/report.php');
    assert.match(report.head, /\r\nX-Served-By: new-express/i);
    assert.equal(JSON.parse(report.body).source, 'new-express');
    const contact = await get(p, '/contact.php');
    assert.match(contact.head, /\r\nX-Served-By: legacy-php/i);
    assert.equal(contact.body, 'Write to shop@example.invalid\n');
    const home = await get(p, '/');
    assert.match(home.body, /Legacy shop \(PHP\)/);
  });
});
