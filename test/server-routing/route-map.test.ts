import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RouteMap, splitRoutePath, type Route } from '../../src/server/routing/route-map.js';
import { PatternError, patternMatch } from '../../src/server/routing/pattern.js';

function mapOf(paths: string[]): RouteMap<string> {
  const map = new RouteMap<string>();
  for (const p of paths) map.insert(p, p);
  return map;
}
const routeFor = (map: RouteMap<string>, path: string): string | undefined => map.match(path)?.value;

test('splitRoutePath: prefix before the first "(", pattern from it', () => {
  assert.deepEqual(splitRoutePath('/users/([0-9]+)'), { prefix: '/users/', pattern: '([0-9]+)' });
  assert.deepEqual(splitRoutePath('/img/(.*).jpg$'), { prefix: '/img/', pattern: '(.*).jpg$' });
  assert.deepEqual(splitRoutePath('/users'), { prefix: '/users', pattern: undefined });
  assert.deepEqual(splitRoutePath('/users()$'), { prefix: '/users', pattern: '()$' });
});

test('match returns the whole Route (path = the PATTERN header value)', () => {
  const map = mapOf(['/users/([0-9]+)']);
  const r: Route<string> | undefined = map.match('/users/42');
  assert.deepEqual(r, { path: '/users/([0-9]+)', prefix: '/users/', pattern: '([0-9]+)', value: '/users/([0-9]+)' });
});

// tests/routing_tests.c test_simple_prefix_matching / test_routing_match.
test('routing_tests.c: prefix matching vectors', () => {
  const map = mapOf(['/', '/users/([0-9]+)', '/users', '/users/people/([0-9]+)$', '/cars-fast/([a-z]-)$']);
  assert.equal(routeFor(map, '/users/1234/testing'), '/users/([0-9]+)'); // partial unless `$`
  assert.equal(routeFor(map, '/users'), '/users');
  assert.equal(routeFor(map, '/users/people/1234'), '/users/people/([0-9]+)$');
  assert.equal(routeFor(map, '/cars-fast/cadillac'), '/cars-fast/([a-z]-)$');
  assert.equal(routeFor(map, '/users/1234'), '/users/([0-9]+)');
  assert.equal(routeFor(map, '/'), '/');
  assert.equal(routeFor(map, '/usersBLAAHAHAH'), '/users'); // a plain route is a prefix match
  // Deliberate fix: Mongrel2 sends `/us` to the longer `/users`; a key longer than the path never matches here.
  assert.equal(routeFor(map, '/us'), '/');
  // Deliberate fix: Mongrel2 finds nothing (the `$` route failed and there is no fallback); we fall back to `/users`.
  assert.equal(routeFor(map, '/users/people/1234/notgonnawork'), '/users');
});

test('routing_tests.c: prefix + pattern vectors', () => {
  const map = mapOf(['/', '/img/(.*).jpg$', '/img/(.*).png$']);
  assert.equal(routeFor(map, '/img/foo.jpg'), '/img/(.*).jpg$');
  assert.equal(routeFor(map, '/img/foo.png'), '/img/(.*).png$');
  // Deliberate fix: Mongrel2 gives no match (404) although `/` is configured; we fall back to `/`.
  assert.equal(routeFor(map, '/img/foo.bmp'), '/');
  // Without a `/` route, the failed patterns leave nothing: 404, as in Mongrel2.
  assert.equal(routeFor(mapOf(['/img/(.*).jpg$', '/img/(.*).png$']), '/img/foo.bmp'), undefined);
});

test('server-core.md §5 verified table, with our fixes', () => {
  const map = mapOf(['/', '/images/', '/static/(.*\\.css)$', '/api']);
  assert.equal(routeFor(map, '/x'), '/'); // same as Mongrel2
  assert.equal(routeFor(map, '/images/a.png'), '/images/');
  assert.equal(routeFor(map, '/static/site.css'), '/static/(.*\\.css)$');
  assert.equal(routeFor(map, '/api/v1'), '/api');
  // Mongrel2: `/im` → `/images/`, `/a` → `/api`, `/s` → 404 (rule (a) of the TST walk). Fixed:
  assert.equal(routeFor(map, '/im'), '/');
  assert.equal(routeFor(map, '/a'), '/');
  assert.equal(routeFor(map, '/s'), '/');
  assert.equal(routeFor(map, '/static/site.js'), '/'); // Mongrel2: 404 (no fallback)
  assert.equal(routeFor(mapOf(['/tests/']), '/tests'), undefined); // a trailing slash is not special
});

