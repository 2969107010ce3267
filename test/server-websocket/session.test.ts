/**
 * Websocket handler messages byte for byte against the real Mongrel2
 * captures (ws-handshake, ws-text, ws-binary, ws-ping, ws-close: same sender,
 * conn id and peer address, so nothing needs normalising), and the session's
 * behaviour with a fake host: pings and close frames go to the handler,
 * protocol errors send a close frame and close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadWireFixtures } from '../support/fixtures.js';
import { buildFrame, Opcode, parseClosePayload, parseFrame } from '../../src/protocol/websocket.js';
import { handshakeAccept, isWebSocketUpgrade } from '../../src/server/websocket/handshake.js';
import { flagsText, WebSocketMessages } from '../../src/server/websocket/messages.js';
import { WebSocketSession } from '../../src/server/websocket/session.js';
import { captureUpgrade, fakeHost, requestParts } from './helpers.js';
import { parseHead, type RequestHead } from '../../src/server/http/request-parser.js';

const fixtures = loadWireFixtures();
const fixture = (name: string): Buffer => {
  const fx = fixtures.find((f) => f.name === name);
  assert.ok(fx, `fixture ${name}`);
  return fx.bin;
};
const SENDER = 'a8d6a5b8-6f2c-4e51-9e57-0c5b0f0d1a01';
const CONN = 15;

function session(protocol: 'json' | 'tnetstring' = 'json', maxMessage = 1 << 20): { s: WebSocketSession; host: ReturnType<typeof fakeHost>; accept: string; leftover: Buffer } {
  const { raw, head, end } = captureUpgrade();
  const { table, facts } = requestParts(head, '/handlertest');
  const host = fakeHost();
  const s = new WebSocketSession(host, new WebSocketMessages({ sendIdent: SENDER, protocol }, CONN, facts, table), { maxMessage, connId: CONN });
  return { s, host, accept: handshakeAccept(head), leftover: raw.subarray(end) };
}

const mask = (seed: number): Buffer => Buffer.from([seed, seed ^ 0x5a, 0x21, 0x3d]);
const CLIENT_TEXT = Buffer.from('818837fa213d7f9f4d5158da564e', 'hex'); // the captured frame
const CLIENT_BINARY = buildFrame(Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)), { opcode: Opcode.Binary, mask: mask(1) });
const CLIENT_PING = buildFrame('ping', { opcode: Opcode.Ping, mask: mask(2) });
const CLIENT_CLOSE = Buffer.from('888237fa213d3412', 'hex'); // the captured close (1000)

test('the captured upgrade is a websocket upgrade; variants follow Mongrel2 rule', () => {
  const { head } = captureUpgrade();
  assert.ok(isWebSocketUpgrade(head));
  const withHeaders = (headers: Array<[string, string]>): RequestHead => ({ ...head, headers });
  const base: Array<[string, string]> = [
    ['Host', 'x'],
    ['Upgrade', 'WebSocket'],
    ['Connection', 'keep-alive, Upgrade'],
    ['Sec-WebSocket-Key', 'k'],
    ['Sec-WebSocket-Version', '99'],
  ];
  assert.ok(isWebSocketUpgrade(withHeaders(base)), 'any case, any version value (as captured)');
  for (const drop of ['Host', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Upgrade', 'Connection']) {
    assert.equal(isWebSocketUpgrade(withHeaders(base.filter(([k]) => k !== drop))), false, `without ${drop}`);
  }
  assert.equal(isWebSocketUpgrade(withHeaders(base.map(([k, v]) => [k, k === 'Upgrade' ? 'h2c' : v]))), false);
  assert.equal(isWebSocketUpgrade(withHeaders(base.map(([k, v]) => [k, k === 'Connection' ? 'keep-alive' : v]))), false);
});

test('WEBSOCKET_HANDSHAKE message equals the capture (accept key in the body)', () => {
  const { s, host, accept, leftover } = session();
  assert.equal(accept, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(leftover.length, 0);
  assert.ok(s.start(accept));
  assert.equal(host.toHandler.length, 1);
  assert.equal(host.toHandler[0]!.toString('latin1'), fixture('ws-handshake').toString('latin1'));
});

test('text, binary, ping and close frames become the captured WEBSOCKET messages (FLAGS among the headers)', () => {
  const { s, host, accept } = session();
  s.start(accept);
  s.receive(Buffer.concat([CLIENT_TEXT, CLIENT_BINARY, CLIENT_PING, CLIENT_CLOSE]));
  const got = host.toHandler.slice(1).map((b) => b.toString('latin1'));
  assert.deepEqual(got, ['ws-text', 'ws-binary', 'ws-ping', 'ws-close'].map((n) => fixture(n).toString('latin1')));
  assert.deepEqual(host.toClient, [], 'Mongrel2 answers neither ping nor close: the handler does');
  assert.equal(host.closed, 0);
});

test('the same frames split at every byte give the same messages', () => {
  const input = Buffer.concat([CLIENT_TEXT, CLIENT_BINARY, CLIENT_PING, CLIENT_CLOSE]);
  const { s, host } = session();
  for (let i = 0; i < input.length; i++) s.receive(input.subarray(i, i + 1));
  assert.deepEqual(
    host.toHandler.map((b) => b.toString('latin1')),
    ['ws-text', 'ws-binary', 'ws-ping', 'ws-close'].map((n) => fixture(n).toString('latin1')),
  );
});

test('a fragmented message reaches the handler once, FLAGS of its first frame; a ping between goes first', () => {
  const { s, host } = session();
  s.receive(Buffer.concat([buildFrame('Hel', { opcode: Opcode.Text, fin: false, mask: mask(3) }), buildFrame('pingdata', { opcode: Opcode.Ping, mask: mask(4) }), buildFrame('lo ws', { opcode: Opcode.Continuation, mask: mask(5) })]));
  assert.equal(host.toHandler.length, 2);
  const ping = host.toHandler[0]!.toString('latin1');
  assert.match(ping, /"FLAGS":"0x89"/);
  assert.ok(ping.endsWith('8:pingdata,'));
  assert.equal(host.toHandler[1]!.toString('latin1'), fixture('ws-text').toString('latin1'));
});

test('TNET handlers get the same headers as a tnetstring dict, FLAGS included', () => {
  const { s, host } = session('tnetstring');
  s.receive(CLIENT_TEXT);
  const msg = host.toHandler[0]!.toString('latin1');
  assert.ok(msg.startsWith(`${SENDER} ${CONN} /handlertest/ws `));
  assert.match(msg, /5:FLAGS,4:0x81,/);
  assert.match(msg, /6:METHOD,9:WEBSOCKET,/);
  assert.ok(msg.endsWith('}8:Hello ws,'));
});

function closeSent(host: ReturnType<typeof fakeHost>): { code?: number; reason: string } {
  assert.equal(host.toClient.length, 1);
  const frame = parseFrame(host.toClient[0]!);
  assert.ok(frame);
  assert.equal(frame.opcode, Opcode.Close);
  assert.equal(frame.masked, false);
  return parseClosePayload(frame.payload);
}

test('an unmasked client frame: close frame 1002 to the client, then close (the host sends the disconnect notice)', () => {
  const { s, host } = session();
  s.receive(Buffer.concat([CLIENT_TEXT, buildFrame('plain'), CLIENT_TEXT]));
  assert.equal(host.toHandler.length, 1, 'frames before the error are delivered, none after');
  assert.deepEqual(closeSent(host), { code: 1002, reason: 'protocol error' });
  assert.equal(host.closed, 1);
  s.receive(CLIENT_TEXT);
  assert.equal(host.toHandler.length, 1, 'nothing after the error');
  assert.equal(host.closed, 1);
});

test('a message over the limit: close frame 1009, then close', () => {
  const { s, host } = session('json', 100);
  s.receive(buildFrame(Buffer.alloc(101), { opcode: Opcode.Binary, mask: mask(6) }));
  assert.deepEqual(closeSent(host), { code: 1009, reason: 'message too big' });
  assert.equal(host.closed, 1);
  assert.equal(host.toHandler.length, 0);
});

test('a full handler queue: close frame 1011, then close', () => {
  const { s, host } = session();
  host.handlerRoom = 1;
  s.receive(Buffer.concat([CLIENT_TEXT, CLIENT_TEXT, CLIENT_TEXT]));
  assert.equal(host.toHandler.length, 1);
  assert.deepEqual(closeSent(host), { code: 1011, reason: 'handler unavailable' });
  assert.equal(host.closed, 1);
});

test('handler replies pass to the client verbatim', () => {
  const { s, host } = session();
  const reply = Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello', 'latin1');
  assert.ok(s.deliver(reply));
  assert.deepEqual(host.toClient, [reply]);
});

test('FLAGS text is C "0x%X"', () => {
  assert.equal(flagsText(0x81), '0x81');
  assert.equal(flagsText(0x8a), '0x8A');
  assert.equal(flagsText(0xc1), '0xC1');
});

/** Captured from the real Mongrel2 (Debian 1.12.2) with a tnetstring handler 'bbbb-tnet-ident' on route '/tws', conn 3. */
const TNET_HEADERS = (method: string, flags?: string): string =>
  `11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,${method.length}:${method},10:URL_SCHEME,4:http,7:PATTERN,4:/tws,5:QUERY,3:q=1,3:URI,10:/tws/x?q=1,7:VERSION,8:HTTP/1.1,4:PATH,6:/tws/x,7:upgrade,9:websocket,4:host,9:localhost,17:sec-websocket-key,24:dGhlIHNhbXBsZSBub25jZQ==,21:sec-websocket-version,2:13,10:connection,7:Upgrade,${flags === undefined ? '' : `5:FLAGS,4:${flags},`}15:x-forwarded-for,9:127.0.0.1,`;
