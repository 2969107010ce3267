/**
 * Big request bodies to handlers through the core: temp-file uploads
 * (upload.temp_store) and streaming uploads (upload.stream), checked byte
 * for byte against the Mongrel2 captures, with a raw 0MQ handler.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadWireFixtures } from '../support/fixtures.js';
import { parseMessage } from '../../src/protocol/request.js';

const loadWireFixture = (name: string) => loadWireFixtures().find((f) => f.name === name)!;
import { rawHandler, startCore, type CorePeer, type RawHandler } from '../support/core.js';

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function closed(sock: net.Socket): Promise<void> {
  return new Promise((resolve) => (sock.destroyed ? resolve() : sock.once('close', () => resolve())));
}

function firstData(sock: net.Socket): Promise<string> {
  return new Promise((resolve) => sock.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
}

/** Bounded wait for the core's async unlink after an abort. */
async function gone(file: string): Promise<boolean> {
  for (let i = 0; i < 1000 && existsSync(file); i++) await sleep(10);
  return !existsSync(file);
}

/** Replaces the sender, conn id and upload path so our message and the capture can be compared as bytes. */
function normalise(bytes: Buffer, sender: string, connId: number, uploadPath?: string): string {
  let text = bytes.toString('latin1');
  text = text.replace(`${sender} ${connId} `, 'SENDER ID ');
  if (uploadPath !== undefined) text = text.split(uploadPath).join('UPLOADPATH');
  return text;
}

/** The capture's body for a fixture, re-lengthed when our upload path has another length. */
function fixtureNormalised(name: string): string {
  const f = loadWireFixture(name);
  const up = f.decoded.headers['x-mongrel2-upload-start'] as string;
  const text = normalise(f.bin, f.decoded.sender, Number(f.decoded.conn_id), up);
  return relength(text);
}

/** Rewrites the header netstring length after normalising (paths differ in length). */
function relength(text: string): string {
  const m = /^(SENDER ID \S+ )(\d+):/.exec(text)!;
  const rest = text.slice(m[0].length);
  const headerEnd = rest.lastIndexOf('},') + 1;
  const headers = rest.slice(0, headerEnd);
  return `${m[1]}${headers.length}:${headers}${rest.slice(headerEnd)}`;
}

