import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EncodeError, tnetstring, type TValue } from '../../src/protocol/index.js';
import { assertEncodeError, assertProtocolError, bytes, cat } from './helpers.js';

const { encode, parse, parseAt, parseExact } = tnetstring;

const wire = (v: TValue, options?: Parameters<typeof encode>[1]): string => encode(v, options).toString('latin1');

/** n lists nested inside each other, built by hand: `0:]`, `3:0:]]`, ... */
function nestedLists(n: number): Buffer {
  let s = bytes('0:]');
  for (let i = 1; i < n; i++) s = cat(`${s.length}:`, s, ']');
  return s;
}

/** The same nesting as a JS value. */
function nestedValue(n: number): TValue {
  let v: TValue = [];
  for (let i = 1; i < n; i++) v = [v];
  return v;
}

/**
 * A comparable form of a tnetstring value: strings and Buffers become their
 * bytes (the parser returns Buffers), integers become decimal text plus the
 * JS type the parser must return (number when safe, bigint otherwise), and
 * dicts become ordered [key, value] pairs so prototypes and `__proto__` keys
 * do not matter.
 */
type Norm =
  | { t: 'bytes'; hex: string }
  | { t: 'int'; text: string; js: 'number' | 'bigint' }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' }
  | { t: 'list'; items: Norm[] }
  | { t: 'dict'; entries: Array<[string, Norm]> };

function intNorm(text: string, js: 'number' | 'bigint'): Norm {
  return { t: 'int', text, js };
}

/** Normalises a value given to the encoder (what the parser should give back). */
function expected(v: TValue): Norm {
  if (Buffer.isBuffer(v)) return { t: 'bytes', hex: v.toString('hex') };
  if (typeof v === 'string') return { t: 'bytes', hex: Buffer.from(v, 'utf8').toString('hex') };
  if (typeof v === 'bigint') return intNorm(v.toString(), Number.isSafeInteger(Number(v)) ? 'number' : 'bigint');
  if (typeof v === 'number') return Number.isInteger(v) ? intNorm(String(v), 'number') : { t: 'float', v };
  if (typeof v === 'boolean') return { t: 'bool', v };
  if (v === null) return { t: 'null' };
  if (Array.isArray(v)) return { t: 'list', items: v.map(expected) };
  return { t: 'dict', entries: Object.entries(v).map(([k, x]) => [k, expected(x)] as [string, Norm]) };
}

/** Normalises a parsed value, keeping the JS type the parser actually chose. */
function actual(v: TValue): Norm {
  if (typeof v === 'string') throw new Error('the parser must return Buffers, not strings');
  if (typeof v === 'bigint') return intNorm(v.toString(), 'bigint');
  if (typeof v === 'number') return Number.isInteger(v) ? intNorm(String(v), 'number') : { t: 'float', v };
  if (Array.isArray(v)) return { t: 'list', items: v.map(actual) };
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
    assert.equal(Object.getPrototypeOf(v), null, 'parsed dicts have a null prototype');
    return { t: 'dict', entries: Object.entries(v).map(([k, x]) => [k, actual(x)] as [string, Norm]) };
  }
  return expected(v);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Arbitrary tnetstring values, nested at most 6 deep (the codec allows 32). */
const tvalue: fc.Arbitrary<TValue> = fc.letrec<{ value: TValue; leaf: TValue }>((tie) => ({
  leaf: fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
    fc.bigInt({ min: -MAX_SAFE, max: MAX_SAFE }),
    fc.boolean(),
    fc.constant(null),
  ),
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 6 },
    tie('leaf'),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), tie('value'), { maxKeys: 5 }) as fc.Arbitrary<TValue>,
  ),
})).value;

