import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { tokenize } from '../../src/config/lexer.js';
import { parseConfig, type ValueNode } from '../../src/config/parser.js';
import { ConfigSyntaxError } from '../../src/config/errors.js';

const types = (text: string): string[] => tokenize(text).map((t) => `${t.type}:${t.text}`);

test('lexer: CLASS only for capitalised all-letter words of 2+ letters, IDENT otherwise', () => {
  assert.deepEqual(types('Dir Main X main Main2 _x DIR Dir_ a1'), [
    'CLASS:Dir',
    'CLASS:Main',
    'IDENT:X',
    'IDENT:main',
    'IDENT:Main2',
    'IDENT:_x',
    'CLASS:DIR',
    'IDENT:Dir_',
    'IDENT:a1',
    'EOF:',
  ]);
});

test('lexer: NUMBER is bare digits; digits then letters are two tokens', () => {
  assert.deepEqual(types('123 0 007 12ab'), ['NUMBER:123', 'NUMBER:0', 'NUMBER:007', 'NUMBER:12', 'IDENT:ab', 'EOF:']);
});

test('lexer: strings keep their raw text, a backslash only protects the next character', () => {
  const toks = tokenize(String.raw`'\d+' "a\"b" 'it\'s' "tab\t" ''`);
  assert.deepEqual(
    toks.slice(0, -1).map((t) => t.text),
    [String.raw`\d+`, String.raw`a\"b`, String.raw`it\'s`, String.raw`tab\t`, ''],
  );
});

test('lexer: comments run to the end of the line, also at end of file; positions are line:column', () => {
  const toks = tokenize('# head\n  a = 1 # tail\n\tb=2 #eof');
  assert.deepEqual(
    toks.map((t) => [t.type, t.pos.line, t.pos.column]),
    [
      ['IDENT', 2, 3],
      ['=', 2, 5],
      ['NUMBER', 2, 7],
      ['IDENT', 3, 2],
      ['=', 3, 3],
      ['NUMBER', 3, 4],
      ['EOF', 3, 10],
    ],
  );
});

test('lexer: columns count characters, not bytes', () => {
  const toks = tokenize("x = 'é€' y");
  assert.deepEqual(toks[3]!.pos, { line: 1, column: 10 });
});

