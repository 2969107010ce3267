/**
 * `npm start` (examples/start.ts): the bundled core with the demos, the
 * Express/Koa apps and PHP-FPM through the bridge, stopped by Ctrl-C with
 * nothing left behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { freePorts } from '../support/process.js';

const START = fileURLToPath(new URL('../../examples/start.ts', import.meta.url));

test('npm start serves every demo on one port and Ctrl-C cleans up', { timeout: 60_000 }, async () => {
  const [port] = (await freePorts(1)) as [number];
  const child = spawn(process.execPath, ['--import', 'tsx', START], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('Ctrl-C stops everything')) resolve();
      });
      child.once('exit', () => reject(new Error(`npm start exited early:\n${out}\n${err}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const home = /Runtime folder (\S+) /.exec(out)?.[1];
    assert.ok(home && existsSync(home), out);
    assert.match(await (await fetch(`${base}/`)).text(), /m2bridge demos/);
    assert.match(await (await fetch(`${base}/handlertest?x=1`)).text(), /QUERY.*x=1/);
    assert.deepEqual(await (await fetch(`${base}/express/notes`)).json(), { notes: [] });
    assert.deepEqual(await (await fetch(`${base}/koa/?name=t`)).json(), { hello: 't', from: 'koa', path: '/' });
    assert.equal((await fetch(`${base}/chat/`)).status, 200);
    // CI installs php-fpm, so the PHP route must be there.
    assert.match(out, /\/php\/ +PHP-FPM through the bridge/);
    assert.match(await (await fetch(`${base}/php/?name=ci`)).text(), /Hello, ci!/);
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 0, err);
    assert.equal(existsSync(home), false, 'the runtime folder is removed');
  } finally {
    child.kill('SIGKILL');
  }
});