function reply(h: RawHandler, connId: number, text: string): Promise<void> {
  return h.send(`x ${String(connId).length}:${connId}, ${text}`);
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\ncaptured POST\n';

describe('core: temp-file uploads', { timeout: 120_000 }, () => {
  let peer: CorePeer;
  let h: RawHandler;
  let store: string;
  before(async () => {
    peer = await startCore({
      settings: { 'upload.temp_store': '/uploads/upload.XXXXXX', 'upload.temp_store_mode': '0640' },
      handlerPaths: ['/handlertest'],
      chroot: true,
    });
    store = path.join(peer.home, 'uploads');
    mkdirSync(store);
    h = await rawHandler(peer);
  });
  after(async () => {
    h?.close();
    await peer?.stop();
  });

  const uploadPathOf = (msg: Awaited<ReturnType<RawHandler['next']>>, key: string): string => String((msg.headers as Record<string, unknown>)[key]);

  test('start and done messages are the captured bytes; the file holds the body; mode from upload.temp_store_mode', async () => {
    const body = Buffer.from('0123456789abcdef'.repeat(625));
    const sock = await connect(peer.httpPort);
    sock.write(`POST /handlertest/upload HTTP/1.1\r\nHost: localhost:6767\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000\r\n\r\n`);
    sock.write(body);
    const startRaw = await h.nextRaw();
    const doneRaw = await h.nextRaw();
    const start = parseMessage(startRaw);
    const up = uploadPathOf(start, 'x-mongrel2-upload-start');
    assert.match(up, /^\/uploads\/upload\.[A-Za-z0-9]{6}$/);
    assert.equal(relength(normalise(startRaw, start.sender, start.connId, up)), fixtureNormalised('upload-start'));
    assert.equal(relength(normalise(doneRaw, start.sender, start.connId, up)), fixtureNormalised('upload-done'));
    const disk = path.join(peer.home, up);
    assert.ok(readFileSync(disk).equals(body));
    assert.equal(statSync(disk).mode & 0o777, 0o640);
    const answer = firstData(sock);
    await reply(h, start.connId, OK);
    assert.equal(await answer, OK);
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
    assert.ok(existsSync(disk), 'a finished upload belongs to the handler');
  });

  test('chunked body: start/done as captured, file de-chunked', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('POST /handlertest/chunked HTTP/1.1\r\nHost: localhost:6767\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    const startRaw = await h.nextRaw();
    const doneRaw = await h.nextRaw();
    const start = parseMessage(startRaw);
    const up = uploadPathOf(start, 'x-mongrel2-upload-start');
    assert.equal(relength(normalise(startRaw, start.sender, start.connId, up)), fixtureNormalised('chunked-start'));
    assert.equal(relength(normalise(doneRaw, start.sender, start.connId, up)), fixtureNormalised('chunked-done'));
    assert.equal(readFileSync(path.join(peer.home, up), 'latin1'), 'hello world');
    // The client leaves only once the reply is through: a reply to a connection already gone
    // earns a second disconnect notice (as in Mongrel2), which would shift the next test's messages.
    const answer = firstData(sock);
    await reply(h, start.connId, OK);
    await answer;
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('50 MB upload: file md5 matches, socket paced (never all in memory)', async () => {
    const size = 50 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    const md5 = createHash('md5');
    const sock = await connect(peer.httpPort);
    sock.write(`POST /handler/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${size}\r\n\r\n`);
    const start = await h.next();
    for (let sent = 0; sent < size; sent += block.length) {
      md5.update(block);
      if (!sock.write(block)) await new Promise((resolve) => sock.once('drain', resolve));
    }
    const done = await h.next();
    const up = uploadPathOf(done, 'x-mongrel2-upload-done');
    assert.equal(up, uploadPathOf(start, 'x-mongrel2-upload-start'));
    const disk = path.join(peer.home, up);
    assert.equal(statSync(disk).size, size);
    assert.equal(createHash('md5').update(readFileSync(disk)).digest('hex'), md5.digest('hex'));
    const answer = firstData(sock);
    await reply(h, done.connId, OK);
    await answer;
    sock.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test("the handler's close message aborts the upload and unlinks the file, with no disconnect notice", async () => {
    const sock = await connect(peer.httpPort);
    sock.write(`POST /handler/abort HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n`);
    sock.write(Buffer.alloc(5000, 0x61));
    const start = await h.next();
    const disk = path.join(peer.home, uploadPathOf(start, 'x-mongrel2-upload-start'));
    assert.ok(existsSync(disk));
    await h.send(`x ${String(start.connId).length}:${start.connId}, `);
    await closed(sock);
    assert.ok(await gone(disk), 'temp file removed');
    // The next message is the next test's, not a notice for this connection.
    const s2 = await connect(peer.httpPort);
    s2.write('GET /handler/after HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const next = await h.next();
    assert.equal(next.kind, 'http');
    const answer = firstData(s2);
    await reply(h, next.connId, 'HTTP/1.1 204 No Content\r\n\r\n');
    await answer;
    s2.destroy();
    assert.equal((await h.next()).kind, 'disconnect');
  });

  test('a client that disconnects mid-upload: file unlinked, disconnect notice sent (as captured)', async () => {
    const sock = await connect(peer.httpPort);
    sock.write(`POST /handler/gone HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n`);
    sock.write(Buffer.alloc(5000, 0x62));
    const start = await h.next();
    const disk = path.join(peer.home, uploadPathOf(start, 'x-mongrel2-upload-start'));
    sock.destroy();
    const notice = await h.next();
    assert.equal(notice.kind, 'disconnect');
    assert.equal(notice.connId, start.connId);
    assert.ok(await gone(disk), 'temp file removed');
  });
});

describe('core: upload.temp_store_mode default and no store', { timeout: 30_000 }, () => {
  test('default mode is 0600; without temp_store or stream a big body is a 413', async (t) => {
    const peer = await startCore({ settings: { 'upload.temp_store': '/up.XXXXXX' }, chroot: true });
    t.after(() => peer.stop());
    const h = await rawHandler(peer);
    t.after(() => h.close());
    const sock = await connect(peer.httpPort);
    sock.write('POST /handler/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n');
    const start = await h.next();
    await h.next();
    assert.equal(statSync(path.join(peer.home, uploadPath(start))).mode & 0o777, 0o600);
    sock.destroy();
    const plain = await startCore();
    t.after(() => plain.stop());
    const s2 = await connect(plain.httpPort);
    s2.write('POST /handler/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n');
    assert.match(await firstData(s2), /^HTTP\/1\.1 413 /);
    s2.destroy();
  });
});

function uploadPath(msg: { headers: unknown }): string {
  return String((msg.headers as Record<string, unknown>)['x-mongrel2-upload-start']);
}

describe('core: streaming uploads (upload.stream=1)', { timeout: 60_000 }, () => {
  let peer: CorePeer;
  let json: RawHandler;
  let tnet: RawHandler;
  before(async () => {
    peer = await startCore({ settings: { 'upload.stream': '1', 'limits.content_length': '1024' } });
    json = await rawHandler(peer, 'json');
    tnet = await rawHandler(peer, 'tnet');
  });
  after(async () => {
    json?.close();
    tnet?.close();
    await peer?.stop();
  });

  /** `["ctl", {"credits": n}]` as an X reply. */
  const credits = (h: RawHandler, connId: number, n: number): Promise<void> => {
    const dict = `7:credits,${String(n).length}:${n}#`;
    const list = `3:ctl,${dict.length}:${dict}}`;
    const targets = `X ${connId}`;
    return h.send(`x ${targets.length}:${targets}, ${list.length}:${list}]`);
  };

  test('Content-Length body: first message with UPLOAD_STREAM 0 and the buffered bytes, then pieces paced by ctl credits', async () => {
    const body = randomBytes(5120);
    const sock = await connect(peer.httpPort);
    sock.write(Buffer.concat([Buffer.from('POST /handler/json HTTP/1.1\r\nHost: x\r\nContent-Length: 5120\r\n\r\n'), body.subarray(0, 100)]));
    const first = await json.next();
    assert.equal((first.headers as Record<string, unknown>).UPLOAD_STREAM, '0');
    assert.equal((first.headers as Record<string, unknown>).UPLOAD_STREAM_DONE, undefined);
    assert.ok(first.body.equals(body.subarray(0, 100)));
    sock.write(body.subarray(100));
    const got = [first.body];
    let offset = 100;
    for (;;) {
      await credits(json, first.connId, 2000);
      const raw = await json.nextRaw();
      const msg = parseMessage(raw);
      const done = offset + msg.body.length === 5120;
      const hdr = done ? `{"UPLOAD_STREAM":"${offset}","UPLOAD_STREAM_DONE":"1"}` : `{"UPLOAD_STREAM":"${offset}"}`;
      const expected = Buffer.concat([Buffer.from(`${first.sender} ${first.connId} /handler/json ${hdr.length}:${hdr},${msg.body.length}:`), body.subarray(offset, offset + msg.body.length), Buffer.from(',')]);
      assert.ok(raw.equals(expected), `message at ${offset}: ${raw.subarray(0, 120).toString('latin1')}`);
      assert.ok(msg.body.length <= 1024 && msg.body.length > 0);
      got.push(msg.body);
      offset += msg.body.length;
      if (done) break;
    }
    assert.ok(Buffer.concat(got).equals(body));
    const answer = firstData(sock);
    await reply(json, first.connId, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.match(await answer, /ok$/);
    sock.destroy();
    assert.equal((await json.next()).kind, 'disconnect');
  });

  test('chunked body in TNET: the captured message bytes', async () => {
    const sock = await connect(peer.httpPort);
    sock.write('POST /tnet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    const firstRaw = await tnet.nextRaw();
    const first = parseMessage(firstRaw);
    assert.ok(firstRaw.toString('latin1').includes('13:UPLOAD_STREAM,1:0,'));
    assert.ok(firstRaw.toString('latin1').endsWith('}0:,'));
    const prefix = `${first.sender} ${first.connId} /tnet `;
    await credits(tnet, first.connId, 2000);
    assert.equal((await tnet.nextRaw()).toString('latin1'), `${prefix}21:13:UPLOAD_STREAM,1:0,}5:hello,`);
    assert.equal((await tnet.nextRaw()).toString('latin1'), `${prefix}47:18:UPLOAD_STREAM_DONE,1:1,13:UPLOAD_STREAM,1:5,}0:,`);
    sock.destroy();
    assert.equal((await tnet.next()).kind, 'disconnect');
  });
});
