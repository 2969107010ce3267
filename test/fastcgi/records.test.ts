/**
 * FastCGI record codecs. Expected wire bytes are built by hand here (hdr(),
 * splitRecords()), not with the code under test, so an encoder bug cannot hide
 * a decoder bug.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FCGI_KEEP_CONN,
  FCGI_MAX_PADDED_CONTENT,
  FastCgiError,
  ProtocolStatus,
  RecordDecoder,
  RecordType,
  Role,
  decodeNameValuePairs,
  encodeBeginRequest,
  encodeEndRequest,
  encodeGetValues,
  encodeNameValuePairs,
  encodeParams,
  encodeRecord,
  encodeRequest,
  encodeStdin,
  encodeStdinEnd,
  nameValueSize,
  parseBeginRequest,
  parseEndRequest,
  type FastCgiRecord,
} from '../../src/fastcgi/records.js';

/** A header built by hand: version 1, type, id, length, padding, reserved 0. */
function hdr(type: number, id: number, len: number, pad: number): Buffer {
  return Buffer.from([1, type, id >> 8, id & 0xff, len >> 8, len & 0xff, pad, 0]);
}

/** A whole record by hand; padding bytes are `fill` so a decoder that reads them as content is caught. */
function rec(type: number, id: number, content: Buffer | string, pad = 0, fill = 0xee): Buffer {
  const c = typeof content === 'string' ? Buffer.from(content, 'latin1') : content;
  return Buffer.concat([hdr(type, id, c.length, pad), c, Buffer.alloc(pad, fill)]);
}

interface Split {
  type: number;
  id: number;
  content: Buffer;
  pad: number;
}

/** Independent record splitter for checking encoder output. */
function splitRecords(buf: Buffer): Split[] {
  const out: Split[] = [];
  let at = 0;
  while (at < buf.length) {
    assert.ok(at + 8 <= buf.length, `header cut at ${at}`);
    assert.equal(buf[at], 1, `version at ${at}`);
    const len = buf.readUInt16BE(at + 4);
    const pad = buf[at + 6]!;
    assert.equal(buf[at + 7], 0, 'reserved byte');
    assert.ok(at + 8 + len + pad <= buf.length, `record at ${at} overruns the buffer`);
    out.push({ type: buf[at + 1]!, id: buf.readUInt16BE(at + 2), content: buf.subarray(at + 8, at + 8 + len), pad });
    assert.ok(buf.subarray(at + 8 + len, at + 8 + len + pad).every((b) => b === 0), 'padding must be zero bytes');
    at += 8 + len + pad;
  }
  return out;
}

/** Name/value pairs by hand (1-byte lengths below 128, else 4 bytes with the high bit). */
function nv(name: string, value: string): Buffer {
  const len = (n: number): Buffer => (n < 128 ? Buffer.from([n]) : Buffer.from([0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]));
  const n = Buffer.from(name, 'utf8');
  const v = Buffer.from(value, 'utf8');
  return Buffer.concat([len(n.length), len(v.length), n, v]);
}

