/**
 * Bad HTTP input of every kind, over real sockets, against the bundled core.
 * After each kind of abuse the core must still serve a static file and a
 * handler round trip byte-exactly, hold no connection in clients(), have no
 * more open descriptors than before and leave no new files behind.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { parseHead } from '../../src/server/http/request-parser.js';
import { WIRE_FIXTURE_DIR } from '../support/fixtures.js';
import { startCore, type CorePeer } from '../support/core.js';
import {
  assertHandlerAnswers,
  assertNoClients,
  assertServesStatic,
  assertWellFormedResponses,
  byteByByte,
  deadline,
  openFds,
  probe,
  rawHandler,
  splitAt,
  until,
  watch,
  writeChunks,
  connect,
  type Probe,
  type RawHandler,
  mutationsOf,
  expectNotice,
} from './helpers.js';

const CORPUS_DIR = path.join(WIRE_FIXTURE_DIR, '../mongrel2-parser-inputs');
const HEADER_COUNT = 100;
const BUFFER_SIZE = 4096;
const DELIVER_QUEUE = 65536;

function corpusFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(CORPUS_DIR);
  return files;
}

/** Every file under `dir`, relative, sorted. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** Sends `chunks` on a fresh connection and waits (bounded) for the core to close it; returns what came back. */
async function sendAndAwaitClose(port: number, chunks: readonly Buffer[], what: string, opts: { end?: boolean; ms?: number } = {}): Promise<Buffer> {
  const p = await probe(port);
  p.sock.setNoDelay(true);
  try {
    await writeChunks(p.sock, chunks);
    if (opts.end && !p.sock.destroyed) p.sock.end();
    await deadline(p.closed, opts.ms ?? 5000, `the core closing the connection after ${what}`);
    return p.received();
  } finally {
    p.sock.destroy();
  }
}

const statusesOf = (got: Buffer, what: string): string => assertWellFormedResponses(got, what).join(',');

/** True for inputs that are JSON/XML socket messages or the Flash policy request rather than HTTP. */
const isSocketMessage = (input: Buffer): boolean => ['json', 'xml', 'policy'].includes(parseHead(input, 0).kind);

/** A corpus answer: HTTP statuses, or for socket messages the exact bytes (they are not HTTP). */
const answerOf = (input: Buffer, got: Buffer, what: string): string => (isSocketMessage(input) ? `socket:${got.toString('latin1')}` : statusesOf(got, what));

