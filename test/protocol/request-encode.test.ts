/**
 * encodeRequestMessage: the string form of a bodyless JSON request stands for
 * exactly the bytes encodeRequest writes (its UTF-8 encoding), non-ASCII and
 * escaped header values included; anything with a body, or TNET, is a Buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeRequest, encodeRequestMessage, parseMessage, type RequestInit } from '../../src/protocol/request.js';

const base: RequestInit = { sender: 'UUID', connId: 7, path: '/p', headers: [['PATH', '/p'], ['host', 'localhost'], ['METHOD', 'GET']] };

test('a bodyless JSON request is a string whose UTF-8 bytes are encodeRequest\'s', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string({ minLength: 1 }), fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }))), { maxLength: 6 }), (extra) => {
      const init: RequestInit = { ...base, headers: [...base.headers, ...extra] };
      const message = encodeRequestMessage(init);
      assert.equal(typeof message, 'string');
      assert.deepEqual(Buffer.from(message as string, 'utf8'), encodeRequest(init));
    }),
  );
  const utf8 = encodeRequestMessage({ ...base, headers: [...base.headers, ['x-name', 'Zoë "quoted" \u0001']] }) as string;
  const parsed = parseMessage(Buffer.from(utf8, 'utf8'));
  assert.equal(parsed.kind === 'http' && parsed.headers['x-name'], 'Zoë "quoted" \u0001');
});

test('a body or the TNET protocol gives the Buffer encodeRequest gives', () => {
  for (const init of [
    { ...base, body: Buffer.from('abc') },
    { ...base, body: 'é' },
    { ...base, protocol: 'tnetstring' as const },
    { ...base, protocol: 'tnetstring' as const, body: Buffer.from('x') },
  ]) {
    const message = encodeRequestMessage(init);
    assert.ok(Buffer.isBuffer(message));
    assert.deepEqual(message, encodeRequest(init));
  }
});

test('bad input is refused the same way in both forms', () => {
  assert.throws(() => encodeRequestMessage({ ...base, sender: 'a b' }), /sender/);
  assert.throws(() => encodeRequestMessage({ ...base, connId: -1 }), /connection id/);
  assert.throws(() => encodeRequestMessage({ ...base, path: '' }), /path/);
});
