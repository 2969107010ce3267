/**
 * CreditWindow: download flow-control bookkeeping (handler-protocol.md §7).
 * Pure promises, so "still waiting" is checked after letting every pending
 * callback run (setImmediate), not by sleeping.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CreditWindow } from '../../src/handler/index.js';

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks a promise's outcome so tests can check whether it has settled. */
function track(p: Promise<number>): { readonly settled: boolean; readonly value: number | undefined; promise: Promise<number> } {
  const state = { settled: false, value: undefined as number | undefined, promise: p };
  void p.then((v) => {
    state.settled = true;
    state.value = v;
  });
  return state;
}

describe('CreditWindow', () => {
  test('starts with the initial balance', () => {
    assert.equal(new CreditWindow(102400).balance, 102400);
    assert.equal(new CreditWindow(0).balance, 0);
    assert.equal(new CreditWindow(5).closed, false);
  });

  test('acquire within the balance resolves at once with what was asked and lowers the balance', async () => {
    const w = new CreditWindow(100);
    assert.equal(await w.acquire(30), 30);
    assert.equal(w.balance, 70);
    assert.equal(await w.acquire(70), 70);
    assert.equal(w.balance, 0);
  });

  test('acquire beyond the balance resolves with what is there (a partial grant)', async () => {
    const w = new CreditWindow(100);
    assert.equal(await w.acquire(250), 100);
    assert.equal(w.balance, 0);
  });

  test('at zero balance acquire waits for a grant, and a small grant resolves it partially', async () => {
    const w = new CreditWindow(0);
    const a = track(w.acquire(150));
    await flush();
    assert.equal(a.settled, false, 'acquire resolved without credits');
    w.grant(100);
    assert.equal(await a.promise, 100);
    assert.equal(w.balance, 0);
    // The rest of the body waits for the next grant.
    const rest = track(w.acquire(50));
    await flush();
    assert.equal(rest.settled, false);
    w.grant(80);
    assert.equal(await rest.promise, 50);
    assert.equal(w.balance, 30);
  });

  test('grants go to waiters in FIFO order, splitting a grant across them', async () => {
    const w = new CreditWindow(0);
    const order: string[] = [];
    const a = track(w.acquire(30));
    const b = track(w.acquire(30));
    const c = track(w.acquire(30));
    void a.promise.then(() => order.push('a'));
    void b.promise.then(() => order.push('b'));
    void c.promise.then(() => order.push('c'));
    w.grant(40);
    await flush();
    assert.equal(a.value, 30);
    assert.equal(b.value, 10);
    assert.equal(c.settled, false, 'c was served although the grant was used up');
    assert.equal(w.balance, 0);
    w.grant(100);
    await flush();
    assert.equal(c.value, 30);
    assert.equal(w.balance, 70);
    assert.deepEqual(order, ['a', 'b', 'c']);
  });

  test('a later caller does not jump the queue of waiters', async () => {
    const w = new CreditWindow(0);
    const first = track(w.acquire(100));
    w.grant(10);
    await flush();
    assert.equal(first.value, 10);
    const again = track(w.acquire(90)); // the same writer, for its remainder
    const late = track(w.acquire(5));
    w.grant(5);
    await flush();
    assert.equal(again.value, 5);
    assert.equal(late.settled, false);
    w.grant(100);
    await flush();
    assert.equal(late.value, 5);
    assert.equal(w.balance, 95);
  });

  test('close() resolves every waiter with 0, and later acquires get 0 even with a balance', async () => {
    const w = new CreditWindow(0);
    const a = track(w.acquire(10));
    const b = track(w.acquire(20));
    w.close();
    assert.equal(w.closed, true);
    assert.equal(await a.promise, 0);
    assert.equal(await b.promise, 0);
    const open = new CreditWindow(50);
    open.close();
    assert.equal(await open.acquire(10), 0);
    assert.equal(open.balance, 50, 'a closed window must not hand out credits');
  });

  test('grants after close() are ignored', async () => {
    const w = new CreditWindow(0);
    w.close();
    w.grant(100);
    assert.equal(w.balance, 0);
    assert.equal(await w.acquire(10), 0);
  });
});
