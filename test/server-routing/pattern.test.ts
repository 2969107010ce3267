import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePattern, patternMatch, PatternError } from '../../src/server/routing/pattern.js';

const yes = (subject: string, pattern: string): void =>
  assert.equal(patternMatch(subject, pattern), true, `${JSON.stringify(pattern)} should match ${JSON.stringify(subject)}`);
const no = (subject: string, pattern: string): void =>
  assert.equal(patternMatch(subject, pattern), false, `${JSON.stringify(pattern)} should not match ${JSON.stringify(subject)}`);

// tests/pattern_tests.c, vector by vector. The C calls that pass strlen("ZEEEED")
// for a shorter subject read past it; here the subject is just the string.
test('pattern_tests.c: simple matches', () => {
  yes('ZED', 'ZED');
  yes('ZED', 'Z.D');
  no('ZED', 'FOO');
});

test('pattern_tests.c: repetitions', () => {
  yes('ZEEEED', 'ZE*D');
  yes('ZEEEED', 'ZE*ED');
  yes('ZED', 'ZE*ED');
  yes('ZD', 'ZE*D');
  no('ZEEEED', 'ZX*D');
  yes('ZEEEED', 'Z.*D');
  no('ZXXXXD', 'ZE.*D');
  yes('ZEEEED', 'ZE+D');
  no('ZD', 'ZE+D');
  yes('ZEEEED', 'ZE-D');
  yes('ZD', 'ZE-D');
});

test('pattern_tests.c: anchors', () => {
  yes('ZED', 'ZED$');
  no('ZED', 'ZE$');
  no('ZED', 'ED'); // implicitly anchored at the start
});

test('pattern_tests.c: blocks, frontier, balance, sets, optional', () => {
  yes('ZED', 'Z(ED)');
  yes('THE (QUICK) brOWN FOx JUMPS', '\\f[\\a]\\u-\\f[\\a]');
  yes('/users/{1234}', '/users/\\b{}');
  no('/users/{1234', '/users/\\b{}');
  no('/users/1234}', '/users/\\b{}');
  yes('ZED', 'Z[OE]D');
  no('ZED', 'Z[^OE]D');
  yes('ZED', 'Z[A-Z]D');
  yes('ZED', 'ZEE?D');
  yes('ZEED', 'ZEE?D');
  no('ZEEED', 'ZEE?D');
});

test('pattern_tests.c: escapes and classes', () => {
  const subject = 'a \t 9 l . \n U w A \0';
  assert.equal(subject.length, 19);
  yes(subject, '\\a \\c \\d \\l \\p \\s \\u \\w \\x \\z');
  yes('ZED', 'Z\\ED');
  yes('*Z*E+D.', '\\*Z\\*E\\+D\\.');
  no('ZED!', 'ZED\\.');
});

test('upper-case classes negate, other escaped letters are literal', () => {
  yes('x', '\\D');
  no('5', '\\D');
  yes('5', '\\A');
  no('Q', '\\A');
  yes('B', '\\B'); // only \b (lower case) is the balance item
  yes('g', '\\g');
  no('h', '\\g');
  yes('\u00e9', '\\A'); // C locale: no class holds a byte >= 0x80
  no('\u00e9', '\\w');
});

test('Lua quirks kept as the C matcher has them', () => {
  yes('a$b', 'a$b'); // `$` is only an anchor at the very end
  yes('^a', '^a'); // `^` is literal
  yes('ab', 'a$*b'); // `$*`: zero or more literal dollars
  yes('*a', '*a'); // a quantifier at the start of an item is a literal
  yes('a*', 'a(*)'); // `(`/`)` are skipped, so `*` starts an item
  yes(']', '[]]'); // the first member of a set may be `]`
  yes('-', '[a-]'); // a trailing `-` is a member
  no('b', '[a-]');
  yes('(', '[(]'); // parentheses inside a set are members
  yes('aaab', 'a-b');
  yes('xy', 'x[\\d\\s]?y');
  yes('foo.css', '(.*\\.css)$');
  no('foo.cssx', '(.*\\.css)$');
  yes('1234/testing', '([0-9]+)'); // trailing text is fine without `$`
  yes('', ''); // the empty pattern matches anything
  yes('anything', '');
  no('', '.');
});

test('frontier and balance at the ends of the subject', () => {
  yes('abc', '\\f[\\a]abc'); // before the start counts as NUL
  yes('abc', 'abc\\f[\\z]'); // past the end counts as NUL
  no('', '\\b()');
  yes('(a(b)c)d', '\\b()d');
});

test('compilePattern rejects malformed patterns with the offset', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['abc\\', 3, /lone '\\'/],
    ['[abc', 0, /missing '\]'/],
    ['x[a\\', 1, /missing '\]'/],
    ['x\\b{', 1, /\\b' needs two/],
    ['\\fa', 0, /missing '\[' after/],
    ['ab\\f[a', 4, /missing '\]'/],
    ['[^', 0, /missing '\]'/],
  ];
  for (const [pattern, offset, message] of cases) {
    assert.throws(
      () => compilePattern(pattern),
      (err: unknown) =>
        err instanceof PatternError && err.offset === offset && err.pattern === pattern && message.test(err.message) && err.message.includes(JSON.stringify(pattern)),
      pattern,
    );
  }
  assert.doesNotThrow(() => compilePattern('(.*).jpg$'));
  assert.doesNotThrow(() => compilePattern('\\b{}x'));
});

test('pathological backtracking hits the step budget instead of hanging', () => {
  const p = compilePattern('(.*)(.*)(.*)(.*)(.*)x$');
  const subject = 'a'.repeat(4000);
  const started = process.hrtime.bigint();
  assert.equal(p.exec(subject), 'budget');
  assert.ok(process.hrtime.bigint() - started < 2_000_000_000n, 'budget must stop the search quickly');
  assert.equal(p.exec('aaax'), 'match');
  assert.equal(compilePattern('.*').exec(subject, 10), 'budget');
  assert.equal(compilePattern('.*').exec(subject), 'match');
});

test('random patterns and subjects: no throw after compile, no hang', () => {
  const alphabet = fc.constantFrom(...'ab.()[]^$*+-?\\%dDswbfz{}'.split(''));
  fc.assert(
    fc.property(fc.string({ unit: alphabet, maxLength: 16 }), fc.string({ unit: fc.constantFrom(...'ab{}( )1$'.split('')), maxLength: 64 }), (pattern, subject) => {
      let compiled;
      try {
        compiled = compilePattern(pattern);
      } catch (err) {
        assert.ok(err instanceof PatternError, String(err));
        return;
      }
      assert.ok(['match', 'no-match', 'budget'].includes(compiled.exec(subject, 50_000)));
    }),
    { numRuns: 3000 },
  );
});
