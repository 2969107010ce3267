import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadConfigFromModule } from '../../src/config/modules/module-source.js';
import { loadConfig } from '../../src/config/read.js';
import { ConfigDbError } from '../../src/config/errors.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('../../');
const NULL_MODULE = path.join(ROOT, 'src/config/modules/null.ts');
const JSON_MODULE = path.join(ROOT, 'src/config/modules/json-file.ts');
const SITE_UUID = '2f62bd5e-8a7b-4b62-9b1e-7d3c5c1a0b01';
const UUID = 'u-1';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2-config-modules-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

let n = 0;
function writeModule(text: string, ext = '.mjs'): string {
  const file = path.join(work, `module${++n}${ext}`);
  fs.writeFileSync(file, text);
  return file;
}

/** The rows of a minimal valid server, as JS source; `patch` edits them before they are returned. */
const ROWS = `
const rows = {
  server: [[1, '${UUID}', 'localhost', '127.0.0.1', 6767, '', '/logs/access.log', '/logs/error.log', 2, '/run/m2.pid', '', 0]],
  hosts: [[1, 'localhost', 'localhost', 1]],
  routes: [[1, '/', 1, 'handler'], [2, '/static/', 1, 'dir'], [3, '/up/', 1, 'proxy']],
  handler: [[1, 'tcp://127.0.0.1:1', 'id', 'tcp://127.0.0.1:2', '', 0, 'json']],
  dir: [[1, 'static/', 'index.html', 'text/plain', 0]],
  proxy: [[1, '127.0.0.1', 8080]],
  mimetypes: [[1, '.html', 'text/html']],
  settings: [[1, 'limits.buffer_size', '8192']],
  filters: [[1, 'f.ts', '8:1:a,1:b,}']],
};`;

function moduleText(patch = '', extra = ''): string {
  return `${ROWS}
${patch}
export function init(arg) { globalThis.m2Inits = (globalThis.m2Inits ?? []).concat(arg); }
export function close() { globalThis.m2Closes = (globalThis.m2Closes ?? 0) + 1; }
export const loadServer = (uuid) => rows.server.filter((r) => r[1] === uuid);
export const loadHosts = () => rows.hosts;
export const loadRoutes = () => rows.routes;
export const loadHandler = (id) => rows.handler.filter((r) => r[0] === id);
export const loadProxy = (id) => rows.proxy.filter((r) => r[0] === id);
export const loadDir = (id) => rows.dir.filter((r) => r[0] === id);
export const loadMimetypes = () => rows.mimetypes;
export const loadSettings = () => rows.settings;
export const loadFilters = () => rows.filters;
${extra}`;
}

const camelModule = (patch = ''): string => writeModule(moduleText(patch));

async function refusal(modulePath: string, re: RegExp, arg = 'arg', uuid = UUID): Promise<void> {
  await assert.rejects(loadConfigFromModule(modulePath, arg, uuid), (err: unknown) => {
    assert.ok(err instanceof ConfigDbError, String(err));
    assert.match(err.message, re);
    return true;
  });
}

const closes = (): number => (globalThis as { m2Closes?: number }).m2Closes ?? 0;

test('the null module: init refuses anything but "goodpath"; with it, the first load returns null and the server refuses', async () => {
  await refusal(NULL_MODULE, /^config module .*null\.ts: init\("badpath"\) returned -1: the module refused to start$/, 'badpath');
  await refusal(NULL_MODULE, /^config module .*null\.ts: loadSettings\(\) returned null, expected a table \(a list of rows\)$/, 'goodpath');
});

test('a JS module with camelCase named exports gives a typed Config; init gets the argument and close runs', async () => {
  const before = closes();
  const c = await loadConfigFromModule(camelModule(), 'the-arg', UUID);
  assert.deepEqual((globalThis as { m2Inits?: string[] }).m2Inits?.at(-1), 'the-arg');
  assert.equal(closes(), before + 1);
  assert.equal(c.server.uuid, UUID);
  assert.equal(c.server.name, '');
  assert.equal(c.server.port, 6767);
  assert.deepEqual(c.server.xrequests, []);
  assert.deepEqual(c.server.hosts[0]!.routes.map((r) => r.target.type), ['handler', 'dir', 'proxy']);
  assert.equal(c.settings.get('limits.buffer_size'), '8192');
  assert.equal(c.mimetypes.get('.html'), 'text/html');
  assert.equal(String(c.server.filters[0]!.settings.a), 'b');
});

