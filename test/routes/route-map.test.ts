import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRouter, parseBridgeConfig, type BridgeConfig, type RoutableRequest, type RouteMatch } from '../../src/bridge/route-map.js';

const FILE = '/etc/m2/bridge.json';

const EXAMPLE = {
  backends: {
    legacy: { type: 'fcgi', address: '127.0.0.1:9000', root: '/srv/app', index: 'index.php' },
    api: { type: 'http', url: 'http://127.0.0.1:3000' },
    web: { type: 'app', file: './app.mjs' },
  },
  routes: [
    { pattern: '/api/(.*)', backend: 'api' },
    { prefix: '/new/', backend: 'web' },
    { prefix: '/', backend: 'legacy' },
  ],
};

function ok(text: string, file = FILE): { config: BridgeConfig; warnings: readonly string[] } {
  const r = parseBridgeConfig(text, file);
  assert.ok(r.ok, `expected a valid config, got: ${r.ok ? '' : r.errors.join('\n')}`);
  return r;
}

function errorsOf(value: unknown): readonly string[] {
  const r = parseBridgeConfig(typeof value === 'string' ? value : JSON.stringify(value, null, 2), FILE);
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : r.errors;
}

/** EXAMPLE with one change made by `edit`. */
function variant(edit: (c: { backends: Record<string, Record<string, unknown>>; routes: Array<Record<string, unknown>> } & Record<string, unknown>) => void): unknown {
  const c = structuredClone(EXAMPLE) as unknown as Parameters<typeof edit>[0];
  edit(c);
  return c;
}

test('the example config parses; relative paths resolve against the file, options are kept, order is kept', () => {
  const { config, warnings } = ok(JSON.stringify(EXAMPLE));
  assert.deepEqual(warnings, []);
  assert.deepEqual([...config.backends.keys()], ['legacy', 'api', 'web']);
  assert.deepEqual(config.backends.get('legacy'), { type: 'fcgi', address: '127.0.0.1:9000', root: '/srv/app', index: 'index.php' });
  assert.deepEqual(config.backends.get('api'), { type: 'http', url: 'http://127.0.0.1:3000' });
  assert.deepEqual(config.backends.get('web'), { type: 'app', file: '/etc/m2/app.mjs' });
  assert.deepEqual(config.routes, [
    { pattern: '/api/(.*)', backend: 'api' },
    { prefix: '/new/', backend: 'web' },
    { prefix: '/', backend: 'legacy' },
  ]);
});

test('every per-backend option is parsed', () => {
  const { config } = ok(
    JSON.stringify({
      backends: {
        f: { type: 'fcgi', address: 'unix:/run/php.sock', root: 'www', index: 'app.php', sendfile: true, maxConnections: 8, idle: 0, timeout: 5 },
        h: { type: 'http', url: 'https://[::1]:8443/base', maxConnections: 64, timeout: 30, trustForwarded: true },
        a: { type: 'app', file: '/abs/app.js', timeout: 9 },
      },
      routes: [{ prefix: '/f/', backend: 'f' }, { prefix: '/h/', backend: 'h' }, { pattern: '/', backend: 'a' }],
    }),
  );
  assert.deepEqual(config.backends.get('f'), { type: 'fcgi', address: 'unix:/run/php.sock', root: '/etc/m2/www', index: 'app.php', sendfile: true, maxConnections: 8, idle: 0, timeout: 5 });
  assert.deepEqual(config.backends.get('h'), { type: 'http', url: 'https://[::1]:8443/base', maxConnections: 64, timeout: 30, trustForwarded: true });
  assert.deepEqual(config.backends.get('a'), { type: 'app', file: '/abs/app.js', timeout: 9 });
});

test('a relative config file name resolves paths against its own directory', () => {
  const { config } = ok(JSON.stringify(EXAMPLE), 'conf/bridge.json');
  assert.equal((config.backends.get('web') as { file: string }).file, `${process.cwd()}/conf/app.mjs`);
});