const tnetMessage = (method: string, body: string, flags?: string): string => {
  const headers = TNET_HEADERS(method, flags);
  return `bbbb-tnet-ident 3 /tws/x ${headers.length}:${headers}}${body.length}:${body},`;
};

test('TNET: handshake, a ping inside a fragmented RSV1 message, and a 1-byte close equal the real server (FLAGS 0x89, 0xC1, 0x88)', () => {
  const upgrade = 'GET /tws/x?q=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  const r = parseHead(Buffer.from(upgrade, 'latin1'), 0);
  assert.equal(r.kind, 'request');
  const { table, facts } = requestParts(r.head, '/tws');
  const host = fakeHost();
  const s = new WebSocketSession(host, new WebSocketMessages({ sendIdent: 'bbbb-tnet-ident', protocol: 'tnetstring' }, 3, facts, table), { maxMessage: 1 << 20, connId: 3 });
  s.start(handshakeAccept(r.head));
  const m = Buffer.from([1, 2, 3, 4]);
  s.receive(
    Buffer.concat([
      buildFrame('He', { opcode: Opcode.Text, fin: false, rsv: 4, mask: m }),
      buildFrame('pingdata', { opcode: Opcode.Ping, mask: m }),
      buildFrame('llo', { opcode: Opcode.Continuation, fin: false, mask: m }),
      buildFrame(' ws', { opcode: Opcode.Continuation, mask: m }),
      buildFrame(Buffer.from([3]), { opcode: Opcode.Close, mask: m }),
    ]),
  );
  assert.deepEqual(
    host.toHandler.map((b) => b.toString('latin1')),
    [tnetMessage('WEBSOCKET_HANDSHAKE', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='), tnetMessage('WEBSOCKET', 'pingdata', '0x89'), tnetMessage('WEBSOCKET', 'Hello ws', '0xC1'), tnetMessage('WEBSOCKET', '\x03', '0x88')],
  );
});
