import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadConfigFile } from '../../src/config/load.js';
import { loadConfig, readConfig } from '../../src/config/read.js';
import { ConfigDbError } from '../../src/config/errors.js';

const EVERYTHING = fileURLToPath(new URL('./confs/everything.conf', import.meta.url));
const UUID = '7e1fe3ce-3b4c-4b3f-9d46-0b0e2d1c6a11';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2sh-read-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
/** A fresh copy of everything.conf loaded by ours, then altered by `sql`. */
function db(sql = ''): string {
  const file = path.join(work, `db${++n}.sqlite`);
  loadConfigFile(EVERYTHING, file);
  if (sql) {
    const d = new Database(file);
    d.exec(sql);
    d.close();
  }
  return file;
}

function refusal(sql: string, re: RegExp, uuid = UUID): void {
  assert.throws(() => loadConfig(db(sql), uuid), (err: unknown) => {
    assert.ok(err instanceof ConfigDbError, String(err));
    assert.match(err.message, re);
    return true;
  });
}

test('reads a server: fields, hosts and routes in row order, targets typed, settings and mimetypes', () => {
  const c = loadConfig(db(), UUID);
  assert.equal(c.server.name, 'main');
  assert.equal(c.server.bindAddr, '127.0.0.1');
  assert.equal(c.server.port, 6767);
  assert.equal(c.server.errorLogLevel, 2);
  assert.equal(c.server.controlPort, 'ipc://run/control');
  assert.equal(c.server.useSsl, false);
  assert.deepEqual(c.server.hosts.map((h) => [h.name, h.matching]), [
    ['www.example.com', 'example.com'],
    ['api.example.com', 'api.example.com'],
  ]);
  const www = c.server.hosts[0]!;
  assert.deepEqual(www.routes.slice(0, 4).map((r) => r.path), ['/', '/a', '/ab', '<xml']);
  const byPath = new Map(www.routes.map((r) => [r.path, r.target]));
  assert.deepEqual(byPath.get('/'), { type: 'dir', id: 1, base: 'static/', indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 60 });
  assert.deepEqual(byPath.get('/proxy/'), { type: 'proxy', id: 1, addr: '127.0.0.1', port: 8080 });
  const raw = byPath.get('/raw/');
  assert.ok(raw?.type === 'handler' && raw.rawPayload && raw.protocol === 'json');
  const tnet = byPath.get('/tnet/');
  assert.ok(tnet?.type === 'handler' && tnet.protocol === 'tnetstring' && !tnet.rawPayload);
  // The same handler row used by two hosts is one object.
  assert.equal(c.server.hosts[1]!.routes.find((r) => r.path === '/v2/')!.target, tnet);
  assert.equal(c.settings.get('limits.buffer_size'), '8192');
  assert.equal(c.mimetypes.get('.woff2'), 'font/woff2');
  assert.equal(c.mimetypes.get('.txt'), 'text/plain; charset=utf-8');
  assert.equal(c.mimetypes.size, 859);
  assert.equal(c.server.filters.length, 2);
  const f = c.server.filters[0]!;
  assert.equal(f.name, '/usr/lib/mongrel2/filters/null.so');
  assert.equal(f.settings.min_size, 1000);
  assert.deepEqual((f.settings.extensions as Buffer[]).map(String), ['*.html', '*.txt']);
  assert.equal(c.server.xrequests[0]!.settings.min, 10);
});

test('settings: the last row for a key wins', () => {
  const c = loadConfig(db("INSERT INTO setting (key, value) VALUES ('limits.buffer_size', '1024')"), UUID);
  assert.equal(c.settings.get('limits.buffer_size'), '1024');
});

test('handlers with the same send_spec and recv_spec are merged; sharing one spec is not', () => {
  const c = loadConfig(
    db(`INSERT INTO handler (send_spec, send_ident, recv_spec, recv_ident) VALUES ('tcp://127.0.0.1:9999', 'other', 'tcp://127.0.0.1:9998', '');
        INSERT INTO route (path, host_id, target_id, target_type) VALUES ('/dup', 1, last_insert_rowid(), 'handler');
        INSERT INTO handler (send_spec, send_ident, recv_spec, recv_ident) VALUES ('tcp://127.0.0.1:9999', 'x', 'tcp://127.0.0.1:7777', '');
        INSERT INTO route (path, host_id, target_id, target_type) VALUES ('/half', 1, last_insert_rowid(), 'handler');`),
    UUID,
  );
  const routes = new Map(c.server.hosts[0]!.routes.map((r) => [r.path, r.target]));
  assert.equal(routes.get('/dup'), routes.get('/api/'));
  const half = routes.get('/half');
  assert.ok(half?.type === 'handler' && half.recvSpec === 'tcp://127.0.0.1:7777');
});

