import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { FilterConfig, ServerConfig } from '../../src/config/types.js';
import { loadConfig } from '../../src/config/read.js';
import { encode, parse, type TDict } from '../../src/protocol/tnetstring.js';
import { FilterChain } from '../../src/server/filters/chain.js';
import { FilterLoadError, loadFilter, loadFilters, type FilterServer } from '../../src/server/filters/loader.js';
import { fakeConnection, recordingLogger } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2-filters-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const server: FilterServer = { config: { uuid: 'u' } as ServerConfig, log: pino({ level: 'silent' }) };

/** Settings as the server has them: parsed from the tnetstring in the filter row (strings are Buffers). */
function tnsSettings(settings: TDict): Record<string, unknown> {
  return parse(encode(settings)).value as Record<string, unknown>;
}

let n = 0;
function moduleFile(text: string, ext = '.mjs'): string {
  const file = path.join(work, `filter${++n}${ext}`);
  fs.writeFileSync(file, text);
  return file;
}
const row = (name: string, settings: Record<string, unknown> = {}): FilterConfig => ({ id: 3, name, settings });

async function refused(name: string, re: RegExp, settings: Record<string, unknown> = {}): Promise<void> {
  await assert.rejects(loadFilter(row(name, settings), server), (err: unknown) => {
    assert.ok(err instanceof FilterLoadError, String(err));
    assert.match(err.message, re);
    return true;
  });
}

test('loads named exports, Mongrel2 names on a default export, event numbers and async init; relative paths use baseDir', async () => {
  const a = await loadFilter(row(moduleFile("export const init = (srv, s) => ['handler', 108]; export const transition = (e) => e;")), server);
  assert.deepEqual([...a.events], ['HANDLER', 'PROXY']);
  const b = moduleFile(`export default { seen: [], async filter_init(srv, settings) { this.seen.push(srv.config.uuid, settings.k); return [105, 105]; },
    filter_transition(e) { return this.seen.join(',') === 'u,v' ? 'CLOSE' : e; } };`);
  const loaded = await loadFilters([row(path.basename(b), { k: 'v' })], server, { baseDir: work });
  assert.deepEqual([...loaded[0]!.events], ['HTTP_REQ']);
  assert.equal(new FilterChain(loaded).run('HTTP_REQ', fakeConnection()), 'CLOSE');
});

test('refusals name the filter row and module: no init, no transition, no events, a bad event, a throwing init, a .so, a missing file', async () => {
  await refused(moduleFile('export const transition = (e) => e;'), /^filter id=3 .*filter\d+\.mjs: the module exports no init \(or filter_init\) function$/);
  await refused(moduleFile("export const init = () => ['HANDLER'];"), /: the module exports no transition \(or filter_transition\) function$/);
  await refused(moduleFile('export const init = () => []; export const transition = (e) => e;'), /: init returned no events: nothing to do/);
  await refused(moduleFile("export const init = () => ['HANDLER', 116]; export const transition = (e) => e;"), /: init returned 116 at index 1, which is no event/);
  await refused(moduleFile("export const init = () => 'HANDLER'; export const transition = (e) => e;"), /: init returned "HANDLER", expected a list of events to hook$/);
  await refused(moduleFile("export const init = () => { throw new Error('bad settings'); }; export const transition = (e) => e;"), /: init threw: bad settings$/);
  await refused('/usr/lib/mongrel2/filters/null.so', /^filter id=3 \/usr\/lib\/mongrel2\/filters\/null\.so: cannot import filter module .*Mongrel2 \.so plugins cannot be loaded/);
  await refused(path.join(work, 'absent.ts'), /cannot import filter module .*absent\.ts/);
});

test('examples/filters/null.ts: hooks HANDLER and PROXY, logs its settings as a tnetstring, closes', async () => {
  const { log, lines } = recordingLogger();
  const settings = tnsSettings({ extensions: ['a'], n: 1 });
  const f = await loadFilter(row('examples/filters/null.ts', settings), { config: server.config, log }, { baseDir: ROOT });
  assert.deepEqual([...f.events], ['HANDLER', 'PROXY']);
  const chain = new FilterChain([f]);
  const conn = fakeConnection();
  assert.equal(chain.run('PROXY', conn), 'CLOSE');
  assert.equal(chain.run('DIRECTORY', conn), 'DIRECTORY');
  assert.deepEqual(conn.sent, []);
  assert.deepEqual(lines.map((l) => l.msg), ['CONFIG: 29:10:extensions,4:1:a,]1:n,1:1#}']);
});

