/**
 * A bad Config is refused by createServer with an error that says what is
 * wrong, before anything is bound: a good server on the very same ports
 * starts right after. Bind failures at listen() name the address or spec.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/handler/logger.js';
import { createServer, type CoreServer } from '../../src/server/server.js';
import { freePorts } from '../support/process.js';
import { HELLO, assertServesStatic, minimalConfig } from './helpers.js';

const logger = createLogger({ level: 'silent' });
const started: CoreServer[] = [];
let cwd: string | undefined;
after(async () => {
  await Promise.all(started.map((s) => s.close()));
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

async function ports(): Promise<{ http: number; send: number; recv: number }> {
  const [http, send, recv] = (await freePorts(3)) as [number, number, number];
  return { http, send, recv };
}

/** Starts a good server on `p` and checks it serves; it stays up until the file's after(). */
async function assertGoodServerStarts(p: { http: number; send: number; recv: number }): Promise<void> {
  if (!cwd) {
    cwd = await mkdtemp(path.join(os.tmpdir(), 'm2robust-cfg-'));
    await mkdir(path.join(cwd, 'static'));
    await writeFile(path.join(cwd, 'static', 'hello.txt'), HELLO);
  }
  const server = createServer(minimalConfig(p), { logger, cwd });
  started.push(server);
  const { port } = await server.listen();
  assert.equal(port, p.http);
  await assertServesStatic(port);
  await server.close();
}

const refusals: Array<{ what: string; config: (p: { http: number; send: number; recv: number }) => Config; message: RegExp }> = [
  { what: 'a default_host that names no host', config: (p) => minimalConfig(p, { defaultHost: 'nowhere' }), message: /default_host 'nowhere' is not the name of any of its hosts/ },
  { what: 'a route pattern with an unclosed set', config: (p) => minimalConfig(p, { routePath: '/users/([0-9' }), message: /route '\/users\/\(\[0-9' \(id \d+\): .*bad pattern "\(\[0-9": missing '\]' to close the set \(at offset 1\)/ },
  { what: 'a route pattern ending in a lone backslash', config: (p) => minimalConfig(p, { routePath: '/x/(a\\' }), message: /bad pattern .*lone '\\'/ },
  { what: 'a host matching pattern with an unclosed set', config: (p) => minimalConfig(p, { matching: '([a-z)example.com' }), message: /bad pattern .*missing '\]'/ },
];

for (const r of refusals) {
  test(`createServer refuses ${r.what}, and leaves the ports free`, async () => {
    const p = await ports();
    assert.throws(() => createServer(r.config(p), { logger }), r.message);
    await assertGoodServerStarts(p);
  });
}

test('listen() with the HTTP port taken rejects naming the address; after close() the handler ports are free again', async () => {
  const p = await ports();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(p.http, '127.0.0.1', resolve));
  try {
    const server = createServer(minimalConfig(p), { logger });
    started.push(server);
    await assert.rejects(server.listen(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${p.http}: .*EADDRINUSE`));
    await server.close();
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
  await assertGoodServerStarts(p);
});

test('listen() with a handler spec that cannot be bound rejects naming the spec', async () => {
  const p = await ports();
  const server = createServer(minimalConfig(p, { sendSpec: 'tcp://999.1.1.1:1' }), { logger });
  started.push(server);
  await assert.rejects(server.listen(), /cannot bind handler socket tcp:\/\/999\.1\.1\.1:1: /);
  await server.close();
  await assertGoodServerStarts(p);
});

test('a listen() that fails on the HTTP port leaves the handler sockets unbound', async () => {
  const p = await ports();
  const squatter = net.createServer().listen(p.http, '127.0.0.1');
  await new Promise((r) => squatter.once('listening', r));
  try {
    const server = createServer(minimalConfig(p), { logger });
    await assert.rejects(server.listen(), /cannot listen on 127\.0\.0\.1:\d+/);
  } finally {
    await new Promise((r) => squatter.close(r));
  }
  // Same handler specs, same HTTP port, now free: it must start.
  await assertGoodServerStarts(p);
});
