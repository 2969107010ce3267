import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HostMap, splitHostMatching } from '../../src/server/routing/host-map.js';
import { PatternError } from '../../src/server/routing/pattern.js';

function hostsOf(matchings: string[]): HostMap<string> {
  const map = new HostMap<string>();
  for (const m of matchings) map.insert(m, m);
  return map;
}

test('splitHostMatching: literal suffix after the last ")", pattern up to it plus "$"', () => {
  assert.deepEqual(splitHostMatching('example.com'), { suffix: 'example.com', pattern: undefined });
  assert.deepEqual(splitHostMatching('(.*)example.com'), { suffix: 'example.com', pattern: '(.*)$' });
  assert.deepEqual(splitHostMatching('(a)(b)c.org'), { suffix: 'c.org', pattern: '(a)(b)$' });
  assert.deepEqual(splitHostMatching('(.+)'), { suffix: '', pattern: '(.+)$' });
  assert.deepEqual(splitHostMatching('Example.COM'), { suffix: 'example.com', pattern: undefined });
});

// tests/routing_tests.c test_routing_match_reversed (RouteMap_insert_reversed + match_suffix).
test('routing_tests.c: reversed (host) vectors', () => {
  const map = hostsOf(['(X+)foo', 'moo', 'fio']);
  assert.equal(map.match('Xfoo'), '(X+)foo');
  assert.equal(map.match('moo'), 'moo');
  assert.equal(map.match('fio'), 'fio');
  assert.equal(map.match('XXXXXXXXXfoo'), '(X+)foo');
  assert.equal(map.match('YYYfoo'), undefined);
  assert.equal(map.match('XXXoo'), undefined);
  assert.equal(map.match('XXX.stuff.foo'), undefined);
});

test('server-core.md §5 host examples, with our fixes', () => {
  const plain = hostsOf(['example.com']);
  assert.equal(plain.match('example.com'), 'example.com');
  assert.equal(plain.match('www.example.com'), 'example.com');
  // Mongrel2 selects `example.com` for these (a configured name longer than the request's); we do not.
  assert.equal(plain.match('ample.com'), undefined);
  assert.equal(plain.match('com'), undefined);
  const patterned = hostsOf(['(.*)example.com']);
  assert.equal(patterned.match('badexample.com'), '(.*)example.com'); // the pattern decides what may precede
  assert.equal(patterned.match('example.com'), '(.*)example.com');
  assert.equal(patterned.match('le.com'), undefined);
  // Mongrel2 never selects a pattern-only host; here `(.+)` takes any non-empty name.
  const any = hostsOf(['(.+)']);
  assert.equal(any.match('whatever.example'), '(.+)');
  assert.equal(any.match(''), undefined);
});

test('a plain suffix matches at a label boundary only', () => {
  const map = hostsOf(['ample.com']);
  assert.equal(map.match('example.com'), undefined); // Mongrel2: `ample.com`
  assert.equal(map.match('x.ample.com'), 'ample.com');
  assert.equal(map.match('ample.com'), 'ample.com');
  assert.equal(map.match('ample.com.evil'), undefined);
});

test('host names compare case-insensitively', () => {
  const map = hostsOf(['Example.com', '(api\\.)svc.io', '(X+)foo']);
  assert.equal(map.match('EXAMPLE.COM'), 'Example.com'); // Mongrel2 is case-sensitive here
  assert.equal(map.match('www.eXample.Com'), 'Example.com');
  assert.equal(map.match('API.SVC.IO'), '(api\\.)svc.io'); // lower-case pattern, any case
  assert.equal(map.match('XXFOO'), '(X+)foo'); // a case-exact pattern still accepts the name as sent
  assert.equal(map.match('xxfoo'), undefined);
});

test('precedence: exact name, longest suffix, patterned before plain, insertion order', () => {
  const map = hostsOf(['(.+)', 'com', 'example.com', 'api.example.com', '(v[0-9]\\.)api.example.com', '(.*)example.com']);
  assert.equal(map.match('api.example.com'), 'api.example.com'); // exact beats the patterned one on the same suffix
  assert.equal(map.match('v2.api.example.com'), '(v[0-9]\\.)api.example.com');
  assert.equal(map.match('x.api.example.com'), 'api.example.com');
  assert.equal(map.match('example.com'), 'example.com');
  assert.equal(map.match('www.example.com'), '(.*)example.com'); // patterned before plain on one suffix
  assert.equal(map.match('other.com'), 'com');
  assert.equal(map.match('localhost'), '(.+)');
  const first = new HostMap<number>();
  first.insert('a.org', 1);
  first.insert('A.ORG', 2);
  assert.equal(first.match('a.org'), 1);
  assert.equal(first.match('b.a.org'), 1);
});

test('an empty matching string selects nothing (the default host applies)', () => {
  assert.equal(hostsOf(['']).match(''), undefined);
  assert.equal(hostsOf(['']).match('x'), undefined);
});

test('a malformed host pattern is rejected at insert', () => {
  assert.throws(() => new HostMap<string>().insert('([a-)x.com', 'h'), PatternError);
});

test('property: random names never throw, and a match is a real suffix', () => {
  const map = hostsOf(['example.com', '(.*)example.org', '(\\w+\\.)net', '(.+)local']);
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (name) => {
      const m = map.match(name);
      if (m !== undefined) assert.ok(name.toLowerCase().endsWith(splitHostMatching(m).suffix), `${name} → ${m}`);
    }),
  );
});
