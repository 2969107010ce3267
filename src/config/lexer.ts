/**
 * Lexer for the m2sh `.conf` language (Mongrel2 tools/m2sh/src/lexer.rl).
 *
 * Longest match, ties to the earlier rule: so an all-letter word starting
 * with a capital and at least two letters long (`Dir`, `Main`) is a CLASS,
 * anything else word-like (`main`, `X`, `Main2`, `_x`) is an IDENT. Strings
 * keep their raw bytes: a backslash only stops the next character from
 * ending the string, nothing is unescaped ('\d+' stays backslash-d-plus).
 * NUMBER is bare digits (no sign, decimal point or hex).
 */
import { ConfigSyntaxError, type SourcePos } from './errors.js';

export type TokenType =
  | 'QSTRING'
  | 'NUMBER'
  | 'CLASS'
  | 'IDENT'
  | '='
  | '{'
  | '}'
  | '['
  | ']'
  | '('
  | ')'
  | ','
  | ':'
  | 'EOF';

export interface Token {
  readonly type: TokenType;
  /** QSTRING: the raw text between the quotes; others: the token text. */
  readonly text: string;
  readonly pos: SourcePos;
}

const PUNCT = new Set(['=', '{', '}', '[', ']', '(', ')', ',', ':']);

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isUpper = (c: string): boolean => c >= 'A' && c <= 'Z';
/** Ragel's `space` minus newline. */
const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f';

/** Describes a character for an error message. */
export function describeChar(c: string | undefined): string {
  if (c === undefined) return 'end of file';
  const cp = c.codePointAt(0)!;
  if (cp < 0x20 || cp === 0x7f) return `control character 0x${cp.toString(16).padStart(2, '0')}`;
  return `'${c}'`;
}

/** Splits `.conf` text into tokens, ending with one EOF token. Pure. */
export function tokenize(text: string, file = '<config>'): Token[] {
  // Code points, so columns count characters and surrogate pairs stay whole.
  const chars = Array.from(text);
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;

  const advance = (n: number): void => {
    for (let k = 0; k < n; k++) {
      if (chars[i] === '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
      i++;
    }
  };

  while (i < chars.length) {
    const c = chars[i]!;
    const pos: SourcePos = { line, column: col };
    if (c === '\n' || isBlank(c)) {
      advance(1);
    } else if (c === '#') {
      // A comment runs to the end of the line (or of the file).
      while (i < chars.length && chars[i] !== '\n') advance(1);
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < chars.length && chars[j] !== c) j += chars[j] === '\\' ? 2 : 1;
      if (j >= chars.length) {
        throw new ConfigSyntaxError(file, pos, `unterminated string: no closing ${c} before end of file`);
      }
      tokens.push({ type: 'QSTRING', text: chars.slice(i + 1, j).join(''), pos });
      advance(j + 1 - i);
    } else if (PUNCT.has(c)) {
      tokens.push({ type: c as TokenType, text: c, pos });
      advance(1);
    } else if (isDigit(c)) {
      let j = i;
      while (j < chars.length && isDigit(chars[j]!)) j++;
      tokens.push({ type: 'NUMBER', text: chars.slice(i, j).join(''), pos });
      advance(j - i);
    } else if (isAlpha(c) || c === '_') {
      let j = i;
      while (j < chars.length && (isAlpha(chars[j]!) || isDigit(chars[j]!) || chars[j] === '_')) j++;
      let letters = i;
      while (letters < j && isAlpha(chars[letters]!)) letters++;
      // CLASS = [A-Z] alpha+ wins only when it is as long as the IDENT match.
      const isClass = isUpper(c) && letters === j && j - i >= 2;
      tokens.push({ type: isClass ? 'CLASS' : 'IDENT', text: chars.slice(i, j).join(''), pos });
      advance(j - i);
    } else {
      const hint = c === '`' ? ' (backquoted patterns are not part of the language since Mongrel2 1.8; use a quoted string)' : '';
      throw new ConfigSyntaxError(file, pos, `invalid character ${describeChar(c)}${hint}`);
    }
  }
  tokens.push({ type: 'EOF', text: '', pos: { line, column: col } });
  return tokens;
}
