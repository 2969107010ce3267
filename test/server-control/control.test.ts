import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Request } from 'zeromq';
import { createLogger } from '../../src/handler/logger.js';
import { encode, parse } from '../../src/protocol/tnetstring.js';
import { executeControl, type ControlSignal, type ControlTarget } from '../../src/server/control/commands.js';
import { ControlPort, resolveControlSpec } from '../../src/server/control/control-port.js';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';

const UUID = '9857155a-d118-41cb-8124-3091296ae88e';

function fakeTarget(over: Partial<ControlTarget> = {}): ControlTarget & { signals: ControlSignal[]; killed: number[] } {
  const signals: ControlSignal[] = [];
  const killed: number[] = [];
  return {
    signals,
    killed,
    info: { port: 6767, bindAddr: '0.0.0.0', uuid: UUID, chroot: './', accessLog: '/logs/access.log', errorLog: '/logs/error.log', pidFile: '/run/mongrel2.pid', defaultHost: 'localhost' },
    clients: () => [{ id: 7, fd: 26, type: 1, lastPing: 1_000_000, lastRead: 998_000, lastWrite: 0, bytesRead: 51, bytesWritten: 204 }],
    tasks: () => [[1, false, 'main', '', 'idle']],
    kill: (id) => (id === 7 ? (killed.push(id), true) : false),
    signal: (kind) => (signals.push(kind), true),
    now: () => 1_795_654_103_000,
    ...over,
  };
}

const run = (req: Buffer, t: ControlTarget = fakeTarget()): string => executeControl(req, t).reply.toString('latin1');

// Golden replies captured from Debian's mongrel2 1.12.2 control port.
describe('control commands (bytes as Mongrel2 1.12.2 sends them)', () => {
  test('help lists the command table in Mongrel2 order', () => {
    assert.equal(
      run(encode(['help', {}])),
      "416:7:headers,14:4:name,4:help,]4:rows,376:35:4:stop,24:stop the server (SIGINT),]30:6:reload,17:reload the server,]23:4:help,12:this command,]37:12:control_stop,17:stop control port,]28:4:kill,17:kill a connection,]41:6:status,28:status, what=['net'|'tasks'],]46:9:terminate,30:terminate the server (SIGTERM),]28:4:time,17:the server's time,]28:4:uuid,17:the server's uuid,]40:4:info,29:information about this server,]]}",
    );
  });
  test('uuid, time and info', () => {
    assert.equal(run(encode(['uuid', {}])), `75:7:headers,7:4:uuid,]4:rows,44:40:36:${UUID},]]}`);
    assert.equal(run(encode(['time', {}])), '49:7:headers,7:4:time,]4:rows,18:14:10:1795654103,]]}');
    assert.equal(
      run(encode(['info', {}])),
      `257:7:headers,92:4:port,9:bind_addr,4:uuid,6:chroot,10:access_log,9:error_log,8:pid_file,16:default_hostname,]4:rows,139:134:4:6767#7:0.0.0.0,36:${UUID},2:./,16:/logs/access.log,15:/logs/error.log,17:/run/mongrel2.pid,9:localhost,]]}`,
    );
  });
  test('status what=net gives seconds since each event (0 = never)', () => {
    const t = fakeTarget({ now: () => 1_010_000 });
    const reply = parse(executeControl(encode(['status', { what: 'net' }]), t).reply).value as { headers: Buffer[]; rows: unknown[][] };
    assert.deepEqual(reply.headers.map(String), ['id', 'fd', 'type', 'last_ping', 'last_read', 'last_write', 'bytes_read', 'bytes_written']);
    assert.deepEqual(reply.rows, [[7, 26, 1, 10, 12, 0, 51, 204]]);
  });
  test('status errors', () => {
    assert.equal(run(encode(['status', { what: 'x' }])), "51:5:error,39:Expected argument what=['net'|'tasks'].,}");
    assert.equal(run(encode(['status', {}])), '61:4:code,16:INVALID_ARGUMENT,5:error,22:Invalid argument type.,}');
  });
  test('kill closes a known id and refuses anything else', () => {
    const t = fakeTarget();
    assert.equal(run(encode(['kill', { id: 7 }]), t), '40:7:headers,9:6:status,]4:rows,8:5:2:OK,]]}');
    assert.deepEqual(t.killed, [7]);
    for (const id of [999, -1, 'x']) assert.equal(run(encode(['kill', { id }]), t), '61:4:code,16:INVALID_ARGUMENT,5:error,22:Invalid argument type.,}');
    assert.deepEqual(t.killed, [7]);
  });
  test('stop, reload and terminate signal the server', () => {
    const t = fakeTarget();
    for (const cmd of ['stop', 'reload', 'terminate'] as const) assert.equal(run(encode([cmd, {}]), t), '59:7:headers,6:3:msg,]4:rows,29:25:21:signal sent to server,]]}');
    assert.deepEqual(t.signals, ['stop', 'reload', 'terminate']);
    assert.equal(run(encode(['stop', {}]), fakeTarget({ signal: () => false })), "75:4:code,13:SIGNAL_FAILED,5:error,39:raise call failed, can't signal process,}");
  });
  test('control_stop answers, then stops the port', () => {
    const out = executeControl(encode(['control_stop', {}]), fakeTarget());
    assert.equal(out.reply.toString(), '63:7:headers,6:3:msg,]4:rows,33:29:25:stopping the control port,]]}');
    assert.equal(out.stopPort, true);
  });
  test('malformed requests get the fixed error dicts', () => {
    const NOT_FOUND = '74:4:code,18:CALLBACK_NOT_FOUND,5:error,33:Callback requested was not found.,}';
    const INVALID_DATA = '97:4:code,12:INVALID_DATA,5:error,62:Invalid data, expecting a list with a string and a hash in it.,}';
    assert.equal(run(encode(['version', {}])), NOT_FOUND);
    assert.equal(run(encode({ a: 'b' })), '101:4:code,15:INVALID_REQUEST,5:error,63:Invalid request format, must be a list with two elements in it.,}');
    for (const bad of [Buffer.from('22:4:kill,11:2:id,3:1.5^}]'), Buffer.from('24:6:status,11:4:what,1:1^}]'), encode([]), encode(['help']), encode([1, {}]), encode(['uuid', 'x', {}]), Buffer.from('garbage'), Buffer.alloc(0), Buffer.from('99999999999:x,')]) {
      assert.equal(run(bad), INVALID_DATA, bad.toString('latin1'));
    }
    // m2sh sends a NUL after the tnetstring: tolerated.
    assert.equal(run(Buffer.concat([encode(['uuid', {}]), Buffer.from([0])])), `75:7:headers,7:4:uuid,]4:rows,44:40:36:${UUID},]]}`);
  });
});

