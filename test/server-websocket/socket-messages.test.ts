/**
 * JSSocket / XML socket messages, byte for byte against what the real
 * Mongrel2 (Debian mongrel2-core 1.12.2) sent its handlers for the same
 * client bytes (captured with pyzmq; conf: '@chat' and '<msg' → a JSON
 * handler 'aaaa-json-ident', '@tnet' → a tnetstring handler, '@raw' → a JSON
 * handler with raw_payload=1). The JSON 'join' message is also the one in
 * handler-protocol.md §8. Plus the ping pattern and how replies reach the client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHead } from '../../src/server/http/request-parser.js';
import { encodeSocketMessage, isSocketPing, POLICY_RESPONSE, socketReplyBytes, type SocketMessage } from '../../src/server/socket-messages.js';

const CTX = { urlScheme: 'http', remoteAddr: '127.0.0.1' } as const;

function parsed(raw: string): SocketMessage {
  const r = parseHead(Buffer.from(raw, 'latin1'), 0);
  assert.ok(r.kind === 'json' || r.kind === 'xml', `parsed as ${r.kind}`);
  return r;
}

const captured: Array<[string, string, 'json' | 'tnetstring', string, number, string]> = [
  [
    'JSON message to a JSON handler',
    '@chat {"type":"join","user":"zed"}\0',
    'json',
    'aaaa-json-ident',
    1,
    'aaaa-json-ident 1 @chat 126:{"PATH":"@chat","x-forwarded-for":"127.0.0.1","METHOD":"JSON","PATTERN":"@chat","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},28:{"type":"join","user":"zed"},',
  ],
  [
    'XML message (PATH <tag, body = the whole XML)',
    '<msg a="1">hi</msg>\0',
    'json',
    'aaaa-json-ident',
    1,
    'aaaa-json-ident 1 <msg 123:{"PATH":"<msg","x-forwarded-for":"127.0.0.1","METHOD":"XML","PATTERN":"<msg","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},19:<msg a="1">hi</msg>,',
  ],
  [
    'JSON message to a tnetstring handler',
    '@tnet {"a":1}\0',
    'tnetstring',
    'bbbb-tnet-ident',
    1,
    'bbbb-tnet-ident 1 @tnet 128:11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,4:JSON,10:URL_SCHEME,4:http,7:PATTERN,5:@tnet,4:PATH,5:@tnet,15:x-forwarded-for,9:127.0.0.1,}7:{"a":1},',
  ],
  [
    'JSON message to a raw_payload handler (the request is the same)',
    '@raw {"a":1}\0',
    'json',
    'cccc-raw-ident',
    2,
    'cccc-raw-ident 2 @raw 124:{"PATH":"@raw","x-forwarded-for":"127.0.0.1","METHOD":"JSON","PATTERN":"@raw","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},7:{"a":1},',
  ],
  [
    'the forwarded non-ping (a backslash before the s)',
    '@chat {"type":\\sss"ping"}\0',
    'json',
    'aaaa-json-ident',
    1,
    'aaaa-json-ident 1 @chat 126:{"PATH":"@chat","x-forwarded-for":"127.0.0.1","METHOD":"JSON","PATTERN":"@chat","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"},19:{"type":\\sss"ping"},',
  ],
];

for (const [name, raw, protocol, sendIdent, connId, expected] of captured) {
  test(`socket message equals the real server's: ${name}`, () => {
    const msg = parsed(raw);
    assert.equal(isSocketPing(msg), false);
    const bytes = encodeSocketMessage({ sendIdent, protocol }, connId, msg, { ...CTX, pattern: msg.path });
    assert.equal(bytes.toString('latin1'), expected);
  });
}

test('PATTERN is the configured route, PATH the message path; https shows as URL_SCHEME https', () => {
  const msg = parsed('@chat/room {"x":1}\0');
  const text = encodeSocketMessage({ sendIdent: 's', protocol: 'json' }, 7, msg, { pattern: '@chat', urlScheme: 'https', remoteAddr: '10.0.0.1' }).toString('latin1');
  assert.equal(text, 's 7 @chat/room 130:{"PATH":"@chat/room","x-forwarded-for":"10.0.0.1","METHOD":"JSON","PATTERN":"@chat","URL_SCHEME":"https","REMOTE_ADDR":"10.0.0.1"},7:{"x":1},');
});

test('pings the real server swallowed are pings; what it forwarded is not', () => {
  for (const raw of ['@chat {"type":"ping"}\0', '@chat {"type": "ping"}\0', '@a/b {"type":\t"ping"}\0', '@ {"type":"ping"}\0']) {
    assert.equal(isSocketPing(parsed(raw)), true, raw);
  }
  for (const raw of ['@chat {"type":\\sss"ping"}\0', '@Chat {"type":"ping"}\0', '@chat {"type":"pong"}\0', '@chat { "type":"ping"}\0', '@chat {"type":\xa0"ping"}\0']) {
    assert.equal(isSocketPing(parsed(raw)), false, raw);
  }
  const xml = parsed('<ping type="ping"/>\0');
  assert.equal(isSocketPing(xml), false, 'XML is never a ping');
});

test('replies: base64 of the body less one trailing NUL (captured: hello\\0 → aGVsbG8=, no NUL after); raw_payload: verbatim', () => {
  const body = Buffer.from('hello\0', 'latin1');
  assert.equal(socketReplyBytes(body, false).toString('latin1'), 'aGVsbG8=');
  assert.equal(socketReplyBytes(Buffer.from('hello'), false).toString('latin1'), 'aGVsbG8=');
  assert.equal(socketReplyBytes(Buffer.from('hi\0\0'), false).toString('latin1'), Buffer.from('hi\0').toString('base64'));
  assert.deepEqual(socketReplyBytes(body, true), body);
  assert.equal(socketReplyBytes(Buffer.alloc(0), false).length, 0);
});

test('the policy request is recognised by the parser and answered with the fixed document plus NUL', () => {
  const r = parseHead(Buffer.from('<policy-file-request/>\0'), 0);
  assert.equal(r.kind, 'policy');
  assert.ok(POLICY_RESPONSE.toString('latin1').startsWith('<?xml version="1.0"?><!DOCTYPE cross-domain-policy'));
  assert.equal(POLICY_RESPONSE[POLICY_RESPONSE.length - 1], 0);
});
