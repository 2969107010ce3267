/**
 * Mongrel2 writes JSON headers with minimal escaping: only `"` and `\` are
 * escaped, so TABs and other control bytes appear raw inside strings, and
 * header bytes that are not UTF-8 pass through untouched. `JSON.parse`
 * rejects raw control characters, so this escapes them first; invalid UTF-8
 * becomes U+FFFD instead of an exception.
 */
import { ProtocolError } from './errors.js';

const HEX = '0123456789abcdef';
const CONTROL_RE = /[\x00-\x1f]/;

/** Parses JSON text from Mongrel2, tolerating raw control bytes inside strings. */
export function parseTolerantJson(bytes: Buffer, baseOffset = 0): unknown {
  // Decoding never turns other bytes into U+0000..U+001F, so the decoded text
  // has a control character exactly where the bytes have one (a native regex
  // scan instead of a JS loop over every header byte).
  let text = bytes.toString('utf8');
  if (CONTROL_RE.test(text)) text = escapeControlBytes(bytes, baseOffset);
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    // V8 names a character position: the byte position for ASCII text
    // without escapes, otherwise approximate (kept inside the input).
    const at = /position (\d+)/.exec(detail);
    throw new ProtocolError(`invalid JSON: ${detail}`, baseOffset + Math.min(at ? Number(at[1]) : 0, Math.max(0, bytes.length - 1)));
  }
}

function escapeControlBytes(bytes: Buffer, baseOffset: number): string {
  const out: number[] = [];
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c /* \ */) {
        out.push(c);
        if (i + 1 < bytes.length) out.push(bytes[++i]!);
        continue;
      }
      if (c === 0x22 /* " */) inString = false;
      if (c < 0x20) {
        out.push(0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(c >> 4), HEX.charCodeAt(c & 15));
        continue;
      }
      out.push(c);
    } else {
      if (c === 0x22) inString = true;
      else if (c < 0x20 && c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
        throw new ProtocolError(`invalid JSON: control byte 0x${c.toString(16).padStart(2, '0')} outside a string`, baseOffset + i);
      }
      out.push(c);
    }
  }
  return Buffer.from(out).toString('utf8');
}
