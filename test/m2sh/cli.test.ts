/**
 * bin/m2sh.js as a user runs it: output of the listing commands next to
 * Debian's m2sh, exit codes, and `control`/`running`/`stop` against a REAL
 * running mongrel2.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { encode } from '../../src/protocol/tnetstring.js';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';

const BIN = fileURLToPath(new URL('../../bin/m2sh.js', import.meta.url));
const EVERYTHING = fileURLToPath(new URL('../config/confs/everything.conf', import.meta.url));
const ENV = { ...process.env, LOGNAME: process.env.LOGNAME ?? 'm2bridge' };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'm2sh-cli-'));
let peer: Mongrel2Peer | undefined;
after(async () => {
  await peer?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function m2sh(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? work, env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

async function debianM2sh(args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('/usr/bin/m2sh', args, { cwd: work, env: ENV });
  return stdout;
}

const DB = path.join(work, 'config.sqlite');

test('load: exit 0, a summary, and a log row like m2sh’s', async () => {
  const r = await m2sh(['load', '--config', EVERYTHING, '--db', DB]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Loaded .*everything\.conf into .*config\.sqlite: 2 server\(s\), 3 host\(s\), 19 route\(s\)/);
  const db = new Database(DB, { readonly: true });
  const log = db.prepare('SELECT who, what, location, how, why FROM log').raw().all();
  db.close();
  assert.deepEqual(log, [[ENV.LOGNAME, 'load', os.hostname(), EVERYTHING, 'command']]);
});

test('servers, hosts and routes print exactly what Debian’s m2sh prints', async () => {
  for (const args of [
    ['servers', '-db', DB],
    ['hosts', '-db', DB, '-server', 'main'],
    ['routes', '-db', DB, '-server', 'main', '-host', 'www.example.com'],
    ['routes', '-db', DB, '-id', '2'],
  ]) {
    const ours = await m2sh(args);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, await debianM2sh(args), args.join(' '));
  }
});

test('settings lists the setting table in row order', async () => {
  const r = await m2sh(['settings', '-db', DB]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    'SETTINGS:\n------\ncontrol_port ipc://run/control \nzeromq.threads 1 \nlimits.buffer_size 8192 \n' +
      'server.daemonize 0 \nupload.temp_store /tmp/upload.XXXXXX \nupload.temp_store_mode 0600 \n',
  );
});

test('commit and log', async () => {
  const c = await m2sh(['commit', '-db', DB, '-what', 'deploy', '-why', 'testing', '-where', 'here']);
  assert.equal(c.code, 0, c.stderr);
  const r = await m2sh(['log', '-db', DB]);
  assert.match(r.stdout, /^LOG MESSAGES:\n------\n.* load command \n\S+ \S+ \S+ here m2sh deploy testing \n$/);
});

test('a bad config: exit 1, a file:line:column message, and the database is unchanged', async () => {
  const bad = path.join(work, 'bad.conf');
  fs.writeFileSync(bad, 'main = Server(uuid="u")\nservers = [main\n');
  const before = fs.readFileSync(DB);
  const r = await m2sh(['load', '-config', bad, '-db', DB]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `m2sh: ${bad}:3:1: expected a value (quoted string, number, name, [list], {hash} or Class(...)) or ']', got end of file\n`);
  assert.ok(fs.readFileSync(DB).equals(before));
  const missing = await m2sh(['load', '-config', path.join(work, 'nope.conf'), '-db', DB]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /config file .*nope\.conf does not exist/);
});

test('bad usage exits 2: unknown command, positional argument, missing required option', async () => {
  for (const [args, re] of [
    [['bogus'], /unknown command "bogus"/],
    [['servers', 'extra'], /commands only take -option style arguments; unexpected "extra"/],
    [['hosts', '-db', DB], /give the name of the server to list hosts from \(--server\)/],
    [['start', '-db', DB], /give exactly one of --every, --name NAME, --host DEFAULT_HOST or --uuid UUID/],
  ] as const) {
    const r = await m2sh([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('version, uuid, help and route', async () => {
  assert.match((await m2sh(['version'])).stdout, /^Mongrel2\/1\.13\.0 \(m2bridge \d+\.\d+\.\d+\)\n$/);
  assert.match((await m2sh(['uuid'])).stdout, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$/);
  assert.equal((await m2sh(['help', '--on', 'load'])).stdout, 'load\tLoad a config (--config mongrel2.conf --db config.sqlite).\n');
  assert.equal(
    (await m2sh(['route', '-match', '/users/42', '-pattern', '/users/([0-9]+)'])).stdout,
    "Match passed on '/users/42' against '/users/([0-9]+)'.\nROUTE: pattern='/users/([0-9]+)', prefix='/users/'\n",
  );
  assert.equal((await m2sh(['route', '-match', '/users/x', '-pattern', '/users/([0-9]+)'])).stdout, "Match FAILED on '/users/x' against '/users/([0-9]+)'.\n");
});

test('access pretty-prints a tnetstring access log and warns about malformed lines', async () => {
  const log = path.join(work, 'access.log');
  const entry = encode(['localhost', '127.0.0.1', 54321, 1700000000, 'GET', '/', 'HTTP/1.1', 200, 1234]);
  fs.writeFileSync(log, Buffer.concat([entry, Buffer.from('\nnot a tnetstring\n'), encode(['short']), Buffer.from('\n')]));
  const r = await m2sh(['access', '-log', log]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '[1700000000] 127.0.0.1:54321 localhost "GET / HTTP/1.1" 200 1234\n');
  assert.equal(r.stderr, 'm2sh: malformed log line 2\nm2sh: malformed log line 3\n');
});

test('the shell runs one command per stdin line', async () => {
  const r = await m2sh([], { input: `servers -db ${DB}\nversion\nbogus\n` });
  assert.match(r.stdout, /^SERVERS:\n------\nmain /);
  assert.match(r.stdout, /Mongrel2\/1\.13\.0/);
  assert.match(r.stderr, /unknown command "bogus"/);
});

test('control, running and stop against a real mongrel2', async () => {
  peer = await startMongrel2();
  const sel = ['-db', 'config.sqlite', '-uuid', peer.serverUuid];
  const r = await m2sh(['control', ...sel], { cwd: peer.home, input: 'uuid\ntime\nstatus what=net\nstatus what=nope\nbogus\n' });
  assert.equal(r.code, 0, r.stderr);
  const [uuidLine, timeLine, ...rest] = r.stdout.split('\n');
  assert.equal(uuidLine, `uuid:  ${peer.serverUuid}`);
  const t = Number(/^time:  (\d+)$/.exec(timeLine!)?.[1]);
  assert.ok(Math.abs(t - Date.now() / 1000) < 60, timeLine);
  const text = rest.join('\n');
  // Only the control socket is connected: a one-row table prints as name:value lines.
  assert.match(text, /^(id  fd  type  last_ping  last_read  last_write  bytes_read  bytes_written  \n|id:  \d+\nfd:  \d+\ntype:  \d+\n)/);
  assert.match(text, /ERROR: Expected argument what=\['net'\|'tasks'\]\.\n/);
  assert.match(text, /ERROR: Callback requested was not found\.\n$/);

  const running = await m2sh(['running', ...sel], { cwd: peer.home });
  assert.equal(running.stdout, `mongrel2 at PID ${peer.pid} running.\n`);
  const stop = await m2sh(['stop', ...sel], { cwd: peer.home });
  assert.equal(stop.code, 0, stop.stderr);
  // The harness unrefs the child, so keep the loop alive while waiting (bounded).
  let timer: NodeJS.Timeout | undefined;
  const status = await Promise.race([
    peer.exited,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('mongrel2 did not stop within 10 s of m2sh stop')), 10_000))),
  ]).finally(() => clearTimeout(timer));
  assert.equal(status.code, 0);
  const after = await m2sh(['running', ...sel], { cwd: peer.home });
  assert.match(after.stdout, /^mongrel2 is not running because pid_file \.\/\/run\/mongrel2\.pid isn't there\.\n$/);
});

test('chroot "": running and control use ./run under the current folder, like our server (not /run)', async (t) => {
  const home = fs.mkdtempSync(path.join(work, 'nochroot-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  fs.writeFileSync(
    path.join(home, 'm.conf'),
    'main = Server(uuid="5b9f9a4e-1c1e-4f7e-9f53-0d1b0c1e2f3a", access_log="/logs/a.log", error_log="/logs/e.log", chroot="", ' +
      'default_host="localhost", name="bare", pid_file="/run/mongrel2.pid", port=6768, hosts=[Host(name="localhost", routes={"/": Dir(base="s/", index_file="i.html", default_ctype="text/plain")})])\nservers = [main]\n',
  );
  const load = await m2sh(['load', '--config', 'm.conf', '--db', 'c.sqlite'], { cwd: home });
  assert.equal(load.code, 0, load.stderr);
  const sel = ['-db', 'c.sqlite', '-name', 'bare'];
  const missing = await m2sh(['running', ...sel], { cwd: home });
  assert.equal(missing.stdout, "mongrel2 is not running because pid_file ./run/mongrel2.pid isn't there.\n");
  fs.mkdirSync(path.join(home, 'run'));
  fs.writeFileSync(path.join(home, 'run', 'mongrel2.pid'), String(process.pid));
  const running = await m2sh(['running', ...sel], { cwd: home });
  assert.equal(running.stdout, `mongrel2 at PID ${process.pid} running.\n`);

  // A stand-in control port where our server binds it: <cwd>/run/control.
  const { Reply } = await import('zeromq');
  const port = new Reply({ linger: 0 });
  t.after(() => port.close());
  await port.bind(`ipc://${path.join(home, 'run', 'control')}`);
  const served = (async () => {
    const [req] = (await port.receive()) as [Buffer];
    await port.send(encode({ headers: ['uuid'], rows: [['5b9f9a4e']] }));
    return req.toString('latin1');
  })();
  const control = await m2sh(['control', ...sel, '--timeout', '5000'], { cwd: home, input: 'uuid\n' });
  assert.equal(control.code, 0, control.stderr);
  assert.match(await served, /uuid/);
  assert.equal(control.stdout, 'uuid:  5b9f9a4e\n');
});
