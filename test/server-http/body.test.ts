/** bodyFraming, keepAlive and expectation on parsed heads. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyFraming, expectation, keepAlive, keepAliveFor } from '../../src/server/http/body.js';
import type { RequestHead } from '../../src/server/http/request-parser.js';
import { parse } from './helpers.js';

function head(version: '1.0' | '1.1', ...headers: string[]): RequestHead {
  const r = parse(`POST /x HTTP/${version}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  if (r.kind !== 'request') throw new Error(JSON.stringify(r));
  return r.head;
}

const invalid = (h: RequestHead, reason: RegExp): void => {
  const f = bodyFraming(h);
  assert.equal(f.kind, 'invalid');
  assert.match((f as { reason: string }).reason, reason);
};

describe('bodyFraming', () => {
  test('no body headers: none', () => assert.deepEqual(bodyFraming(head('1.1', 'Host: a')), { kind: 'none' }));
  test('Content-Length: digits only, any header case, trailing blanks tolerated', () => {
    assert.deepEqual(bodyFraming(head('1.1', 'content-LENGTH: 42')), { kind: 'length', length: 42 });
    assert.deepEqual(bodyFraming(head('1.1', 'Content-Length: 0')), { kind: 'length', length: 0 });
    assert.deepEqual(bodyFraming(head('1.1', 'Content-Length: 7  ')), { kind: 'length', length: 7 });
  });
  test('junk, negative, empty, huge Content-Length are invalid', () => {
    for (const v of ['abc', '-1', '', '+5', '5x', '0x10', '1 2']) invalid(head('1.1', `Content-Length: ${v}`), /is not a decimal number/);
    invalid(head('1.1', 'Content-Length: 99999999999999999999'), /too large/);
  });
  test('repeated Content-Length: same value ok, different values invalid', () => {
    assert.deepEqual(bodyFraming(head('1.1', 'Content-Length: 3', 'Content-Length: 3')), { kind: 'length', length: 3 });
    invalid(head('1.1', 'Content-Length: 3', 'Content-Length: 4'), /conflicting Content-Length headers \(3 and 4\)/);
  });
  test('Transfer-Encoding: exactly chunked', () => {
    assert.deepEqual(bodyFraming(head('1.1', 'Transfer-Encoding: chunked')), { kind: 'chunked' });
    for (const v of ['Chunked', 'gzip, chunked', 'gzip', 'chunked ']) invalid(head('1.1', `Transfer-Encoding: ${v}`), /unsupported Transfer-Encoding/);
    invalid(head('1.1', 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'), /more than one/);
  });
  test('Transfer-Encoding with Content-Length, in either order, is invalid (smuggling)', () => {
    invalid(head('1.1', 'Transfer-Encoding: chunked', 'Content-Length: 5'), /smuggling/);
    invalid(head('1.1', 'Content-Length: 5', 'Transfer-Encoding: chunked'), /smuggling/);
  });
});

describe('keepAlive', () => {
  test('HTTP/1.0 never, even with Connection: keep-alive', () => {
    assert.equal(keepAlive(head('1.0')), false);
    assert.equal(keepAlive(head('1.0', 'Connection: keep-alive')), false);
  });
  test('HTTP/1.1 unless any Connection token is close, any case (Mongrel2 compares the first whole value)', () => {
    assert.equal(keepAlive(head('1.1')), true);
    assert.equal(keepAlive(head('1.1', 'Connection: close')), false);
    assert.equal(keepAlive(head('1.1', 'connection: CLOSE')), false);
    assert.equal(keepAlive(head('1.1', 'Connection: Upgrade , Close')), false);
    assert.equal(keepAlive(head('1.1', 'Connection: close, upgrade')), false);
    assert.equal(keepAlive(head('1.1', 'Connection: keep-alive', 'Connection: close')), false);
    assert.equal(keepAlive(head('1.1', 'Connection: keep-alive, closed')), true);
  });
  test('keepAliveFor: the same rule over a version and Connection values', () => {
    assert.equal(keepAliveFor('HTTP/1.1', []), true);
    assert.equal(keepAliveFor('HTTP/1.1', ['upgrade', 'x, close']), false);
    assert.equal(keepAliveFor('HTTP/1.0', ['keep-alive']), false);
  });
});

describe('expectation', () => {
  test('none, exact 100-continue, anything else fails', () => {
    assert.equal(expectation(head('1.1')), 'none');
    assert.equal(expectation(head('1.1', 'Expect: 100-continue')), 'continue');
    assert.equal(expectation(head('1.1', 'expect: 100-continue')), 'continue');
    assert.equal(expectation(head('1.1', 'Expect: 100-Continue')), 'fail');
    assert.equal(expectation(head('1.1', 'Expect: something')), 'fail');
  });
});