const REFUSALS: Array<[string, string, RegExp]> = [
  ['a NULL cell', 'UPDATE server SET pid_file = NULL', /^server row id=1: column pid_file is NULL, expected text$/],
  ['a text port', "UPDATE server SET port = 'http'", /^server row id=1: column port is text "http", expected integer$/],
  ['port 0', 'UPDATE server SET port = 0', /^server row id=1: column port must be > 0, got 0$/],
  ['a default_host that is only a matching', "UPDATE server SET default_host = 'example.com'", /column default_host "example\.com" is not the name of one of its hosts \("www\.example\.com", "api\.example\.com"\)/],
  ['a duplicate mimetype extension', "INSERT INTO mimetype (extension, mimetype) VALUES ('.html', 'text/x')", /^mimetype row id=\d+: column extension "\.html" is a duplicate/],
  ['an empty mimetype', "UPDATE mimetype SET mimetype = '' WHERE extension = '.css'", /^mimetype row id=\d+: column mimetype is empty for "\.css"/],
  ['an extension without a dot', "UPDATE mimetype SET extension = 'css' WHERE extension = '.css'", /column extension "css" does not start with '\.'/],
  ['an extension as long as limits.mime_ext_len', "INSERT INTO setting (key, value) VALUES ('limits.mime_ext_len', '4')", /column extension "\.[a-z0-9]{3,}" is not shorter than limits\.mime_ext_len=4/],
  ['a route to a missing row', 'UPDATE route SET target_id = 99 WHERE id = 1', /^route row id=1: column target_id=99 names no directory row$/],
  ['an unknown target type', "UPDATE route SET target_type = 'ftp' WHERE id = 1", /^route row id=1: column target_type "ftp" is not dir, proxy or handler$/],
  ['a NULL in a target row', 'UPDATE handler SET recv_ident = NULL WHERE id = 1', /^handler row id=1: column recv_ident is NULL, expected text$/],
  ['filter settings that are no tnetstring', "UPDATE filter SET settings = 'nope' WHERE id = 1", /^filter row id=1: column settings is not a tnetstring/],
  ['filter settings that are no dict', "UPDATE filter SET settings = '1:x,' WHERE id = 1", /^filter row id=1: column settings must be a tnetstring dict$/],
  ['a Dir base without its trailing /', "UPDATE directory SET base = 'static'", /^loadDir\(\d+\) row 0 cell 1 \(base\) "static" must end in '\/' \(the target of route row id=\d+\)$/],
  ['a Dir default_ctype with a CR', "UPDATE directory SET default_ctype = 'text/plain' || char(13) || 'X: y'", /^loadDir\(\d+\) row 0 cell 3 \(default_ctype\) "text\/plain\\rX: y" is not a valid header value/],
  ['a negative cache_ttl', 'UPDATE directory SET cache_ttl = -1', /^loadDir\(\d+\) row 0 cell 4 \(cache_ttl\) -1 must be >= 0/],
  ['a proxy port out of range', 'UPDATE proxy SET port = 70000', /^loadProxy\(\d+\) row 0 cell 2 \(port\) 70000 must be in 1\.\.65535/],
  ['a route pattern that does not compile', "UPDATE route SET path = '/x/([a-' WHERE id = 1", /^loadRoutes\(\d+, \d+\) row \d+ cell 1 \(path\) "\/x\/\(\[a-" of route id=1: bad pattern "\(\[a-": missing '\]' to close the set \(at offset 1\)$/],
  ['a host pattern that does not compile', "UPDATE host SET matching = '([a-).example.com' WHERE id = 1", /^loadHosts\(\d+\) row 0 cell 2 \(matching\) "\(\[a-\)\.example\.com" of host id=1: bad pattern "\(\[a-\)\$": missing '\]'/],
];

for (const [what, sql, re] of REFUSALS) {
  test(`refuses to start like mongrel2, naming table, row and column: ${what}`, () => refusal(sql, re));
}

test('an unknown uuid or a missing database is a clear error', () => {
  refusal('', /no server with uuid "nope" in table server/, 'nope');
  assert.throws(() => loadConfig(path.join(work, 'absent.sqlite'), UUID), /cannot open config database .*absent\.sqlite/);
});

test('reads a config.sqlite written by Debian’s m2sh 1.12 (no error_log_level, and without an xrequest table)', async () => {
  const file = path.join(work, 'debian.sqlite');
  await promisify(execFile)('/usr/bin/m2sh', ['load', '-config', EVERYTHING, '-db', file], {
    env: { ...process.env, LOGNAME: process.env.LOGNAME ?? 'm2bridge' },
  });
  const d = new Database(file);
  assert.equal((d.prepare('PRAGMA table_info(server)').all() as Array<{ name: string }>).some((c) => c.name === 'error_log_level'), false);
  d.exec('DROP TABLE xrequest');
  const c = readConfig(d, UUID);
  d.close();
  assert.equal(c.server.errorLogLevel, 2);
  assert.deepEqual(c.server.xrequests, []);
  assert.equal(c.server.hosts.length, 2);
  // 1.12.2 dropped the overridden built-ins and never added the user's rows.
  assert.equal(c.mimetypes.has('.txt'), false);
});