async function headerAccess(settings: Record<string, unknown>): Promise<FilterChain> {
  return new FilterChain([await loadFilter(row('examples/filters/header-access.ts', settings), server, { baseDir: ROOT })]);
}

const FORBIDDEN = 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 9\r\nServer: Mongrel2/1.13.0\r\n\r\nForbidden';

test('examples/filters/header-access.ts: an allowed header value passes; a missing or wrong one gets 403 and CLOSE', async () => {
  const chain = await headerAccess(tnsSettings({ header: 'X-Api-Key', allow: ['k1', 'k2'] }));
  for (const e of ['HANDLER', 'DIRECTORY', 'PROXY'] as const) assert.ok(chain.hooks(e));
  assert.equal(chain.hooks('HTTP_REQ'), false);
  const ok = fakeConnection({ headers: [['x-api-key', 'k2']] });
  assert.equal(chain.run('HANDLER', ok), 'HANDLER');
  assert.deepEqual(ok.sent, []);
  for (const conn of [fakeConnection(), fakeConnection({ headers: [['X-API-KEY', 'k3']] }), fakeConnection({ headers: [['x-api-key', 'k1 ']] }), fakeConnection({ noRequest: true })]) {
    assert.equal(chain.run('PROXY', conn), 'CLOSE');
    assert.deepEqual(conn.sent.map(String), [FORBIDDEN]);
  }
});

test('examples/filters/header-access.ts: an IP allowlist with addresses and prefixes, a custom status and events', async () => {
  const chain = await headerAccess({ ips: ['10.0.0.0/8', '::1', '192.168.1.7'], status: 404, events: ['HTTP_REQ', 'ws_req'] });
  assert.ok(chain.hooks('HTTP_REQ') && chain.hooks('WS_REQ') && !chain.hooks('HANDLER'));
  for (const addr of ['10.1.2.3', '::1', '192.168.1.7']) assert.equal(chain.run('HTTP_REQ', fakeConnection({ addr })), 'HTTP_REQ', addr);
  for (const addr of ['11.0.0.1', '192.168.1.8', '::2', '']) {
    const conn = fakeConnection({ addr });
    assert.equal(chain.run('WS_REQ', conn), 'CLOSE', addr);
    assert.match(String(conn.sent[0]), /^HTTP\/1\.1 404 Not Found\r\n/);
  }
  const both = await headerAccess({ ips: ['127.0.0.1'], header: 'k', allow: ['v'] });
  assert.equal(both.run('HANDLER', fakeConnection({ headers: [['k', 'v']] })), 'HANDLER');
  assert.equal(both.run('HANDLER', fakeConnection({ addr: '127.0.0.2', headers: [['k', 'v']] })), 'CLOSE');
});

test('examples/filters/header-access.ts: bad settings stop the server at load, naming the setting', async () => {
  const name = 'examples/filters/header-access.ts';
  const refusedAt = (settings: Record<string, unknown>, re: RegExp) =>
    assert.rejects(loadFilter(row(name, settings), server, { baseDir: ROOT }), (err: unknown) => err instanceof FilterLoadError && re.test(err.message));
  await refusedAt({}, /init threw: header-access: settings need header\+allow, ips, or both$/);
  await refusedAt({ header: 'k' }, /settings\.header and settings\.allow go together$/);
  await refusedAt({ ips: ['10.0.0.0/33'] }, /settings\.ips entry "10\.0\.0\.0\/33" is not an address or address\/prefix$/);
  await refusedAt({ ips: ['localhost'] }, /settings\.ips entry "localhost"/);
  await refusedAt({ ips: ['::1'], status: 200 }, /settings\.status must be an integer 400\.\.599$/);
  await refusedAt({ ips: ['::1'], events: ['LATER'] }, /settings\.events holds "LATER", which is no event$/);
});

test('end to end from config: the Filter row m2sh load writes for header-access is loaded and enforced', async () => {
  const db = path.join(work, 'site.sqlite');
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/m2sh.js'), 'load', '-config', path.join(ROOT, 'test/config-modules/site.conf'), '-db', db], { cwd: ROOT });
  const config = loadConfig(db, '2f62bd5e-8a7b-4b62-9b1e-7d3c5c1a0b01');
  const chain = new FilterChain(await loadFilters(config.server.filters, { config: config.server, log: server.log }, { baseDir: ROOT }));
  assert.equal(chain.run('HANDLER', fakeConnection({ headers: [['X-Api-Key', 'k1']] })), 'HANDLER');
  const denied = fakeConnection({ headers: [['X-Api-Key', 'nope']] });
  assert.equal(chain.run('DIRECTORY', denied), 'CLOSE');
  assert.deepEqual(denied.sent.map(String), [FORBIDDEN]);
});
