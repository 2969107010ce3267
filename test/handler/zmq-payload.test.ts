/**
 * zmqPayload: a frame over zeromq.js's copy threshold goes as a string only
 * when that string's UTF-8 bytes are exactly the frame's bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pull, Push } from 'zeromq';
import { zmqPayload } from '../../src/handler/zmq-payload.js';

test('small frames and frames with non-ASCII bytes stay Buffers; long ASCII frames become latin1 strings', () => {
  const small = Buffer.from('x'.repeat(128));
  assert.equal(zmqPayload(small), small);
  const ascii = Buffer.from('a'.repeat(129));
  assert.equal(zmqPayload(ascii), 'a'.repeat(129));
  const binary = Buffer.concat([Buffer.from('a'.repeat(200)), Buffer.from([0x80])]);
  assert.equal(zmqPayload(binary), binary);
  const nul = Buffer.concat([Buffer.alloc(200), Buffer.from('z')]);
  assert.equal(zmqPayload(nul), '\0'.repeat(200) + 'z');
});

test('what arrives is byte for byte the frame, whichever form was sent', async (t) => {
  const pull = new Pull({ linger: 0 });
  const push = new Push({ linger: 0 });
  t.after(() => {
    pull.close();
    push.close();
  });
  await pull.bind('tcp://127.0.0.1:*');
  push.connect(pull.lastEndpoint!);
  const frames = [
    Buffer.from('short'),
    Buffer.from(`UUID 7 /path 20:{"PATH":"/path"},0:,${'x'.repeat(300)}`),
    Buffer.from(Array.from({ length: 1000 }, (_v, i) => i % 128)),
    Buffer.from(Array.from({ length: 1000 }, (_v, i) => i % 256)),
  ];
  for (const f of frames) await push.send(zmqPayload(f));
  for (const f of frames) {
    const [got] = await pull.receive();
    assert.deepEqual(got, f);
  }
});
