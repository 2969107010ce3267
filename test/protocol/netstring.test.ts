import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeNetstring, parseNetstring, parseNetstringAt } from '../../src/protocol/index.js';
import { assertProtocolError, bytes } from './helpers.js';

describe('netstring: known encodings', () => {
  test('encodeNetstring frames by byte length', () => {
    assert.equal(encodeNetstring('hello').toString('latin1'), '5:hello,');
    assert.equal(encodeNetstring('').toString('latin1'), '0:,');
    assert.deepStrictEqual([...encodeNetstring('é')], [0x32, 0x3a, 0xc3, 0xa9, 0x2c]);
    assert.deepStrictEqual([...encodeNetstring(Buffer.from([0, 0xff, 0x2c]))], [0x33, 0x3a, 0, 0xff, 0x2c, 0x2c]);
  });

  test('parseNetstring returns the payload, the rest and the end offset', () => {
    const r = parseNetstring(bytes('5:hello,rest'));
    assert.equal(r.value.toString('latin1'), 'hello');
    assert.equal(r.rest.toString('latin1'), 'rest');
    assert.equal(r.end, 8);
    const empty = parseNetstring(bytes('0:,'));
    assert.equal(empty.value.length, 0);
    assert.equal(empty.end, 3);
  });

  test('a payload may contain colons, commas and NULs', () => {
    const r = parseNetstring(bytes('5:a,:\x00,,,'));
    assert.deepStrictEqual([...r.value], [0x61, 0x2c, 0x3a, 0x00, 0x2c]);
    assert.equal(r.rest.toString('latin1'), ',');
  });

  test('parseNetstringAt works at an offset and reports absolute error offsets', () => {
    const r = parseNetstringAt(bytes('xx3:abc,yy'), 2);
    assert.equal(r.value.toString('latin1'), 'abc');
    assert.equal(r.end, 8);
    assert.equal(r.rest.toString('latin1'), 'yy');
    const input = bytes('xx3:abc]');
    const err = assertProtocolError(() => parseNetstringAt(input, 2), input);
    assert.equal(err.offset, 7);
  });

  test('other tnetstring tags are not netstrings', () => {
    for (const s of ['0:~', '4:true!', '1:1#', '0:]', '0:}']) assertProtocolError(() => parseNetstring(bytes(s)), bytes(s), s);
  });

  test('a leading zero or a missing length is refused', () => {
    for (const s of ['01:a,', ':a,', '00:,']) assertProtocolError(() => parseNetstring(bytes(s)), bytes(s), s);
  });
});

describe('netstring: properties', () => {
  test('round trip over arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (a) => {
        const data = Buffer.from(a);
        const encoded = encodeNetstring(data);
        assert.equal(encoded.toString('latin1'), `${data.length}:${data.toString('latin1')},`);
        const r = parseNetstring(encoded);
        assert.ok(r.value.equals(data));
        assert.equal(r.end, encoded.length);
        assert.equal(r.rest.length, 0);
      }),
      { numRuns: 300 },
    );
  });

  test('round trip over arbitrary strings (UTF-8)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
        assert.equal(parseNetstring(encodeNetstring(s)).value.toString('utf8'), s);
      }),
      { numRuns: 200 },
    );
  });

  test('parse(encode(a) + extra).rest equals extra', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 50 }), (a, extra) => {
        const encoded = encodeNetstring(Buffer.from(a));
        const r = parseNetstring(Buffer.concat([encoded, extra]));
        assert.deepStrictEqual([...r.rest], [...extra]);
        assert.deepStrictEqual([...r.value], [...a]);
        assert.equal(r.end, encoded.length);
      }),
      { numRuns: 200 },
    );
  });
});
