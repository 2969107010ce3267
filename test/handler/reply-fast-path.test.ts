/**
 * The per-request reply path: encodeDataReply over parts, Connection.reply
 * with several parts, and the flow-controlled fast path (CreditWindow.tryTake)
 * keeping order with credit-paced writes. Against test/support/fake-server.ts.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Connection, CreditWindow } from '../../src/handler/index.js';
import { encodeRequest } from '../../src/protocol/request.js';
import { encodeDataReply, encodeReply, parseReply, type DataReply } from '../../src/protocol/reply.js';
import { EncodeError } from '../../src/protocol/errors.js';
import { FakeServer } from '../support/fake-server.js';

const silent = pino({ level: 'silent' });

function request(connId: number, credits?: number): Buffer {
  const headers: Array<[string, string]> = [['PATH', '/p'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1']];
  if (credits !== undefined) headers.push(['DOWNLOAD_CREDITS', String(credits)]);
  return encodeRequest({ sender: 'S', connId, path: '/p', headers, body: '' });
}

function creditsNotice(connId: number, credits: number): Buffer {
  return encodeRequest({ sender: 'S', connId, path: '@*', headers: [['METHOD', 'JSON'], ['DOWNLOAD_CREDITS', String(credits)]], body: '{"type":"credits"}' });
}

async function setup(t: TestContext): Promise<{ srv: FakeServer; conn: Connection }> {
  const srv = await FakeServer.start();
  const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec, logger: silent });
  t.after(async () => {
    await conn.shutdown(200);
    await srv.close();
  });
  await conn.ready();
  return { srv, conn };
}

async function nextData(srv: FakeServer): Promise<DataReply> {
  const reply = parseReply(await srv.nextReply());
  assert.equal(reply.type, 'data');
  return reply as DataReply;
}

describe('encodeDataReply', () => {
  test('is byte-identical to encodeReply of the concatenated body', () => {
    const parts = [Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.from([0, 0xff, 0x80]), Buffer.alloc(0), Buffer.from('é')];
    const joined = Buffer.concat(parts);
    for (const ids of [[7], [1, 2, 3]]) {
      assert.deepEqual(encodeDataReply('abc-1', ids, parts), encodeReply({ type: 'data', sender: 'abc-1', ids, body: joined }));
    }
  });

  test('refuses an empty body, a bad sender and bad ids like encodeReply', () => {
    assert.throws(() => encodeDataReply('s', [1], [Buffer.alloc(0), Buffer.alloc(0)]), EncodeError);
    assert.throws(() => encodeDataReply('s s', [1], [Buffer.from('x')]), EncodeError);
    assert.throws(() => encodeDataReply('s', [-1], [Buffer.from('x')]), EncodeError);
    assert.throws(() => encodeDataReply('s', [1, 2], [Buffer.from('x')], { maxTargets: 1 }), EncodeError);
  });
});

describe('CreditWindow.tryTake', () => {
  test('takes all or nothing, and never ahead of a waiter', async () => {
    const w = new CreditWindow(10);
    assert.equal(w.tryTake(11), false);
    assert.equal(w.balance, 10);
    assert.equal(w.tryTake(4), true);
    assert.equal(w.balance, 6);
    const waiting = w.acquire(100); // takes the 6, resolves at once
    assert.equal(await waiting, 6);
    const blocked = w.acquire(5);
    w.grant(0);
    assert.equal(w.tryTake(0), false, 'a waiter is queued');
    w.grant(5);
    assert.equal(await blocked, 5);
    w.close();
    assert.equal(w.tryTake(0), false);
  });
});

describe('Connection.reply fast paths', () => {
  test('several parts go out as one message', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(request(3));
    const req = await conn.recv();
    assert.ok(req);
    assert.equal(await conn.reply(req, [Buffer.from('ab'), Buffer.from('cd')]), true);
    const data = await nextData(srv);
    assert.deepEqual(data.ids, [3]);
    assert.equal(data.body.toString(), 'abcd');
    await assert.rejects(conn.reply(req, [Buffer.alloc(0)]), TypeError);
    await assert.rejects(conn.reply({ sender: 'S', connId: -1 }, 'x'), EncodeError);
  });

  test('with credits: a write that fits goes at once, one that does not waits, and later writes keep their order', async (t) => {
    const { srv, conn } = await setup(t);
    await srv.send(request(5, 10));
    const req = await conn.recv();
    assert.ok(req);
    assert.equal(await conn.reply(req, '0123456'), true); // 7 of 10 credits
    assert.equal((await nextData(srv)).body.toString(), '0123456');
    assert.equal(conn.credits(5), 3);
    const big = conn.reply(req, 'abcdef'); // 3 now, 3 after the grant
    const after = conn.reply(req, 'Z'); // must not overtake the rest of `big`
    assert.equal((await nextData(srv)).body.toString(), 'abc');
    await srv.send(creditsNotice(5, 4));
    assert.equal(await big, true);
    assert.equal(await after, true);
    assert.equal((await nextData(srv)).body.toString(), 'def');
    assert.equal((await nextData(srv)).body.toString(), 'Z');
    assert.equal(conn.credits(5), 0);
  });
});
