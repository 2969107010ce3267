/** Response bodies: flat memory for big files, and files that vanish, change or shrink mid-response. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { FILE_CHUNK_SIZE, FileRangeStream } from '../../src/server/dir/file-stream.js';
import { fetchFrom, makeHandler, parseHead, readBody, request, tempDir } from './helpers.js';

const MiB = 1024 * 1024;

describe('big files', () => {
  test('a 65 MiB file streams in bounded chunks, never read whole', async (t) => {
    const cwd = await tempDir(t);
    await fsp.mkdir(path.join(cwd, 'static'));
    const file = path.join(cwd, 'static', 'big.bin');
    const size = 65 * MiB + 3;
    // Sparse, with a marker at the very end so the tail is checked too.
    const fh = await fsp.open(file, 'w');
    await fh.truncate(size - 3);
    await fh.write(Buffer.from('END'), 0, 3, size - 3);
    await fh.close();

    const res = await makeHandler(cwd).serve(request('GET', '/static/big.bin'));
    assert.equal(parseHead(res.head).get('Content-Length'), String(size));
    assert.equal(res.bytes, size);
    const body = res.body;
    assert.ok(body instanceof FileRangeStream);
    assert.equal(body.readableHighWaterMark, FILE_CHUNK_SIZE);

    let total = 0;
    let chunks = 0;
    let maxChunk = 0;
    let maxBuffered = 0;
    let tail = Buffer.alloc(0);
    for await (const chunk of body) {
      const c = chunk as Buffer;
      total += c.length;
      chunks++;
      maxChunk = Math.max(maxChunk, c.length);
      maxBuffered = Math.max(maxBuffered, body.readableLength);
      tail = Buffer.concat([tail, c]).subarray(-3);
    }
    assert.equal(total, size);
    assert.equal(tail.toString(), 'END');
    assert.ok(maxChunk <= FILE_CHUNK_SIZE, `largest chunk ${maxChunk}`);
    assert.ok(maxBuffered <= FILE_CHUNK_SIZE, `at most one chunk buffered ahead, saw ${maxBuffered}`);
    assert.ok(chunks >= Math.ceil(size / FILE_CHUNK_SIZE), `${chunks} chunks`);
  });

  test('a 206 near the end of a big file reads only the range', async (t) => {
    const cwd = await tempDir(t);
    await fsp.mkdir(path.join(cwd, 'static'));
    const file = path.join(cwd, 'static', 'big.bin');
    const fh = await fsp.open(file, 'w');
    await fh.truncate(70 * MiB);
    await fh.write(Buffer.from('xyz'), 0, 3, 70 * MiB - 3);
    await fh.close();
    const { res, head, body } = await fetchFrom(makeHandler(cwd), request('GET', '/static/big.bin', { Range: 'bytes=-3' }));
    assert.equal(res.status, 206);
    assert.equal(head.get('Content-Range'), `bytes ${70 * MiB - 3}-${70 * MiB - 1}/${70 * MiB}`);
    assert.equal(body.toString(), 'xyz');
  });
});

describe('files that change under a response', () => {
  async function oneFile(t: Parameters<typeof tempDir>[0], size: number): Promise<{ cwd: string; file: string }> {
    const cwd = await tempDir(t);
    await fsp.mkdir(path.join(cwd, 'static'));
    const file = path.join(cwd, 'static', 'f.bin');
    await fsp.writeFile(file, Buffer.alloc(size, 0x61));
    return { cwd, file };
  }

  test('vanished between stat and read: the body errors (the file is opened lazily), nothing crashes', async (t) => {
    const { cwd, file } = await oneFile(t, 1000);
    const res = await makeHandler(cwd).serve(request('GET', '/static/f.bin'));
    assert.equal(res.status, 200);
    await fsp.rm(file);
    await assert.rejects(readBody(res), { code: 'ENOENT' });
  });

  test('replaced by another file of the same size: the body errors instead of sending other bytes', async (t) => {
    const { cwd, file } = await oneFile(t, 1000);
    const res = await makeHandler(cwd).serve(request('GET', '/static/f.bin'));
    await fsp.rm(file);
    await fsp.writeFile(file, Buffer.alloc(1000, 0x62));
    await assert.rejects(readBody(res), /changed between stat and read/);
  });

  test('shrinks while being sent: the body errors after the bytes that existed', async (t) => {
    const { cwd, file } = await oneFile(t, 8 * FILE_CHUNK_SIZE);
    const res = await makeHandler(cwd).serve(request('GET', '/static/f.bin'));
    const body = res.body!;
    let received = 0;
    const failed = (async () => {
      for await (const chunk of body) {
        if (received === 0) await fsp.truncate(file, 100);
        received += (chunk as Buffer).length;
      }
    })();
    await assert.rejects(failed, /shrank/);
    assert.ok(received < 8 * FILE_CHUNK_SIZE, `received ${received}`);
  });

  test('destroyed before it was read: no error, no descriptor opened', async (t) => {
    const { cwd, file } = await oneFile(t, 1000);
    const res = await makeHandler(cwd).serve(request('GET', '/static/f.bin'));
    // The file is gone, so an eager open would have failed; a lazy stream never notices.
    await fsp.rm(file);
    const body = res.body!;
    const closed = once(body, 'close');
    body.destroy();
    await closed;
    assert.equal(body.errored, null);
  });

  test('destroyed mid-way: the descriptor is closed', async (t) => {
    const { cwd, file } = await oneFile(t, 8 * FILE_CHUNK_SIZE);
    const res = await makeHandler(cwd).serve(request('GET', '/static/f.bin'));
    const body = res.body!;
    await once(body, 'readable');
    body.destroy();
    await once(body, 'close');
    // Our process holds no descriptor for the file any more.
    const fds = await fsp.readdir('/proc/self/fd');
    const targets = await Promise.all(fds.map((fd) => fsp.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    assert.ok(!targets.includes(file), 'file still open');
  });
});
