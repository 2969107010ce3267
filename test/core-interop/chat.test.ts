/**
 * examples/chat (the manual's chat demo on websockets) through OUR core, with
 * two `ws` clients: join, presence, a message to everyone, and a leave
 * (close frame) and a vanish (disconnect notice) seen by the one who stays.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { pino } from 'pino';
import WebSocket from 'ws';
import { start, type ChatDemo } from '../../examples/chat/handler.js';
import { startCore, type CorePeer } from '../support/core.js';

let peer: CorePeer;
let demo: ChatDemo;
const clients: WebSocket[] = [];

before(async () => {
  peer = await startCore({ rootRoute: true });
  demo = start({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: pino({ level: 'silent' }) });
  await demo.ready();
});

after(async () => {
  for (const ws of clients) ws.terminate();
  await demo?.stop();
  await peer?.stop();
});

type Msg = Record<string, unknown>;

/** Every JSON message a client receives, with a waiter for the next one matching. */
function inbox(ws: WebSocket): (pick: (m: Msg) => boolean) => Promise<Msg> {
  const got: Msg[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data: Buffer) => {
    got.push(JSON.parse(data.toString()) as Msg);
    for (const w of waiters.splice(0)) w();
  });
  return async (pick) => {
    for (;;) {
      const i = got.findIndex(pick);
      if (i >= 0) return got.splice(i, 1)[0]!;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
}

async function join(nick: string): Promise<{ ws: WebSocket; next: (pick: (m: Msg) => boolean) => Promise<Msg> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/chat/ws`);
  clients.push(ws);
  const next = inbox(ws);
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'join', nick }));
  return { ws, next };
}

test('two clients: presence, a message, a leave and a vanish', { timeout: 20_000 }, async () => {
  const alice = await join('alice');
  assert.deepEqual(await alice.next((m) => m.type === 'welcome'), { type: 'welcome', nick: 'alice', users: ['alice'] });
  const bob = await join('bob');
  assert.deepEqual(await bob.next((m) => m.type === 'welcome'), { type: 'welcome', nick: 'bob', users: ['alice', 'bob'] });
  assert.deepEqual(await alice.next((m) => m.type === 'join'), { type: 'join', nick: 'bob', users: ['alice', 'bob'] });

  bob.ws.send(JSON.stringify({ type: 'msg', text: 'hi alice' }));
  const said = { type: 'msg', nick: 'bob', text: 'hi alice' };
  assert.deepEqual(await alice.next((m) => m.type === 'msg'), said);
  assert.deepEqual(await bob.next((m) => m.type === 'msg'), said);

  bob.ws.close(1000);
  const [code] = (await once(bob.ws, 'close')) as [number];
  assert.equal(code, 1000);
  assert.deepEqual(await alice.next((m) => m.type === 'leave'), { type: 'leave', nick: 'bob', users: ['alice'] });

  // A client that just goes away: the core's disconnect notice makes it leave.
  const carol = await join('carol');
  await carol.next((m) => m.type === 'welcome');
  await alice.next((m) => m.type === 'join');
  carol.ws.terminate();
  assert.deepEqual(await alice.next((m) => m.type === 'leave'), { type: 'leave', nick: 'carol', users: ['alice'] });
});
