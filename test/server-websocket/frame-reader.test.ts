/**
 * The core's client-frame reader: unmasking, reassembly with the first
 * frame's FLAGS, control frames in between, every protocol error, the size
 * limit, any split of the input, and a fuzz run (never throws, bounded memory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildFrame, Opcode } from '../../src/protocol/websocket.js';
import { FrameReader, type FrameEvent } from '../../src/server/websocket/frame-reader.js';

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const masked = (payload: Buffer | string, init: { opcode?: number; fin?: boolean; rsv?: number } = {}): Buffer => buildFrame(payload, { ...init, mask: MASK });

/** A raw frame header + mask + masked payload, for what buildFrame refuses to make. */
function rawFrame(b0: number, payload: Buffer, opts: { mask?: boolean; len7?: number; ext?: Buffer } = {}): Buffer {
  const useMask = opts.mask ?? true;
  const len7 = opts.len7 ?? payload.length;
  const head = Buffer.from([b0, (useMask ? 0x80 : 0) | len7]);
  const body = Buffer.from(payload);
  if (useMask) for (let i = 0; i < body.length; i++) body[i]! ^= MASK[i & 3]!;
  return Buffer.concat([head, opts.ext ?? Buffer.alloc(0), useMask ? MASK : Buffer.alloc(0), body]);
}

function readAll(input: Buffer, maxMessage = 1 << 20, split?: number[]): FrameEvent[] {
  const r = new FrameReader({ maxMessage });
  if (!split) return r.push(input);
  const out: FrameEvent[] = [];
  let at = 0;
  for (const cut of [...split, input.length]) {
    out.push(...r.push(input.subarray(at, cut)));
    at = cut;
  }
  return out;
}

const summary = (events: FrameEvent[]): Array<string> => events.map((e) => (e.kind === 'message' ? `0x${e.flags.toString(16)}:${e.payload.toString('latin1')}` : `error ${e.code}`));

test('a masked text frame becomes one message with FLAGS 0x81 and the unmasked payload (the capture frame)', () => {
  const frame = Buffer.from('818837fa213d7f9f4d5158da564e', 'hex');
  assert.deepEqual(frame, masked('Hello ws'));
  assert.deepEqual(summary(readAll(frame)), ['0x81:Hello ws']);
});

test('binary with a 16-bit length, ping, pong and close keep their opcode in FLAGS', () => {
  const bin = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
  const events = readAll(Buffer.concat([masked(bin, { opcode: Opcode.Binary }), masked('ping', { opcode: Opcode.Ping }), masked('pong', { opcode: Opcode.Pong }), masked(Buffer.from([3, 0xe8]), { opcode: Opcode.Close })]));
  assert.deepEqual(
    events.map((e) => (e.kind === 'message' ? e.flags : -1)),
    [0x82, 0x89, 0x8a, 0x88],
  );
  assert.deepEqual((events[0] as { payload: Buffer }).payload, bin);
});

test('a 64-bit length frame is read', () => {
  const payload = Buffer.alloc(70000, 0x61);
  const events = readAll(masked(payload, { opcode: Opcode.Binary }));
  assert.equal(events.length, 1);
  assert.equal((events[0] as { payload: Buffer }).payload.length, 70000);
  assert.ok((events[0] as { payload: Buffer }).payload.equals(payload));
});

test('fragments are reassembled under the FIRST frame flags; control frames in between go at once', () => {
  const input = Buffer.concat([
    masked('He', { opcode: Opcode.Text, fin: false, rsv: 4 }),
    masked('pingdata', { opcode: Opcode.Ping }),
    masked('llo', { opcode: Opcode.Continuation, fin: false }),
    masked('', { opcode: Opcode.Continuation, fin: false }),
    masked(' ws', { opcode: Opcode.Continuation, fin: true }),
    masked('next', { opcode: Opcode.Binary }),
  ]);
  assert.deepEqual(summary(readAll(input)), ['0x89:pingdata', '0xc1:Hello ws', '0x82:next']);
});

