import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  buildCloseFrame,
  buildFrame,
  CloseCode,
  handshakeResponse,
  isSendableCloseCode,
  Opcode,
  parseClosePayload,
  parseFrame,
  websocketAccept,
} from '../../src/protocol/index.js';
import { assertEncodeError, assertProtocolError, bytes, cat } from './helpers.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('handshake', () => {
  test('websocketAccept matches RFC 6455 §1.3', () => {
    assert.equal(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  test('websocketAccept matches the captured Mongrel2 handshake (§6)', () => {
    assert.equal(websocketAccept('MDEyMzQ1Njc4OWFiY2RlZg=='), 'BACScCJPNqyz+UBoqMH89VmURoA=');
  });

  test('handshakeResponse is the 101 answer of echo.py', () => {
    assert.equal(
      handshakeResponse('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=').toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
    );
    assert.equal(
      handshakeResponse('abc=', 'chat').toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: chat\r\n\r\n',
    );
  });

  test('handshakeResponse refuses values that could split the response', () => {
    assertEncodeError(() => handshakeResponse('abc\r\nX: y'));
    assertEncodeError(() => handshakeResponse(''));
    assertEncodeError(() => handshakeResponse('abc=', 'chat\r\nX: y'));
    assertEncodeError(() => handshakeResponse('abc=', 'a b'));
  });
});

describe('buildFrame: exact bytes', () => {
  test("'hello' is \\x81\\x05hello (§6 captured)", () => {
    assert.equal(buildFrame('hello').toString('latin1'), '\x81\x05hello');
    assert.equal(buildFrame(Buffer.from('hello')).toString('latin1'), '\x81\x05hello');
  });

  const lengths: Array<[number, string]> = [
    [0, '8200'],
    [125, '827d'],
    [126, '827e007e'],
    [65535, '827effff'],
    [65536, '827f0000000000010000'],
  ];
  for (const [len, header] of lengths) {
    test(`${len}-byte binary payload has header ${header}`, () => {
      const payload = Buffer.alloc(len, 0xab);
      const frame = buildFrame(payload, { opcode: Opcode.Binary });
      assert.equal(hex(frame.subarray(0, header.length / 2)), header);
      assert.equal(frame.length, header.length / 2 + len);
      assert.ok(frame.subarray(header.length / 2).equals(payload));
    });
  }

  test('UTF-8 text is framed by byte length', () => {
    assert.equal(hex(buildFrame('é')), '8102c3a9');
  });

  test('fin, rsv and opcode bits', () => {
    assert.equal(hex(buildFrame('a', { fin: false })), '010161');
    assert.equal(hex(buildFrame('a', { opcode: Opcode.Continuation })), '800161');
    assert.equal(hex(buildFrame('a', { rsv: 4 })), 'c10161');
    assert.equal(hex(buildFrame('a', { rsv: 7, opcode: Opcode.Binary })), 'f20161');
    assert.equal(hex(buildFrame('', { opcode: Opcode.Ping })), '8900');
    assert.equal(hex(buildFrame('p', { opcode: Opcode.Pong })), '8a0170');
  });

  test('masked frames set the mask bit and XOR the payload with the key', () => {
    const frame = buildFrame('abcde', { mask: Buffer.from([1, 2, 3, 4]) });
    assert.equal(hex(frame), '8185' + '01020304' + '6060606064');
    const big = buildFrame(Buffer.alloc(126), { opcode: Opcode.Binary, mask: Buffer.from([0xff, 0, 0, 0]) });
    assert.equal(hex(big.subarray(0, 8)), '82fe007eff000000');
    assert.equal(big[8], 0xff);
    assert.equal(big[9], 0);
  });

  test('invalid opcodes, rsv and masks are refused', () => {
    for (const opcode of [3, 7, 11, 15, 16, -1, 1.5]) assertEncodeError(() => buildFrame('x', { opcode }), `opcode ${opcode}`);
    for (const rsv of [8, -1, 0.5]) assertEncodeError(() => buildFrame('x', { rsv }), `rsv ${rsv}`);
    for (const n of [0, 3, 5]) assertEncodeError(() => buildFrame('x', { mask: Buffer.alloc(n) }), `mask of ${n}`);
  });

  test('control frames over 125 bytes or without FIN are refused', () => {
    for (const opcode of [Opcode.Close, Opcode.Ping, Opcode.Pong]) {
      assert.equal(buildFrame(Buffer.alloc(125), { opcode }).length, 127);
      assertEncodeError(() => buildFrame(Buffer.alloc(126), { opcode }), `opcode ${opcode} 126 bytes`);
      assertEncodeError(() => buildFrame(Buffer.alloc(70000), { opcode }), `opcode ${opcode} 70000 bytes`);
      assertEncodeError(() => buildFrame('x', { opcode, fin: false }), `opcode ${opcode} without FIN`);
    }
  });
});

describe('close frames', () => {
  test('1000 is 88 02 03 e8', () => {
    assert.equal(hex(buildCloseFrame(1000)), '880203e8');
    assert.equal(hex(buildCloseFrame(CloseCode.Normal)), '880203e8');
  });

  test('code with a reason, and the empty close frame', () => {
    assert.equal(buildCloseFrame(1001, 'bye').toString('latin1'), '\x88\x05\x03\xe9bye');
    assert.equal(hex(buildCloseFrame()), '8800');
    assert.equal(hex(buildCloseFrame(4999)), '8802' + '1387');
    assert.equal(hex(buildCloseFrame(3000)), '8802' + '0bb8');
  });

  test('codes that may not be sent are refused: 1005, 1006, 999, 5000 and others', () => {
    for (const code of [1005, 1006, 999, 5000, 0, 1004, 1015, 2999, 1000.5, -1000]) {
      assertEncodeError(() => buildCloseFrame(code), String(code));
      assert.equal(isSendableCloseCode(code), false, String(code));
    }
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]) assert.equal(isSendableCloseCode(code), true, String(code));
  });

  test('reasons over 123 bytes are refused (byte length, not characters)', () => {
    assert.equal(buildCloseFrame(1000, 'a'.repeat(123)).length, 127);
    assertEncodeError(() => buildCloseFrame(1000, 'a'.repeat(124)));
    assertEncodeError(() => buildCloseFrame(1000, 'é'.repeat(62)), '124 bytes in 62 chars');
    assert.equal(buildCloseFrame(1000, 'é'.repeat(61) + 'a').length, 127);
  });

  test('a reason without a code is refused', () => {
    assertEncodeError(() => buildCloseFrame(undefined, 'why'));
  });

  test('parseClosePayload reads code and reason', () => {
    assert.deepStrictEqual(parseClosePayload(Buffer.alloc(0)), { reason: '' });
    assert.deepStrictEqual(parseClosePayload(bytes('\x03\xe8bye')), { code: 1000, reason: 'bye' });
    assert.deepStrictEqual(parseClosePayload(bytes('\x0f\xa0')), { code: 4000, reason: '' });
    assertProtocolError(() => parseClosePayload(bytes('\x03')));
  });

  test('close frames parse back to their code and reason', () => {
    const f = parseFrame(buildCloseFrame(1011, 'oops'));
    assert.ok(f);
    assert.equal(f.opcode, Opcode.Close);
    assert.deepStrictEqual(parseClosePayload(f.payload), { code: 1011, reason: 'oops' });
  });
});

