/**
 * Netstrings (`LEN:BYTES,`), the framing of request bodies, JSON headers and
 * reply targets. A netstring is exactly a tnetstring of type string, so this
 * shares the length reader with the tnetstring codec.
 */
import { ProtocolError } from './errors.js';
import { readFrame } from './tnetstring.js';

export interface NetstringResult {
  value: Buffer;
  rest: Buffer;
  end: number;
}

/** Parses a netstring at `offset`. Errors carry absolute byte offsets. */
export function parseNetstringAt(buf: Buffer, offset = 0): NetstringResult {
  const { start, end } = readFrame(buf, offset);
  if (buf[end] !== 0x2c) {
    throw new ProtocolError(`netstring: expected ',' after ${end - start} bytes of data, got 0x${buf[end]!.toString(16).padStart(2, '0')}`, end);
  }
  return { value: buf.subarray(start, end), end: end + 1, rest: buf.subarray(end + 1) };
}

export function parseNetstring(buf: Buffer): NetstringResult {
  return parseNetstringAt(buf, 0);
}

export function encodeNetstring(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([Buffer.from(`${bytes.length}:`, 'latin1'), bytes, Buffer.from(',', 'latin1')]);
}