test('relative ipc specs resolve under the cwd; others pass through', () => {
  assert.equal(resolveControlSpec('ipc://run/control', '/srv/m2'), 'ipc:///srv/m2/run/control');
  assert.equal(resolveControlSpec('ipc:///abs/control', '/srv/m2'), 'ipc:///abs/control');
  assert.equal(resolveControlSpec('tcp://127.0.0.1:9999', '/srv/m2'), 'tcp://127.0.0.1:9999');
});

describe('the control port over ZeroMQ answers like the real Mongrel2', () => {
  let real: Mongrel2Peer;
  let dir: string;
  let ours: ControlPort;
  let target: ReturnType<typeof fakeTarget>;
  before(async () => {
    real = await startMongrel2();
    dir = await mkdtemp(path.join(os.tmpdir(), 'm2ctl-'));
    target = fakeTarget({ info: { port: real.httpPort, bindAddr: '127.0.0.1', uuid: real.serverUuid, chroot: './', accessLog: '/logs/access.log', errorLog: '/logs/error.log', pidFile: '/run/mongrel2.pid', defaultHost: 'localhost' } });
    ours = new ControlPort({ spec: 'ipc://run/control', cwd: dir, target, logger: createLogger({ level: 'silent' }) });
    await ours.start();
  });
  after(async () => {
    await ours?.close();
    await real?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function ask(spec: string, req: Buffer): Promise<string> {
    const s = new Request({ receiveTimeout: 5000, linger: 0 });
    s.connect(spec);
    try {
      await s.send(req);
      const [rep] = await s.receive();
      return rep!.toString('latin1');
    } finally {
      s.close();
    }
  }

  test('same bytes for every deterministic command and bad request', async () => {
    const requests = [
      encode(['help', {}]),
      encode(['uuid', {}]),
      encode(['info', {}]),
      encode(['status', { what: 'bogus' }]),
      encode(['status', {}]),
      encode(['kill', { id: 4242 }]),
      encode(['nope', {}]),
      encode({ a: 'b' }),
      Buffer.from('22:4:kill,11:2:id,3:1.5^}]'),
      Buffer.from('garbage'),
      Buffer.concat([encode(['uuid', {}]), Buffer.from([0])]),
    ];
    for (const req of requests) {
      const fromReal = await ask(`ipc://${real.home}/run/control`, req);
      const fromOurs = await ask(`ipc://${dir}/run/control`, req);
      assert.equal(fromOurs, fromReal, `request ${req.toString('latin1')}`);
    }
  });

  test('bad requests leave the port answering', async () => {
    const spec = `ipc://${dir}/run/control`;
    await ask(spec, Buffer.from([0xff, 0x00]));
    assert.match(await ask(spec, encode(['uuid', {}])), new RegExp(real.serverUuid));
  });
});
