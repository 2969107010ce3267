/**
 * examples/mongrel2.conf loads with Debian's m2sh and routes the demos
 * where examples/README.md says they are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { M2SH_BIN } from '../support/mongrel2.js';
import { SAMPLE } from '../../examples/support/demo.js';

const run = promisify(execFile);
const CONF = fileURLToPath(new URL('../../examples/mongrel2.conf', import.meta.url));

test('examples/mongrel2.conf: m2sh loads it; three routes, with the sample specs the demos default to', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'm2-examples-conf-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const env = { ...process.env, LOGNAME: process.env.LOGNAME ?? 'root' };
  const load = await run(M2SH_BIN, ['load', '-config', CONF, '-db', 'config.sqlite'], { cwd: dir, env });
  assert.doesNotMatch(load.stdout + load.stderr, /\[ERROR\]/);
  const routes = await run(M2SH_BIN, ['routes', '-db', 'config.sqlite', '-server', 'demos', '-host', 'localhost'], { cwd: dir, env });
  assert.deepEqual(routes.stdout.split('\n').slice(2).map((l) => l.trim()).filter(Boolean).sort(), ['/chat/', '/handlertest', '/mp3stream']);
  const dump = await run('sqlite3', ['config.sqlite', 'SELECT send_spec, recv_spec FROM handler ORDER BY send_spec'], { cwd: dir });
  assert.deepEqual(
    dump.stdout.trim().split('\n'),
    [SAMPLE.mp3stream, SAMPLE.handlertest, SAMPLE.chat].map((s) => `${s.sendSpec}|${s.recvSpec}`),
  );
});
