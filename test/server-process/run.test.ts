import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Config } from '../../src/config/types.js';
import { runServer } from '../../src/server/process/run.js';
import { freePorts } from '../support/process.js';

let home: string;
before(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'm2run-'));
  for (const d of ['logs', 'run', 'static']) await mkdir(path.join(home, d));
  await writeFile(path.join(home, 'static', 'a.txt'), 'a\n');
});
after(() => rm(home, { recursive: true, force: true }));

function config(port: number, pidFile: string): Config {
  return {
    server: {
      id: 1, uuid: 'run-test', name: 'run', bindAddr: '127.0.0.1', port, chroot: home, accessLog: '/logs/access.log', errorLog: '/logs/error.log', errorLogLevel: 0,
      pidFile, controlPort: '', defaultHost: 'localhost', useSsl: false, filters: [], xrequests: [],
      hosts: [{ id: 1, name: 'localhost', matching: 'localhost', routes: [{ id: 1, path: '/static/', target: { type: 'dir', id: 1, base: 'static/', indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 0 } }] }],
    },
    settings: new Map(),
    mimetypes: new Map([['.txt', 'text/plain']]),
  };
}

test('a startup that fails after binding releases the port and the log files', async () => {
  const [port] = (await freePorts(1)) as [number];
  // The pid file's folder does not exist: claiming it fails after listen().
  await assert.rejects(runServer(config(port, '/no-such-dir/m2.pid')), /ENOENT/);
  const ok = await runServer(config(port, '/run/m2.pid'));
  try {
    assert.equal((await fetch(`http://127.0.0.1:${port}/static/a.txt`)).status, 200);
  } finally {
    await ok.stop();
  }
});

test('stop() removes the signal handlers it installed', async () => {
  const [port] = (await freePorts(1)) as [number];
  const before = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s));
  const running = await runServer(config(port, '/run/m2.pid'), { handleSignals: true });
  assert.deepEqual(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s)), before.map((n) => n + 1));
  await running.stop();
  assert.deepEqual(['SIGINT', 'SIGTERM', 'SIGHUP'].map((s) => process.listenerCount(s)), before);
});