function syntaxError(text: string): ConfigSyntaxError {
  try {
    parseConfig(text, 'test.conf');
  } catch (err) {
    assert.ok(err instanceof ConfigSyntaxError, `expected ConfigSyntaxError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected a syntax error for ${JSON.stringify(text)}`);
}

const ERRORS: Array<[string, string, string]> = [
  ['', 'test.conf:1:1: expected an assignment (name = value), got end of file', 'empty file'],
  ['a = .5', "test.conf:1:5: invalid character '.'", 'a dot outside a string'],
  ['a = -1', "test.conf:1:5: invalid character '-'", 'a sign'],
  ['a = `x`', "test.conf:1:5: invalid character '`'", 'a backquoted pattern'],
  ["a = 'open", "test.conf:1:5: unterminated string: no closing ' before end of file", 'an unterminated string'],
  ['Main = 1', 'test.conf:1:1: expected an assignment (name = value), got class name Main', 'a class name as variable'],
  ['a 1', "test.conf:1:3: expected '=' after a, got number 1", 'a missing ='],
  ['a = ', 'test.conf:1:5: expected a value (quoted string, number, name, [list], {hash} or Class(...)), got end of file', 'a missing value'],
  ['a = 1 = 2', "test.conf:1:7: expected an assignment (name = value) or end of file, got '='", 'junk after a value'],
  ['a = {x: 1}', "test.conf:1:6: expected a quoted key or '}', got name x", 'an unquoted key'],
  ["a = {'x' 1}", "test.conf:1:10: expected ':' after the key \"x\", got number 1", 'a missing colon'],
  ['a = [1,,2]', "test.conf:1:8: expected a value (quoted string, number, name, [list], {hash} or Class(...)) or ']', got ','", 'two commas'],
  ['a = [1 2', "test.conf:1:9: expected a value (quoted string, number, name, [list], {hash} or Class(...)) or ']', got end of file", 'an unclosed list'],
  ['a = Dir(1)', "test.conf:1:9: expected a parameter (name = value) or ')', got number 1", 'a positional parameter'],
  ['a = Dir x', "test.conf:1:9: expected '(' after Dir, got name x", 'a class without parentheses'],
  ['a = {\n  "k": 1,\n  "j" 2}', 'test.conf:3:7: expected \':\' after the key "j", got number 2', 'an error on a later line'],
];

for (const [text, message, what] of ERRORS) {
  test(`parser error: ${what} is reported at line:column with what was expected`, () => {
    const got = syntaxError(text).message;
    assert.ok(got.startsWith(message), `got: ${got}`);
  });
}

test('parser: deep nesting is an error, not a stack overflow', () => {
  const e = syntaxError('a = ' + '['.repeat(1000) + ']'.repeat(1000));
  assert.match(e.message, /nested deeper than 200 levels/);
});

function strip(v: ValueNode): unknown {
  switch (v.kind) {
    case 'string':
      return { s: v.value };
    case 'number':
      return { n: v.text };
    case 'ref':
      return { ref: v.name };
    case 'list':
      return v.items.map(strip);
    case 'hash':
      return Object.fromEntries(v.entries.map((e) => [e.key, strip(e.value)]));
    case 'class':
      return { [v.name]: Object.fromEntries(v.params.map((p) => [p.name, strip(p.value)])) };
  }
}

test('parser: commas are optional; leading and trailing commas are accepted', () => {
  const ast = parseConfig(`
    a = Dir(, base='b/' index_file='i', default_ctype='t',)
    b = [1 2, 3,]
    c = {'x': 1 'y': two,}
    servers = [a]`);
  assert.deepEqual(
    Object.fromEntries(ast.assignments.map((x) => [x.name, strip(x.value)])),
    {
      a: { Dir: { base: { s: 'b/' }, index_file: { s: 'i' }, default_ctype: { s: 't' } } },
      b: [{ n: '1' }, { n: '2' }, { n: '3' }],
      c: { x: { n: '1' }, y: { ref: 'two' } },
      servers: [{ ref: 'a' }],
    },
  );
});

test('parser: AST nodes carry their line:column', () => {
  const ast = parseConfig("x = 1\nh = Host(name='n',\n  routes={'/': d})");
  const h = ast.assignments[1]!;
  assert.deepEqual(h.namePos, { line: 2, column: 1 });
  assert.equal(h.value.kind, 'class');
  if (h.value.kind !== 'class') return;
  assert.deepEqual(h.value.pos, { line: 2, column: 5 });
  const routes = h.value.params[1]!;
  assert.deepEqual(routes.namePos, { line: 3, column: 3 });
  assert.equal(routes.value.kind, 'hash');
  if (routes.value.kind !== 'hash') return;
  assert.deepEqual(routes.value.entries[0]!.keyPos, { line: 3, column: 11 });
  assert.deepEqual(routes.value.entries[0]!.value.pos, { line: 3, column: 16 });
});

test('parser: duplicates are kept in file order (scoping is the loader’s job)', () => {
  const ast = parseConfig('a = 1 a = 2');
  assert.deepEqual(
    ast.assignments.map((x) => strip(x.value)),
    [{ n: '1' }, { n: '2' }],
  );
});

test('fast-check: the parser throws nothing but ConfigSyntaxError on any input', () => {
  const alphabet = fc.constantFrom(...'aZ_09 \n\t#\'"\\=:,{}[]()-.`é'.split(''), 'Dir', 'Host(', "'x'", 'servers = [');
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.array(alphabet, { maxLength: 80 }).map((a) => a.join(''))), (text) => {
      try {
        parseConfig(text, 'fuzz.conf');
      } catch (err) {
        if (!(err instanceof ConfigSyntaxError)) throw err;
        assert.match(err.message, /^fuzz\.conf:\d+:\d+: /);
      }
    }),
    { numRuns: 3000 },
  );
});
