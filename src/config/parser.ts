/**
 * Parser for the m2sh `.conf` language (Mongrel2 tools/m2sh/src/parser.y):
 *
 *   config     := assignment+ EOF
 *   assignment := IDENT '=' expr
 *   expr       := QSTRING | NUMBER | IDENT (a reference) | list | hash | class
 *   class      := CLASS '(' { [','] assignment } [','] ')'
 *   list       := '[' { [','] expr } [','] ']'
 *   hash       := '{' { [','] QSTRING ':' expr } [','] '}'
 *
 * Commas are optional separators. A trailing comma is accepted here; the real
 * m2sh rejects it (a syntax error at the closing bracket). Two commas in a row
 * are an error in both. The AST keeps every entry in file order, duplicates
 * included: scoping (last wins) and m2sh's walk order live in scope.ts.
 */
import { ConfigSyntaxError, type SourcePos } from './errors.js';
import { describeChar, tokenize, type Token, type TokenType } from './lexer.js';

export interface StringNode {
  readonly kind: 'string';
  /** The raw text between the quotes (never unescaped). */
  readonly value: string;
  readonly pos: SourcePos;
}
export interface NumberNode {
  readonly kind: 'number';
  /** The digits as written. */
  readonly text: string;
  readonly pos: SourcePos;
}
export interface RefNode {
  readonly kind: 'ref';
  readonly name: string;
  readonly pos: SourcePos;
}
export interface ListNode {
  readonly kind: 'list';
  readonly items: readonly ValueNode[];
  readonly pos: SourcePos;
}
export interface HashEntry {
  readonly key: string;
  readonly keyPos: SourcePos;
  readonly value: ValueNode;
}
export interface HashNode {
  readonly kind: 'hash';
  readonly entries: readonly HashEntry[];
  readonly pos: SourcePos;
}
export interface Assignment {
  readonly name: string;
  readonly namePos: SourcePos;
  readonly value: ValueNode;
}
export interface ClassNode {
  readonly kind: 'class';
  readonly name: string;
  readonly params: readonly Assignment[];
  readonly pos: SourcePos;
}
export type ValueNode = StringNode | NumberNode | RefNode | ListNode | HashNode | ClassNode;

export interface ConfigAst {
  readonly file: string;
  /** Top-level assignments in file order. */
  readonly assignments: readonly Assignment[];
}

const TOKEN_NAMES: Record<TokenType, string> = {
  QSTRING: 'a quoted string',
  NUMBER: 'a number',
  CLASS: 'a class name',
  IDENT: 'a name',
  '=': "'='",
  '{': "'{'",
  '}': "'}'",
  '[': "'['",
  ']': "']'",
  '(': "'('",
  ')': "')'",
  ',': "','",
  ':': "':'",
  EOF: 'end of file',
};

function describeToken(t: Token): string {
  switch (t.type) {
    case 'QSTRING':
      return `string ${JSON.stringify(t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text)}`;
    case 'NUMBER':
      return `number ${t.text}`;
    case 'CLASS':
      return `class name ${t.text}`;
    case 'IDENT':
      return `name ${t.text}`;
    case 'EOF':
      return 'end of file';
    default:
      return describeChar(t.text);
  }
}

const VALUE_EXPECTED = 'a value (quoted string, number, name, [list], {hash} or Class(...))';

/** Deeper nesting is refused rather than risking the JS stack. */
/** How deep values may nest, in one value as written and through references (load.ts). */
export const MAX_DEPTH = 200;