test('exact-match idiom and same-prefix ordering', () => {
  // Plain after patterned or before: the patterned routes of a prefix are tried first either way.
  for (const order of [['/users', '/users()$'], ['/users()$', '/users']]) {
    const map = mapOf(order);
    assert.equal(routeFor(map, '/users'), '/users()$');
    assert.equal(routeFor(map, '/users/7'), '/users');
  }
  // Patterned routes with one prefix: insertion order.
  assert.equal(routeFor(mapOf(['/img/(.*)', '/img/(.*).png$']), '/img/a.png'), '/img/(.*)');
  assert.equal(routeFor(mapOf(['/img/(.*).png$', '/img/(.*)']), '/img/a.png'), '/img/(.*).png$');
  // Identical plain paths: the first one inserted.
  const dup = new RouteMap<number>();
  dup.insert('/a', 1);
  dup.insert('/a', 2);
  assert.equal(dup.match('/a/b')?.value, 1);
});

test('a route with an empty prefix is the last resort', () => {
  const map = mapOf(['(.*)', '/api']);
  assert.equal(routeFor(map, '/api/x'), '/api');
  assert.equal(routeFor(map, '/other'), '(.*)');
  assert.equal(routeFor(map, ''), '(.*)');
  assert.equal(routeFor(mapOf(['/api']), ''), undefined);
});

test('matching uses the raw percent-encoded path', () => {
  const map = mapOf(['/caf%C3%A9/', '/b/(%20x)$']);
  assert.equal(routeFor(map, '/caf%C3%A9/menu'), '/caf%C3%A9/');
  assert.equal(routeFor(map, '/café/menu'), undefined);
  assert.equal(routeFor(map, '/b/%20x'), '/b/(%20x)$');
  assert.equal(routeFor(map, '/b/ x'), undefined);
});

test('a malformed route pattern is rejected at insert, naming pattern and offset', () => {
  const map = new RouteMap<string>();
  assert.throws(() => map.insert('/x/([a-z)', 'x'), (err: unknown) => err instanceof PatternError && err.pattern === '([a-z)' && err.offset === 1);
  assert.equal(map.match('/x/a'), undefined);
});

test('a pattern that exhausts the step budget is no match, reported to onBudgetExceeded', () => {
  const seen: Array<[string, string]> = [];
  const map = new RouteMap<string>({ onBudgetExceeded: (route, path) => seen.push([route.path, path]), stepBudget: 5_000 });
  map.insert('/', 'root');
  map.insert('/p/(.*)(.*)(.*)x$', 'slow');
  const path = '/p/' + 'a'.repeat(200);
  assert.equal(map.match(path)?.value, 'root');
  assert.deepEqual(seen, [['/p/(.*)(.*)(.*)x$', path]]);
  assert.equal(map.match('/p/aax')?.value, 'slow');
});

test('property: the longest matching prefix wins, ties by the documented order', () => {
  const segment = fc.constantFrom('/', '/a', '/a/', '/ab', '/a/b', '/b', '/a/b/c');
  const patternPart = fc.constantFrom(undefined, '()$', '([a-z]+)', '(.*)c$', '(b)');
  const routes = fc.array(fc.tuple(segment, patternPart), { maxLength: 8 });
  const paths = fc.constantFrom('/', '/a', '/a/', '/ab', '/a/b', '/a/b/c', '/a/bc', '/b', '/bb', '', '/c');
  fc.assert(
    fc.property(routes, paths, (defs, path) => {
      const map = new RouteMap<number>();
      const all = defs.map(([prefix, pattern], i) => ({ path: prefix + (pattern ?? ''), prefix, pattern, value: i }));
      for (const r of all) map.insert(r.path, r.value);
      // Oracle: by prefix length (desc), patterned before plain, then insertion order.
      const expected = all
        .filter((r) => path.startsWith(r.prefix) && (r.pattern === undefined || patternMatch(path.slice(r.prefix.length), r.pattern)))
        .sort((x, y) => y.prefix.length - x.prefix.length || Number(x.pattern === undefined) - Number(y.pattern === undefined) || x.value - y.value)[0];
      assert.deepEqual(map.match(path), expected);
    }),
    { numRuns: 2000 },
  );
});

test('property: random paths never throw', () => {
  const map = mapOf(['/', '/users/([0-9]+)', '/img/(.*).jpg$', '/x/\\b{}', '/y/\\f[\\a]\\w+']);
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (path) => {
      const r = map.match(path);
      assert.ok(r === undefined || path.startsWith(r.prefix));
    }),
  );
});