test('RSV bits are passed on in FLAGS by default (0xC1 as captured) and refused with allowRsv=false', () => {
  const frame = masked('x', { rsv: 4 });
  assert.deepEqual(summary(readAll(frame)), ['0xc1:x']);
  const strict = new FrameReader({ maxMessage: 100, allowRsv: false }).push(frame);
  assert.equal(strict.length, 1);
  assert.equal(strict[0]!.kind, 'error');
  assert.equal((strict[0] as { code: number }).code, 1002);
  assert.match((strict[0] as { reason: string }).reason, /RSV bits 0x4 .* at byte 0/);
});

const protocolErrors: Array<[string, Buffer, RegExp, number]> = [
  ['unmasked frame', rawFrame(0x81, Buffer.from('hi'), { mask: false }), /unmasked client frame at byte 8$/, 0],
  ['fragmented control frame', rawFrame(0x09, Buffer.from('p')), /fragmented control frame \(opcode 9\)/, 0],
  ['control frame over 125 bytes', rawFrame(0x89, Buffer.alloc(126), { len7: 126, ext: Buffer.from([0, 126]) }), /control frame \(opcode 9\) longer than 125 bytes/, 0],
  ['reserved data opcode', rawFrame(0x83, Buffer.from('x')), /reserved opcode 3/, 0],
  ['reserved control opcode', rawFrame(0x8b, Buffer.from('x')), /reserved opcode 11/, 0],
  ['continuation with nothing open', rawFrame(0x80, Buffer.from('x')), /continuation frame with no message to continue/, 0],
  ['data frame inside a fragmented message', Buffer.concat([rawFrame(0x01, Buffer.from('ab')), rawFrame(0x81, Buffer.from('cd'))]), /data frame \(opcode 1\) in the middle of a fragmented message at byte 16$/, 8],
  ['64-bit length with the top bit set', rawFrame(0x82, Buffer.alloc(0), { len7: 127, ext: Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 1]) }), /most significant bit/, 2],
];

for (const [name, input, reason, offset] of protocolErrors) {
  test(`protocol error 1002: ${name}`, () => {
    const good = masked('ok');
    const r = new FrameReader({ maxMessage: 1 << 20 });
    const events = r.push(Buffer.concat([good, input, good]));
    assert.equal(events.length, 2, 'the good frame, then one error and nothing after it');
    assert.equal(events[0]!.kind, 'message');
    const err = events[1]!;
    assert.equal(err.kind, 'error');
    assert.equal((err as { code: number }).code, 1002);
    assert.match((err as { reason: string }).reason, reason);
    assert.equal((err as { offset: number }).offset, good.length + offset);
    assert.ok(r.hasFailed);
    assert.deepEqual(r.push(good), [], 'input after an error is ignored');
    assert.equal(r.bufferedBytes, 0);
  });
}

test('size limit: a frame over limits.websocket_max_message fails with 1009 from its header alone', () => {
  const r = new FrameReader({ maxMessage: 1000 });
  const frame = masked(Buffer.alloc(1001), { opcode: Opcode.Binary });
  const events = r.push(frame.subarray(0, 4)); // header only
  assert.equal(events.length, 1);
  assert.equal(events[0]!.kind, 'error');
  assert.equal((events[0] as { code: number }).code, 1009);
  assert.match((events[0] as { reason: string }).reason, /1000-byte limit \(limits\.websocket_max_message\)/);
});

test('size limit: a 64-bit length of 2^62 fails with 1009 without buffering', () => {
  const events = readAll(rawFrame(0x82, Buffer.alloc(0), { len7: 127, ext: Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0]) }), 1000);
  assert.equal(events.length, 1);
  assert.equal((events[0] as { code: number }).code, 1009);
  assert.match((events[0] as { reason: string }).reason, /frame of 4611686018427387904/);
});

test('size limit counts the fragments of one message; exactly the limit passes; control frames do not count', () => {
  const at = (n: number, fin: boolean, opcode: number = Opcode.Continuation): Buffer => masked(Buffer.alloc(n, 0x62), { opcode, fin });
  const ok = readAll(Buffer.concat([at(600, false, Opcode.Text), masked('p', { opcode: Opcode.Ping }), at(400, true)]), 1000);
  assert.deepEqual(
    ok.map((e) => (e.kind === 'message' ? e.payload.length : -1)),
    [1, 1000],
  );
  const over = readAll(Buffer.concat([at(600, false, Opcode.Text), at(401, true)]), 1000);
  assert.equal(over.length, 1);
  assert.equal((over[0] as { code: number }).code, 1009);
  assert.match((over[0] as { reason: string }).reason, /600 bytes so far plus a frame of 401/);
});