class Parser {
  private i = 0;
  private depth = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly file: string,
  ) {}

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private fail(t: Token, expected: string, extra = ''): never {
    throw new ConfigSyntaxError(this.file, t.pos, `expected ${expected}, got ${describeToken(t)}${extra}`);
  }

  private expect(type: TokenType, context = ''): Token {
    const t = this.peek();
    if (t.type !== type) this.fail(t, TOKEN_NAMES[type] + context);
    this.i++;
    return t;
  }

  config(): ConfigAst {
    const assignments: Assignment[] = [];
    do {
      const t = this.peek();
      if (t.type !== 'IDENT') {
        const hint =
          t.type === 'CLASS' ? ' (a capitalised all-letter word is a class name and cannot be a variable)' : '';
        this.fail(t, assignments.length === 0 ? 'an assignment (name = value)' : 'an assignment (name = value) or end of file', hint);
      }
      assignments.push(this.assignment());
    } while (this.peek().type !== 'EOF');
    return { file: this.file, assignments };
  }

  private assignment(): Assignment {
    const name = this.expect('IDENT');
    this.expect('=', ` after ${name.text}`);
    return { name: name.text, namePos: name.pos, value: this.value() };
  }

  private value(): ValueNode {
    const t = this.peek();
    if (this.depth >= MAX_DEPTH) {
      throw new ConfigSyntaxError(this.file, t.pos, `values nested deeper than ${MAX_DEPTH} levels`);
    }
    this.depth++;
    try {
      return this.valueAt(t);
    } finally {
      this.depth--;
    }
  }

  private valueAt(t: Token): ValueNode {
    switch (t.type) {
      case 'QSTRING':
        this.i++;
        return { kind: 'string', value: t.text, pos: t.pos };
      case 'NUMBER':
        this.i++;
        return { kind: 'number', text: t.text, pos: t.pos };
      case 'IDENT':
        this.i++;
        return { kind: 'ref', name: t.text, pos: t.pos };
      case '[':
        return this.list();
      case '{':
        return this.hash();
      case 'CLASS':
        return this.cls();
      default:
        return this.fail(t, VALUE_EXPECTED);
    }
  }

  /**
   * `{ [','] item } [',']` up to `close`: commas are optional separators, one
   * at most between items. `what` names an item for errors.
   */
  private sequence(close: TokenType, what: string, item: () => void): void {
    let afterComma = false;
    for (;;) {
      const t = this.peek();
      if (t.type === close) {
        this.i++;
        return;
      }
      if (t.type === ',') {
        if (afterComma) this.fail(t, `${what} or ${TOKEN_NAMES[close]}`, ' (two commas in a row)');
        afterComma = true;
        this.i++;
        continue;
      }
      if (t.type === 'EOF') this.fail(t, `${what} or ${TOKEN_NAMES[close]}`);
      item();
      afterComma = false;
    }
  }

  private list(): ListNode {
    const open = this.expect('[');
    const items: ValueNode[] = [];
    this.sequence(']', VALUE_EXPECTED, () => items.push(this.value()));
    return { kind: 'list', items, pos: open.pos };
  }

  private hash(): HashNode {
    const open = this.expect('{');
    const entries: HashEntry[] = [];
    this.sequence('}', 'a quoted key', () => {
      const key = this.peek();
      if (key.type !== 'QSTRING') this.fail(key, "a quoted key or '}'", ' (hash keys must be quoted strings)');
      this.i++;
      this.expect(':', ` after the key ${JSON.stringify(key.text)}`);
      entries.push({ key: key.text, keyPos: key.pos, value: this.value() });
    });
    return { kind: 'hash', entries, pos: open.pos };
  }

  private cls(): ClassNode {
    const name = this.expect('CLASS');
    this.expect('(', ` after ${name.text}`);
    const params: Assignment[] = [];
    this.sequence(')', 'a parameter (name = value)', () => {
      const t = this.peek();
      if (t.type !== 'IDENT') this.fail(t, "a parameter (name = value) or ')'");
      params.push(this.assignment());
    });
    return { kind: 'class', name: name.text, params, pos: name.pos };
  }
}

/** Parses `.conf` text. Throws ConfigSyntaxError (and nothing else) on bad input. Pure. */
export function parseConfig(text: string, file = '<config>'): ConfigAst {
  return new Parser(tokenize(text, file), file).config();
}
