/** Small helpers shared by the FastCGI client tests. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { FastCgiError, type FastCgiErrorCode } from '../../src/fastcgi/client.js';

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Polls `pred` every 10 ms until it holds; fails after `deadlineMs`. */
export async function waitUntil(pred: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${deadlineMs} ms waiting for: ${what}`);
    await sleep(10);
  }
}

/** Polls until `get()` stops changing for `quietMs`; returns the value (bounded by deadlineMs). */
export async function waitStable(get: () => number, what: string, quietMs = 250, deadlineMs = 20_000): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  let last = get();
  let since = Date.now();
  for (;;) {
    await sleep(25);
    const now = get();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
    if (Date.now() > deadline) assert.fail(`timed out after ${deadlineMs} ms waiting for ${what} to settle (at ${now})`);
  }
}

/** Awaits `p` and asserts it rejects with a FastCgiError of `code`. */
export async function rejectsWith(p: Promise<unknown>, code: FastCgiErrorCode, what = ''): Promise<FastCgiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FastCgiError, `${what}: expected FastCgiError ${code}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return err;
  }
  assert.fail(`${what}: expected a rejection with ${code}, but it resolved`);
}

/** Streams `total` deterministic bytes in `chunk`-byte pieces, counting what was pulled. */
export function countingBody(total: number, chunk = 64 * 1024): { iterable: AsyncIterable<Buffer>; pulled: () => number; md5: string } {
  let pulled = 0;
  const piece = (i: number, n: number): Buffer => {
    const b = Buffer.alloc(n + 4);
    for (let j = 0; j < n; j += 4) b.writeUInt32BE((i * 7919 + j) >>> 0, j);
    return b.subarray(0, n);
  };
  const hash = createHash('md5');
  for (let at = 0, i = 0; at < total; at += chunk, i++) hash.update(piece(i, Math.min(chunk, total - at)));
  const md5 = hash.digest('hex');
  async function* gen(): AsyncGenerator<Buffer> {
    for (let at = 0, i = 0; at < total; at += chunk, i++) {
      const b = piece(i, Math.min(chunk, total - at));
      pulled += b.length;
      yield b;
    }
  }
  return { iterable: gen(), pulled: () => pulled, md5 };
}

export function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}