test('Mongrel2 names on a default-export object, async functions, and tables as tnetstring bytes', async () => {
  const file = writeModule(`
import { encode } from ${JSON.stringify(path.join(ROOT, 'src/protocol/tnetstring.ts'))};
${ROWS}
const tns = (t) => encode(t);
class Store {
  constructor() { this.opened = false; }
  async config_init(arg) { this.opened = arg === 'db'; return 0; }
  config_close() {}
  async config_load_server(uuid) { if (!this.opened) throw new Error('not open'); return tns(rows.server.filter((r) => r[1] === uuid)); }
  config_load_hosts() { return tns(rows.hosts); }
  config_load_routes() { return Promise.resolve(tns(rows.routes)); }
  config_load_handler(id) { return tns(rows.handler); }
  config_load_proxy(id) { return tns(rows.proxy); }
  config_load_dir(id) { return tns(rows.dir); }
  config_load_mimetypes() { return tns(rows.mimetypes); }
  config_load_settings() { return tns(rows.settings); }
  config_load_filters() { return tns(rows.filters); }
}
export default new Store();
`, '.ts');
  const c = await loadConfigFromModule(file, 'db', UUID);
  assert.equal(c.server.hosts[0]!.routes.length, 3);
  const h = c.server.hosts[0]!.routes[0]!.target;
  assert.ok(h.type === 'handler' && h.sendSpec === 'tcp://127.0.0.1:1');
});

test('json-file module: the same Config as config.sqlite written by m2sh load from the equivalent .conf', async () => {
  const db = path.join(work, 'site.sqlite');
  await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/m2sh.js'), 'load', '-config', here('./site.conf'), '-db', db], { cwd: ROOT });
  const fromSqlite = loadConfig(db, SITE_UUID);
  const fromJson = await loadConfigFromModule(JSON_MODULE, here('./site.json'), SITE_UUID);
  assert.deepEqual(fromJson, fromSqlite);
  // Not vacuous: the shared handler is one object, the filter settings parsed.
  const routes = fromJson.server.hosts[0]!.routes;
  assert.equal(routes.find((r) => r.path === '@chat')!.target, routes.find((r) => r.path === '/app/')!.target);
  assert.equal(fromJson.server.filters[0]!.settings.status, 403);
  assert.equal(fromJson.mimetypes.get('.woff2'), 'font/woff2');
  assert.equal(fromJson.mimetypes.size, 858);
});

test('json-file module: shape errors name the file and key path; an unknown uuid is a refusal', async () => {
  const bad = (doc: unknown): string => {
    const file = path.join(work, `doc${++n}.json`);
    fs.writeFileSync(file, JSON.stringify(doc));
    return file;
  };
  const site = JSON.parse(fs.readFileSync(here('./site.json'), 'utf8')) as { server: Record<string, unknown>; hosts: Array<{ routes: Record<string, unknown> }> };
  await refusal(JSON_MODULE, /init\(".*doc\d+\.json"\) threw: .*doc\d+\.json: server\.port must be an integer, got "80"$/, bad({ ...site, server: { ...site.server, port: '80' } }), SITE_UUID);
  const routes = { ...site.hosts[0]!.routes, '/x/': { ftp: {} } };
  await refusal(JSON_MODULE, /hosts\[0\]\.routes\["\/x\/"\] must be an object with one key: dir, proxy or handler$/, bad({ ...site, hosts: [{ ...site.hosts[0], routes }] }), SITE_UUID);
  await refusal(JSON_MODULE, /threw: cannot read .*absent\.json/, path.join(work, 'absent.json'), SITE_UUID);
  await refusal(JSON_MODULE, /loadServer\("nope"\) returned no rows: no server with that uuid$/, here('./site.json'), 'nope');
  await refusal(JSON_MODULE, /^config module .*: server row id=1: column default_host "nohost" is not the name of one of its hosts/, bad({ ...site, server: { ...site.server, default_host: 'nohost' } }), SITE_UUID);
  const noSlash = { ...site.hosts[0]!.routes, '/': { dir: { base: 'static', index_file: 'index.html', default_ctype: 'text/plain' } } };
  await refusal(JSON_MODULE, /^config module .*: loadDir\(\d+\) row 0 cell 1 \(base\) "static" must end in '\/' \(the target of route row id=\d+\)$/, bad({ ...site, hosts: [{ ...site.hosts[0], routes: noSlash }] }), SITE_UUID);
});