test('split at every byte gives the same events as the whole input', () => {
  const input = Buffer.concat([
    masked('Hello ws'),
    masked(Buffer.alloc(300, 7), { opcode: Opcode.Binary, fin: false }),
    masked('ping', { opcode: Opcode.Ping }),
    masked(Buffer.alloc(70000, 9), { opcode: Opcode.Continuation }),
    masked(Buffer.from([3, 0xe8]), { opcode: Opcode.Close }),
  ]);
  const whole = readAll(input);
  assert.equal(whole.length, 4);
  for (let cut = 1; cut < input.length; cut += cut < 400 ? 1 : 997) {
    assert.deepEqual(readAll(input, 1 << 20, [cut]), whole, `split at ${cut}`);
  }
  const r = new FrameReader({ maxMessage: 1 << 20 });
  const trickled: FrameEvent[] = [];
  for (let i = 0; i < input.length; i++) trickled.push(...r.push(input.subarray(i, i + 1)));
  assert.deepEqual(trickled, whole);
});

test('a trickled 1-byte-at-a-time frame costs staging buffers, not one object per byte', () => {
  const r = new FrameReader({ maxMessage: 1 << 20 });
  const input = masked(Buffer.alloc(200_000, 1), { opcode: Opcode.Binary });
  for (let i = 0; i < input.length - 1; i++) assert.deepEqual(r.push(input.subarray(i, i + 1)), []);
  assert.equal(r.bufferedBytes, input.length - 1);
  const chunks = (r as unknown as { chunks: Buffer[] }).chunks.length;
  assert.ok(chunks <= Math.ceil(input.length / (16 * 1024)) + 1, `${chunks} queued chunk objects`);
  assert.equal(r.push(input.subarray(input.length - 1)).length, 1);
  assert.equal(r.bufferedBytes, 0);
});

test('many empty fragments do not grow memory', () => {
  const parts = [masked('', { opcode: Opcode.Text, fin: false })];
  for (let i = 0; i < 20000; i++) parts.push(masked('', { opcode: Opcode.Continuation, fin: false }));
  parts.push(masked('end', { opcode: Opcode.Continuation }));
  const r = new FrameReader({ maxMessage: 10 });
  assert.deepEqual(summary(r.push(Buffer.concat(parts))), ['0x81:end']);
  assert.equal((r as unknown as { fragments: Buffer[] }).fragments.length, 0);
});

test('fuzz: random bytes and random frame soups never throw and stay within the memory bound', () => {
  const maxMessage = 4096;
  const frameArb = fc.record({
    b0: fc.integer({ min: 0, max: 255 }),
    masked: fc.boolean(),
    payload: fc.uint8Array({ maxLength: 300 }),
  });
  const inputArb = fc.oneof(
    fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    fc.array(frameArb, { maxLength: 12 }).map((frames) =>
      Buffer.concat(frames.map((f) => rawFrame(f.b0, Buffer.from(f.payload), { mask: f.masked, len7: f.payload.length < 126 ? f.payload.length : 126, ext: f.payload.length < 126 ? undefined : Buffer.from([f.payload.length >> 8, f.payload.length & 0xff]) }))),
    ),
  );
  fc.assert(
    fc.property(inputArb, fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 40 }), (input, sizes) => {
      const r = new FrameReader({ maxMessage });
      let at = 0;
      let errors = 0;
      for (let i = 0; at < input.length; i++) {
        const n = sizes.length === 0 ? input.length : sizes[i % sizes.length]!;
        for (const e of r.push(input.subarray(at, at + n))) {
          if (e.kind === 'error') errors++;
          else assert.ok(e.payload.length <= maxMessage && (e.flags & 0x80) !== 0);
        }
        at += n;
        assert.ok(r.bufferedBytes <= maxMessage + 14, `buffered ${r.bufferedBytes}`);
      }
      assert.ok(errors <= 1);
    }),
    { numRuns: 2000 },
  );
});

test('maxMessage must be a non-negative integer', () => {
  assert.throws(() => new FrameReader({ maxMessage: -1 }), /non-negative integer/);
});
