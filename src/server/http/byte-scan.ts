/**
 * Byte search for short spans (request and response heads). A JS loop: a
 * native Buffer#indexOf call costs more than scanning a few dozen bytes.
 */

/** Index of `byte` in buf[from, to), or -1. */
export function findByte(buf: Buffer, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === byte) return i;
  return -1;
}
