/**
 * examples/mp3stream behind the real Mongrel2: listeners that join at
 * different times all get `icy-metaint` and a metadata block after exactly
 * every `metaint` audio bytes, titles where the tracks change, and audio
 * that is an unbroken run of MPEG frames; plain listeners get audio only.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { pino } from 'pino';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { start, type Mp3StreamDemo } from '../../examples/mp3stream/handler.js';
import { FRAME_BYTES, FRAME_HEADER, silentMp3 } from '../../examples/mp3stream/silence.js';
import { titleBlock } from '../../examples/mp3stream/icy.js';

const silent = pino({ level: 'silent' });
const METAINT = 1000;
const TRACK = silentMp3(0.24); // 10 frames = 3840 bytes
const TITLES = ['one', 'two'];

interface Listener {
  readonly socket: net.Socket;
  head: string;
  /** Audio bytes, metadata removed. */
  audio: Buffer;
  /** The metadata text after each block ('' for an empty block). */
  metas: string[];
  /** Resolves once `n` blocks (or, plain, n * METAINT audio bytes) are in. */
  until(n: number): Promise<void>;
}

/** A raw ICY client that parses the stream as it arrives. */
function listen(port: number, metadata: boolean): Listener {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('connect', () => socket.write(`GET /handler/mp3stream HTTP/1.1\r\nHost: localhost\r\n${metadata ? 'Icy-MetaData: 1\r\n' : ''}\r\n`));
  let pending = Buffer.alloc(0);
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const l: Listener = {
    socket,
    head: '',
    audio: Buffer.alloc(0),
    metas: [],
    until: (n) => new Promise((resolve, reject) => {
      waiters.push({ n, resolve });
      socket.once('close', () => reject(new Error(`stream closed after ${l.metas.length} blocks`)));
      check();
    }),
  };
  const blocks = (): number => (metadata ? l.metas.length : Math.floor(l.audio.length / METAINT));
  const check = (): void => {
    for (const w of waiters.splice(0)) (blocks() >= w.n ? w.resolve : () => waiters.push(w))();
  };
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    if (l.head === '') {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      l.head = pending.subarray(0, end).toString('latin1');
      pending = pending.subarray(end + 4);
    }
    if (!metadata) {
      l.audio = Buffer.concat([l.audio, pending]);
      pending = Buffer.alloc(0);
    }
    // audio (METAINT) + length byte + length * 16 bytes of text
    while (metadata && pending.length > METAINT && pending.length >= METAINT + 1 + pending[METAINT]! * 16) {
      const textLen = pending[METAINT]! * 16;
      l.audio = Buffer.concat([l.audio, pending.subarray(0, METAINT)]);
      l.metas.push(pending.subarray(METAINT + 1, METAINT + 1 + textLen).toString('utf8').replace(/\0+$/, ''));
      pending = pending.subarray(METAINT + 1 + textLen);
    }
    check();
  });
  socket.on('error', () => undefined);
  return l;
}

/** Asserts the audio is whole silent frames every FRAME_BYTES; returns the offset of the first frame header. */
function assertFrames(audio: Buffer): number {
  const first = audio.indexOf(FRAME_HEADER);
  assert.ok(first >= 0 && first < FRAME_BYTES, `a frame header within the first ${FRAME_BYTES} bytes (at ${first})`);
  for (let i = 0; i < audio.length; i++) {
    const inFrame = (i - first + FRAME_BYTES) % FRAME_BYTES;
    const expected = inFrame < 4 ? FRAME_HEADER[inFrame]! : 0;
    if (audio[i] !== expected) assert.fail(`audio byte ${i} is ${audio[i]}, expected ${expected}: metadata at the wrong offset?`);
  }
  return first;
}

/** What block k of the stream (stream bytes [k*METAINT, (k+1)*METAINT)) must carry, computed from the tracks. */
function expectedMeta(k: number): string {
  const from = k * METAINT;
  const to = from + METAINT - 1;
  const starts = Math.floor(to / TRACK.length) * TRACK.length >= from; // a track starts inside the block
  return starts ? `StreamTitle='${TITLES[Math.floor(to / TRACK.length) % 2]}';` : '';
}

describe('mp3stream behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let demo: Mp3StreamDemo;
  const sockets: net.Socket[] = [];

  before(async () => {
    peer = await startMongrel2();
    demo = start({
      sendSpec: peer.handler.sendSpec,
      recvSpec: peer.handler.recvSpec,
      logger: silent,
      tracks: TITLES.map((title) => ({ title, data: TRACK })),
      metaint: METAINT,
      bytesPerSecond: 50_000, // a block every 20 ms
    });
    await demo.ready();
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await demo?.stop();
    await peer?.stop();
  });

  test('titleBlock pads to 16-byte units behind a length byte', () => {
    const block = titleBlock("it's");
    assert.equal(block[0], 2); // "StreamTitle='its';" is 18 bytes
    assert.equal(block.length, 33);
    assert.equal(block.subarray(1).toString().replace(/\0+$/, ''), "StreamTitle='its';");
  });

  test('two listeners joining at different times, and a plain one', async () => {
    const a = listen(peer.httpPort, true);
    sockets.push(a.socket);
    await a.until(3);
    const b = listen(peer.httpPort, true);
    const plain = listen(peer.httpPort, false);
    sockets.push(b.socket, plain.socket);
    await Promise.all([b.until(14), plain.until(14)]);

    for (const l of [a, b]) {
      assert.match(l.head, /^HTTP\/1\.0 200 OK\r\n/);
      assert.match(l.head, /\r\nContent-Type: audio\/mpeg\r\n/);
      assert.match(l.head, /\r\nicy-name: Mongrel2 Radio\r\n/);
      assert.match(l.head, /\r\nicy-metaint: 1000(\r\n|$)/);
    }
    assert.doesNotMatch(plain.head, /icy-metaint/i);

    // A was the first listener: its first block is the stream's first block.
    assertFrames(a.audio);
    a.metas.forEach((meta, k) => assert.equal(meta, expectedMeta(k), `A's metadata after block ${k}`));
    assert.ok(a.metas.includes("StreamTitle='two';") && a.metas.filter((m) => m === '').length > 0);

    // B joined at a block boundary m: its frames are in phase with stream
    // byte m * METAINT, its first block names the playing track, and from
    // then on it gets exactly what A got.
    const phase = assertFrames(b.audio);
    const m = [...Array(48).keys()].find((k) => k >= 3 && (phase + k * METAINT) % FRAME_BYTES === 0);
    assert.ok(m !== undefined, `B's frame phase ${phase} fits a block boundary`);
    assert.equal(b.metas[0], `StreamTitle='${TITLES[Math.floor((m * METAINT + METAINT - 1) / TRACK.length) % 2]}';`);
    b.metas.slice(1).forEach((meta, j) => assert.equal(meta, expectedMeta(m + 1 + j), `B's metadata after block ${j + 1} (stream block ${m + 1 + j})`));

    assertFrames(plain.audio);
    assert.equal(demo.listeners().length, 3);

    // Listeners that leave are dropped on Mongrel2's disconnect notices.
    const gone = new Promise<void>((resolve) => {
      const onDisconnect = (): void => {
        if (demo.listeners().length > 0) return;
        demo.connection.off('disconnect', onDisconnect);
        resolve();
      };
      demo.connection.on('disconnect', onDisconnect);
    });
    for (const s of sockets) s.destroy();
    await gone;
    assert.deepEqual(demo.listeners(), []);
  });
});
