/**
 * examples/chat in a real browser: headless Chromium (Debian's) driven by
 * playwright-core, against the chat handler behind the real Mongrel2.
 * Two pages join, see each other, talk, and one leaves. Plus the parts a
 * browser cannot show: pings, bad frames, and a wrong nickname.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { pino } from 'pino';
import WebSocket from 'ws';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startMongrel2, rawHttp, untilCompleteResponse, type Mongrel2Peer } from '../support/mongrel2.js';
import { start, type ChatDemo } from '../../examples/chat/handler.js';

const silent = pino({ level: 'silent' });
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Waits for the next JSON message on a ws client that satisfies `pick`. */
function nextMessage(ws: WebSocket, pick: (m: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const m = JSON.parse(data.toString()) as Record<string, unknown>;
      if (!pick(m)) return;
      ws.off('message', onMessage);
      resolve(m);
    };
    ws.on('message', onMessage);
  });
}

describe('the chat demo behind the real Mongrel2', () => {
  let peer: Mongrel2Peer;
  let demo: ChatDemo;
  let browser: Browser | undefined;
  const clients: WebSocket[] = [];

  before(async () => {
    // rootRoute: '/' goes to the handler, so the page is at /chat/ as in the manual's config.
    peer = await startMongrel2({ rootRoute: true });
    demo = start({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, logger: silent, pingIntervalMs: 50 });
    await demo.ready();
  });

  after(async () => {
    for (const ws of clients) ws.terminate();
    await browser?.close();
    await demo?.stop();
    await peer?.stop();
  });

  test('the handler serves the page and its script', async () => {
    const raw = (await rawHttp(peer.httpPort, 'GET /chat/ HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse() })).toString();
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw, /Content-Type: text\/html; charset=utf-8\r\n/);
    assert.match(raw, /<script src="chat\.js"><\/script>/);
    const js = (await rawHttp(peer.httpPort, 'GET /chat/chat.js HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse() })).toString();
    assert.match(js, /Content-Type: text\/javascript/);
    const missing = (await rawHttp(peer.httpPort, 'GET /chat/nope.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: untilCompleteResponse() })).toString();
    assert.match(missing, /^HTTP\/1\.1 404 /);
  });

  test('two browsers: presence, a message, and a leave', async () => {
    // launch() runs Chromium on a fresh temporary profile and removes it on close().
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const open = async (nick: string): Promise<Page> => {
      const context = await browser!.newContext();
      const page = await context.newPage();
      await page.goto(`${peer.baseUrl}/chat/`);
      await page.locator('#status', { hasText: 'connected' }).waitFor();
      await page.fill('#nick', nick);
      await page.click('#join button');
      await page.locator('#status', { hasText: `online as ${nick}` }).waitFor();
      return page;
    };

    const alice = await open('alice');
    await alice.locator('#users li', { hasText: 'alice' }).waitFor();
    const bob = await open('bob');

    // Each sees the other online; alice saw bob arrive.
    await bob.locator('#users li', { hasText: 'alice' }).waitFor();
    await bob.locator('#users li.me', { hasText: 'bob' }).waitFor();
    await alice.locator('#users li', { hasText: 'bob' }).waitFor();
    await alice.locator('#log li.presence', { hasText: 'bob joined' }).waitFor();

    // A nickname that is taken is refused, and the page says so.
    const mallory = await (await browser.newContext()).newPage();
    await mallory.goto(`${peer.baseUrl}/chat/`);
    await mallory.locator('#status', { hasText: 'connected' }).waitFor();
    await mallory.fill('#nick', 'Alice');
    await mallory.click('#join button');
    await mallory.locator('#error', { hasText: 'Alice is taken' }).waitFor();
    await mallory.context().close();

    // A line typed by alice appears at bob's, and at alice's own page.
    await alice.fill('#text', 'hello bob, this is <b>not bold</b>');
    await alice.press('#text', 'Enter');
    await bob.locator('#log li.msg', { hasText: 'alice: hello bob, this is <b>not bold</b>' }).waitFor();
    await alice.locator('#log li.mine', { hasText: 'alice: hello bob' }).waitFor();
    assert.equal(await bob.locator('#log b').count(), 0, 'text is shown as text');

    await bob.fill('#text', 'hi alice');
    await bob.click('#say button');
    await alice.locator('#log li.msg', { hasText: 'bob: hi alice' }).waitFor();

    // bob closes the page: alice sees him leave.
    await bob.context().close();
    await alice.locator('#log li.presence', { hasText: 'bob left' }).waitFor();
    await alice.locator('#users li', { hasText: 'bob' }).waitFor({ state: 'detached' });
    assert.deepEqual(demo.room.users(), ['alice']);
    await alice.context().close();
  });

  test('pings both ways, bad frames and the close handshake (ws client)', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/chat/ws`);
    clients.push(ws);
    await once(ws, 'open');

    ws.send('{not json');
    assert.equal((await nextMessage(ws)).type, 'error');
    ws.send(JSON.stringify({ type: 'msg', text: 'before joining' }));
    assert.deepEqual(await nextMessage(ws), { type: 'error', message: 'join first' });

    ws.send(JSON.stringify({ type: 'join', nick: 'carol' }));
    const welcome = await nextMessage(ws);
    assert.equal(welcome.type, 'welcome');
    assert.ok((welcome.users as string[]).includes('carol'));

    // The handler pings members (pingIntervalMs: 50)…
    const [ping] = (await once(ws, 'ping')) as [Buffer];
    assert.equal(ping.toString(), 'ping');
    // …and answers pings.
    ws.ping(Buffer.from('still there?'));
    const [pong] = (await once(ws, 'pong')) as [Buffer];
    assert.equal(pong.toString(), 'still there?');

    ws.close(1000, 'bye');
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1000);
    assert.equal(demo.room.users().includes('carol'), false, 'a close frame leaves the room at once');
  });

  test('a client that drops without a close frame leaves on the disconnect notice', async () => {
    const join = async (nick: string): Promise<WebSocket> => {
      const ws = new WebSocket(`ws://127.0.0.1:${peer.httpPort}/chat/ws`);
      clients.push(ws);
      await once(ws, 'open');
      const welcomed = nextMessage(ws, (m) => m.type === 'welcome');
      ws.send(JSON.stringify({ type: 'join', nick }));
      await welcomed;
      return ws;
    };
    const erin = await join('erin');
    const dave = await join('dave');
    const left = nextMessage(erin, (m) => m.type === 'leave');
    dave.terminate(); // TCP gone, no close frame: only Mongrel2's disconnect notice tells
    assert.deepEqual(await left, { type: 'leave', nick: 'dave', users: ['erin'] });
    erin.close();
  });
});
