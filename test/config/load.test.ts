import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { ConfigLoadError, ConfigSyntaxError } from '../../src/config/errors.js';
import { BUILTIN_MIMETYPES } from '../../src/config/mimetypes.js';
import { tnsDictRenderOrder, tstOrder } from '../../src/config/order.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2sh-load-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

const SERVER = (extra = '', routes = "'/': Proxy(addr='127.0.0.1', port=80)") =>
  `main = Server(uuid="u1", access_log="/a", error_log="/e", pid_file="/p", default_host="h", name="main", port=6767${extra},
  hosts=[Host(name="h", routes={${routes}})])
servers = [main]
`;

function memDb(): Database.Database {
  return new Database(':memory:');
}

function rows(db: Database.Database, sql: string): unknown[][] {
  return db.prepare(sql).raw().all() as unknown[][];
}

test('the built-in mimetype table has m2sh’s 857 rows with unique extensions', () => {
  assert.equal(BUILTIN_MIMETYPES.length, 857);
  assert.equal(new Set(BUILTIN_MIMETYPES.map(([ext]) => ext)).size, 857);
  assert.deepEqual(BUILTIN_MIMETYPES.find(([ext]) => ext === '.js'), ['.js', 'application/x-javascript']);
  // The 7 m2sh has on top of src/config/mimetypes.sql's 850.
  for (const ext of ['.apk', '.gz', '.oga', '.ogv', '.rst', '.sub', '.webm']) assert.ok(BUILTIN_MIMETYPES.some(([e]) => e === ext), ext);
});

test('TST walk order: breadth-first, signed bytes (UTF-8 before ASCII), last duplicate wins in place', () => {
  // The orders Debian's m2sh produced for these keys (see parity.test.ts for the live check).
  const sample = ['@chat', '/handlertest', '/chat/', '/', '/tests/', '/testsmulti/(.*.json)', '/chatdemo/', '/static/', '/mp3stream'];
  assert.deepEqual(
    tstOrder(sample.map((k) => [k, 0] as const)).map(([k]) => k),
    ['/', '@chat', '/chat/', '/tests/', '/static/', '/chatdemo/', '/handlertest', '/mp3stream', '/testsmulti/(.*.json)'],
  );
  assert.deepEqual(
    tstOrder(['/a', '/a', '/h', '/h2', '/é', '/z'].map((k, i) => [k, i] as const)),
    [['/a', 1], ['/h', 2], ['/é', 4], ['/h2', 3], ['/z', 5]],
  );
  assert.deepEqual(tstOrder([['', 1], ['a', 2]]), [['', 1], ['a', 2]]);
});

test('tnetstring dict key order is mongrel2’s kazlib hash scan, reversed', () => {
  assert.deepEqual(tnsDictRenderOrder(['b', 'a', 'list', 'z']), ['z', 'a', 'b', 'list']);
  assert.deepEqual(tnsDictRenderOrder(['y', 'x']), ['y', 'x']);
});

test('load: rows, defaults, numbers as text, target dedup through variables and shared hashes', () => {
  const db = memDb();
  const s = loadConfigText(
    db,
    `d = Dir(base='s/', index_file='i.html', default_ctype='text/plain', cache_ttl=30)
z = Dir(base='z/', index_file='i.html', default_ctype='text/plain', cache_ttl=0042)
h = Handler(send_spec='tcp://a', send_ident='id', recv_spec='tcp://b', recv_ident='', raw_payload=1, protocol='tnetstring')
r = {'/': d, '/h': h, '/z': z, '/in': Proxy(addr='127.0.0.1', port=8080)}
main = Server(uuid="u1", access_log="/a", error_log="/e", pid_file="/p", default_host="one", name="main", port=6767,
  hosts=[Host(name="one", routes=r), Host(name="two", matching="example.com", routes=r)],
  filters=[Filter(name="/f.so", settings={"list": [1, "x", {"k": 2}], "n": 99999999999999999999, "ref": d2})])
d2 = 'text'
settings = {"zeromq.threads": 1, "upload.temp_store": "/tmp/x.XXXXXX"}
servers = [main]`,
    'x.conf',
  );
  assert.equal(s.targets, 4);
  assert.equal(s.routes, 8);
  assert.deepEqual(rows(db, 'SELECT * FROM server'), [[1, 'u1', '/a', '/e', 2, '', '/p', '', 'one', 'main', '0.0.0.0', 6767, 0]]);
  assert.deepEqual(rows(db, 'SELECT * FROM host'), [
    [1, 1, 0, 'one', 'one'],
    [2, 1, 0, 'two', 'example.com'],
  ]);
  assert.deepEqual(rows(db, 'SELECT * FROM directory'), [
    [1, 's/', 'i.html', 'text/plain', 30],
    [2, 'z/', 'i.html', 'text/plain', 0],
  ]);
  assert.deepEqual(rows(db, 'SELECT * FROM handler'), [[1, 'tcp://a', 'id', 'tcp://b', '', 1, 'tnetstring']]);
  assert.deepEqual(rows(db, 'SELECT host_id, path, target_type, target_id FROM route ORDER BY id'), [
    // TST walk order, not file order: '/in' hangs below '/z' in the tree.
    [1, '/', 'dir', 1],
    [1, '/h', 'handler', 1],
    [1, '/z', 'dir', 2],
    [1, '/in', 'proxy', 1],
    [2, '/', 'dir', 1],
    [2, '/h', 'handler', 1],
    [2, '/z', 'dir', 2],
    [2, '/in', 'proxy', 1],
  ]);
  assert.deepEqual(rows(db, 'SELECT key, value, typeof(value) FROM setting'), [
    ['zeromq.threads', '1', 'text'],
    ['upload.temp_store', '/tmp/x.XXXXXX', 'text'],
  ]);
  // As Debian's m2sh writes it: strtol saturates, refs resolve, dict keys in render order.
  assert.deepEqual(rows(db, 'SELECT settings, typeof(settings) FROM filter'), [
    ['70:1:n,19:9223372036854775807#3:ref,4:text,4:list,19:1:1#1:x,8:1:k,1:2#}]}', 'text'],
  ]);
  assert.equal(rows(db, 'SELECT count(*) FROM mimetype')[0]![0], 857);
  assert.deepEqual(rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").flat(), [
    'directory', 'filter', 'handler', 'host', 'log', 'mimetype', 'proxy', 'route', 'server', 'setting', 'statistic', 'xrequest',
  ]);
});

