import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Request } from 'zeromq';
import { loadConfigFile } from '../../src/config/load.js';
import { encode } from '../../src/protocol/tnetstring.js';
import { isAlive } from '../../src/server/process/pid-file.js';
import { freePorts, isRoot, lookupUser } from '../support/process.js';

const BIN = fileURLToPath(new URL('../../bin/mongrel2.js', import.meta.url));
const UUID = 'f400bf85-4538-4f7a-8908-67e313d515c2';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function mongrel2(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    // stdio pipes would keep the detached daemon tied to us: give it files instead.
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Bounded wait for something another process does (no fixed sleeps). */
async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function writeConf(home: string, port: number, daemonize: number): Promise<string> {
  const conf = path.join(home, 'mongrel2.conf');
  await writeFile(
    conf,
    `main = Server(
  uuid="${UUID}", name="main", chroot="${home}", bind_addr="127.0.0.1", port=${port},
  access_log="/logs/access.log", error_log="/logs/error.log", pid_file="/run/mongrel2.pid",
  default_host="localhost",
  hosts=[Host(name="localhost", routes={"/static/": Dir(base="static/", index_file="index.html", default_ctype="text/plain")})]
)
servers = [main]
settings = {"server.daemonize": ${daemonize}}
`,
  );
  const db = path.join(home, 'config.sqlite');
  loadConfigFile(conf, db);
  return db;
}

async function makeHome(): Promise<string> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'm2cli-'));
  for (const d of ['logs', 'run', 'static']) await mkdir(path.join(home, d));
  await writeFile(path.join(home, 'static', 'hello.txt'), 'hello from the core\n');
  return home;
}

async function control(home: string, cmd: string): Promise<string> {
  const s = new Request({ receiveTimeout: 5000, linger: 0 });
  s.connect(`ipc://${home}/run/control`);
  try {
    await s.send(encode([cmd, {}]));
    return (await s.receive())[0]!.toString();
  } finally {
    s.close();
  }
}

describe('mongrel2 <db> <uuid>, daemonized', () => {
  let home: string;
  let db: string;
  let port: number;
  let pid = 0;
  const pidFile = (): string => path.join(home, 'run', 'mongrel2.pid');

  before(async () => {
    home = await makeHome();
    [port] = (await freePorts(1)) as [number];
    db = await writeConf(home, port, 1);
  });
  after(async () => {
    if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
    await rm(home, { recursive: true, force: true });
  });

  test('returns once listening, with a pid file, logs and a control port', async () => {
    const run = await mongrel2([db, UUID], home);
    assert.equal(run.code, 0, run.stderr);
    pid = Number(readFileSync(pidFile(), 'utf8'));
    assert.ok(isAlive(pid), 'the daemon runs on');
    const res = await fetch(`http://127.0.0.1:${port}/static/hello.txt`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello from the core\n');
    await until('an access-log line', () => readFileSync(path.join(home, 'logs', 'access.log'), 'utf8').includes('/static/hello.txt'));
    assert.match(await control(home, 'uuid'), new RegExp(UUID));
    assert.ok(existsSync(path.join(home, 'logs', 'error.log')));
  });

  test('a second server on the same pid file is refused', async () => {
    const run = await mongrel2([db, UUID], home);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /already running as pid/);
    assert.ok(isAlive(pid));
  });

  test('SIGHUP reopens the access log (rotation)', async () => {
    const log = path.join(home, 'logs', 'access.log');
    await rename(log, `${log}.1`);
    process.kill(pid, 'SIGHUP');
    // The reopen is asynchronous: retry requests until one lands in the new file.
    await until('a line in the reopened access log', async () => {
      await (await fetch(`http://127.0.0.1:${port}/static/hello.txt`)).text();
      return existsSync(log) && readFileSync(log, 'utf8').includes('/static/hello.txt');
    });
  });

  test('SIGINT stops it and removes the pid file', async () => {
    process.kill(pid, 'SIGINT');
    await until('the daemon to exit', () => !isAlive(pid));
    assert.equal(existsSync(pidFile()), false);
  });
});

describe('mongrel2 in the foreground and on bad input', () => {
  let home: string;
  before(async () => {
    home = await makeHome();
  });
  after(() => rm(home, { recursive: true, force: true }));

  test('server.daemonize=0 stays in the foreground; control stop ends it with exit 0', async () => {
    const [port] = (await freePorts(1)) as [number];
    const db = await writeConf(home, port, 0);
    const child = spawn(process.execPath, [BIN, db, UUID], { cwd: home, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await until('the foreground server to answer', async () => (await fetch(`http://127.0.0.1:${port}/static/hello.txt`).then((r) => r.status).catch(() => 0)) === 200);
      assert.equal(Number(readFileSync(path.join(home, 'run', 'mongrel2.pid'), 'utf8')), child.pid);
      assert.match(await control(home, 'stop'), /signal sent to server/);
      assert.equal(await exited, 0);
      assert.equal(existsSync(path.join(home, 'run', 'mongrel2.pid')), false);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('a config module (the JSON-file module) serves like config.sqlite does', async () => {
    const [port] = (await freePorts(1)) as [number];
    const json = path.join(home, 'site.json');
    await writeFile(
      json,
      JSON.stringify({
        server: { uuid: UUID, name: 'main', default_host: 'localhost', bind_addr: '127.0.0.1', port, chroot: home, access_log: '/logs/access.log', error_log: '/logs/error.log', pid_file: '/run/mongrel2.pid' },
        hosts: [{ name: 'localhost', routes: { '/static/': { dir: { base: 'static/', index_file: 'index.html', default_ctype: 'text/plain' } } } }],
        settings: { 'server.daemonize': '0' },
      }),
    );
    const module = fileURLToPath(new URL('../../src/config/modules/json-file.ts', import.meta.url));
    const child = spawn(process.execPath, [BIN, json, UUID, module], { cwd: home, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await until('the module-configured server to answer', async () => (await fetch(`http://127.0.0.1:${port}/static/hello.txt`).then((r) => r.status).catch(() => 0)) === 200);
      process.kill(child.pid!, 'SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('as root with a chroot owned by another user, the server drops to that user after binding', async () => {
    const [port] = (await freePorts(1)) as [number];
    const db = await writeConf(home, port, 0);
    const www = lookupUser('www-data');
    const root = isRoot();
    if (root && www) execFileSync('chown', ['-R', `${www.uid}:${www.gid}`, home]);
    const child = spawn(process.execPath, [BIN, db, UUID], { cwd: home, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await until('the server to answer', async () => (await fetch(`http://127.0.0.1:${port}/static/hello.txt`).then((r) => r.status).catch(() => 0)) === 200);
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
      // Not root: nothing to drop, the server keeps our uid.
      assert.equal(uid, root && www ? www.uid : process.getuid!());
      process.kill(child.pid!, 'SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
      if (root) execFileSync('chown', ['-R', '0:0', home]);
    }
  });

  test('usage errors exit 2; an unknown uuid or database exits 1 with the reason', async () => {
    const usage = await mongrel2([], home);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: mongrel2/);
    const missing = await mongrel2([path.join(home, 'nope.sqlite'), UUID], home);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.sqlite/);
    const [port] = (await freePorts(1)) as [number];
    const db = await writeConf(home, port, 0);
    const wrong = await mongrel2([db, 'no-such-uuid'], home);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /no-such-uuid/);
  });
});
