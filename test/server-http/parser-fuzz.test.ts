/** parseHead under fast-check: never throws, offsets stay in the buffer, answers are stable under splitting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseHead, type HeadResult } from '../../src/server/http/request-parser.js';
import { bytes, decidedAt } from './helpers.js';

const VALID = [
  'GET /a/b?c=d#e HTTP/1.1\r\nHost: example.com\r\nX-A:  v \r\n\r\n',
  'POST http://h:8080/up HTTP/1.0\nContent-Length: 3\n\nabc',
  '@chat {"type":"msg","msg":"hi"}\0',
  '<policy-file-request/>\0',
  '<m x="1">y</m>\0',
];

/** A valid message with a few bytes replaced, inserted or deleted. */
const mutated = fc
  .tuple(
    fc.constantFrom(...VALID),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { maxLength: 4 }),
  )
  .map(([s, edits]) => {
    const arr = [...bytes(s)];
    for (const [pos, b, how] of edits) {
      const i = pos % (arr.length + 1);
      if (how === 'set' && i < arr.length) arr[i] = b;
      else if (how === 'insert') arr.splice(i, 0, b);
      else arr.splice(i, 1);
    }
    return Buffer.from(arr);
  });

const inputs = fc.oneof(mutated, fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)));
const options = fc.record({ relaxed: fc.boolean(), maxHeadBytes: fc.integer({ min: 1, max: 200 }), maxHeaderCount: fc.integer({ min: 0, max: 4 }) });

function checkShape(r: HeadResult, buf: Buffer, start: number): void {
  if (r.kind === 'error') {
    assert.ok(r.offset >= start && r.offset < buf.length, `offset ${r.offset} outside [${start}, ${buf.length})`);
    assert.match(r.reason, new RegExp(`at byte ${r.offset}$`));
  } else if (r.kind !== 'incomplete') {
    assert.ok(r.end > start && r.end <= buf.length);
  }
}

test('never throws; offsets within the buffer; same answer for every split point', () => {
  fc.assert(
    fc.property(inputs, options, fc.nat(8), (buf, limits, pad) => {
      const framed = Buffer.concat([Buffer.alloc(pad, 0x41), buf]); // parse from a non-zero start
      const full = parseHead(framed, pad, limits);
      checkShape(full, framed, pad);
      const decided = decidedAt(full);
      for (let k = pad; k <= framed.length; k++) {
        const r = parseHead(Buffer.from(framed.subarray(0, k)), pad, limits);
        checkShape(r, framed.subarray(0, k), pad);
        if (decided === undefined || k < decided) assert.equal(r.kind, 'incomplete', `prefix ${k}`);
        else assert.deepEqual(r, full, `prefix ${k}`);
      }
    }),
    { numRuns: 400 },
  );
});

test('an accepted request re-parses to the same head when its header order is kept', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/), fc.stringMatching(/^[\x20-\x7e\t]{0,20}$/)), { maxLength: 6 }),
      fc.stringMatching(/^(\/[A-Za-z0-9._~-]{0,8}){1,3}$/),
      (headers, path) => {
        const text = `GET ${path} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
        const r = parseHead(bytes(text), 0);
        assert.equal(r.kind, 'request', text);
        if (r.kind !== 'request') return;
        assert.equal(r.head.path, path);
        assert.equal(r.end, text.length);
        assert.deepEqual(r.head.headers, headers.map(([n, v]) => [n, v.replace(/^[ \t]+/, '')]));
      },
    ),
  );
});
