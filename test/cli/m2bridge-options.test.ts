import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseBridgeArgs } from '../../src/cli/m2bridge-options.js';

const BIN = fileURLToPath(new URL('../../bin/m2bridge.js', import.meta.url));

test('defaults match the Mongrel2 sample configs', () => {
  const r = parseBridgeArgs(['--fcgi', '127.0.0.1:9000', '--root', '/srv/app']);
  assert.equal(r.ok, true);
  if (!r.ok) return;
  assert.equal(r.options.sendSpec, 'tcp://127.0.0.1:9997');
  assert.equal(r.options.recvSpec, 'tcp://127.0.0.1:9996');
  assert.equal(r.options.index, 'index.php');
  assert.equal(r.options.workers, 1);
  assert.equal(r.options.maxInflight, 1024);
  assert.equal(r.options.timeout, 60);
  assert.equal(r.options.logLevel, 'info');
  assert.equal(r.options.root, '/srv/app');
  assert.equal(r.options.sendfile, false);
  assert.equal(r.options.fcgiIdle, 30);
});

test('--app alone is enough (no --root)', () => {
  const r = parseBridgeArgs(['--app', 'server.js']);
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.options.app, `${process.cwd()}/server.js`);
});

test('every flag is parsed', () => {
  const r = parseBridgeArgs([
    '--fcgi', 'unix:/run/php/fpm.sock', '--root', '/srv/app', '--index', 'app.php', '--send-spec', 'tcp://127.0.0.1:1', '--recv-spec', 'ipc:///tmp/x',
    '--sender-id', 'abc-123', '--upload-dir', '/tmp/up', '--chroot', '/var/m2', '--max-inflight', '7', '--timeout', '3', '--workers', '4', '--log-level', 'debug', '--sendfile', '--max-connections', '5', '--fcgi-idle', '0',
  ]);
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(
    { ...r.options },
    {
      fcgi: 'unix:/run/php/fpm.sock', root: '/srv/app', index: 'app.php', sendSpec: 'tcp://127.0.0.1:1', recvSpec: 'ipc:///tmp/x', senderId: 'abc-123', uploadDir: '/tmp/up',
      chroot: '/var/m2', maxInflight: 7, timeout: 3, workers: 4, logLevel: 'debug', sendfile: true, maxConnections: 5, fcgiIdle: 0, trustForwarded: false, check: false,
    },
  );
});

for (const [argv, pattern] of [
  [['--root', '/x'], /--fcgi/],
  [['--fcgi', '127.0.0.1:9000'], /--root/],
  [['--fcgi', 'nonsense', '--root', '/x'], /HOST:PORT/],
  [['--fcgi', '127.0.0.1:99999', '--root', '/x'], /port/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--workers', '0'], /--workers/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--timeout', 'soon'], /--timeout/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--sender-id', 'a_b'], /letters, digits/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--send-spec', 'localhost:9997'], /ZeroMQ address/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--log-level', 'loud'], /log-level/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--bogus'], /unknown option/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--app', 'app.js'], /--fcgi and --app cannot be used together/],
  [['--http', 'http://127.0.0.1:3000', '--app', 'app.js'], /--http and --app cannot be used together/],
  [['--http', 'http://127.0.0.1:3000', '--config', 'b.json'], /--http and --config cannot be used together \(give several backends in a --config file\)/],
  [['--http', 'ftp://127.0.0.1:21'], /--http.*not ftp:/],
  [['--http', 'http://user:pw@127.0.0.1:3000'], /--http.*must not contain credentials/],
  [['--http', '127.0.0.1:3000'], /--http.*expected an http:\/\/ or https:\/\/ URL/],
  [['--http', 'http://127.0.0.1:3000/?x=1'], /--http.*must not have a query/],
  [['--http', 'http://127.0.0.1:3000', '--root', '/x'], /--root only applies to --fcgi/],
  [['--app', 'a.js', '--trust-forwarded'], /--trust-forwarded only applies to --http/],
  [['--http', 'http://127.0.0.1:3000', '--max-connections', '0'], /--max-connections/],
  [[], /one of --fcgi, --http, --app or --config is required/],
  [['--fcgi', '127.0.0.1:9000', '--root', '/x', '--fcgi-idle', '-1'], /--fcgi-idle/],
] as const) {
  test(`bad flags ${argv.join(' ')}: exit 2 with a clear message`, () => {
    const r = parseBridgeArgs(argv);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.exitCode, 2);
    assert.match(r.output, pattern);
    assert.match(r.output, /m2bridge --help/);
  });
}

test('the real command: --help lists every option and exits 0; a bad flag exits 2', () => {
  const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const flag of ['--fcgi', '--root', '--index', '--send-spec', '--recv-spec', '--sender-id', '--upload-dir', '--max-inflight', '--timeout', '--workers', '--log-level']) {
    assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
  }
  const bad = spawnSync(process.execPath, [BIN, '--fcgi', 'x', '--root', '/tmp'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--fcgi/);
});
