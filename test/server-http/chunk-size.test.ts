/** ChunkSizeReader: the one chunk-size line reader behind the request decoder, proxy scanner and reply tracker. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkSizeReader, chunkSizeRules, FAILED, NEED_MORE, type ChunkSizeError, type ChunkSizeOptions } from '../../src/server/http/chunk-size.js';
import { bytes } from './helpers.js';

/** Like the request decoder: blanks first, 8 characters, CRLF only. */
const STRICT: ChunkSizeOptions = { leadingBlanks: true, maxSizeChars: 8, maxSize: 0x19000, bareLf: false, maxLineBytes: 64, extensionRefuses: (b) => b === 0 || b === 0x7f };
/** Like the tracker: no leading blanks, bare LF, any extension byte. */
const LENIENT: ChunkSizeOptions = { leadingBlanks: false, maxSizeChars: 12, maxSize: Number.MAX_SAFE_INTEGER, bareLf: true, maxLineBytes: 64, extensionRefuses: () => false };

type Outcome = { end: number; size: number } | { error: ChunkSizeError | undefined; at: number } | 'more';

/** Reads one line from `s` fed in the given pieces; positions are into the whole of `s`. */
function readLine(options: ChunkSizeOptions, s: string, cuts: number[] = []): Outcome {
  const buf = bytes(s);
  const reader = new ChunkSizeReader(chunkSizeRules(options));
  let from = 0;
  for (const to of [...cuts.filter((c) => c > 0 && c < buf.length).sort((a, b) => a - b), buf.length]) {
    if (to <= from) continue;
    const r = reader.read(buf.subarray(from, to), 0);
    if (r === FAILED) return { error: reader.error, at: from + reader.errorAt };
    if (r !== NEED_MORE) return { end: from + r, size: reader.size };
    from = to;
  }
  return 'more';
}

/** readLine whole and byte by byte, which must agree. */
function both(options: ChunkSizeOptions, s: string): Outcome {
  const whole = readLine(options, s);
  assert.deepEqual(readLine(options, s, Array.from(s, (_, i) => i)), whole, `${JSON.stringify(s)} byte by byte`);
  return whole;
}

describe('accepted lines', () => {
  test('the size, and the position just past the line end', () => {
    assert.deepEqual(both(STRICT, '5\r\nhello'), { end: 3, size: 5 });
    assert.deepEqual(both(STRICT, '  1a \t;name="v";x\r\n'), { end: 19, size: 0x1a });
    assert.deepEqual(both(STRICT, '0000FfFf\r\n'), { end: 10, size: 0xffff });
    assert.deepEqual(both(LENIENT, 'ff\nrest'), { end: 3, size: 255 });
    assert.deepEqual(both(LENIENT, '0;\x01\x00\x7f\xff\r\n'), { end: 8, size: 0 });
  });
  test('an unfinished line needs more', () => {
    for (const s of ['', '5', '5 ', '5;ext', '5\r', '   ']) assert.equal(both(STRICT, s), 'more', JSON.stringify(s));
  });
  test('reading from an offset, then the next line with the same reader', () => {
    const reader = new ChunkSizeReader(chunkSizeRules(STRICT));
    const buf = bytes('xx3\r\nabc\r\n10\r\n');
    assert.equal(reader.read(buf, 2), 5);
    assert.equal(reader.size, 3);
    assert.equal(reader.read(buf, 10), 14);
    assert.equal(reader.size, 16);
  });
});