describe('core: bad HTTP input leaves it up and answering', { timeout: 180_000 }, () => {
  let peer: CorePeer;
  let h: RawHandler;
  let fdBaseline = 0;
  let files: string[] = [];
  let homeFiles: string[] = [];

  before(async () => {
    peer = await startCore({ settings: { 'limits.header_count': String(HEADER_COUNT), 'limits.buffer_size': String(BUFFER_SIZE), 'limits.deliver_queue_bytes': String(DELIVER_QUEUE) } });
    h = await rawHandler(peer);
    // A 32 MiB file so a Dir response is still being written when the client goes away.
    await writeFile(path.join(peer.staticDir, 'big.bin'), Buffer.alloc(32 * 1024 * 1024, 0x62));
    await assertServesStatic(peer.httpPort);
    await assertHandlerAnswers(peer, h);
    await assertNoClients(peer);
    fdBaseline = openFds();
    homeFiles = tree(peer.home);
    files = corpusFiles();
  });
  after(async () => {
    h?.close();
    await peer?.stop();
  });
  afterEach(async () => {
    await assertNoClients(peer);
    await assertServesStatic(peer.httpPort);
    await assertHandlerAnswers(peer, h);
    await assertNoClients(peer);
    // Every socket and file stream the abuse opened is closed again.
    await until(() => openFds() <= fdBaseline, 5000, `open descriptors back to ${fdBaseline} (now ${openFds()})`);
    assert.deepEqual(tree(peer.home), homeFiles, 'no stray files under the server folder');
  });

  test('the parser corpus gives the same well-formed answers whole, byte by byte and split at random points', async () => {
    assert.ok(files.length > 100, `corpus has ${files.length} files`);
    const whole = new Map<string, string>();
    await Promise.all(
      files.map(async (f) => {
        const got = await sendAndAwaitClose(peer.httpPort, [readFileSync(f)], f);
        whole.set(f, answerOf(readFileSync(f), got, f));
      }),
    );
    // Every corpus input is an error, an unrouted path or a socket message: the core answers (or not) and closes.
    // (Socket messages are being implemented by another change; only their stability under splitting is checked here.)
    assert.ok([...whole.values()].every((s) => /^(400|404)?$|^socket:/.test(s)), JSON.stringify([...whole.values()]));
    assert.ok([...whole.values()].filter((s) => !s.startsWith('socket:')).length > 100);
    await Promise.all(
      files.map(async (f) => {
        const got = await sendAndAwaitClose(peer.httpPort, byteByByte(readFileSync(f)), `${f} byte by byte`, { ms: 20_000 });
        assert.equal(answerOf(readFileSync(f), got, f), whole.get(f), `${f} byte by byte`);
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...files), fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), async (f, cuts) => {
        const got = await sendAndAwaitClose(peer.httpPort, splitAt(readFileSync(f), cuts), `${f} split at ${cuts.join(',')}`);
        assert.equal(answerOf(readFileSync(f), got, f), whole.get(f));
      }),
      { numRuns: 150 },
    );
  });

  test('generated garbage and mutated requests: a head the parser rejects is a lone 400, and nothing is ever malformed', async () => {
    const valid = ['GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', 'POST /nothing HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc', 'GET /static/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'];
    const mutated = mutationsOf(valid);
    const garbage = fc.uint8Array({ minLength: 1, maxLength: 400 }).map((a) => Buffer.from(a));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, garbage), fc.array(fc.nat(), { maxLength: 6 }), async (input, cuts) => {
        // Our FIN right after the bytes makes the core close; answers written before it still arrive.
        const got = await sendAndAwaitClose(peer.httpPort, splitAt(input, cuts), 'generated input', { end: true });
        if (isSocketMessage(input)) return;
        const statuses = assertWellFormedResponses(got, JSON.stringify(input.toString('latin1')));
        const parsed = parseHead(input, 0, { maxHeadBytes: BUFFER_SIZE, maxHeaderCount: HEADER_COUNT });
        if (parsed.kind === 'error') assert.deepEqual(statuses, [400], `rejected head ${JSON.stringify(input.toString('latin1'))} (${parsed.reason})`);
      }),
      { numRuns: 300 },
    );
  });

  test('heads over limits.buffer_size are a 400 and a close, at the limit they are served', async () => {
    const head = (fill: number): string => `GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Fill: ${'a'.repeat(fill)}\r\n\r\n`;
    const base = head(0).length;
    for (const [fill, chunked] of [[BUFFER_SIZE - base + 1, false], [100 * 1024, false], [100 * 1024, true], [4 * 1024 * 1024, false]] as const) {
      const bytes = Buffer.from(head(fill), 'latin1');
      const got = await sendAndAwaitClose(peer.httpPort, chunked ? splitAt(bytes, [1000, 2000, 5000, 50_000]) : [bytes], `a ${bytes.length}-byte head`);
      assert.equal(statusesOf(got, 'huge head'), '400', `${bytes.length}-byte head`);
    }
    // A head of exactly buffer_size bytes is still fine (the limit is on the head, not off by one).
    const fits = await probe(peer.httpPort);
    fits.sock.write(head(BUFFER_SIZE - base));
    const got = await fits.waitFor((b) => b.includes('hello static\n'), 5000, 'the static answer to a head at the limit');
    assert.equal(statusesOf(got, 'head at the limit'), '200');
    fits.sock.destroy();
    await fits.closed;
  });

  test('more header names than limits.header_count: extras are dropped and the request served (as Mongrel2); past buffer_size a 400', async () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `h${i}: v\r\n`).join('');
    const p = await probe(peer.httpPort);
    try {
      p.sock.write(`GET /handler/many HTTP/1.1\r\nHost: localhost\r\n${lines(HEADER_COUNT + 50)}\r\n`);
      const req = await h.nextRequest();
      assert.equal(req.path, '/handler/many');
      const names = Object.keys(req.headers).filter((k) => /^h\d+$/.test(k));
      assert.ok(names.length > 0 && names.length < HEADER_COUNT, `${names.length} of ${HEADER_COUNT + 50} names kept`);
      await h.reply(req.connId, 'HTTP/1.1 204 No Content\r\n\r\n');
      await p.waitFor((b) => b.length > 0, 5000, 'the 204');
    } finally {
      p.sock.destroy();
      await p.closed;
    }
    // 5000 header lines do not fit in limits.buffer_size (Mongrel2 probe 20: 2000 headers, 400).
    const many = Buffer.from(`GET /static/hello.txt HTTP/1.1\r\n${lines(5000)}\r\n`, 'latin1');
    assert.equal(statusesOf(await sendAndAwaitClose(peer.httpPort, [many], 'far too many headers'), 'far too many headers'), '400');
  });

  test('garbage pipelined after a good request: the good one is answered, then a 400 and a close', async () => {
    const good = 'GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const got = await sendAndAwaitClose(peer.httpPort, [Buffer.concat([Buffer.from(good), Buffer.from([0x00, 0xff, 0x16, 0x03, 0x01, 0x0d, 0x0a, 0x0d, 0x0a])])], 'static + garbage');
    assert.equal(statusesOf(got, 'static + garbage'), '200,400');
    // Behind a handler request: the garbage waits until the handler's response is complete.
    const p = await probe(peer.httpPort);
    p.sock.write(`GET /handler/pipe HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE / HTTP/1.1\r\n${'x'.repeat(3 * BUFFER_SIZE)}`);
    const req = await h.nextRequest();
    assert.equal(req.path, '/handler/pipe');
    await h.reply(req.connId, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await deadline(p.closed, 5000, 'the close after the pipelined garbage');
    assert.equal(statusesOf(p.received(), 'handler + garbage'), '200,400');
    // Mongrel2 tells the handler about a client that went away after an error, and so does the core.
    await expectNotice(h, req.connId);
  });

  test('slowloris: partial heads, trickled heads and silent connections are closed after limits.header_timeout', async () => {
    const slow = await startCore({ settings: { 'limits.header_timeout': '1' } });
    const probes: Probe[] = [];
    const trickles: NodeJS.Timeout[] = [];
    try {
      const started = Date.now();
      for (let i = 0; i < 30; i++) {
        const p = await probe(slow.httpPort);
        probes.push(p);
        if (i % 3 === 0) p.sock.write('GET /static/hello.txt HTTP/1.1\r\nHost: loc');
        if (i % 3 === 1) {
          // One byte every 100 ms: data alone must not keep a head alive.
          const bytes = Buffer.from(`GET /static/hello.txt HTTP/1.1\r\n${'X-A: b\r\n'.repeat(100)}\r\n`);
          let at = 0;
          const t = setInterval(() => (p.sock.writable ? p.sock.write(bytes.subarray(at, ++at)) : clearInterval(t)), 100);
          trickles.push(t);
          p.closed.then(() => clearInterval(t), () => undefined);
        }
        // i % 3 === 2: connect and say nothing.
      }
      await deadline(Promise.all(probes.map((p) => p.closed)), 10_000, 'every slow connection closed by the core');
      const took = Date.now() - started;
      assert.ok(took >= 900, `closed after ${took} ms, not before the timeout`);
      for (const p of probes) assert.equal(p.received().length, 0, 'a timed-out head gets no answer');
      await until(() => [...slow.server.clients()].length === 0, 5000, 'slow core has no clients');
      await assertServesStatic(slow.httpPort);
    } finally {
      for (const t of trickles) clearInterval(t);
      for (const p of probes) p.sock.destroy();
      await slow.stop();
    }
  });

  test('half-closed sockets: FIN after a request, after half a head, and with nothing sent', async () => {
    // A Dir request then FIN: the core drops the connection (Mongrel2 drops on read-side EOF too).
    const dir = await sendAndAwaitClose(peer.httpPort, [Buffer.from('GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')], 'dir + FIN', { end: true });
    assertWellFormedResponses(dir, 'dir + FIN');
    assert.equal((await sendAndAwaitClose(peer.httpPort, [Buffer.from('GET /static/hel')], 'half a head + FIN', { end: true })).length, 0);
    assert.equal((await sendAndAwaitClose(peer.httpPort, [], 'FIN only', { end: true })).length, 0);
    // A handler request then FIN: the handler gets the request, then a disconnect notice; a late reply comes back as a notice.
    const got = await sendAndAwaitClose(peer.httpPort, [Buffer.from('GET /handler/fin HTTP/1.1\r\nHost: localhost\r\n\r\n')], 'handler + FIN', { end: true });
    assert.equal(got.length, 0);
    const req = await h.nextRequest();
    assert.equal(req.path, '/handler/fin');
    await expectNotice(h, req.connId);
    await h.reply(req.connId, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    await expectNotice(h, req.connId);
  });

  test('resets mid-head, mid-body, mid-Dir-response and mid-handler-response', async () => {
    const reset = async (bytes: string, afterBytes = 0): Promise<void> => {
      const p = await probe(peer.httpPort);
      p.sock.write(bytes);
      if (afterBytes > 0) await p.waitFor((b) => b.length >= afterBytes, 5000, `${afterBytes} response bytes`);
      else await new Promise<void>((r) => p.sock.write('', () => r()));
      p.sock.resetAndDestroy();
      await p.closed;
    };
    await reset('GET /static/hello.txt HTTP/1.1\r\nHo');
    await reset('POST /handler/body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nonly ten b');
    await assertNoClients(peer);
    // The 32 MiB file: its read stream must be closed when the client resets.
    await reset('GET /static/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n', 64 * 1024);
    await assertNoClients(peer);
    // A handler streaming a response to a client that resets: later parts to the dead id come back as notices.
    const p = await probe(peer.httpPort);
    p.sock.write('GET /handler/stream HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req = await h.nextRequest();
    // The half-sent body never reached a handler, so the first message is this request.
    assert.equal(req.path, '/handler/stream');
    await h.reply(req.connId, 'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nfirst part');
    await p.waitFor((b) => b.includes('first part'), 5000, 'the first part');
    p.sock.resetAndDestroy();
    await p.closed;
    await expectNotice(h, req.connId);
    await h.reply(req.connId, 'more');
    await expectNotice(h, req.connId);
  });

  test('a client that never reads a big handler reply is killed by limits.deliver_queue_bytes', async () => {
    const p = await probe(peer.httpPort);
    p.sock.pause();
    p.sock.write('GET /handler/flood HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const req = await h.nextRequest();
    const live = (): boolean => [...peer.server.clients()].some((c) => c.id === req.connId);
    await h.reply(req.connId, `HTTP/1.1 200 OK\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let sent = 0;
    while (live() && sent < 256) {
      await h.reply(req.connId, chunk);
      sent++;
      // Let the core take the message before deciding whether to send another.
      await new Promise((r) => setImmediate(r));
    }
    await until(() => !live(), 10_000, 'the flooded client dropped');
    assert.ok(sent * chunk.length < 64 * 1024 * 1024, `dropped after ${sent} parts`);
    assert.ok(peer.logs().some((r) => /deliver_queue_bytes/.test(String(r.msg))));
    p.sock.destroy();
    await p.closed;
    // Parts that raced the kill come back as disconnect notices; drain them.
    for (;;) {
      const m = await h.next(500).catch(() => undefined);
      if (!m) break;
      assert.deepEqual([m.kind, m.connId], ['disconnect', req.connId]);
    }
  });

  test('1000 concurrent connections: all served, then all dropped at once', async () => {
    const N = 1000;
    const socks = await deadline(
      Promise.all(Array.from({ length: N }, () => connect(peer.httpPort))),
      30_000,
      `${N} connections accepted`,
    );
    const probes = socks.map(watch);
    try {
      for (const [i, p] of probes.entries()) {
        if (i % 2 === 0) p.sock.write('GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n');
        else p.sock.write('GET /static/hello.txt HTTP/1.1\r\nHost: loc'); // left hanging
      }
      await deadline(
        Promise.all(probes.filter((_, i) => i % 2 === 0).map((p) => p.waitFor((b) => b.includes('hello static\n'), 30_000, 'a static answer'))),
        30_000,
        `${N / 2} static answers`,
      );
      await until(() => [...peer.server.clients()].length === N, 5000, `${N} clients listed`);
      for (const [i, p] of probes.entries()) {
        if (i % 4 === 1) p.sock.resetAndDestroy();
        else p.sock.destroy();
      }
      await deadline(Promise.all(probes.map((p) => p.closed)), 10_000, 'every socket closed');
    } finally {
      for (const p of probes) p.sock.destroy();
    }
  });
});
