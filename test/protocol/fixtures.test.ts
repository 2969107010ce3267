/**
 * parseMessage against bytes captured from a real Mongrel2 1.13 (the fixture
 * directory), and against the captured examples quoted in handler-protocol.md.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeRequest,
  parseClosePayload,
  parseMessage,
  shouldClose,
  websocketAccept,
  type Message,
} from '../../src/protocol/index.js';
import { loadWireFixtures, WIRE_FIXTURE_DIR } from '../support/fixtures.js';
import { bytes, cat, expectKind, jsonMessage, plain, tnetMessage } from './helpers.js';

type Expectation =
  | { kind: 'http'; method: string; upload?: 'start' | 'done' }
  | { kind: 'disconnect' }
  | { kind: 'websocket'; flags: number; opcode: number }
  | { kind: 'websocket-handshake' };

const http = (method: string, upload?: 'start' | 'done'): Expectation => (upload ? { kind: 'http', method, upload } : { kind: 'http', method });
const disconnect: Expectation = { kind: 'disconnect' };

/** What each captured fixture must parse to. Every fixture in the directory must be listed. */
const EXPECTED: Record<string, Expectation> = {
  'chunked-done': http('POST', 'done'),
  'chunked-start': http('POST', 'start'),
  'disconnect-request': http('GET'),
  'disconnect-unknown-id': disconnect,
  disconnect: disconnect,
  'dup-headers': http('GET'),
  'get-query': http('GET'),
  'half-close-disconnect': disconnect,
  'half-close-request': http('GET'),
  head: http('HEAD'),
  'http10-get': http('GET'),
  'post-form': http('POST'),
  'tns-disconnect': disconnect,
  'tns-dup-headers': http('GET'),
  'tns-get-query': http('GET'),
  'tns-post-form': http('POST'),
  'upload-abort-disconnect': disconnect,
  'upload-abort-start': http('POST', 'start'),
  'upload-done': http('POST', 'done'),
  'upload-start': http('POST', 'start'),
  'ws-binary': { kind: 'websocket', flags: 0x82, opcode: 2 },
  'ws-close': { kind: 'websocket', flags: 0x88, opcode: 8 },
  'ws-handshake': { kind: 'websocket-handshake' },
  'ws-ping': { kind: 'websocket', flags: 0x89, opcode: 9 },
  'ws-text': { kind: 'websocket', flags: 0x81, opcode: 1 },
};

/**
 * Fixtures whose bytes encodeRequest reproduces exactly from the parsed
 * message. Checked by hand: no captured JSON header holds a control byte, a
 * non-ASCII byte or anything else JSON.stringify escapes differently from
 * Mongrel2 (which only escapes `"` and `\`), so all of them round-trip; the
 * tnetstring ones always must.
 */
const BYTE_EXACT = new Set(Object.keys(EXPECTED));

const fixtures = loadWireFixtures();