describe('refusals: the reason and the offset of the offending byte', () => {
  const cases: Array<[ChunkSizeOptions, string, ChunkSizeError, number]> = [
    [STRICT, 'zz\r\n', 'not-hex', 0],
    [STRICT, '\r\n', 'not-hex', 0],
    [LENIENT, ' 5\r\n', 'not-hex', 0],
    [LENIENT, ';x\n', 'not-hex', 0],
    [STRICT, '000000001\r\n', 'too-long', 8],
    [STRICT, '    00001\r\n', 'too-long', 8],
    [STRICT, '         ', 'too-long', 8],
    [LENIENT, '0000000000001\n', 'too-long', 12],
    [STRICT, '19001\r\n', 'too-large', 4],
    [STRICT, '5 x\r\n', 'after-size', 2],
    [STRICT, '5\n', 'after-size', 1],
    [LENIENT, '5 5\n', 'after-size', 2],
    [STRICT, '5;a\x00\r\n', 'extension', 3],
    [STRICT, '5;a\n', 'extension', 3],
    [STRICT, `5;${'e'.repeat(100)}\r\n`, 'line-too-long', 64],
    [STRICT, `5${' '.repeat(100)}\r\n`, 'line-too-long', 64],
    [LENIENT, `5;${'e'.repeat(100)}\n`, 'line-too-long', 64],
    [STRICT, '5\rx', 'no-lf', 2],
    [LENIENT, '5;a\rb\n', 'no-lf', 4],
  ];
  for (const [options, s, error, at] of cases) {
    test(`${options === STRICT ? 'strict' : 'lenient'} ${JSON.stringify(s.length > 20 ? `${s.slice(0, 12)}…` : s)}: ${error} at ${at}`, () => {
      assert.deepEqual(both(options, s), { error, at });
    });
  }
  test('a failed reader stays failed', () => {
    const reader = new ChunkSizeReader(chunkSizeRules(STRICT));
    assert.equal(reader.read(bytes('g'), 0), FAILED);
    assert.equal(reader.read(bytes('5\r\n'), 0), FAILED);
    assert.equal(reader.error, 'not-hex');
  });
  test('describe() words the refusal with the offending byte', () => {
    const reader = new ChunkSizeReader(chunkSizeRules(STRICT));
    const buf = bytes('5 x\r\n');
    reader.read(buf, 0);
    const words = { 'not-hex': () => '', 'too-long': () => '', 'too-large': () => '', 'after-size': (b: number) => `after: ${String.fromCharCode(b)}`, extension: () => '', 'line-too-long': () => '', 'no-lf': () => '' };
    assert.equal(reader.describe(buf, words), 'after: x');
  });
});

/** A regular-expression model of the grammar, for lines that fit the limits. */
function model(options: ChunkSizeOptions, s: string): { end: number; size: number } | undefined {
  const blanks = options.leadingBlanks ? '[ \\t]*' : '';
  const eol = options.bareLf ? '\\r?\\n' : '\\r\\n';
  const m = new RegExp(`^(${blanks})([0-9a-fA-F]+)[ \\t]*(;[^\\r\\n]*)?${eol}`).exec(s);
  if (!m) return undefined;
  const ext = m[3] ?? '';
  if ([...ext].some((c) => c === '\n' || options.extensionRefuses(c.charCodeAt(0)))) return undefined;
  const size = parseInt(m[2]!, 16);
  const lineBytes = m[0].replace(/\r?\n$/, '').length;
  if (m[1]!.length + m[2]!.length > options.maxSizeChars || size > options.maxSize || lineBytes > options.maxLineBytes) return undefined;
  return { end: m[0].length, size };
}

test('fuzz: any split reads the same; accepted exactly where the grammar model accepts', () => {
  const atom = fc.constantFrom('0', '7', 'a', 'F', 'g', ' ', '\t', ';', 'x=1', '\r', '\n', '\r\n', '\x00', '\x7f', '"', '00000');
  for (const options of [STRICT, LENIENT]) {
    fc.assert(
      fc.property(fc.array(atom, { maxLength: 12 }), fc.array(fc.nat({ max: 40 }), { maxLength: 5 }), (atoms, cuts) => {
        const s = atoms.join('');
        const whole = readLine(options, s);
        assert.deepEqual(readLine(options, s, cuts), whole);
        const want = model(options, s);
        if (want) assert.deepEqual(whole, want);
        else assert.ok(whole === 'more' || 'error' in whole, `${JSON.stringify(s)} accepted: ${JSON.stringify(whole)}`);
        if (typeof whole === 'object' && 'error' in whole) assert.ok(whole.at >= 0 && whole.at < s.length);
      }),
      { numRuns: 3000 },
    );
  }
});