// Each case: the change, then the exact "key path: message" the error must contain.
const CASES: Array<[string, unknown, RegExp]> = [
  ['unknown backend name in a route', variant((c) => (c.routes[2]!.backend = 'apii')), /routes\[2\]\.backend: unknown backend "apii" \(known: legacy, api, web\)/],
  ['bad fcgi address', variant((c) => (c.backends.legacy!.address = '127.0.0.1')), /backends\.legacy\.address: expected host:port or unix:\/path/],
  ['fcgi port out of range', variant((c) => (c.backends.legacy!.address = '127.0.0.1:70000')), /backends\.legacy\.address: port must be 1-65535/],
  ['unknown key at the top', variant((c) => (c.extra = 1)), /extra: unknown key \(allowed: backends, routes\)/],
  ['unknown key in a backend', variant((c) => (c.backends.api!.root = '/x')), /backends\.api\.root: unknown key for a "http" backend \(allowed: type, url, maxConnections, timeout, trustForwarded\)/],
  ['unknown key in a route', variant((c) => (c.routes[0]!.host = 'x')), /routes\[0\]\.host: unknown key for a route/],
  ['duplicate backend name', '{"backends": {"a": {"type":"app","file":"x"},\n "a": {"type":"app","file":"y"}}, "routes": [{"prefix":"/","backend":"a"}]}', /bridge\.json:2:2: duplicate key "a" \(first at 1:15\)/],
  ['missing type', variant((c) => delete c.backends.web!.type), /backends\.web\.type: missing/],
  ['unknown type', variant((c) => (c.backends.web!.type = 'cgi')), /backends\.web\.type: expected one of "fcgi", "http", "app"/],
  ['fcgi without root', variant((c) => delete c.backends.legacy!.root), /backends\.legacy\.root: missing \(required for a "fcgi" backend\)/],
  ['fcgi without address', variant((c) => delete c.backends.legacy!.address), /backends\.legacy\.address: missing/],
  ['app without file', variant((c) => delete c.backends.web!.file), /backends\.web\.file: missing/],
  ['empty string', variant((c) => (c.backends.web!.file = '')), /backends\.web\.file: expected a non-empty string/],
  ['index with a slash', variant((c) => (c.backends.legacy!.index = 'a/b.php')), /backends\.legacy\.index: expected a file name without "\/"/],
  ['http URL with another scheme', variant((c) => (c.backends.api!.url = 'ftp://x:21')), /backends\.api\.url: expected an http:\/\/ or https:\/\/ URL, not ftp:/],
  ['http URL with credentials', variant((c) => (c.backends.api!.url = 'http://u:p@x:3000')), /backends\.api\.url: must not contain credentials/],
  ['http URL that is no URL', variant((c) => (c.backends.api!.url = '127.0.0.1:3000x')), /backends\.api\.url: expected an http/],
  ['http URL with a query', variant((c) => (c.backends.api!.url = 'http://x/?a=1')), /backends\.api\.url: must not have a query/],
  ['timeout out of range', variant((c) => (c.backends.api!.timeout = 0)), /backends\.api\.timeout: expected a whole number from 1 to 86400/],
  ['maxConnections not whole', variant((c) => (c.backends.legacy!.maxConnections = 1.5)), /backends\.legacy\.maxConnections: expected a whole number from 1 to 10000/],
  ['idle as a string', variant((c) => (c.backends.legacy!.idle = '30')), /backends\.legacy\.idle: expected a whole number from 0 to 3600/],
  ['sendfile not a boolean', variant((c) => (c.backends.legacy!.sendfile = 'yes')), /backends\.legacy\.sendfile: expected true or false/],
  ['a backend that is no object', variant((c) => (c.backends.web = 'app' as never)), /backends\.web: expected an object with a "type"/],
  ['a bad backend name', variant((c) => (c.backends['a b'] = { type: 'app', file: 'x' })), /backends\.a b: a backend name may only contain/],
  ['no backends', variant((c) => delete (c as Record<string, unknown>).backends), /backends: missing/],
  ['empty backends', variant((c) => (c.backends = {})), /backends: expected an object with at least one named backend/],
  ['no routes', variant((c) => delete (c as Record<string, unknown>).routes), /routes: missing/],
  ['empty routes', variant((c) => (c.routes = [])), /routes: expected a list with at least one route/],
  ['routes not a list', variant((c) => ((c as Record<string, unknown>).routes = {})), /routes: expected a list/],
  ['a route that is no object', variant((c) => (c.routes[1] = '/x' as never)), /routes\[1\]: expected an object/],
  ['pattern and prefix together', variant((c) => (c.routes[0]!.prefix = '/api/')), /routes\[0\]: has both "pattern" and "prefix"/],
  ['neither pattern nor prefix', variant((c) => delete c.routes[1]!.prefix), /routes\[1\]: needs "pattern" \(Mongrel2 route\) or "prefix" \(request path\)/],
  ['prefix without a leading slash', variant((c) => (c.routes[1]!.prefix = 'new/')), /routes\[1\]\.prefix: expected a string starting with "\/"/],
  ['empty pattern', variant((c) => (c.routes[0]!.pattern = '')), /routes\[0\]\.pattern: expected a non-empty string/],
  ['route without backend', variant((c) => delete c.routes[0]!.backend), /routes\[0\]\.backend: missing/],
  ['backend name not a string', variant((c) => (c.routes[0]!.backend = 3)), /routes\[0\]\.backend: expected a backend name/],
  ['not an object at the top', '[1]', /bridge\.json:1:1: expected an object with "backends" and "routes"/],
  ['a JSON syntax error, with line and column', '{\n  "backends": {\n    "a": {"type": "app" "file": "x"}', /bridge\.json:3:25: not valid JSON: expected "," or "}"/],
  ['a truncated file', '{"backends": ', /not valid JSON: unexpected end of the file/],
  ['trailing text', '{} x', /bridge\.json:1:4: not valid JSON: unexpected text after the JSON value/],
  ['an unterminated string', '{"a', /not valid JSON: unterminated string/],
  ['a bad escape', '{"a\\q": 1}', /not valid JSON: invalid string/],
];

