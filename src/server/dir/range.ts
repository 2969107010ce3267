/**
 * A `Range: bytes=...` header against a representation of `size` bytes
 * (RFC 9110 §14.1.2, §14.2). Only a single range is served: several ranges are
 * ignored (full 200) rather than answered with multipart/byteranges.
 */

export type RangeResult =
  /** Serve the whole representation (no/invalid/multi/unknown-unit Range). */
  | { readonly kind: 'ignore' }
  /** 206 for bytes start..end inclusive. */
  | { readonly kind: 'range'; readonly start: number; readonly end: number }
  /** 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' };

const IGNORE: RangeResult = { kind: 'ignore' };
const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;

export function evaluateRange(value: string, size: number): RangeResult {
  const eq = value.indexOf('=');
  if (eq < 0) return IGNORE;
  // range-unit is case-insensitive (§14.1); "bytes" is the only one we know.
  if (value.slice(0, eq).trim().toLowerCase() !== 'bytes') return IGNORE;
  // #rule: empty members are allowed and ignored.
  const specs = value
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length !== 1) return IGNORE;
  const spec = specs[0]!;

  const int = INT_RANGE.exec(spec);
  if (int) {
    const first = Number(int[1]);
    const last = int[2] === '' ? undefined : Number(int[2]);
    if (last !== undefined && last < first) return IGNORE; // invalid range-spec
    if (first >= size) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: first, end: Math.min(last ?? size - 1, size - 1) };
  }
  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix) {
    const length = Number(suffix[1]);
    if (length === 0) return { kind: 'unsatisfiable' };
    // A suffix of an empty file selects nothing expressible in Content-Range: send the (empty) 200.
    if (size === 0) return IGNORE;
    return { kind: 'range', start: Math.max(0, size - length), end: size - 1 };
  }
  return IGNORE;
}