describe('tnetstring: known encodings', () => {
  const cases: Array<[string, TValue, string]> = [
    ['null', null, '0:~'],
    ['true', true, '4:true!'],
    ['false', false, '5:false!'],
    ['integer', 12345, '5:12345#'],
    ['zero', 0, '1:0#'],
    ['negative integer', -42, '3:-42#'],
    ['bigint beyond 2^53', 12345678901234567890n, '20:12345678901234567890#'],
    ['string', 'hello', '5:hello,'],
    ['empty string', '', '0:,'],
    ['empty list', [], '0:]'],
    ['empty dict', {}, '0:}'],
    ['ctl keep-alive (§4.1)', ['ctl', { 'keep-alive': true }], '31:3:ctl,21:10:keep-alive,4:true!}]'],
    ['ctl credits (§4.1)', ['ctl', { credits: 65536 }], '28:3:ctl,18:7:credits,5:65536#}]'],
    ['sendfile (§4)', ['sendfile', '/data/big.iso'], '28:8:sendfile,13:/data/big.iso,]'],
    [
      'nested dict/list from tnetstrings.info',
      { hello: [12345678901, 'this', true, null, Buffer.alloc(4)] },
      '51:5:hello,39:11:12345678901#4:this,4:true!0:~4:\x00\x00\x00\x00,]}',
    ],
    ['control-port request (§9)', ['kill', { id: 1 }], '19:4:kill,9:2:id,1:1#}]'],
  ];
  for (const [name, value, bytesOnWire] of cases) {
    test(`encode ${name} → ${JSON.stringify(bytesOnWire)}`, () => {
      assert.equal(wire(value), bytesOnWire);
    });
    test(`parse ${JSON.stringify(bytesOnWire)} → ${name}`, () => {
      const input = bytes(bytesOnWire);
      const r = parse(input);
      assert.deepStrictEqual(actual(r.value), expected(value));
      assert.equal(r.end, input.length);
      assert.equal(r.rest.length, 0);
      assert.deepStrictEqual(actual(parseExact(input)), expected(value));
    });
  }

  test('UTF-8 strings are framed by byte length', () => {
    assert.deepStrictEqual([...encode('é')], [0x32, 0x3a, 0xc3, 0xa9, 0x2c]);
    assert.deepStrictEqual([...encode({ 'ü': 1 })], [...bytes('9:2:\xc3\xbc,1:1#}')]);
  });

  test('parsed strings are Buffers holding the raw bytes', () => {
    const v = parseExact(bytes('3:\xff\x00\xfe,'));
    assert.ok(Buffer.isBuffer(v));
    assert.deepStrictEqual([...v], [0xff, 0x00, 0xfe]);
  });

  test('integers come back as numbers when safe and as bigints otherwise', () => {
    assert.equal(parseExact(bytes('16:9007199254740991#')), Number.MAX_SAFE_INTEGER);
    assert.equal(parseExact(bytes('16:9007199254740992#')), 9007199254740992n);
    assert.equal(parseExact(bytes('17:-9007199254740993#')), -9007199254740993n);
  });

  test('floats parse (the parser is lenient)', () => {
    assert.equal(parseExact(bytes('3:1.5^')), 1.5);
    assert.equal(parseExact(bytes('5:-2e10^')), -2e10);
  });

  test('the dict parser returns a null-prototype object where __proto__ is plain data', () => {
    const v = parseExact(bytes('16:9:__proto__,1:x,}'));
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v));
    assert.equal(Object.getPrototypeOf(v), null);
    const inner = (v as Record<string, TValue>)['__proto__'];
    assert.ok(Buffer.isBuffer(inner));
    assert.equal(inner.toString(), 'x');
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  test('parseAt parses at an offset and reports absolute positions', () => {
    const input = bytes('junk5:hello,tail');
    const r = parseAt(input, 4);
    assert.ok(Buffer.isBuffer(r.value));
    assert.equal(r.value.toString(), 'hello');
    assert.equal(r.end, 12);
    assert.equal(r.rest.toString(), 'tail');
    const err = assertProtocolError(() => parseAt(bytes('junk5:hello?'), 4));
    assert.equal(err.offset, 11);
  });

  test('parseExact refuses trailing bytes', () => {
    const err = assertProtocolError(() => parseExact(bytes('0:~x')));
    assert.equal(err.offset, 3);
  });
});

describe('tnetstring: floats and unencodable values', () => {
  test('encode refuses floats by default (EncodeError), at any depth', () => {
    assertEncodeError(() => encode(1.5), 'top level');
    assertEncodeError(() => encode(['ctl', { credits: 1.5 }]), 'inside ctl');
    assertEncodeError(() => encode([0.1]), 'inside a list');
  });

  test('encode allows finite floats with allowFloats', () => {
    assert.equal(wire(1.5, { allowFloats: true }), '3:1.5^');
    assert.equal(wire(['x', -0.25], { allowFloats: true }), '12:1:x,5:-0.25^]');
    assert.equal(parseExact(encode(1.5, { allowFloats: true })), 1.5);
  });

  test('NaN and Infinity are refused even with allowFloats', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      assertEncodeError(() => encode(v, { allowFloats: true }), String(v));
      assertEncodeError(() => encode(v), String(v));
    }
  });

  test('unsafe integers must be passed as bigint', () => {
    assertEncodeError(() => encode(2 ** 53));
    assert.equal(wire(2n ** 53n), '16:9007199254740992#');
  });

  test('EncodeError is a ProtocolError subclass with offset -1', () => {
    const err = assertEncodeError(() => encode(0.5));
    assert.ok(err instanceof EncodeError);
    assert.equal(err.offset, -1);
  });
});

describe('tnetstring: nesting limit', () => {
  test('32 nested lists encode and parse; 33 are refused by both sides', () => {
    const ok = nestedLists(32);
    assert.equal(encode(nestedValue(32)).toString('latin1'), ok.toString('latin1'));
    assert.deepStrictEqual(actual(parseExact(ok)), expected(nestedValue(32)));
    assertEncodeError(() => encode(nestedValue(33)));
    assertProtocolError(() => parseExact(nestedLists(33)), nestedLists(33));
  });

  test('maxDepth is configurable on both sides', () => {
    assert.ok(parseExact(nestedLists(3), { maxDepth: 3 }));
    assertProtocolError(() => parseExact(nestedLists(4), { maxDepth: 3 }));
    assert.ok(encode(nestedValue(3), { maxDepth: 3 }));
    assertEncodeError(() => encode(nestedValue(4), { maxDepth: 3 }));
  });
});

describe('tnetstring: properties', () => {
  test('encode → parse gives the same value (strings come back as Buffers)', () => {
    fc.assert(
      fc.property(tvalue, (v) => {
        const encoded = encode(v);
        const r = parse(encoded);
        assert.equal(r.end, encoded.length);
        assert.deepStrictEqual(actual(r.value), expected(v));
      }),
      { numRuns: 400 },
    );
  });

  test('re-encoding a parsed value gives the same bytes', () => {
    fc.assert(
      fc.property(tvalue, (v) => {
        const encoded = encode(v);
        assert.ok(encode(parseExact(encoded)).equals(encoded));
      }),
      { numRuns: 200 },
    );
  });

  test('parse(encode(a) + extra).rest equals extra', () => {
    fc.assert(
      fc.property(tvalue, fc.uint8Array({ maxLength: 30 }), (v, extra) => {
        const encoded = encode(v);
        const r = parse(Buffer.concat([encoded, extra]));
        assert.deepStrictEqual([...r.rest], [...extra]);
        assert.equal(r.end, encoded.length);
        assert.deepStrictEqual(actual(r.value), expected(v));
      }),
      { numRuns: 200 },
    );
  });
});
