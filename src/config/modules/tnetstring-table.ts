/**
 * The tnetstring table a Mongrel2 config module returns (a list of rows, each
 * a list of cells) → JS rows, keeping each cell's tag: Mongrel2 checks cells
 * by tag, so `1.0^` is not a number cell and `0:~` is null, even though a
 * plain parse would blur the first. Pure; errors carry byte offsets.
 */
import { ProtocolError } from '../../protocol/errors.js';
import { parseAt, readFrame } from '../../protocol/tnetstring.js';

/** A cell (or row) of a type no config column has; `describe` says what it was. */
export class TnetCell {
  constructor(readonly describe: string) {}
}

export function isTnetCell(value: unknown): value is TnetCell {
  return value instanceof TnetCell;
}

const TAG_NAMES: Readonly<Record<string, string>> = { '^': 'a float', '!': 'a boolean', ']': 'a list', '}': 'a dict' };

function decodeCell(buf: Buffer, offset: number): { value: unknown; end: number } {
  const { start, end } = readFrame(buf, offset);
  const tag = String.fromCharCode(buf[end]!);
  if (tag === ',') return { value: buf.toString('utf8', start, end), end: end + 1 };
  if (tag === '~') return { value: null, end: end + 1 };
  // parseAt validates the value (and nested values) and gives the typed number.
  const parsed = parseAt(buf, offset);
  if (tag === '#') {
    const v = parsed.value;
    return { value: typeof v === 'number' ? v : new TnetCell(`the integer ${String(v)} (out of range)`), end: parsed.end };
  }
  const text = tag === '^' || tag === '!' ? ` ${buf.toString('latin1', start, end)}` : '';
  return { value: new TnetCell(`${TAG_NAMES[tag] ?? `a value tagged ${tag}`}${text}`), end: parsed.end };
}

function decodeList<T>(buf: Buffer, offset: number, item: (buf: Buffer, at: number) => { value: T | TnetCell; end: number }): { value: Array<T | TnetCell>; end: number } {
  const { start, end } = readFrame(buf, offset);
  if (buf[end] !== 0x5d /* ] */) throw new ProtocolError('tnetstring table: expected a list', offset);
  const inner = buf.subarray(0, end);
  const out: Array<T | TnetCell> = [];
  for (let i = start; i < end; ) {
    const r = item(inner, i);
    out.push(r.value);
    i = r.end;
  }
  return { value: out, end: end + 1 };
}

/** Decodes exactly one tnetstring list of rows. A row that is no list becomes a TnetCell. */
export function decodeTable(buf: Buffer): unknown[] {
  const { value, end } = decodeList(buf, 0, (b, at) => {
    const { end: e } = readFrame(b, at);
    if (b[e] === 0x5d) return decodeList(b, at, decodeCell);
    return decodeCell(b, at);
  });
  if (end !== buf.length) throw new ProtocolError(`tnetstring table: ${buf.length - end} trailing bytes`, end);
  return value;
}
