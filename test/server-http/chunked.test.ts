/** ChunkedDecoder: Mongrel2's tests/chunked_tests.c cases, strictness, offsets, and split safety. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedDecoder, MAX_CHUNK_SIZE } from '../../src/server/http/body.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { bytes } from './helpers.js';

interface Outcome {
  data: string;
  done: boolean;
  rest: string;
}

/** Decode `input` pushed in the given pieces. */
function decode(pieces: Buffer[]): Outcome {
  const d = new ChunkedDecoder();
  let data = '';
  let done = false;
  let rest = '';
  for (const p of pieces) {
    const r = d.push(p);
    for (const c of r.data) data += c.toString('latin1');
    done = r.done;
    rest += r.rest.toString('latin1');
  }
  return { data, done, rest };
}

const whole = (s: string): Outcome => decode([bytes(s)]);
const byteByByte = (s: string): Outcome => decode(Array.from(bytes(s), (b) => Buffer.from([b])));

function fails(s: string, offset: number, message?: RegExp): void {
  for (const run of [whole, byteByByte]) {
    assert.throws(
      () => run(s),
      (e: unknown) => e instanceof ProtocolError && e.offset === offset && (message === undefined || message.test(e.message)),
      `${JSON.stringify(s)} should fail at ${offset}`,
    );
  }
}

describe('tests/chunked_tests.c', () => {
  test('s1: one 12-byte chunk, then more needed', () => {
    assert.deepEqual(whole('c\r\nhello world\n\r\n'), { data: 'hello world\n', done: false, rest: '' });
  });
  test('s2, s3: an 8-character size line needs more', () => {
    assert.equal(whole('00000000\r').done, false);
    assert.deepEqual(whole('00000000\r\n'), { data: '', done: false, rest: '' });
  });
  test('s4-s6: a 9-character size is an error (the real one waits for the 10th byte first)', () => {
    fails('000000000', 8, /longer than 8 characters/);
    fails('000000000\r', 8);
    fails('000000000\r\n', 8);
  });
  test('s7, s8: zero-size last chunk, leading blanks allowed', () => {
    assert.deepEqual(whole('00000000\r\n\r\n'), { data: '', done: true, rest: '' });
    assert.deepEqual(whole('       0\r\n\r\n'), { data: '', done: true, rest: '' });
  });
  test('s9, s10: the CRLF after the data', () => {
    assert.equal(whole('c\r\nhello world\n\r').done, false);
    fails('c\r\nhello world\n\ra', 16, /chunk data not followed by CRLF/);
  });
  test('s11: trailers are skipped', () => {
    assert.deepEqual(whole('0\r\nFoo: Bar\r\nBar: Baz\r\n\r\n'), { data: '', done: true, rest: '' });
  });
});

describe('decoding', () => {
  const body = '5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n';
  test('chunks, extensions ignored, trailers skipped, bytes after the end are the rest', () => {
    const want = { data: 'hello 0123456789', done: true, rest: 'GET / HTTP/1.1\r\n\r\n' };
    assert.deepEqual(whole(body), want);
    assert.deepEqual(byteByByte(body), want);
  });
  test('pushing after done returns everything as rest', () => {
    const d = new ChunkedDecoder();
    assert.equal(d.push(bytes('0\r\n\r\n')).done, true);
    assert.equal(d.done, true);
    assert.deepEqual(d.push(bytes('abc')).rest, bytes('abc'));
  });
  test('the maximum chunk is 100 KiB', () => {
    const max = MAX_CHUNK_SIZE.toString(16);
    const ok = `${max}\r\n${'x'.repeat(MAX_CHUNK_SIZE)}\r\n0\r\n\r\n`;
    assert.equal(whole(ok).data.length, MAX_CHUNK_SIZE);
    fails((MAX_CHUNK_SIZE + 1).toString(16) + '\r\n', 4, /chunk larger than 102400 bytes/);
  });
});

describe('strictness, with the offset of the bad byte', () => {
  test('sizes must be hex digits (strtol would read junk as 0 = last chunk)', () => {
    fails('zz\r\n\r\n', 0, /chunk size must be hex digits, got 'z'/);
    fails('5\r\nhello\r\nq\r\n', 10);
    fails('\r\n', 0);
  });
  test('junk after the size', () => fails('5 x\r\n', 2, /'x' after the chunk size/));
  test('bare LF line ends are refused', () => {
    fails('5\nhello\r\n', 1);
    fails('5\r\nhello\n', 8);
    fails('0\r\n\n', 3);
    fails('0\r\nX: 1\n\r\n', 7, /in a trailer line/);
  });
  test('CR must be followed by LF', () => {
    fails('5\rx', 2, /CR not followed by LF/);
    fails('0\r\n\rx', 4, /at the end of the body/);
    fails('0\r\nX\rx', 5, /in the trailer/);
  });
  test('an endless extension or trailer section is cut off', () => {
    fails(`1;${'e'.repeat(5000)}`, 4096, /size line longer than 4096/);
    assert.throws(() => whole(`0\r\n${'X: 1\r\n'.repeat(4000)}`), /trailer section longer than 20480 bytes/);
  });
  test('offsets count across pushes', () => {
    const d = new ChunkedDecoder();
    d.push(bytes('3\r\nab'));
    assert.throws(() => d.push(bytes('c\r\nZ')), (e: unknown) => e instanceof ProtocolError && e.offset === 8);
  });
});

test('fuzz: any split of a valid body decodes the same; random bytes only ever throw ProtocolError', () => {
  const chunk = fc.string({ minLength: 1, maxLength: 40 }).map((s) => `${Buffer.byteLength(s, 'latin1').toString(16)}\r\n${s}\r\n`);
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 6 }), (chunks, cuts) => {
      const text = `${chunks.join('')}0\r\n\r\nREST`;
      const buf = bytes(text);
      const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const p of [...points, buf.length]) {
        pieces.push(buf.subarray(prev, p));
        prev = p;
      }
      assert.deepEqual(decode(pieces), whole(text));
      assert.equal(whole(text).rest, 'REST');
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (raw) => {
      try {
        decode([Buffer.from(raw)]);
      } catch (e) {
        assert.ok(e instanceof ProtocolError);
        assert.ok(e.offset >= 0 && e.offset < raw.length);
      }
    }),
  );
});
