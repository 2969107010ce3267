/** The one token-list splitter (protocol layer), and shouldClose, which reads Connection through it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listTokens } from '../../src/protocol/http-tokens.js';
import { listTokens as hopByHopListTokens } from '../../src/http/hop-by-hop.js';
import { encodeRequest, parseMessage, shouldClose, type HeaderValue } from '../../src/protocol/request.js';

test('listTokens: comma lists over several values, trimmed (SP and HT), lower-cased, empties dropped', () => {
  assert.deepEqual(listTokens(['Keep-Alive , ,Upgrade', ' CLOSE', '', '\tTE\t,,']), ['keep-alive', 'upgrade', 'close', 'te']);
  assert.deepEqual(listTokens([]), []);
  assert.deepEqual(listTokens([',,, ,']), []);
});

test('src/http uses the protocol layer splitter, not a copy', () => {
  assert.equal(hopByHopListTokens, listTokens);
});

function closes(connection: HeaderValue | undefined, version = 'HTTP/1.1'): boolean {
  const headers: Array<[string, HeaderValue]> = [['METHOD', 'GET'], ['VERSION', version], ['PATH', '/']];
  if (connection !== undefined) headers.push(['connection', connection]);
  return shouldClose(parseMessage(encodeRequest({ sender: 's', connId: 1, path: '/', headers })));
}

test('shouldClose: a close token in any case, position or repeated Connection header; HTTP/1.0 always', () => {
  assert.equal(closes(undefined), false);
  assert.equal(closes('keep-alive'), false);
  assert.equal(closes('closed, enclose'), false);
  assert.equal(closes('Close'), true);
  assert.equal(closes('Upgrade ,\tCLOSE '), true);
  assert.equal(closes(['keep-alive', 'te, close']), true);
  assert.equal(closes(['keep-alive', 'te']), false);
  assert.equal(closes('keep-alive', 'HTTP/1.0'), true);
});

test('shouldClose: JSON and tnetstring header encodings agree', () => {
  for (const protocol of ['json', 'tnetstring'] as const) {
    const wire = encodeRequest({ sender: 's', connId: 2, path: '/', headers: [['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['connection', ['a', 'b, close']]], protocol });
    assert.equal(shouldClose(parseMessage(wire)), true, protocol);
  }
});
