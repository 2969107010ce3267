/**
 * The control port of a server started with runServer (the `mongrel2` bin's
 * code path), fed garbage, huge and wrongly typed requests, kills of ids that
 * do not exist and long runs of requests: every request gets a tnetstring
 * reply, the port keeps answering, and the server keeps serving HTTP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Dealer, Request } from 'zeromq';
import { encode, parse, type TDict, type TValue } from '../../src/protocol/tnetstring.js';
import { runServer, type RunningServer } from '../../src/server/process/run.js';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { freePorts } from '../support/process.js';
import { HELLO, assertServesStatic, deadline, minimalConfig, probe, until } from './helpers.js';

const INVALID_ARGUMENT = '61:4:code,16:INVALID_ARGUMENT,5:error,22:Invalid argument type.,}';
const INVALID_DATA = '97:4:code,12:INVALID_DATA,5:error,62:Invalid data, expecting a list with a string and a hash in it.,}';

/** A list nested 5000 deep. */
const DEEP = ((): Buffer => {
  let deep = '0:~';
  for (let i = 0; i < 5000; i++) deep = `${deep.length}:${deep}]`;
  return Buffer.from(deep);
})();

function asDict(reply: Buffer, what: string): TDict {
  const { value, end } = parse(reply);
  assert.equal(end, reply.length, `${what}: the reply is exactly one tnetstring`);
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value), `${what}: the reply is a dict`);
  return value as TDict;
}

