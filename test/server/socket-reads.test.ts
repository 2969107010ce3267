/**
 * Client sockets reading into the shared buffer (src/server/socket-reads.ts),
 * the reused upload buffers and the temp-file writer (upload-store.ts), and
 * the body stream's copy of what it queues (request-body.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { adoptSocket, onReads, readsIntoSharedBuffer } from '../../src/server/socket-reads.js';
import { createTempFile, tempFileWriter, UploadBuffers } from '../../src/server/upload-store.js';
import { BodyStream } from '../../src/server/request-body.js';

/** A listener like the core's: paused accepts, each adopted; every read is copied and kept. */
async function keepingServer(): Promise<{ server: net.Server; port: number; accepted: Promise<Kept> }> {
  let resolveAccepted!: (v: Kept) => void;
  const accepted = new Promise<Kept>((r) => (resolveAccepted = r));
  const server = net.createServer({ pauseOnConnect: true }, (raw) => {
    const socket = adoptSocket(raw);
    const kept: Kept = { socket, shared: readsIntoSharedBuffer(socket), got: [], bytes: 0, until: () => Promise.resolve() };
    let waiting: { n: number; resolve: () => void } | undefined;
    kept.until = (n) => (kept.bytes >= n ? Promise.resolve() : new Promise((resolve) => (waiting = { n, resolve })));
    onReads(socket, (view) => {
      kept.got.push(Buffer.from(view));
      kept.bytes += view.length;
      if (waiting && kept.bytes >= waiting.n) waiting.resolve();
    });
    resolveAccepted(kept);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

interface Kept {
  socket: net.Socket;
  shared: boolean;
  got: Buffer[];
  bytes: number;
  /** Resolves once `n` bytes in all have arrived. */
  until(n: number): Promise<void>;
}

describe('socket-reads: accepted sockets read into one shared buffer', () => {
  test('this Node lets the core take accepted sockets over; bytes, pause/resume, end and the server count all work', async () => {
    const { server, port, accepted } = await keepingServer();
    const client = net.connect({ host: '127.0.0.1', port });
    await once(client, 'connect');
    const kept = await accepted;
    assert.equal(kept.shared, true, 'adoptSocket fell back to data events: Node changed net.Socket internals');
    assert.equal(kept.socket.remoteAddress, '127.0.0.1');

    const body = randomBytes(3 * 1024 * 1024);
    client.write(body);
    await kept.until(body.length);
    assert.ok(Buffer.concat(kept.got).equals(body), 'bytes changed on the way');
    assert.ok(kept.got.length > 1, 'expected several reads');

    // Bytes sent while paused arrive once resumed, once.
    kept.socket.pause();
    assert.equal(kept.socket.isPaused(), true);
    await new Promise<void>((resolve) => client.write('while paused', () => resolve()));
    kept.socket.resume();
    await kept.until(body.length + 12);
    assert.equal(Buffer.concat(kept.got).subarray(body.length).toString(), 'while paused');

    // The client's FIN ends the adopted socket; the server sees its connection go.
    const closed = once(kept.socket, 'close');
    client.end();
    await closed;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    assert.equal(kept.bytes, body.length + 12);
  });

  test('two connections at once: each sees only its own bytes', async () => {
    const server = net.createServer({ pauseOnConnect: true }, (raw) => {
      const socket = adoptSocket(raw);
      // Echo what arrives: the view must be copied by write (socket.write keeps the buffer).
      onReads(socket, (view) => socket.write(Buffer.from(view)));
      socket.on('end', () => socket.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const one = async (fill: number): Promise<boolean> => {
      const c = net.connect({ host: '127.0.0.1', port });
      const out = Buffer.alloc(512 * 1024, fill);
      const back: Buffer[] = [];
      c.on('data', (d: Buffer) => back.push(d));
      c.end(out);
      await once(c, 'close');
      return Buffer.concat(back).equals(out);
    };
    assert.deepEqual(await Promise.all([one(0x41), one(0x42), one(0x43)]), [true, true, true]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a handle the new socket cannot take: a clear error, and raw keeps the handle to be destroyed', () => {
    const raw = new net.Socket();
    let closed = false;
    const handle = {
      useUserBuffer(): void {
        throw new Error('no user buffers here');
      },
      readStart: (): number => 0,
      readStop: (): number => 0,
      close: (cb?: () => void): void => {
        closed = true;
        cb?.();
      },
    };
    (raw as unknown as { _handle: unknown })._handle = handle;
    assert.throws(() => adoptSocket(raw), /cannot read the accepted socket into the shared buffer: no user buffers here/);
    assert.equal((raw as unknown as { _handle: unknown })._handle, handle);
    raw.destroy();
    assert.equal(closed, true, 'destroying raw did not close the handle');
  });

  test('a socket Node cannot take over keeps its data events', async () => {
    const socket = new net.Socket();
    assert.equal(adoptSocket(socket), socket);
    assert.equal(readsIntoSharedBuffer(socket), false);
    const seen: string[] = [];
    onReads(socket, (v) => seen.push(v.toString()));
    socket.emit('data', Buffer.from('x'));
    assert.deepEqual(seen, ['x']);
    socket.destroy();
  });
});

describe('upload buffers', () => {
  test('a released buffer is reused; all in use → a fresh copy; a piece bigger than a buffer → a fresh copy', () => {
    const b = new UploadBuffers(2, 16);
    const a1 = b.copy(Buffer.from('aaaa'));
    const a2 = b.copy(Buffer.from('bbbb'));
    const a3 = b.copy(Buffer.from('cccc'));
    assert.equal(a1.toString(), 'aaaa');
    assert.equal(a2.toString(), 'bbbb');
    assert.equal(a3.toString(), 'cccc');
    assert.notEqual(a1.buffer, a2.buffer);
    assert.equal(a3.buffer.byteLength === 16 && (a3.buffer === a1.buffer || a3.buffer === a2.buffer), false, 'a buffer in use was handed out again');
    b.release(a1);
    b.release(a1); // twice: still one free entry
    b.release(a3); // not one of ours: ignored
    const a4 = b.copy(Buffer.from('dd'));
    assert.equal(a4.buffer, a1.buffer);
    assert.equal(a4.toString(), 'dd');
    const a5 = b.copy(Buffer.from('eeee'));
    assert.notEqual(a5.buffer, a1.buffer, 'released once, handed out twice');
    const big = b.copy(Buffer.alloc(17, 1));
    assert.equal(big.length, 17);
    assert.notEqual(big.buffer, a2.buffer);
  });

  test('a body fed from one buffer that is overwritten after every feed reaches the temp file intact, through reused buffers', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2-reads-'));
    try {
      const file = await createTempFile({ template: path.join(dir, 'upload.XXXXXX'), root: dir, chrooted: false, mode: 0o600 });
      const buffers = new UploadBuffers(4, 1024);
      const body = randomBytes(200 * 1024 + 7);
      // Chunked framing, so pieces are views at odd offsets of the fed buffer.
      const parts: Buffer[] = [];
      for (let at = 0; at < body.length; at += 900) {
        const piece = body.subarray(at, at + 900);
        parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\n\r\nNEXT'));
      const wire = Buffer.concat(parts);
      let paused = 0;
      const stream = new BodyStream({ kind: 'chunked' }, { pause: () => paused++, resume: () => undefined }, 4096, (p) => buffers.copy(p));
      const writer = tempFileWriter(file, buffers);
      const piped = new Promise<void>((resolve, reject) => {
        stream.pipe(writer);
        writer.on('finish', resolve).on('error', reject);
      });
      const scratch = Buffer.alloc(1000);
      let rest: Buffer | undefined;
      for (let at = 0; at < wire.length && rest === undefined; at += scratch.length) {
        const n = wire.copy(scratch, 0, at);
        rest = stream.feed(scratch.subarray(0, n));
        if (rest === undefined) scratch.fill(0xee); // the next read overwrites the shared buffer
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(rest?.toString(), 'NEXT');
      await piped;
      const onDisk = await fsp.readFile(file.disk);
      assert.equal(createHash('md5').update(onDisk).digest('hex'), createHash('md5').update(body).digest('hex'));
      assert.equal(stream.received, body.length);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('a destroyed writer closes the file', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2-reads-'));
    try {
      const file = await createTempFile({ template: path.join(dir, 'upload.XXXXXX'), root: dir, chrooted: false, mode: 0o600 });
      const writer = tempFileWriter(file, new UploadBuffers());
      writer.write(Buffer.from('abc'));
      writer.destroy();
      await once(writer, 'close');
      await assert.rejects(file.handle.stat(), /closed|EBADF/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