describe('parseFrame', () => {
  test('parses an unmasked frame and reports the bytes it took', () => {
    const f = parseFrame(bytes('\x81\x05helloEXTRA'));
    assert.ok(f);
    assert.deepStrictEqual({ ...f, payload: f.payload.toString('latin1') }, { fin: true, rsv: 0, opcode: 1, masked: false, payload: 'hello', length: 7 });
  });

  test('unmasks a client frame (RFC 6455 §5.7 example)', () => {
    const f = parseFrame(Buffer.from('818537fa213d7f9f4d5158', 'hex'));
    assert.ok(f);
    assert.equal(f.payload.toString('latin1'), 'Hello');
    assert.equal(f.masked, true);
    assert.equal(f.length, 11);
  });

  test('does not modify its input when unmasking', () => {
    const input = Buffer.from('818537fa213d7f9f4d5158', 'hex');
    const copy = Buffer.from(input);
    parseFrame(input);
    assert.ok(input.equals(copy));
  });

  test('reads fin, rsv and opcode bits', () => {
    const f = parseFrame(Buffer.from('420161', 'hex'));
    assert.ok(f);
    assert.equal(f.fin, false);
    assert.equal(f.rsv, 4);
    assert.equal(f.opcode, 2);
  });

  test('16- and 64-bit lengths', () => {
    for (const len of [126, 65535, 65536]) {
      const payload = Buffer.alloc(len, len & 0xff);
      const f = parseFrame(buildFrame(payload, { opcode: Opcode.Binary }));
      assert.ok(f);
      assert.ok(f.payload.equals(payload));
      assert.equal(f.length, len + (len < 65536 ? 4 : 10));
    }
  });

  test('returns null for every strict prefix of a frame', () => {
    const frames = [
      buildFrame('hello'),
      buildFrame(''),
      buildFrame('hello', { mask: Buffer.from([9, 8, 7, 6]) }),
      buildFrame(Buffer.alloc(200, 1), { opcode: Opcode.Binary }),
      buildFrame(Buffer.alloc(200, 1), { opcode: Opcode.Binary, mask: Buffer.from([1, 2, 3, 4]) }),
      buildFrame(Buffer.alloc(65536, 2), { opcode: Opcode.Binary, mask: Buffer.from([1, 2, 3, 4]) }),
      buildCloseFrame(1000, 'bye'),
    ];
    for (const frame of frames) {
      for (let n = 0; n < frame.length; n++) {
        const r = parseFrame(frame.subarray(0, n));
        if (r !== null) assert.fail(`prefix of ${n}/${frame.length} bytes did not return null`);
      }
      assert.equal(parseFrame(frame)?.length, frame.length);
    }
  });

  test('refuses oversized or fragmented control frames and unknown opcodes', () => {
    assertProtocolError(() => parseFrame(Buffer.from('897e007e', 'hex')), undefined, 'ping with a 16-bit length');
    assertProtocolError(() => parseFrame(Buffer.from('88fe007e01020304', 'hex')), undefined, 'masked close of 126 bytes');
    assertProtocolError(() => parseFrame(Buffer.from('0900', 'hex')), undefined, 'ping without FIN');
    for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) assertProtocolError(() => parseFrame(Buffer.from([0x80 | opcode, 0])), undefined, `opcode ${opcode}`);
  });

  test('refuses payloads above maxPayload', () => {
    assertProtocolError(() => parseFrame(Buffer.from('827fffffffffffffffff', 'hex')), undefined, '2^64-1 bytes');
    assertProtocolError(() => parseFrame(Buffer.from('827f0000000004000001', 'hex')), undefined, '64 MiB + 1');
    assertProtocolError(() => parseFrame(Buffer.from('827e0010', 'hex'), 15), undefined, '16 bytes with maxPayload 15');
    assertProtocolError(() => parseFrame(Buffer.from('8210', 'hex'), 15), undefined, '7-bit 16 bytes with maxPayload 15');
    assert.equal(parseFrame(Buffer.from('827e0010', 'hex'), 16), null);
  });
});

