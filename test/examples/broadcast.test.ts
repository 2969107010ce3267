/**
 * examples/broadcast.ts behind the real Mongrel2: 128 long-poll clients all
 * get one message, and a tap between the handler and Mongrel2 shows it
 * crossed the wire as ONE reply carrying 128 connection ids.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { XPublisher, XSubscriber } from 'zeromq';
import { startMongrel2, rawHttp, untilCompleteResponse, type Mongrel2Peer } from '../support/mongrel2.js';
import { start, type BroadcastDemo } from '../../examples/broadcast.js';

const silent = pino({ level: 'silent' });

interface Seen {
  ids: number[];
  body: Buffer;
}

/**
 * A forwarder on the reply path: the demo publishes to us, we publish to
 * Mongrel2, and Mongrel2's subscription travels back the other way. Every
 * reply is recorded with its target list.
 */
async function tapReplies(recvSpec: string): Promise<{ spec: string; seen: Seen[]; close(): void }> {
  const fromHandler = new XSubscriber();
  const toServer = new XPublisher();
  fromHandler.linger = 0;
  toServer.linger = 0;
  await fromHandler.bind('tcp://127.0.0.1:*');
  toServer.connect(recvSpec);
  const seen: Seen[] = [];
  void (async () => {
    for await (const [sub] of toServer) if (sub) await fromHandler.send(sub);
  })().catch(() => undefined);
  void (async () => {
    for await (const [msg] of fromHandler) {
      if (!msg) continue;
      const m = /^[A-Za-z0-9-]+ (\d+):/.exec(msg.toString('latin1', 0, 64));
      if (m) {
        const start = msg.indexOf(':') + 1;
        const end = start + Number(m[1]);
        seen.push({ ids: msg.toString('latin1', start, end).split(' ').map(Number), body: msg.subarray(end + 2) });
      }
      await toServer.send(msg);
    }
  })().catch(() => undefined);
  return { spec: fromHandler.lastEndpoint!, seen, close: () => (fromHandler.close(), toServer.close()) };
}

describe('broadcast behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let demo: BroadcastDemo;
  let tap: Awaited<ReturnType<typeof tapReplies>>;
  let onWaiting: ((n: number) => void) | undefined;
  const waitingReaches = (n: number): Promise<void> =>
    new Promise((resolve) => {
      onWaiting = (count) => count === n && resolve();
      if (demo.waiting().length === n) resolve();
    });

  before(async () => {
    peer = await startMongrel2();
    tap = await tapReplies(peer.handler.recvSpec);
    demo = start({ sendSpec: peer.handler.sendSpec, recvSpec: tap.spec, logger: silent, onWaiting: (n) => onWaiting?.(n) });
    await demo.ready();
  });

  after(async () => {
    await demo?.stop();
    tap?.close();
    await peer?.stop();
  });

  const waitAll = (n: number): Array<Promise<Buffer>> =>
    Array.from({ length: n }, () => rawHttp(peer.httpPort, 'GET /handler/wait HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse(), timeoutMs: 10_000 }));

  const post = async (text: string): Promise<{ clients: number; messages: number }> => {
    const raw = (await rawHttp(peer.httpPort, `POST /handler/send HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`, { until: untilCompleteResponse() })).toString();
    return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { clients: number; messages: number };
  };

  test('128 waiting clients all get the message, sent as one reply', async () => {
    const clients = waitAll(128);
    await waitingReaches(128);
    tap.seen.length = 0;
    assert.deepEqual(await post('hello, all 128 of you\n'), { clients: 128, messages: 1 });
    for (const raw of await Promise.all(clients)) {
      const text = raw.toString();
      assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(text.endsWith('\r\n\r\nhello, all 128 of you\n'), text);
    }
    const broadcasts = tap.seen.filter((s) => s.body.includes('hello, all 128 of you'));
    assert.equal(broadcasts.length, 1, 'one reply on the wire');
    assert.equal(new Set(broadcasts[0]!.ids).size, 128);
    assert.deepEqual(demo.waiting(), []);
  });

  test('200 clients take two replies (128 + 72)', async () => {
    const clients = waitAll(200);
    await waitingReaches(200);
    tap.seen.length = 0;
    assert.deepEqual(await post('round two'), { clients: 200, messages: 2 });
    const bodies = await Promise.all(clients);
    assert.ok(bodies.every((b) => b.toString().endsWith('\r\n\r\nround two')));
    const sizes = tap.seen.filter((s) => s.body.includes('round two') && s.body.toString().startsWith('HTTP/1.1 200')).map((s) => s.ids.length);
    assert.deepEqual(sizes.sort((a, b) => b - a), [128, 72]);
  });

  test('a client that leaves is no longer waiting (disconnect notice)', async () => {
    const sock = net.connect(peer.httpPort, '127.0.0.1');
    await once(sock, 'connect');
    sock.write('GET /handler/wait HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await waitingReaches(1);
    const gone = waitingReaches(0);
    sock.destroy();
    await gone;
    assert.deepEqual(demo.waiting(), []);
  });
});
