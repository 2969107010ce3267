/**
 * m2bridge --workers N: a worker that cannot start ends the command (no
 * restart loop); a worker that dies after it was ready is replaced.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startCore, type CorePeer } from '../support/core.js';
import { M2BRIDGE_BIN, startBridge } from '../support/m2bridge.js';

let dir: string;
let core: CorePeer;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'm2workers-'));
  core = await startCore({ rootRoute: true });
});
after(async () => {
  await core?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('a worker that fails to start stops the primary with its exit code', { timeout: 30_000 }, async () => {
  const bad = path.join(dir, 'bad.mjs');
  await writeFile(bad, 'export default 42;\n');
  const child = spawn(process.execPath, [M2BRIDGE_BIN, '--app', bad, '--workers', '2', '--send-spec', core.handler.sendSpec, '--recv-spec', core.handler.recvSpec], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2, log);
  assert.equal(log.match(/starting another/g), null, 'no restart loop');
  assert.match(log, /a worker failed to start/);
});

test('a worker killed after it was ready is replaced', { timeout: 30_000 }, async () => {
  const good = path.join(dir, 'good.mjs');
  await writeFile(good, "export default (req, res) => res.end('ok ' + process.pid);\n");
  const bridge = await startBridge(['--app', good, '--workers', '2', '--send-spec', core.handler.sendSpec, '--recv-spec', core.handler.recvSpec]);
  try {
    const readyPids = (): number[] => [...bridge.log().matchAll(/"pid":(\d+)[^\n]*"msg":"worker ready"/g)].map((m) => Number(m[1]));
    const waitFor = async (what: string, cond: () => boolean): Promise<void> => {
      const end = Date.now() + 15_000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${bridge.log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    await waitFor('two ready workers', () => readyPids().length >= 2);
    const [victim] = readyPids() as [number];
    process.kill(victim, 'SIGKILL');
    await waitFor('a replacement worker', () => readyPids().length >= 3);
    assert.match(bridge.log(), /worker died; starting another/);
    assert.equal((await fetch(`${core.baseUrl}/x`)).status, 200);
  } finally {
    assert.equal(await bridge.stop(), 0);
  }
});
