/**
 * Download flow control (download.flow_control=1) against the real Mongrel2
 * and our core, with our Connection pacing a 1 MB reply by credits: the
 * request carries DOWNLOAD_CREDITS "102400", the reply arrives intact, and
 * the credits notices are the captured shape and add up to what was written.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Connection } from '../../src/handler/connection.js';
import type { CreditsNotice } from '../../src/protocol/request.js';
import { rawHttp, startMongrel2, type Mongrel2HandlerInfo } from '../support/mongrel2.js';
import { startCore } from '../support/core.js';

interface Peer {
  httpPort: number;
  handler: Mongrel2HandlerInfo;
  stop(): Promise<void>;
}

const peers: Array<[string, () => Promise<Peer>]> = [
  ['real Mongrel2', () => startMongrel2({ flowControl: true })],
  ['our core', () => startCore({ settings: { 'download.flow_control': '1' } })],
];

const body = randomBytes(1024 * 1024);

for (const [name, start] of peers) {
  describe(`download flow control: ${name}`, { timeout: 60_000 }, () => {
    test('1 MB reply paced by credits arrives intact; notices as captured', async (t) => {
      const peer = await start();
      t.after(() => peer.stop());
      const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
      t.after(() => conn.shutdown(200));
      const notices: CreditsNotice[] = [];
      conn.on('credits', (n) => notices.push(n));
      let announced: unknown;
      const served = (async () => {
        for (;;) {
          const req = await conn.recv();
          if (!req) return;
          if (req.kind !== 'http') continue;
          announced = req.headers.DOWNLOAD_CREDITS;
          await conn.reply(req, Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
        }
      })();
      await conn.ready();
      let got: Buffer | undefined;
      // Bounded readiness poll: the first replies can be lost until the server's SUB has our subscription.
      for (let i = 0; i < 50 && !got; i++) {
        try {
          got = await rawHttp(peer.httpPort, 'GET /handler/big HTTP/1.1\r\nHost: localhost\r\n\r\n', {
            until: (b) => b.length >= body.length + 40 && b.indexOf('\r\n\r\n') >= 0 && b.length - (b.indexOf('\r\n\r\n') + 4) >= body.length,
            timeoutMs: 5000,
          });
        } catch {
          got = undefined;
        }
      }
      assert.ok(got, 'a full response');
      assert.equal(announced, '102400');
      const bodyAt = got.indexOf('\r\n\r\n') + 4;
      assert.equal(createHash('md5').update(got.subarray(bodyAt)).digest('hex'), createHash('md5').update(body).digest('hex'));
      assert.ok(notices.length > 0);
      for (const n of notices) {
        assert.equal(n.path, '@*');
        assert.deepEqual(Object.keys(n.headers), ['METHOD', 'DOWNLOAD_CREDITS']);
        assert.equal(n.body.toString(), '{"type":"credits"}');
      }
      const total = notices.reduce((a, n) => a + n.credits, 0);
      // The handler could only send what the first 102400 plus the returned credits allowed; returns never exceed what was written.
      const replyLength = got.length;
      assert.ok(total + 102400 >= replyLength, `credits returned (${total}) + 102400 cover the ${replyLength}-byte reply`);
      assert.ok(total <= replyLength, `credits returned (${total}) never exceed the bytes written (${replyLength})`);
      await conn.shutdown(200);
      await served;
    });
  });
}