test('load: mimetype overrides replace the built-in row (Debian 1.12.2 only deletes it)', () => {
  const db = memDb();
  loadConfigText(db, SERVER() + 'mimetypes = {".txt": "text/plain; charset=utf-8", ".woff2": "font/woff2"}');
  assert.deepEqual(rows(db, "SELECT id, extension, mimetype FROM mimetype WHERE extension IN ('.txt', '.woff2') ORDER BY id"), [
    [858, '.txt', 'text/plain; charset=utf-8'],
    [859, '.woff2', 'font/woff2'],
  ]);
  assert.equal(rows(db, 'SELECT count(*) FROM mimetype')[0]![0], 858);
});

test('load: duplicates are legal (last wins) and reported as warnings', () => {
  const db = memDb();
  const s = loadConfigText(db, SERVER(', port=7000') + 'settings = {"a": "1", "a": "2"}', 'dup.conf');
  assert.deepEqual(rows(db, 'SELECT port FROM server'), [[7000]]);
  assert.deepEqual(rows(db, 'SELECT key, value FROM setting'), [['a', '2']]);
  assert.equal(s.warnings.length, 2);
  assert.match(s.warnings[0]!, /^dup\.conf:1:\d+: parameter Server\.port given again; the last one wins/);
  assert.match(s.warnings[1]!, /^dup\.conf:4:\d+: settings key "a" given again/);
});

const LOAD_ERRORS: Array<[string, string, RegExp]> = [
  ['no servers', 'x = 1', /x\.conf: no servers = \[\.\.\.\] assignment/],
  ['servers not a list', 'servers = 1', /x\.conf:1:11: servers must be a \[list\] of Server\(\.\.\.\), got a number/],
  ['a missing required field', SERVER().replace('pid_file="/p", ', ''), /x\.conf:1:8: Server\(\.\.\.\) is missing the required parameter pid_file/],
  ['a wrong type', SERVER().replace('port=6767', 'port="6767"'), /x\.conf:1:\d+: Server\.port must be a number, got a quoted string/],
  ['a wrong type through a variable', 'p = "80"\n' + SERVER('', "'/': Proxy(addr='a', port=p)"), /x\.conf:3:\d+: Proxy\.port must be a number, got a quoted string \(through p\)/],
  ['an unknown variable', SERVER('', "'/': nowhere"), /x\.conf:2:\d+: unknown variable nowhere/],
  ['a reference to a reference', 'a = b\nb = Proxy(addr="x", port=1)\n' + SERVER('', "'/': a"), /references resolve one level only/],
  ['an unknown parameter', SERVER(', colour="red"'), /unknown parameter colour for Server; expected one of/],
  ['a Dir base without a trailing slash', SERVER('', "'/': Dir(base='static', index_file='i', default_ctype='t')"), /Dir\.base "static" must end in '\/'/],
  ['a bad target class', SERVER('', "'/': Host(name='x', routes={})"), /the target of route "\/" must be Dir\(\.\.\.\), Proxy\(\.\.\.\) or Handler\(\.\.\.\), got Host\(\.\.\.\)/],
  ['a bad protocol', SERVER('', "'/': Handler(send_spec='a', send_ident='b', recv_spec='c', recv_ident='', protocol='xml')"), /Handler\.protocol must be 'json' or 'tnetstring'/],
  ['a class in filter settings', SERVER(', filters=[Filter(name="f", settings={"x": Proxy(addr="a", port=1)})]'), /filter settings can hold strings, numbers, lists and hashes, not a Class/],
  ['a bad mimetype extension', SERVER() + 'mimetypes = {"txt": "text/plain"}', /mimetype extension "txt" must start with '\.'/],
  ['a setting that is a list', SERVER() + 'settings = {"a": [1]}', /setting "a" must be a quoted string or a number, got a \[list\]/],
  ['a lowercase host class', SERVER().replace('Host(', 'HOST('), /each element of Server\.hosts must be Host\(\.\.\.\), got HOST\(\.\.\.\)/],
  ['a Proxy port out of range', SERVER('', "'/': Proxy(addr='a', port=0)"), /^x\.conf:2:\d+: Proxy\.port 0 must be in 1\.\.65535$/],
  ['an empty Dir default_ctype', SERVER('', "'/': Dir(base='s/', index_file='i', default_ctype='')"), /^x\.conf:2:\d+: Dir\.default_ctype "" is not a valid header value/],
  ['a route pattern that does not compile', SERVER('', "'/x/([a-': Proxy(addr='a', port=1)"), /^x\.conf:2:\d+: route "\/x\/\(\[a-": bad pattern "\(\[a-": missing '\]' to close the set \(at offset 1\)$/],
  ['a host pattern that does not compile', SERVER().replace('Host(name="h"', 'Host(name="h", matching="([x)"'), /^x\.conf:2:\d+: Host\.matching "\(\[x\)": bad pattern "\(\[x\)\$"/],
  ['filter settings that hold themselves', 's = {"a": s}\n' + SERVER(', filters=[Filter(name="x", settings=s)]'), /^x\.conf:1:11: filter settings refer to themselves through s$/],
  ['filter settings that hold each other', 'a = {"b": [1, b]}\nb = {"a": a}\n' + SERVER(', xrequests=[Xrequest(name="x", settings=a)]'), /^x\.conf:2:11: filter settings refer to themselves through a$/],
  ['filter settings nested too deep through variables', deepSettings(40) + SERVER(', filters=[Filter(name="x", settings=v40)]'), /^x\.conf:\d+:\d+: filter settings nested deeper than 200 levels$/],
];