describe('websocket properties', () => {
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.integer({ min: 65530, max: 65540 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
  );
  const mask = fc.uint8Array({ minLength: 4, maxLength: 4 });
  const dataOpcode = fc.constantFrom(Opcode.Continuation, Opcode.Text, Opcode.Binary);

  test('masked frames from buildFrame parse back to the same payload', () => {
    fc.assert(
      fc.property(payload, mask, dataOpcode, fc.boolean(), fc.integer({ min: 0, max: 7 }), (p, m, opcode, fin, rsv) => {
        const data = Buffer.from(p);
        const frame = buildFrame(data, { mask: Buffer.from(m), opcode, fin, rsv });
        const f = parseFrame(Buffer.concat([frame, Buffer.from('tail')]));
        assert.ok(f);
        assert.ok(f.payload.equals(data));
        assert.equal(f.masked, true);
        assert.equal(f.opcode, opcode);
        assert.equal(f.fin, fin);
        assert.equal(f.rsv, rsv);
        assert.equal(f.length, frame.length);
      }),
      { numRuns: 150 },
    );
  });

  test('unmasked frames round trip too, and control frames up to 125 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 125 }), fc.constantFrom(Opcode.Close, Opcode.Ping, Opcode.Pong), fc.option(mask, { nil: undefined }), (p, opcode, m) => {
        const data = Buffer.from(p);
        const frame = buildFrame(data, m === undefined ? { opcode } : { opcode, mask: Buffer.from(m) });
        const f = parseFrame(frame);
        assert.ok(f);
        assert.ok(f.payload.equals(data));
        assert.equal(f.masked, m !== undefined);
        assert.equal(f.length, frame.length);
      }),
      { numRuns: 150 },
    );
  });

  test('random strict prefixes of masked frames return null', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), mask, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (p, m, cut) => {
        const frame = buildFrame(Buffer.from(p), { mask: Buffer.from(m), opcode: Opcode.Binary });
        assert.equal(parseFrame(frame.subarray(0, Math.floor(cut * frame.length))), null);
      }),
      { numRuns: 200 },
    );
  });
});

describe('cross-check with the captured reply (§6)', () => {
  test('a handler reply carrying a text frame is passed through verbatim', () => {
    const reply = cat('UUID 1:1, ', buildFrame('hello'));
    assert.equal(reply.toString('latin1'), 'UUID 1:1, \x81\x05hello');
  });
});