describe('captured wire fixtures', () => {
  test('the fixture directory holds exactly the expected captures', () => {
    assert.ok(fixtures.length > 0, `no *.bin fixtures found in ${WIRE_FIXTURE_DIR}`);
    assert.deepEqual(
      fixtures.map((f) => f.name),
      Object.keys(EXPECTED).sort(),
    );
  });

  for (const fx of fixtures) {
    describe(fx.name, () => {
      const expected = EXPECTED[fx.name];
      const isTnet = fx.name.startsWith('tns-');

      test('parses to the decoded sender, conn id, path, headers and body length', () => {
        assert.equal(fx.bin.length, fx.decoded.bytes, 'fixture .bin size matches its description');
        const m = parseMessage(fx.bin);
        assert.equal(m.sender, fx.decoded.sender);
        assert.equal(m.connId, Number(fx.decoded.conn_id));
        assert.equal(typeof m.connId, 'number');
        assert.equal(m.path, fx.decoded.path);
        assert.deepStrictEqual(plain(m.headers), fx.decoded.headers);
        // Header order is the wire order (needed to re-encode byte for byte).
        assert.deepStrictEqual(Object.keys(m.headers), Object.keys(fx.decoded.headers));
        assert.equal(m.body.length, fx.decoded.body_len);
        assert.ok(Buffer.isBuffer(m.body));
        assert.equal(m.protocol, isTnet ? 'tnetstring' : 'json');
        assert.equal(fx.decoded.socket.endsWith(`(protocol ${m.protocol})`), true, fx.decoded.socket);
      });

      test(`is classified as ${expected?.kind ?? '(unlisted)'}`, () => {
        assert.ok(expected, `fixture ${fx.name} has no expectation`);
        const m = parseMessage(fx.bin);
        assert.equal(m.kind, expected.kind);
        switch (expected.kind) {
          case 'http': {
            const r = expectKind(m, 'http');
            assert.equal(r.method, expected.method);
            if (expected.upload === undefined) {
              assert.equal(r.upload, undefined);
            } else if (expected.upload === 'start') {
              assert.deepStrictEqual(r.upload, { mode: 'file', phase: 'start', start: fx.decoded.headers['x-mongrel2-upload-start'] });
            } else {
              assert.deepStrictEqual(r.upload, {
                mode: 'file',
                phase: 'done',
                start: fx.decoded.headers['x-mongrel2-upload-start'],
                done: fx.decoded.headers['x-mongrel2-upload-done'],
              });
            }
            assert.equal(r.downloadCredits, undefined);
            break;
          }
          case 'disconnect': {
            expectKind(m, 'disconnect');
            assert.equal(m.path, '@*');
            assert.equal(m.body.toString('latin1'), '{"type":"disconnect"}');
            break;
          }
          case 'websocket': {
            const w = expectKind(m, 'websocket');
            assert.equal(w.flags, expected.flags);
            assert.equal(w.opcode, expected.opcode);
            assert.equal(w.rsv, 0);
            break;
          }
          case 'websocket-handshake': {
            const h = expectKind(m, 'websocket-handshake');
            assert.equal(h.accept, m.body.toString('latin1'));
            assert.equal(h.accept, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
            assert.equal(h.accept, websocketAccept(String(fx.decoded.headers['sec-websocket-key'])));
            break;
          }
        }
      });

      test(`shouldClose() is ${fx.name === 'http10-get'}`, () => {
        assert.equal(shouldClose(parseMessage(fx.bin)), fx.name === 'http10-get');
      });

      test(BYTE_EXACT.has(fx.name) ? 're-encodes byte for byte' : 're-encodes to an equivalent message', () => {
        const m = parseMessage(fx.bin);
        const again = encodeRequest({
          sender: m.sender,
          connId: m.connId,
          path: m.path,
          headers: Object.entries(m.headers),
          body: m.body,
          protocol: m.protocol,
        });
        if (BYTE_EXACT.has(fx.name)) assert.equal(again.toString('latin1'), fx.bin.toString('latin1'));
        else assert.notEqual(again.toString('latin1'), fx.bin.toString('latin1'), 'now round-trips exactly: add it to BYTE_EXACT');
        const reparsed = parseMessage(again);
        assert.deepStrictEqual(plain(reparsed.headers), plain(m.headers));
        assert.ok(reparsed.body.equals(m.body));
        assert.equal(reparsed.kind, m.kind);
      });
    });
  }

  test('websocket payloads are delivered unmasked and intact', () => {
    const byName = new Map(fixtures.map((f) => [f.name, parseMessage(f.bin)] as const));
    assert.equal(byName.get('ws-text')?.body.toString('utf8'), 'Hello ws');
    assert.equal(byName.get('ws-ping')?.body.toString('utf8'), 'ping');
    const close = byName.get('ws-close');
    assert.ok(close);
    assert.deepStrictEqual(parseClosePayload(close.body), { code: 1000, reason: '' });
    const bin = byName.get('ws-binary');
    assert.ok(bin);
    assert.equal(bin.body.length, 300);
    for (let i = 0; i < 300; i++) assert.equal(bin.body[i], i & 0xff, `ws-binary byte ${i}`);
    assert.equal(byName.get('post-form')?.body.toString('latin1'), 'name=alice&msg=hello+world%21&n=42');
    assert.equal(byName.get('tns-post-form')?.body.toString('latin1'), 'name=alice&msg=hello+world%21&n=42');
  });
});

describe('captured examples from handler-protocol.md', () => {
  test('§1.2 JSON headers with a raw TAB, escaped quotes and a duplicate header', () => {
    const json =
      '{"PATH":"/json","x-forwarded-for":"127.0.0.1","x-mongrel2-upload-done":"/etc/passwd","x-tab":"a\tb","x-quote":"say \\"hi\\" \\\\ ok","accept":["a/b","c/d"],"host":"localhost:16767","METHOD":"GET","VERSION":"HTTP/1.1","URI":"/json?x=1&y=%20z","QUERY":"x=1&y=%20z","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"}';
    const wire = bytes(`aaaa-json-ident 1 /json 322:${json},0:,`);
    assert.equal(Buffer.byteLength(json), 322);
    const m = expectKind(parseMessage(wire), 'http');
    assert.equal(m.headers['x-tab'], 'a\tb');
    assert.equal(m.headers['x-quote'], 'say "hi" \\ ok');
    assert.deepStrictEqual(m.headers.accept, ['a/b', 'c/d']);
    assert.equal(m.headers.QUERY, 'x=1&y=%20z');
    // The forged upload header is only a client header: no "start", so no upload state.
    assert.equal(m.upload, undefined);
    assert.equal(m.method, 'GET');
    assert.equal(m.body.length, 0);
  });

  test('a JSON header holding a raw TAB and raw 0xFF 0xFE bytes parses (TAB kept, bad UTF-8 replaced)', () => {
    const json = cat('{"PATH":"/json","x-tab":"a\tb","x-tab2":"v\t","x-bin":"\xff\xfe","x-ok":"caf\xc3\xa9","METHOD":"GET","VERSION":"HTTP/1.1"}');
    const wire = jsonMessage('aaaa-json-ident', 4, '/json', json);
    const m = expectKind(parseMessage(wire), 'http');
    assert.equal(m.headers['x-tab'], 'a\tb');
    assert.equal(m.headers['x-tab2'], 'v\t');
    assert.equal(m.headers['x-bin'], '\ufffd\ufffd');
    assert.equal(m.headers['x-ok'], 'café');
    assert.equal(m.connId, 4);
  });

  test('§1.2 keep-alive POST with a body', () => {
    const json =
      '{"PATH":"/json","x-forwarded-for":"127.0.0.1","connection":"close","content-length":"5","host":"localhost","METHOD":"POST","VERSION":"HTTP/1.1","URI":"/json","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"}';
    const m = expectKind(parseMessage(bytes(`aaaa-json-ident 1 /json 222:${json},5:hello,`)), 'http');
    assert.equal(m.body.toString('latin1'), 'hello');
    assert.equal(m.method, 'POST');
    assert.equal(shouldClose(m), true);
  });

  test('§1.3 TNET headers with FRAGMENT, QUERY and a duplicate header list', () => {
    const wire = bytes(
      'bbbb-tnet-ident 2 /tnet/abc 246:11:REMOTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tnet,8:FRAGMENT,4:frag,5:QUERY,3:q=1,3:URI,13:/tnet/abc?q=1,7:VERSION,8:HTTP/1.1,4:PATH,9:/tnet/abc,4:host,9:localhost,6:accept,8:1:a,1:b,]15:x-forwarded-for,9:127.0.0.1,}0:,',
    );
    const m = expectKind(parseMessage(wire), 'http');
    assert.equal(m.protocol, 'tnetstring');
    assert.equal(m.sender, 'bbbb-tnet-ident');
    assert.equal(m.connId, 2);
    assert.equal(m.path, '/tnet/abc');
    assert.equal(m.method, 'GET');
    assert.deepStrictEqual(plain(m.headers), {
      REMOTE_ADDR: '127.0.0.1',
      METHOD: 'GET',
      URL_SCHEME: 'http',
      PATTERN: '/tnet',
      FRAGMENT: 'frag',
      QUERY: 'q=1',
      URI: '/tnet/abc?q=1',
      VERSION: 'HTTP/1.1',
      PATH: '/tnet/abc',
      host: 'localhost',
      accept: ['a', 'b'],
      'x-forwarded-for': '127.0.0.1',
    });
    assert.equal(m.body.length, 0);
    const again = encodeRequest({ sender: m.sender, connId: m.connId, path: m.path, headers: Object.entries(m.headers), protocol: 'tnetstring' });
    assert.equal(again.toString('latin1'), wire.toString('latin1'));
  });

  test('§2.1 disconnect notices in JSON and TNET', () => {
    const j = expectKind(parseMessage(bytes('aaaa-json-ident 3 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},')), 'disconnect');
    assert.equal(j.connId, 3);
    assert.equal(j.protocol, 'json');
    const t = expectKind(parseMessage(bytes('bbbb-tnet-ident 2 @* 16:6:METHOD,4:JSON,}21:{"type":"disconnect"},')), 'disconnect');
    assert.equal(t.connId, 2);
    assert.equal(t.protocol, 'tnetstring');
    assert.equal(shouldClose(t), false);
  });

  test('§2.2 credits notices in JSON and TNET carry the credit count', () => {
    const j = expectKind(parseMessage(bytes('aaaa-json-ident 1 @* 43:{"METHOD":"JSON","DOWNLOAD_CREDITS":"1000"},18:{"type":"credits"},')), 'credits');
    assert.equal(j.credits, 1000);
    assert.equal(j.connId, 1);
    const t = expectKind(parseMessage(bytes('bbbb-tnet-ident 2 @* 44:16:DOWNLOAD_CREDITS,5:12345,6:METHOD,4:JSON,}18:{"type":"credits"},')), 'credits');
    assert.equal(t.credits, 12345);
    assert.equal(t.protocol, 'tnetstring');
  });

  test('an @* notice of an unknown type is kind "notice"', () => {
    const m = expectKind(parseMessage(jsonMessage('s', 1, '@*', '{"METHOD":"JSON"}', '{"type":"written"}')), 'notice');
    assert.equal(m.type, 'written');
  });

  test('§5.1 captured upload-done message', () => {
    const json =
      '{"PATH":"/json","x-forwarded-for":"127.0.0.1","x-mongrel2-upload-done":"/tmp/upload.VHu9fn","content-length":"5000","host":"x","x-mongrel2-upload-start":"/tmp/upload.VHu9fn","METHOD":"POST","VERSION":"HTTP/1.1","URI":"/json","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"}';
    const m = expectKind(parseMessage(bytes(`aaaa-json-ident 1 /json 289:${json},0:,`)), 'http');
    assert.deepStrictEqual(m.upload, { mode: 'file', phase: 'done', start: '/tmp/upload.VHu9fn', done: '/tmp/upload.VHu9fn' });
  });

  test('§5.2 first streaming-upload message is http with upload.mode "stream"', () => {
    const json = '{"PATH":"/json","UPLOAD_STREAM":"0","x-forwarded-for":"127.0.0.1","content-length":"5120","METHOD":"POST","VERSION":"HTTP/1.1"}';
    const m = expectKind(parseMessage(jsonMessage('aaaa-json-ident', 1, '/json', json, Buffer.alloc(100, 0x61))), 'http');
    assert.deepStrictEqual(m.upload, { mode: 'stream', offset: 0, done: false });
    const done = '{"PATH":"/json","UPLOAD_STREAM":"0","UPLOAD_STREAM_DONE":"1","content-length":"3","METHOD":"POST","VERSION":"HTTP/1.1"}';
    const d = expectKind(parseMessage(jsonMessage('aaaa-json-ident', 1, '/json', done, 'abc')), 'http');
    assert.deepStrictEqual(d.upload, { mode: 'stream', offset: 0, done: true });
  });

  test('§5.2 JSON streaming-upload continuations are upload-chunk messages', () => {
    const chunk = Buffer.alloc(1024, 0x7a);
    const a = expectKind(parseMessage(cat('aaaa-json-ident 1 /json 23:{"UPLOAD_STREAM":"100"},1024:', chunk, ',')), 'upload-chunk');
    assert.equal(a.offset, 100);
    assert.equal(a.done, false);
    assert.ok(a.body.equals(chunk));
    assert.equal(a.path, '/json');
    const b = expectKind(parseMessage(cat('aaaa-json-ident 1 /json 24:{"UPLOAD_STREAM":"1124"},976:', Buffer.alloc(976, 1), ',')), 'upload-chunk');
    assert.equal(b.offset, 1124);
    assert.equal(b.done, false);
    const last = expectKind(parseMessage(cat('aaaa-json-ident 1 /json 49:{"UPLOAD_STREAM":"4148","UPLOAD_STREAM_DONE":"1"},972:', Buffer.alloc(972, 2), ',')), 'upload-chunk');
    assert.equal(last.offset, 4148);
    assert.equal(last.done, true);
    assert.equal(last.body.length, 972);
    assert.equal(shouldClose(last), false);
  });

  test('§5.2 TNET streaming-upload continuations are upload-chunk messages', () => {
    const a = expectKind(parseMessage(bytes('bbbb-tnet-ident 2 /tnet 21:13:UPLOAD_STREAM,1:0,}5:hello,')), 'upload-chunk');
    assert.equal(a.offset, 0);
    assert.equal(a.done, false);
    assert.equal(a.body.toString('latin1'), 'hello');
    const b = expectKind(parseMessage(bytes('bbbb-tnet-ident 2 /tnet 47:18:UPLOAD_STREAM_DONE,1:1,13:UPLOAD_STREAM,1:5,}0:,')), 'upload-chunk');
    assert.equal(b.offset, 5);
    assert.equal(b.done, true);
    assert.equal(b.body.length, 0);
    assert.equal(b.protocol, 'tnetstring');
  });

  test('§6 captured websocket handshake: accept is the body and matches websocketAccept(key)', () => {
    const json =
      '{"PATH":"/ws","x-forwarded-for":"127.0.0.1","origin":"http://x","connection":"keep-alive, Upgrade","sec-websocket-version":"13","sec-websocket-key":"MDEyMzQ1Njc4OWFiY2RlZg==","host":"localhost","upgrade":"WebSocket","METHOD":"WEBSOCKET_HANDSHAKE","VERSION":"HTTP/1.1","URI":"/ws?a=b","QUERY":"a=b","PATTERN":"/ws","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"}';
    const m = expectKind(parseMessage(bytes(`aaaa-json-ident 3 /ws 360:${json},28:BACScCJPNqyz+UBoqMH89VmURoA=,`)), 'websocket-handshake');
    assert.equal(m.accept, 'BACScCJPNqyz+UBoqMH89VmURoA=');
    assert.equal(websocketAccept('MDEyMzQ1Njc4OWFiY2RlZg=='), m.accept);
    assert.equal(shouldClose(m), false);
  });

  test('§6 FLAGS with RSV1 (0xC1) give opcode 1 and rsv 4', () => {
    const m = expectKind(parseMessage(jsonMessage('s', 9, '/ws', '{"PATH":"/ws","FLAGS":"0xC1","METHOD":"WEBSOCKET"}', 'x')), 'websocket');
    assert.equal(m.flags, 0xc1);
    assert.equal(m.opcode, 1);
    assert.equal(m.rsv, 4);
    const pong = expectKind(parseMessage(jsonMessage('s', 9, '/ws', '{"PATH":"/ws","FLAGS":"0x8A","METHOD":"WEBSOCKET"}', '')), 'websocket');
    assert.equal(pong.opcode, 10);
  });

  test('§7 DOWNLOAD_CREDITS on an HTTP request becomes downloadCredits', () => {
    const m = expectKind(parseMessage(jsonMessage('s', 1, '/', '{"PATH":"/","DOWNLOAD_CREDITS":"102400","METHOD":"GET","VERSION":"HTTP/1.1"}')), 'http');
    assert.equal(m.downloadCredits, 102400);
  });

  test('§8 captured JSSocket message is kind "socket"', () => {
    const json = '{"PATH":"@chat","x-forwarded-for":"127.0.0.1","METHOD":"JSON","PATTERN":"@chat","URL_SCHEME":"http","REMOTE_ADDR":"127.0.0.1"}';
    const m = expectKind(parseMessage(bytes(`aaaa-json-ident 1 @chat 126:${json},28:{"type":"join","user":"zed"},`)), 'socket');
    assert.equal(m.method, 'JSON');
    assert.equal(m.path, '@chat');
    assert.equal(m.body.toString('latin1'), '{"type":"join","user":"zed"}');
    assert.equal(shouldClose(m), false);
  });

  test('§8 XML socket message is kind "socket" with method XML', () => {
    const m = expectKind(parseMessage(jsonMessage('s', 2, '<msg', '{"PATH":"<msg","METHOD":"XML"}', '<msg a="1">hi</msg>')), 'socket');
    assert.equal(m.method, 'XML');
  });
});

describe('shouldClose', () => {
  const request = (version: string, connection?: string | string[]): Message => {
    const headers: Array<[string, string | string[]]> = [['PATH', '/']];
    if (connection !== undefined) headers.push(['connection', connection]);
    headers.push(['METHOD', 'GET'], ['VERSION', version]);
    return parseMessage(tnetMessage('s', 1, '/', headers));
  };

  test('HTTP/1.0 must be closed', () => {
    assert.equal(shouldClose(request('HTTP/1.0')), true);
  });

  test("'Connection: close' must be closed", () => {
    assert.equal(shouldClose(request('HTTP/1.1', 'close')), true);
  });

  test("'Connection: Keep-Alive, Close' must be closed (any case, any position)", () => {
    assert.equal(shouldClose(request('HTTP/1.1', 'Keep-Alive, Close')), true);
    assert.equal(shouldClose(request('HTTP/1.1', ['keep-alive', 'CLOSE'])), true);
  });

  test('plain HTTP/1.1 (with or without keep-alive) stays open', () => {
    assert.equal(shouldClose(request('HTTP/1.1')), false);
    assert.equal(shouldClose(request('HTTP/1.1', 'keep-alive')), false);
    assert.equal(shouldClose(request('HTTP/1.1', 'closed, upgrade')), false);
  });

  test('also works on JSON-header requests', () => {
    const close = parseMessage(jsonMessage('s', 1, '/', '{"PATH":"/","connection":"Keep-Alive, Close","METHOD":"GET","VERSION":"HTTP/1.1"}'));
    assert.equal(shouldClose(close), true);
    const open = parseMessage(jsonMessage('s', 1, '/', '{"PATH":"/","connection":"keep-alive","METHOD":"GET","VERSION":"HTTP/1.1"}'));
    assert.equal(shouldClose(open), false);
  });
});
