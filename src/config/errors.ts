/**
 * Config errors. Every one names where the problem is: a `.conf` position
 * (file:line:column), or a config.sqlite table/row/column.
 */

/** A line:column in a `.conf` file, both 1-based; columns count code points. */
export interface SourcePos {
  readonly line: number;
  readonly column: number;
}

/** A lexer or parser error: the `.conf` text is not in the m2sh language. */
export class ConfigSyntaxError extends Error {
  override readonly name = 'ConfigSyntaxError';
  readonly file: string;
  readonly pos: SourcePos;

  constructor(file: string, pos: SourcePos, message: string) {
    super(`${file}:${pos.line}:${pos.column}: ${message}`);
    this.file = file;
    this.pos = pos;
  }
}

/**
 * The `.conf` parses but does not describe a loadable config (missing field,
 * wrong type, bad reference, ...). `pos` is the offending node when known.
 */
export class ConfigLoadError extends Error {
  override readonly name = 'ConfigLoadError';

  constructor(file: string, pos: SourcePos | undefined, message: string) {
    super(pos ? `${file}:${pos.line}:${pos.column}: ${message}` : `${file}: ${message}`);
  }
}

/** config.sqlite holds something the server would refuse to start with. */
export class ConfigDbError extends Error {
  override readonly name = 'ConfigDbError';
}