describe('control port under abuse (runServer)', { timeout: 120_000 }, () => {
  let root: string;
  let running: RunningServer;
  let req: Request;
  let port: number;

  const ask = async (bytes: Buffer): Promise<Buffer> => {
    await req.send(bytes);
    const [reply] = await req.receive();
    return reply!;
  };
  const command = async (name: string, args: TValue = {}): Promise<TDict> => asDict(await ask(encode([name, args])), name);

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'm2robust-ctl-'));
    for (const d of ['logs', 'run', 'static']) await mkdir(path.join(root, d));
    await writeFile(path.join(root, 'static', 'hello.txt'), HELLO);
    const [send, recv] = (await freePorts(2)) as [number, number];
    running = await runServer(minimalConfig({ http: 0, send, recv }), { cwd: root });
    port = running.address.port;
    req = new Request({ receiveTimeout: 5000, sendTimeout: 5000, linger: 0 });
    req.connect(running.control.spec);
  });
  after(async () => {
    req?.close();
    await running?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('generated garbage: each request gets exactly one tnetstring dict back', async () => {
    const requests = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        // Almost-valid: a real command with a few bytes changed.
        fc.tuple(fc.constantFrom('uuid', 'status', 'kill', 'help', 'time', 'info'), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([name, pos, b]) => {
          const bytes = Buffer.from(encode([name, { what: 'net', id: 1 }]));
          bytes[pos % bytes.length] = b;
          return bytes;
        }),
      ),
      500,
    );
    for (const r of requests) {
      const d = asDict(await ask(r), JSON.stringify(r.toString('latin1')));
      // Only the harmless commands can survive a mutation; none of them stops anything.
      assert.ok('code' in d || 'error' in d || 'rows' in d, JSON.stringify(d));
    }
    assert.equal(asDict(await ask(encode(['uuid', {}])), 'uuid').rows !== undefined, true);
  });

  test('huge requests: 16 MiB of garbage and a 16 MiB argument are answered', async () => {
    assert.equal((await ask(Buffer.alloc(16 * 1024 * 1024, 0x39))).toString('latin1'), INVALID_DATA);
    const big = await command('uuid', { pad: 'x'.repeat(16 * 1024 * 1024) });
    assert.deepEqual((big.rows as Buffer[][])[0]!.map(String), [running.server.config.server.uuid]);
  });

  test('wrong types are refused with the fixed error dicts', async () => {
    for (const [name, args] of [
      ['kill', { id: 'x' }],
      ['kill', { id: -1 }],
      ['kill', { id: [1] }],
      ['kill', {}],
      ['status', { what: 5 }],
      ['status', { what: null }],
    ] as Array<[string, TValue]>) {
      assert.equal((await ask(encode([name, args]))).toString('latin1'), INVALID_ARGUMENT, `${name} ${JSON.stringify(args)}`);
    }
    // A float id: refused with an error dict (Mongrel2 1.12.2 answers INVALID_DATA, its parser rejects floats).
    assert.ok('code' in asDict(await ask(Buffer.from('22:4:kill,11:2:id,3:1.5^}]')), 'float id'));
    for (const bad of [encode([5, {}]), encode(['help', []]), encode(['help', 'x']), encode(['help', {}, {}]), Buffer.from(`${'['.repeat(1)}`)]) {
      assert.equal((await ask(bad)).toString('latin1'), INVALID_DATA, bad.toString('latin1'));
    }
    // Nesting past the parser's depth limit (this one kills the real Mongrel2's control port: see below).
    assert.equal((await ask(DEEP)).toString('latin1'), INVALID_DATA);
  });

  test('kill of ids that do not exist: refused, and the live connection is untouched until killed by its own id', async () => {
    const p = await probe(port);
    try {
      p.sock.write('GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await p.waitFor((b) => b.includes(HELLO), 5000, 'a static answer');
      const live = [...running.server.clients()];
      assert.equal(live.length, 1);
      const id = live[0]!.id;
      for (const ghost of [0, id + 1, id + 1000, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 999_999_999_999]) {
        assert.equal((await ask(encode(['kill', { id: ghost }]))).toString('latin1'), INVALID_ARGUMENT, `kill ${ghost}`);
      }
      assert.equal(p.serverClosed(), false);
      const net = await command('status', { what: 'net' });
      assert.deepEqual((net.rows as number[][]).map((r) => r[0]), [id]);
      assert.equal((await ask(encode(['kill', { id }]))).toString('latin1'), '40:7:headers,9:6:status,]4:rows,8:5:2:OK,]]}');
      await deadline(p.closed, 5000, 'the killed connection closing');
      assert.equal((await ask(encode(['kill', { id }]))).toString('latin1'), INVALID_ARGUMENT, 'a second kill of the same id');
    } finally {
      p.sock.destroy();
      await p.closed;
    }
    await until(() => [...running.server.clients()].length === 0, 5000, 'no clients');
  });

  test('2000 requests in a row, with HTTP traffic in between, all answered', async () => {
    const names = ['uuid', 'time', 'status', 'help', 'info', 'nope'];
    for (let i = 0; i < 2000; i++) {
      const name = names[i % names.length]!;
      const d = await command(name, name === 'status' ? { what: i % 2 ? 'net' : 'tasks' } : {});
      assert.ok(name === 'nope' ? d.code !== undefined : d.rows !== undefined, `${name}: ${JSON.stringify(d)}`);
      if (i % 500 === 0) await assertServesStatic(port);
    }
  });

  test('multipart and envelope-less messages from a raw DEALER do not stop the port', async () => {
    const dealer = new Dealer({ receiveTimeout: 5000, linger: 0 });
    dealer.connect(running.control.spec);
    try {
      // REP needs the empty delimiter; the first body part is the request, the rest is ignored.
      await dealer.send([Buffer.alloc(0), encode(['uuid', {}]), Buffer.from('junk'), Buffer.from('more')]);
      const [delim, body] = await dealer.receive();
      assert.equal(delim!.length, 0);
      assert.match(body!.toString('latin1'), new RegExp(running.server.config.server.uuid));
      // No delimiter at all: ZeroMQ's REP drops it; the next proper request is still answered.
      await dealer.send([Buffer.from('no envelope'), encode(['uuid', {}])]);
      await dealer.send([Buffer.alloc(0), encode(['time', {}])]);
      const [, time] = await dealer.receive();
      assert.match(time!.toString('latin1'), /4:time/);
    } finally {
      dealer.close();
    }
    assert.match((await ask(encode(['uuid', {}]))).toString('latin1'), /4:uuid/);
  });

  test('after all of it: HTTP is served, then a control `stop` stops the server and removes its pid file', async () => {
    await assertServesStatic(port);
    assert.ok(existsSync(running.pidFile));
    assert.match((await ask(encode(['stop', {}]))).toString('latin1'), /signal sent to server/);
    await deadline(running.stopped, 10_000, 'the server stopping');
    assert.equal(existsSync(running.pidFile), false);
  });
});

describe('the real Mongrel2 control port with the same deep nesting', { timeout: 60_000 }, () => {
  let real: Mongrel2Peer | undefined;
  after(() => real?.stop());
  test('a list nested 5000 deep kills Mongrel2 1.12.2 (SIGSEGV); ours answers INVALID_DATA (above)', async () => {
    real = await startMongrel2();
    const r = new Request({ receiveTimeout: 3000, linger: 0 });
    r.connect(`ipc://${real.home}/run/control`);
    try {
      await r.send(DEEP);
      await assert.rejects(r.receive());
    } finally {
      r.close();
    }
    assert.equal((await deadline(real.exited, 5000, 'mongrel2 exiting')).signal, 'SIGSEGV');
  });
});