for (const [name, input, expected] of CASES) {
  test(`invalid: ${name}`, () => {
    const errors = errorsOf(input);
    assert.ok(errors.some((e) => expected.test(e)), `no error matches ${expected}:\n${errors.join('\n')}`);
    for (const e of errors) assert.match(e, /^\/etc\/m2\/bridge\.json(:\d+:\d+)?: /, 'every error names the file and position');
  });
}

test('all errors are reported at once, each with its line:column', () => {
  const errors = errorsOf(variant((c) => {
    c.backends.legacy!.address = 'x';
    c.routes[0]!.backend = 'nope';
  }));
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /^\/etc\/m2\/bridge\.json:5:18: backends\.legacy\.address/);
  assert.match(errors[1]!, /^\/etc\/m2\/bridge\.json:\d+:\d+: routes\[0\]\.backend/);
});

test('warnings: unused backends and routes that can never match', () => {
  const { warnings } = ok(
    JSON.stringify({
      backends: { a: { type: 'app', file: 'a.js' }, b: { type: 'app', file: 'b.js' }, unused: { type: 'app', file: 'c.js' } },
      routes: [
        { pattern: '/x', backend: 'a' },
        { prefix: '/api/', backend: 'a' },
        { prefix: '/api/v2/', backend: 'b' },
        { pattern: '/x', backend: 'b' },
        { prefix: '/', backend: 'b' },
        { pattern: '/y', backend: 'a' },
      ],
    }),
  );
  assert.equal(warnings.length, 4, warnings.join('\n'));
  assert.match(warnings[0]!, /routes\[2\]: never matches: routes\[1\]/);
  assert.match(warnings[1]!, /routes\[3\]: never matches: routes\[0\]/);
  assert.match(warnings[2]!, /routes\[5\]: never matches: routes\[4\]/);
  assert.match(warnings[3]!, /backends\.unused: not used by any route/);
});

test('a byte order mark is ignored', () => {
  ok(`\uFEFF${JSON.stringify(EXAMPLE)}`);
});

// ---------------------------------------------------------------------------
// routing

const req = (p: string, pattern: string | undefined): RoutableRequest => ({ path: p, headers: pattern === undefined ? {} : { PATTERN: pattern, PATH: p } });

test('router: PATTERN is compared exactly, prefix against PATH; the first match wins', () => {
  const routes: Array<{ match: RouteMatch; target: string }> = [
    { match: { pattern: '/api/(.*)' }, target: 'api' },
    { match: { prefix: '/new/' }, target: 'web' },
    { match: { pattern: '/new/special' }, target: 'never' },
    { match: { prefix: '/' }, target: 'legacy' },
  ];
  const route = createRouter(routes);
  // The PATTERN header, not the path, selects pattern routes.
  assert.equal(route(req('/api/users', '/api/(.*)')), 'api');
  assert.equal(route(req('/somewhere/else', '/api/(.*)')), 'api');
  assert.equal(route(req('/api/users', '/')), 'legacy');
  // A pattern is no regex over the path and no prefix of PATTERN.
  assert.equal(route(req('/api/x', '/api/')), 'legacy');
  assert.equal(route(req('/api/x', '/api/(.*)x')), 'legacy');
  // Prefixes are literal and case-sensitive; the earlier route wins.
  assert.equal(route(req('/new/special', '/new/special')), 'web');
  assert.equal(route(req('/NEW/x', '/')), 'legacy');
  assert.equal(route(req('/new', '/')), 'legacy');
});

test('router: no match gives undefined (the Bridge answers 404)', () => {
  const route = createRouter([
    { match: { prefix: '/app/' }, target: 1 },
    { match: { pattern: '/handler' }, target: 2 },
  ]);
  assert.equal(route(req('/other', '/')), undefined);
  assert.equal(route(req('/other', undefined)), undefined);
  assert.equal(route(req('/x', '/handler')), 2);
  assert.equal(route(req('/app/', '/handler')), 1);
});

test('router: a PATTERN header sent as a list never matches a pattern route', () => {
  const route = createRouter([{ match: { pattern: '/a' }, target: 'a' }]);
  assert.equal(route({ path: '/a', headers: { PATTERN: ['/a', '/a'] } }), undefined);
});

test('examples/bridge.json is a valid config without warnings', async () => {
  const { readFile } = await import('node:fs/promises');
  const file = new URL('../../examples/bridge.json', import.meta.url).pathname;
  const { config, warnings } = ok(await readFile(file, 'utf8'), file);
  assert.deepEqual(warnings, []);
  assert.deepEqual([...config.backends.keys()], ['legacy', 'api', 'web']);
});