const BROKEN: Array<[string, string, RegExp]> = [
  ['a missing function', '', /does not export the function loadFilters \(or config_load_filters\)$/],
  ['a string where a number goes', "rows.server[0][4] = '6767';", /: loadServer\("u-1"\) row 0 cell 4 \(port\) is the string "6767", expected an integer$/],
  ['a null cell', 'rows.server[0][9] = null;', /: loadServer\("u-1"\) row 0 cell 9 \(pid_file\) is null, expected a string$/],
  ['a float cell', 'rows.proxy[0][2] = 80.5;', /: loadProxy\(1\) row 0 cell 2 \(port\) is the non-integer 80\.5, expected an integer$/],
  ['a short row', 'rows.server[0].length = 10;', /: loadServer\("u-1"\) row 0 has 10 cells, expected 12 \(id, uuid, default_host, bind_addr, port, chroot, access_log, error_log, error_log_level, pid_file, control_port, use_ssl\)$/],
  ['a row that is no list', "rows.settings.push('x=1');", /: loadSettings\(\) row 1 is the string "x=1", expected a list of 3 cells$/],
  ['a route to a missing target row', 'rows.routes[2][2] = 7;', /: route row id=3: column target_id=7 names no proxy row$/],
  ['a duplicate mimetype', "rows.mimetypes.push([2, '.html', 'text/x']);", /: mimetype row id=2: column extension "\.html" is a duplicate/],
  ['filter settings that are no dict', "rows.filters[0][2] = '1:x,';", /: filter row id=1: column settings must be a tnetstring dict$/],
  ['a Dir base without its trailing /', "rows.dir[0][1] = 'static';", /: loadDir\(1\) row 0 cell 1 \(base\) "static" must end in '\/' \(the target of route row id=2\)$/],
  ['a proxy port 0', 'rows.proxy[0][2] = 0;', /: loadProxy\(1\) row 0 cell 2 \(port\) 0 must be in 1\.\.65535 \(the target of route row id=3\)$/],
  ['a route pattern that does not compile', "rows.routes[0][1] = '/a/([x';", /: loadRoutes\(1, 1\) row 0 cell 1 \(path\) "\/a\/\(\[x" of route id=1: bad pattern "\(\[x": missing '\]' to close the set \(at offset 1\)$/],
];

for (const [what, patch, re] of BROKEN) {
  test(`a broken module is a clear error naming the function, row and cell: ${what}`, async () => {
    const file = what === 'a missing function' ? writeModule(moduleText().replace(/export const loadFilters.*\n/, '')) : camelModule(patch);
    const before = closes();
    await refusal(file, new RegExp(`^config module ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:? ${re.source.replace(/^: /, '')}`));
    // close() runs after a successful init, also when the build fails; never without init.
    assert.equal(closes(), before + (what === 'a missing function' ? 0 : 1));
  });
}

test('tnetstring tables are checked by tag: null, float and boolean cells are refused', async () => {
  const withSettings = (expr: string): string => writeModule(moduleText().replace('export const loadSettings = () => rows.settings;', `export const loadSettings = () => ${expr};`));
  const table = (cells: string): string => {
    const row = `${cells.length}:${cells}]`;
    return withSettings(`Buffer.from(${JSON.stringify(`${row.length}:${row}]`)}, 'latin1')`);
  };
  await refusal(table('1:1#1:k,0:~'), /loadSettings\(\) row 0 cell 2 \(value\) is null, expected a string$/);
  await refusal(table('3:1.0^1:k,1:v,'), /loadSettings\(\) row 0 cell 0 \(id\) is a float 1\.0, expected an integer$/);
  await refusal(table('1:1#1:k,4:true!'), /cell 2 \(value\) is a boolean true, expected a string$/);
  await refusal(withSettings("Buffer.from('0:]x')"), /loadSettings\(\) returned bytes that are not a tnetstring table: tnetstring table: 1 trailing bytes \(at byte 3\)$/);
});

test('throwing init, a throwing load function, and an unimportable module', async () => {
  await refusal(writeModule(moduleText().replace(/export function init\(arg\) \{.*\}/, "export function init() { throw new Error('no db'); }")), /: init\("arg"\) threw: no db$/);
  await refusal(writeModule(moduleText().replace('export const loadHosts = () => rows.hosts;', "export const loadHosts = () => { throw new Error('down'); };")), /: loadHosts\(1\) threw: down$/);
  await refusal(path.join(work, 'absent.mjs'), /^cannot import config module .*absent\.mjs: /);
  await refusal(writeModule('export default 42;'), /does not export the functions init \(or config_init\), close \(or config_close\), loadServer/);
});

test('examples/config-modules/env-rows.ts: a hand-written module; its argument is the Dir base and the port comes from M2_PORT', async () => {
  const saved = process.env.M2_PORT;
  process.env.M2_PORT = '7001';
  try {
    const c = await loadConfigFromModule(path.join(ROOT, 'examples/config-modules/env-rows.ts'), './public', 'example');
    assert.equal(c.server.port, 7001);
    assert.deepEqual(c.server.hosts[0]!.routes[1]!.target, { type: 'dir', id: 1, base: './public/', indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 0 });
    assert.equal(c.settings.get('server.daemonize'), '0');
  } finally {
    if (saved === undefined) delete process.env.M2_PORT;
    else process.env.M2_PORT = saved;
  }
  process.env.M2_PORT = 'x';
  try {
    await refusal(path.join(ROOT, 'examples/config-modules/env-rows.ts'), /loadServer\("example"\) row 0 cell 4 \(port\) is the non-integer NaN, expected an integer$/, '.', 'example');
  } finally {
    if (saved === undefined) delete process.env.M2_PORT;
    else process.env.M2_PORT = saved;
  }
});