/** v0 = 1; vN = {"k": [[...v(N-1)...]]} with 150 brackets: each variable parses, together they nest 6000 deep. */
function deepSettings(n: number): string {
  let text = 'v0 = 1\n';
  for (let i = 1; i <= n; i++) text += `v${i} = {"k": ${'['.repeat(150)}v${i - 1}${']'.repeat(150)}}\n`;
  return text;
}

for (const [what, text, re] of LOAD_ERRORS) {
  test(`load error: ${what}`, () => {
    const db = memDb();
    assert.throws(() => loadConfigText(db, text, 'x.conf'), (err: unknown) => {
      assert.ok(err instanceof ConfigLoadError, String(err));
      assert.match(err.message, re);
      return true;
    });
  });
}

test('a bad config commits nothing: the previous config.sqlite is unchanged', () => {
  const dbFile = path.join(work, 'keep.sqlite');
  const good = path.join(work, 'good.conf');
  const bad = path.join(work, 'bad.conf');
  fs.writeFileSync(good, SERVER());
  fs.writeFileSync(bad, SERVER('', "'/': Proxy(addr='127.0.0.1', port=80), '/s': Dir(base='nosl', index_file='i', default_ctype='t')"));
  loadConfigFile(good, dbFile);
  const before = fs.readFileSync(dbFile);
  assert.throws(() => loadConfigFile(bad, dbFile), /must end in '\/'/);
  assert.ok(fs.readFileSync(dbFile).equals(before), 'the database file changed');
});

test('a failed load does not leave a new empty database behind; syntax errors name the file', () => {
  const dbFile = path.join(work, 'new.sqlite');
  const bad = path.join(work, 'syntax.conf');
  fs.writeFileSync(bad, 'servers = [\n  main\n');
  assert.throws(() => loadConfigFile(bad, dbFile), (err: unknown) => err instanceof ConfigSyntaxError && err.message.startsWith(`${bad}:3:1: `));
  assert.equal(fs.existsSync(dbFile), false);
});

test('invalid UTF-8 in a .conf is refused with its byte offset', () => {
  const bad = path.join(work, 'latin1.conf');
  fs.writeFileSync(bad, Buffer.concat([Buffer.from("a = '"), Buffer.from([0xe9]), Buffer.from("'\n")]));
  assert.throws(() => loadConfigFile(bad, path.join(work, 'u.sqlite')), /not valid UTF-8 \(at byte 5\)/);
});

test('loading again replaces the config but keeps the log table', () => {
  const dbFile = path.join(work, 'twice.sqlite');
  const conf = path.join(work, 'twice.conf');
  fs.writeFileSync(conf, SERVER());
  loadConfigFile(conf, dbFile);
  const db = new Database(dbFile);
  db.prepare("INSERT INTO log (who, what) VALUES ('me', 'test')").run();
  db.close();
  fs.writeFileSync(conf, SERVER(', bind_addr="127.0.0.1"'));
  loadConfigFile(conf, dbFile);
  const db2 = new Database(dbFile, { readonly: true });
  assert.deepEqual(rows(db2, 'SELECT bind_addr FROM server'), [['127.0.0.1']]);
  assert.deepEqual(rows(db2, 'SELECT who, what FROM log'), [['me', 'test']]);
  db2.close();
});
