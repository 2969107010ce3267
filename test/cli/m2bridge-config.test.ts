/**
 * m2bridge --http and --config on the command line: which backend(s) the
 * flags and a bridge.json give, the flags as per-backend defaults, --check,
 * and the file checks made before anything starts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { M2BRIDGE_BIN } from '../support/m2bridge.js';
import { parseBridgeArgs } from '../../src/cli/m2bridge-options.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2bridge-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.mkdirSync(path.join(dir, 'www'));
fs.writeFileSync(path.join(dir, 'app.mjs'), 'export default (req, res) => res.end("x");\n');

function writeConfig(name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
}

const GOOD = {
  backends: {
    legacy: { type: 'fcgi', address: '127.0.0.1:9000', root: 'www' },
    api: { type: 'http', url: 'http://127.0.0.1:3000', timeout: 5 },
    web: { type: 'app', file: './app.mjs' },
  },
  routes: [
    { pattern: '/api/(.*)', backend: 'api' },
    { prefix: '/new/', backend: 'web' },
    { prefix: '/', backend: 'legacy' },
  ],
};

test('--http gives one http backend with the flags as its options', () => {
  const r = parseBridgeArgs(['--http', 'http://127.0.0.1:3000/base', '--timeout', '7', '--max-connections', '9', '--trust-forwarded']);
  assert.ok(r.ok, r.ok ? '' : r.output);
  assert.deepEqual(r.plan, { kind: 'single', spec: { type: 'http', url: 'http://127.0.0.1:3000/base', timeout: 7, maxConnections: 9, trustForwarded: true } });
});

test('--http without --max-connections leaves the connection count to the backend', () => {
  const r = parseBridgeArgs(['--http', 'https://example.test']);
  assert.ok(r.ok);
  assert.deepEqual(r.plan, { kind: 'single', spec: { type: 'http', url: 'https://example.test', timeout: 60, trustForwarded: false } });
});

test('--fcgi and --app become one backend spec with the flag defaults', () => {
  const f = parseBridgeArgs(['--fcgi', 'unix:/run/fpm.sock', '--root', '/srv', '--fcgi-idle', '0']);
  assert.ok(f.ok);
  assert.deepEqual(f.plan, { kind: 'single', spec: { type: 'fcgi', address: 'unix:/run/fpm.sock', root: '/srv', index: 'index.php', sendfile: false, idle: 0, timeout: 60 } });
  const a = parseBridgeArgs(['--app', '/x/app.js', '--timeout', '3']);
  assert.ok(a.ok);
  assert.deepEqual(a.plan, { kind: 'single', spec: { type: 'app', file: '/x/app.js', timeout: 3 } });
});

test('--config: backends and routes from the file; the flags fill what a backend leaves out', () => {
  const file = writeConfig('good.json', GOOD);
  const r = parseBridgeArgs(['--config', file, '--timeout', '20', '--index', 'app.php', '--trust-forwarded']);
  assert.ok(r.ok, r.ok ? '' : r.output);
  assert.equal(r.plan.kind, 'routes');
  if (r.plan.kind !== 'routes') return;
  assert.equal(r.plan.file, file);
  assert.deepEqual(r.plan.warnings, []);
  assert.deepEqual(Object.fromEntries(r.plan.config.backends), {
    legacy: { type: 'fcgi', address: '127.0.0.1:9000', root: path.join(dir, 'www'), index: 'app.php', sendfile: false, idle: 30, timeout: 20 },
    api: { type: 'http', url: 'http://127.0.0.1:3000', timeout: 5, trustForwarded: true },
    web: { type: 'app', file: path.join(dir, 'app.mjs'), timeout: 20 },
  });
  assert.equal(r.plan.config.routes.length, 3);
});

const BAD: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ['a key path error', { ...GOOD, routes: [{ prefix: '/', backend: 'apii' }] }, /error: .*bad-1\.json:\d+:\d+: routes\[0\]\.backend: unknown backend "apii" \(known: legacy, api, web\)/],
  ['a missing fcgi root', { ...GOOD, backends: { ...GOOD.backends, legacy: { type: 'fcgi', address: '127.0.0.1:9000', root: 'nowhere' } } }, /backends\.legacy\.root: .*nowhere: does not exist/],
  ['an fcgi root that is a file', { ...GOOD, backends: { ...GOOD.backends, legacy: { type: 'fcgi', address: '127.0.0.1:9000', root: 'app.mjs' } } }, /backends\.legacy\.root: .*app\.mjs: not a directory/],
  ['a missing app file', { ...GOOD, backends: { ...GOOD.backends, web: { type: 'app', file: 'gone.mjs' } } }, /backends\.web\.file: .*gone\.mjs: does not exist/],
  ['invalid JSON', '{"backends": }', /bad-5\.json:1:14: not valid JSON/],
];
for (const [i, [name, value, pattern]] of BAD.entries()) {
  const index = i + 1;
  test(`--config with ${name}: exit 2 naming the file and key`, () => {
    const r = parseBridgeArgs(['--config', writeConfig(`bad-${index}.json`, value)]);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.exitCode, 2);
    assert.match(r.output, pattern);
  });
}

test('--config with a file that cannot be read: exit 2', () => {
  const r = parseBridgeArgs(['--config', path.join(dir, 'absent.json')]);
  assert.ok(!r.ok);
  assert.equal(r.exitCode, 2);
  assert.match(r.output, /absent\.json: cannot read the config file: ENOENT/);
});

test('--check: exit 0 with a summary and the warnings; errors exit 2', () => {
  const file = writeConfig('warn.json', { ...GOOD, backends: { ...GOOD.backends, spare: { type: 'app', file: 'app.mjs' } } });
  const r = parseBridgeArgs(['--config', file, '--check']);
  assert.ok(!r.ok);
  assert.equal(r.exitCode, 0);
  assert.match(r.output, /warning: .*backends\.spare: not used by any route/);
  assert.match(r.output, /configuration OK \(.*warn\.json: 4 backend\(s\), 3 route\(s\)\)/);
  const single = parseBridgeArgs(['--http', 'http://127.0.0.1:1', '--check']);
  assert.ok(!single.ok);
  assert.equal(single.exitCode, 0);
  assert.match(single.output, /configuration OK \(one http backend\)/);
});

test('the real command: --config --check exits 0 on a good file and 2 on a bad one, before connecting anywhere', () => {
  const good = spawnSync(process.execPath, [M2BRIDGE_BIN, '--config', writeConfig('cli-good.json', GOOD), '--check'], { encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /configuration OK/);
  const bad = spawnSync(process.execPath, [M2BRIDGE_BIN, '--config', writeConfig('cli-bad.json', { ...GOOD, extra: true }), '--check'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /cli-bad\.json:\d+:\d+: extra: unknown key \(allowed: backends, routes\)/);
  const help = spawnSync(process.execPath, [M2BRIDGE_BIN, '--help'], { encoding: 'utf8' });
  for (const flag of ['--http', '--config', '--check', '--trust-forwarded']) assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
});