function assertFcgiError(fn: () => unknown, code: string): FastCgiError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof FastCgiError, `expected a FastCgiError ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, thrown.message);
  return thrown;
}

function plainRecords(records: FastCgiRecord[]): Array<{ type: number; requestId: number; content: string; paddingLength: number; offset: number }> {
  return records.map((r) => ({ type: r.type, requestId: r.requestId, content: r.content.toString('latin1'), paddingLength: r.paddingLength, offset: r.offset }));
}

describe('fastcgi records: known bytes', () => {
  test('encodeRecord pads to a multiple of 8 with zero bytes', () => {
    assert.deepStrictEqual([...encodeRecord(RecordType.Stdout, 1, Buffer.from('abc'))], [1, 6, 0, 1, 0, 3, 5, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual([...encodeRecord(RecordType.Stdin, 0x1234, Buffer.alloc(0))], [1, 5, 0x12, 0x34, 0, 0, 0, 0]);
    assert.deepStrictEqual([...encodeRecord(RecordType.Params, 1, Buffer.from('12345678'))], [1, 4, 0, 1, 0, 8, 0, 0, ...Buffer.from('12345678')]);
  });

  test('content + padding never passes 65535 (FPM rejects that)', () => {
    for (const [len, pad] of [
      [65527, 1],
      [65528, 0],
      [65529, 0],
      [65534, 0],
      [65535, 0],
    ] as const) {
      const r = encodeRecord(RecordType.Stdout, 1, Buffer.alloc(len, 0x61));
      assert.equal(r.readUInt16BE(4), len);
      assert.equal(r[6], pad, `padding for ${len}`);
      assert.equal(r.length, 8 + len + pad);
    }
    assert.throws(() => encodeRecord(RecordType.Stdout, 1, Buffer.alloc(65536)), RangeError);
    assert.throws(() => encodeRecord(RecordType.Stdout, 65536, Buffer.alloc(0)), RangeError);
    assert.throws(() => encodeRecord(256, 1, Buffer.alloc(0)), RangeError);
  });

  test('BEGIN_REQUEST: role, FCGI_KEEP_CONN, 5 reserved zero bytes', () => {
    assert.equal(FCGI_KEEP_CONN, 1);
    assert.deepStrictEqual([...encodeBeginRequest(1, Role.Responder, true)], [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual([...encodeBeginRequest(1, Role.Responder, false)], [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual([...encodeBeginRequest(0x0102, Role.Filter)], [1, 1, 1, 2, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
    assert.deepStrictEqual(parseBeginRequest(Buffer.from([0, 2, 1, 0, 0, 0, 0, 0])), { role: Role.Authorizer, keepConn: true });
    assertFcgiError(() => parseBeginRequest(Buffer.alloc(7)), 'PROTOCOL');
  });

  test('END_REQUEST: 32-bit appStatus, protocolStatus', () => {
    const body = Buffer.from([0, 0, 0x01, 0x02, ProtocolStatus.Overloaded, 0, 0, 0]);
    assert.deepStrictEqual(parseEndRequest(body), { appStatus: 258, protocolStatus: 2 });
    assert.deepStrictEqual(parseEndRequest(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])), { appStatus: 0xffffffff, protocolStatus: 0 });
    assert.deepStrictEqual([...encodeEndRequest(1, 258, ProtocolStatus.CantMpxConn)], [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0]);
    const err = assertFcgiError(() => parseEndRequest(Buffer.alloc(5)), 'PROTOCOL');
    assert.equal(err.offset, 5);
  });

  test('the empty STDIN record and GET_VALUES', () => {
    assert.deepStrictEqual([...encodeStdinEnd(1)], [1, 5, 0, 1, 0, 0, 0, 0]);
    const gv = encodeGetValues(['FCGI_MPXS_CONNS']);
    assert.deepStrictEqual(gv, rec(RecordType.GetValues, 0, nv('FCGI_MPXS_CONNS', ''), 7, 0));
  });
});

describe('fastcgi records: name/value pairs', () => {
  test('1-byte lengths below 128, 4-byte lengths with the high bit from 128', () => {
    assert.deepStrictEqual([...encodeNameValuePairs([['A', 'bc']])], [1, 2, 0x41, 0x62, 0x63]);
    const long = 'x'.repeat(128);
    const enc = encodeNameValuePairs([['N', long]]);
    assert.deepStrictEqual([...enc.subarray(0, 6)], [1, 0x80, 0, 0, 128, 0x4e]);
    assert.equal(enc.length, 1 + 4 + 1 + 128);
    const big = 'y'.repeat(70_000);
    assert.deepStrictEqual([...encodeNameValuePairs([[big, '']]).subarray(0, 5)], [0x80, 0x01, 0x11, 0x70, 0x00]); // 70000 = 0x011170
    assert.deepStrictEqual(encodeNameValuePairs([['é', 'ü€']]), nv('é', 'ü€'));
    assert.equal(nameValueSize(127, 127), 2 + 254);
    assert.equal(nameValueSize(128, 0), 5 + 128);
  });

  test('decodes hand-built pairs, including empty names and values', () => {
    const buf = Buffer.concat([nv('', ''), nv('SCRIPT_FILENAME', '/srv/index.php'), nv('HTTP_X', 'v'.repeat(200)), nv('K', '')]);
    assert.deepStrictEqual(decodeNameValuePairs(buf), [
      ['', ''],
      ['SCRIPT_FILENAME', '/srv/index.php'],
      ['HTTP_X', 'v'.repeat(200)],
      ['K', ''],
    ]);
  });

  test('round trip over arbitrary strings, lengths around the 127/128 boundary', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 140 }), fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.constantFrom('a'.repeat(127), 'b'.repeat(128)))), { maxLength: 20 }),
        (pairs) => {
          const enc = encodeNameValuePairs(pairs);
          assert.deepStrictEqual(enc, Buffer.concat(pairs.map(([n, v]) => nv(n, v))));
          assert.deepStrictEqual(decodeNameValuePairs(enc), pairs);
        },
      ),
    );
  });

  test('truncated input is a PROTOCOL error naming the offset', () => {
    const cut4 = Buffer.concat([nv('A', 'b'), Buffer.from([0x80, 0, 1])]);
    assert.equal(assertFcgiError(() => decodeNameValuePairs(cut4), 'PROTOCOL').offset, 4);
    const short = Buffer.concat([nv('A', 'b'), Buffer.from([3, 3]), Buffer.from('abcde')]);
    assert.equal(assertFcgiError(() => decodeNameValuePairs(short), 'PROTOCOL').offset, 4);
    const noValueLength = Buffer.from([5]);
    assert.equal(assertFcgiError(() => decodeNameValuePairs(noValueLength, 'utf8', 100), 'PROTOCOL').offset, 101);
  });
});

describe('fastcgi records: PARAMS packing', () => {
  test('small params: one padded record, then the empty PARAMS record', () => {
    const out = encodeParams(1, [
      ['REQUEST_METHOD', 'GET'],
      ['SCRIPT_FILENAME', '/x.php'],
    ]);
    const body = Buffer.concat([nv('REQUEST_METHOD', 'GET'), nv('SCRIPT_FILENAME', '/x.php')]);
    const pad = (8 - (body.length % 8)) % 8;
    assert.deepStrictEqual(out, Buffer.concat([rec(RecordType.Params, 1, body, pad, 0), hdr(RecordType.Params, 1, 0, 0)]));
  });

  test('no params: just the empty PARAMS record', () => {
    assert.deepStrictEqual([...encodeParams(7, [])], [1, 4, 0, 7, 0, 0, 0, 0]);
  });

  test('80 KB of many pairs spread over several records, no pair split', () => {
    const pairs: Array<[string, string]> = [];
    for (let i = 0; pairs.reduce((n, [k, v]) => n + k.length + v.length, 0) < 80_000; i++) pairs.push([`HTTP_X_HEADER_${i}`, `${i}:`.padEnd(150 + (i % 70), 'v')]);
    const records = splitRecords(encodeParams(1, pairs));
    assert.ok(records.length >= 3, `${records.length} records`);
    const last = records.at(-1)!;
    assert.equal(last.content.length, 0);
    assert.equal(last.type, RecordType.Params);
    const decoded: Array<[string, string]> = [];
    for (const r of records.slice(0, -1)) {
      assert.equal(r.type, RecordType.Params);
      assert.equal(r.id, 1);
      assert.ok(r.content.length > 0 && r.content.length <= FCGI_MAX_PADDED_CONTENT, `content ${r.content.length}`);
      assert.equal((r.content.length + r.pad) % 8, 0);
      assert.ok(r.content.length + r.pad <= 65535);
      // Each record must decode on its own, as FPM parses it.
      decoded.push(...decodeNameValuePairs(r.content));
    }
    assert.deepStrictEqual(decoded, pairs);
  });

  test('a 60 KB cookie takes a record of its own; neighbours go to other records', () => {
    const cookie = 'c=' + 'z'.repeat(60 * 1024);
    const pairs: Array<[string, string]> = [
      ['A', 'x'.repeat(6000)],
      ['HTTP_COOKIE', cookie],
      ['B', 'y'.repeat(6000)],
    ];
    const records = splitRecords(encodeParams(1, pairs)).slice(0, -1);
    assert.equal(records.length, 3);
    assert.deepStrictEqual(decodeNameValuePairs(records[1]!.content), [['HTTP_COOKIE', cookie]]);
    assert.deepStrictEqual(records.flatMap((r) => decodeNameValuePairs(r.content)), pairs);
  });

  test('the largest pair that fits: exactly 65528 encoded bytes; one more → PARAMS_TOO_LARGE', () => {
    const fits = 'v'.repeat(FCGI_MAX_PADDED_CONTENT - 1 - 4 - 'HTTP_COOKIE'.length);
    assert.equal(nameValueSize(11, fits.length), 65528);
    const records = splitRecords(encodeParams(1, [['HTTP_COOKIE', fits]]));
    assert.equal(records[0]!.content.length, 65528);
    assert.equal(records[0]!.pad, 0);
    const err = assertFcgiError(() => encodeParams(1, [['HTTP_COOKIE', fits + 'v']]), 'PARAMS_TOO_LARGE');
    assert.match(err.message, /HTTP_COOKIE/);
    assert.match(err.message, /65529/);
  });

  test('a 70 KB cookie value cannot fit any record → PARAMS_TOO_LARGE', () => {
    assertFcgiError(() => encodeParams(1, [['HTTP_COOKIE', 'k=' + 'v'.repeat(70 * 1024)]]), 'PARAMS_TOO_LARGE');
    assertFcgiError(() => encodeParams(1, [['N'.repeat(65529), '']]), 'PARAMS_TOO_LARGE');
  });

  test('lengths whose 4-byte prefix holds bytes >= 0x80, and non-ASCII text, come out as nv() builds them', () => {
    // 200 = 0x80000000|0xc8 and 0x80ff = two high bytes: the one-string path writes these prefixes as latin1 text.
    const cases: Array<Array<[string, string]>> = [
      [['A', 'x'.repeat(200)]],
      [['N'.repeat(0x80ff), 'v'], ['B', '']],
      [['é', 'ü'.repeat(100)]], // 2-byte characters: 200 bytes from 100 characters
      [['X', '\u{1f600}'], ['Y', '\ud800']], // a surrogate pair, and a lone surrogate (U+FFFD on the wire)
      [['HTTP_HOST', 'a'.repeat(127)], ['Z', 'b'.repeat(128)]],
      // As many extra UTF-8 bytes as the long prefix's high bytes: a miscount there would let them through as latin1.
      ...[1, 2, 3, 4].map((k): Array<[string, string]> => [['A', 'é'.repeat(k) + 'x'.repeat(200 - k)]]),
    ];
    for (const pairs of cases) {
      const records = splitRecords(encodeParams(1, pairs)).slice(0, -1);
      assert.deepStrictEqual(Buffer.concat(records.map((r) => r.content)), Buffer.concat(pairs.map(([k, v]) => nv(k, v))), JSON.stringify(pairs).slice(0, 80));
    }
  });

  test('property: params built from any strings and Buffers match nv()', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.boolean()), { maxLength: 30 }), (spec) => {
        const pairs = spec.map(([k, v, asBuffer]) => (asBuffer ? [Buffer.from(k, 'utf8'), v] : [k, v]) as [string | Buffer, string]);
        const records = splitRecords(encodeParams(2, pairs)).slice(0, -1);
        assert.deepStrictEqual(Buffer.concat(records.map((r) => r.content)), Buffer.concat(spec.map(([k, v]) => nv(k, v))));
      }),
      { numRuns: 200 },
    );
  });

  test('property: any pairs that fit pack into valid, self-contained records', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.nat({ max: 30_000 })), { maxLength: 40 }), (spec) => {
        const pairs = spec.map(([k, n]) => [k, 'q'.repeat(n)] as [string, string]);
        const records = splitRecords(encodeParams(3, pairs));
        assert.equal(records.at(-1)!.content.length, 0);
        const decoded = records.slice(0, -1).flatMap((r) => {
          assert.ok(r.content.length > 0 && r.content.length + r.pad <= 65535 && (r.content.length + r.pad) % 8 === 0);
          return decodeNameValuePairs(r.content);
        });
        assert.deepStrictEqual(decoded, pairs);
      }),
      { numRuns: 50 },
    );
  });
});

describe('fastcgi records: STDIN chunking', () => {
  test('records of at most 65528 bytes, no terminator included', () => {
    const data = Buffer.alloc(200_000);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const records = encodeStdin(1, data);
    const split = records.map((r) => {
      const s = splitRecords(r);
      assert.equal(s.length, 1);
      return s[0]!;
    });
    assert.deepStrictEqual(
      split.map((s) => s.content.length),
      [65528, 65528, 65528, 200_000 - 3 * 65528],
    );
    assert.ok(split.every((s) => s.type === RecordType.Stdin && s.content.length > 0));
    assert.deepStrictEqual(Buffer.concat(split.map((s) => s.content)), data);
    assert.equal(split[3]!.pad, (8 - (split[3]!.content.length % 8)) % 8);
    assert.deepStrictEqual(encodeStdin(1, Buffer.alloc(0)), []);
  });
});

describe('fastcgi records: RecordDecoder', () => {
  const stream = Buffer.concat([
    rec(RecordType.Stdout, 1, 'Status: 200\r\n\r\nhello', 0),
    rec(RecordType.Stderr, 1, 'warn', 255),
    rec(RecordType.Stdout, 1, '', 0),
    rec(RecordType.Stdout, 1, Buffer.alloc(3000, 0x42), 7),
    rec(RecordType.GetValuesResult, 0, nv('FCGI_MPXS_CONNS', '0'), 3),
    rec(RecordType.EndRequest, 1, Buffer.from([0, 0, 0, 9, 0, 0, 0, 0]), 0),
  ]);

  function decodeAll(chunks: Buffer[]): FastCgiRecord[] {
    const d = new RecordDecoder();
    const out = chunks.flatMap((c) => d.push(c));
    assert.equal(d.buffered, 0);
    assert.equal(d.offset, stream.length);
    return out;
  }

  const whole = plainRecords(decodeAll([stream]));

  test('whole stream: every record, padding 0 and 255 skipped', () => {
    assert.deepStrictEqual(
      whole.map((r) => [r.type, r.requestId, r.content.length, r.paddingLength]),
      [
        [6, 1, 20, 0],
        [7, 1, 4, 255],
        [6, 1, 0, 0],
        [6, 1, 3000, 7],
        [10, 0, nv('FCGI_MPXS_CONNS', '0').length, 3],
        [3, 1, 8, 0],
      ],
    );
    assert.equal(whole[0]!.content, 'Status: 200\r\n\r\nhello');
    assert.equal(whole[1]!.content, 'warn');
    assert.equal(whole[1]!.offset, 28);
    assert.equal(whole[2]!.offset, 28 + 8 + 4 + 255);
    assert.deepStrictEqual(parseEndRequest(Buffer.from(whole[5]!.content, 'latin1')), { appStatus: 9, protocolStatus: 0 });
  });

  test('one byte at a time gives the same records', () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
    assert.deepStrictEqual(plainRecords(decodeAll(bytes)), whole);
  });

  test('random splits (and empty chunks) give the same records', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: stream.length }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const chunks = points.slice(1).map((p, i) => stream.subarray(points[i]!, p));
        assert.deepStrictEqual(plainRecords(decodeAll(chunks)), whole);
      }),
    );
  });

  test('property: arbitrary records with any padding survive any split', () => {
    const recordArb = fc.record({
      type: fc.integer({ min: 1, max: 11 }),
      id: fc.integer({ min: 0, max: 65535 }),
      content: fc.uint8Array({ maxLength: 600 }),
      pad: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 30 }), (records, rawCuts) => {
        const wire = Buffer.concat(records.map((r) => rec(r.type, r.id, Buffer.from(r.content), r.pad)));
        const cuts = rawCuts.map((c) => (wire.length === 0 ? 0 : c % (wire.length + 1))).sort((a, b) => a - b);
        const points = [0, ...cuts, wire.length];
        const d = new RecordDecoder();
        const got = points.slice(1).flatMap((p, i) => d.push(wire.subarray(points[i]!, p)));
        assert.deepStrictEqual(
          got.map((r) => [r.type, r.requestId, [...r.content], r.paddingLength]),
          records.map((r) => [r.type, r.id, [...r.content], r.pad]),
        );
      }),
    );
  });

  test('a 65535-byte record split anywhere, with and without padding', () => {
    const big = Buffer.alloc(65535);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 256;
    for (const pad of [0, 255]) {
      const wire = Buffer.concat([rec(RecordType.Stdout, 1, big, pad), rec(RecordType.Stdout, 1, 'tail', 4)]);
      const d = new RecordDecoder();
      const got = [...d.push(wire.subarray(0, 5)), ...d.push(wire.subarray(5, 30000)), ...d.push(wire.subarray(30000, 65540)), ...d.push(wire.subarray(65540))];
      assert.equal(got.length, 2);
      assert.deepStrictEqual(got[0]!.content, big);
      assert.equal(got[1]!.content.toString(), 'tail');
    }
  });

  test('content of a record that arrived in one chunk is a slice, not a copy', () => {
    const wire = rec(RecordType.Stdout, 1, 'abcdefgh', 0);
    const [r] = new RecordDecoder().push(wire);
    assert.equal(r!.content.buffer, wire.buffer);
  });

  test('a bad version byte is a PROTOCOL error naming the stream offset', () => {
    const good = rec(RecordType.Stdout, 1, 'abc', 5);
    const bad = Buffer.concat([good, Buffer.from('HTTP/1.1 200 OK\r\n')]);
    const whole = assertFcgiError(() => new RecordDecoder().push(bad), 'PROTOCOL');
    assert.equal(whole.offset, 16);
    assert.match(whole.message, /version is 72/);
    assert.match(whole.message, /at byte 16/);

    const d = new RecordDecoder();
    let err: FastCgiError | undefined;
    for (let i = 0; i < bad.length && !err; i++) {
      try {
        d.push(bad.subarray(i, i + 1));
      } catch (e) {
        err = e as FastCgiError;
      }
    }
    assert.ok(err instanceof FastCgiError);
    assert.equal(err.offset, 16);
    // The decoder stays failed.
    assertFcgiError(() => d.push(good), 'PROTOCOL');

    const zero = assertFcgiError(() => new RecordDecoder().push(Buffer.from([0, 6, 0, 1, 0, 0, 0, 0])), 'PROTOCOL');
    assert.equal(zero.offset, 0);
  });

  test('encodeRequest: BEGIN_REQUEST, PARAMS and the whole STDIN stream in one buffer, byte for byte the separate encoders', () => {
    const pairs: Array<[string, string]> = [['SCRIPT_FILENAME', '/x.php'], ['HTTP_X', 'é'.repeat(70)]];
    for (const body of [Buffer.alloc(0), Buffer.from('abc'), Buffer.alloc(65528, 7), Buffer.alloc(65531, 9)]) {
      const expected = Buffer.concat([encodeBeginRequest(5, Role.Responder, true), encodeParams(5, pairs), ...encodeStdin(5, body), encodeStdinEnd(5)]);
      assert.deepStrictEqual(encodeRequest(5, pairs, { keepConn: true, stdin: body }), expected, `body of ${body.length}`);
    }
    // A streamed body: no STDIN records at all.
    assert.deepStrictEqual(encodeRequest(1, pairs, { role: Role.Filter }), Buffer.concat([encodeBeginRequest(1, Role.Filter, false), encodeParams(1, pairs)]));
    assertFcgiError(() => encodeRequest(1, [['HTTP_COOKIE', 'v'.repeat(70_000)]]), 'PARAMS_TOO_LARGE');
  });

  test('encoder output decodes back', () => {
    const wire = Buffer.concat([
      encodeBeginRequest(1, Role.Responder, true),
      encodeParams(1, [['A', 'b'.repeat(5000)]]),
      ...encodeStdin(1, Buffer.alloc(100_000, 1)),
      encodeStdinEnd(1),
    ]);
    const records = new RecordDecoder().push(wire);
    assert.deepStrictEqual(
      records.map((r) => [r.type, r.content.length]),
      [
        [1, 8],
        [4, nameValueSize(1, 5000)],
        [4, 0],
        [5, 65528],
        [5, 100_000 - 65528],
        [5, 0],
      ],
    );
    assert.deepStrictEqual(parseBeginRequest(records[0]!.content), { role: 1, keepConn: true });
  });
});
