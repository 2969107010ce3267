import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterChain, type ChainFilter, type EventName, type Transition } from '../../src/server/filters/chain.js';
import { EVENTS, eventNumber, toEvent } from '../../src/server/filters/events.js';
import { fakeConnection, recordingLogger } from './helpers.js';

/** A filter that records its calls in `calls` and answers with `answer`. */
function filter(name: string, events: EventName[], calls: string[], answer: Transition = (e) => e): ChainFilter {
  return {
    name,
    events: new Set(events),
    settings: { who: name },
    transition: (event, conn, settings) => {
      calls.push(`${name}:${event}:${String(settings.who)}`);
      return answer(event, conn, settings);
    },
  };
}

test('events: the numbers of src/events.h, by name (any case) or number', () => {
  assert.equal(EVENTS.CLOSE, 100);
  assert.equal(EVENTS.WS_REQ, 115);
  assert.equal(eventNumber('HTTP_REQ'), 105);
  assert.equal(toEvent(104), 'HANDLER');
  assert.equal(toEvent('proxy'), 'PROXY');
  for (const bad of [99, 116, 'FOO', '104', null, undefined, {}, 'toString', 'constructor']) assert.equal(toEvent(bad), undefined, String(bad));
});

test('filters hooked on the pending event run in load order while each returns it; others do not run', () => {
  const calls: string[] = [];
  const chain = new FilterChain([filter('a', ['HANDLER'], calls), filter('p', ['PROXY'], calls), filter('b', ['HANDLER', 'PROXY'], calls), filter('c', ['HANDLER'], calls, () => 104)]);
  assert.equal(chain.run('HANDLER', fakeConnection()), 'HANDLER');
  assert.deepEqual(calls, ['a:HANDLER:a', 'b:HANDLER:b', 'c:HANDLER:c']);
  calls.length = 0;
  assert.equal(chain.run('PROXY', fakeConnection()), 'PROXY');
  assert.deepEqual(calls, ['p:PROXY:p', 'b:PROXY:b']);
});

test('the first other event stops the chain and replaces the pending one, without being filtered again', () => {
  const calls: string[] = [];
  const chain = new FilterChain([
    filter('a', ['HANDLER'], calls),
    filter('b', ['HANDLER'], calls, () => 'DIRECTORY'),
    filter('c', ['HANDLER'], calls),
    filter('d', ['DIRECTORY'], calls, () => 'CLOSE'),
  ]);
  assert.equal(chain.run('HANDLER', fakeConnection()), 'DIRECTORY');
  assert.deepEqual(calls, ['a:HANDLER:a', 'b:HANDLER:b']);
});

test('CLOSE (by name or 100) ends the chain', () => {
  for (const close of ['CLOSE', 100, 'close']) {
    const calls: string[] = [];
    const chain = new FilterChain([filter('a', ['HTTP_REQ'], calls, () => close as EventName), filter('b', ['HTTP_REQ'], calls)]);
    assert.equal(chain.run('HTTP_REQ', fakeConnection()), 'CLOSE');
    assert.deepEqual(calls, ['a:HTTP_REQ:a']);
  }
});

test('sync chains answer synchronously; an async transition makes a promise and the chain continues after it in order', async () => {
  const calls: string[] = [];
  const sync = new FilterChain([filter('a', ['HANDLER'], calls)]);
  assert.equal(typeof sync.run('HANDLER', fakeConnection()), 'string');
  const chain = new FilterChain([
    filter('a', ['HANDLER'], calls, async (e) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      calls.push('a-resolved');
      return e;
    }),
    filter('b', ['HANDLER'], calls, () => Promise.resolve('PROXY')),
    filter('c', ['HANDLER'], calls),
  ]);
  calls.length = 0;
  const pending = chain.run('HANDLER', fakeConnection());
  assert.ok(pending instanceof Promise);
  assert.equal(await pending, 'PROXY');
  assert.deepEqual(calls, ['a:HANDLER:a', 'a-resolved', 'b:HANDLER:b']);
});

test('a filter that throws, rejects or returns no event is logged by name and closes the connection', async () => {
  const cases: Array<[string, Transition, RegExp]> = [
    ['throws', () => { throw new Error('boom'); }, /^filter bad\.ts threw: boom; closing the connection$/],
    ['rejects', () => Promise.reject(new Error('later')), /^filter bad\.ts rejected: later; closing the connection$/],
    ['returns undefined', () => undefined, /^filter bad\.ts returned undefined, which is no event/],
    ['returns 99', () => 99, /^filter bad\.ts returned 99, which is no event/],
    ['resolves "NOPE"', async () => 'NOPE', /^filter bad\.ts returned "NOPE", which is no event/],
  ];
  for (const [what, answer, re] of cases) {
    const { log, lines } = recordingLogger();
    const calls: string[] = [];
    const chain = new FilterChain([filter('bad.ts', ['HANDLER'], calls, answer), filter('after', ['HANDLER'], calls)], log);
    assert.equal(await chain.run('HANDLER', fakeConnection()), 'CLOSE', what);
    assert.deepEqual(calls, ['bad.ts:HANDLER:bad.ts'], what);
    assert.equal(lines.length, 1, what);
    assert.match(String(lines[0]!.msg), re, what);
    assert.equal(lines[0]!.filter, 'bad.ts');
    assert.equal(lines[0]!.conn, 7);
  }
});

test('a filter hooking no events never runs; an event nobody hooks passes through synchronously', () => {
  const calls: string[] = [];
  const chain = new FilterChain([filter('idle', [], calls, () => 'CLOSE'), filter('h', ['HANDLER'], calls)]);
  for (const e of Object.keys(EVENTS) as EventName[]) {
    assert.equal(chain.hooks(e), e === 'HANDLER');
    assert.equal(chain.run(e, fakeConnection()), e);
  }
  assert.deepEqual(calls, ['h:HANDLER:h']);
  assert.equal(new FilterChain([]).run('OPEN', fakeConnection()), 'OPEN');
});
