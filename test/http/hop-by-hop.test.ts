/** The shared hop-by-hop rule and header-token lists. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { droppedHeaderNames, endToEndHeaders, headerTokens, HOP_BY_HOP, listTokens } from '../../src/http/hop-by-hop.js';

test('listTokens: comma lists over several values, trimmed, lower-cased, empties dropped', () => {
  assert.deepEqual(listTokens(['Keep-Alive , ,Upgrade', ' CLOSE', '']), ['keep-alive', 'upgrade', 'close']);
  assert.deepEqual(listTokens([]), []);
});

test('headerTokens: every header of that name, any case, in order', () => {
  const headers: Array<[string, string]> = [['Connection', 'keep-alive'], ['X', 'close'], ['connection', 'Upgrade, X-Secret']];
  assert.deepEqual(headerTokens(headers, 'connection'), ['keep-alive', 'upgrade', 'x-secret']);
  assert.deepEqual(headerTokens(headers, 'CONNECTION'), ['keep-alive', 'upgrade', 'x-secret']);
  assert.deepEqual(headerTokens(headers, 'upgrade'), []);
});

test('droppedHeaderNames: RFC 9110 §7.6.1 names plus what Connection lists, never Host', () => {
  const dropped = droppedHeaderNames(['close, X-Secret, Host', 'x-other']);
  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'x-secret', 'x-other', 'close']) {
    assert.ok(dropped.has(name), name);
  }
  assert.equal(dropped.has('host'), false);
  assert.equal(dropped.has('content-type'), false);
  assert.equal(HOP_BY_HOP.has('x-secret'), false, 'the shared set is not changed');
});

test('endToEndHeaders: drops hop-by-hop, Connection-named and `also` names, keeps order and case', () => {
  const headers: Array<[string, string]> = [
    ['Content-Type', 'text/plain'],
    ['Connection', 'X-Hop'],
    ['X-Hop', '1'],
    ['Keep-Alive', 'timeout=5'],
    ['Set-Cookie', 'a=1'],
    ['Content-Length', '3'],
    ['set-cookie', 'b=2'],
  ];
  assert.deepEqual(endToEndHeaders(headers, ['content-length']), [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ]);
});
