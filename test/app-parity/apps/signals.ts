/**
 * What the parity apps share with the test through plain HTTP requests (so
 * the same calls work whether the app runs in the test process or inside a
 * bridge process): SSE steps the test releases one by one, and the 'close'
 * events an aborted response produced.
 */
import { once, EventEmitter } from 'node:events';

const bus = new EventEmitter();
bus.setMaxListeners(0);
const released = new Map<string, number>();
const closes = new Map<string, Set<'req' | 'res'>>();

/** Resolves once the test has released step `n` of stream `id` (steps count from 1). */
export async function stepReleased(id: string, n: number): Promise<void> {
  while ((released.get(id) ?? 0) < n) await once(bus, `release:${id}`);
}

/** The test saw the previous event: allow the next one. */
export function releaseStep(id: string): number {
  const n = (released.get(id) ?? 0) + 1;
  released.set(id, n);
  bus.emit(`release:${id}`);
  return n;
}

export function recordClose(id: string, which: 'req' | 'res'): void {
  let set = closes.get(id);
  if (!set) closes.set(id, (set = new Set()));
  set.add(which);
  bus.emit(`close:${id}`);
}

/** Waits (at most `ms`) until both req and res of `id` reported 'close'; what was seen. */
export async function closesSeen(id: string, ms: number): Promise<{ req: boolean; res: boolean }> {
  const deadline = AbortSignal.timeout(ms);
  try {
    while ((closes.get(id)?.size ?? 0) < 2) await once(bus, `close:${id}`, { signal: deadline });
  } catch {
    // timed out: report what we have
  }
  const set = closes.get(id) ?? new Set();
  return { req: set.has('req'), res: set.has('res') };
}

/** 1 MiB and a bit, deterministic: every byte position is checked. */
export const BIG_BODY = Buffer.from(Array.from({ length: 1024 * 1024 + 123 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

export const SSE_EVENTS = ['event: greeting\ndata: one\n\n', 'id: 2\ndata: two\ndata: lines\n\n', 'event: last\ndata: {"three":3}\n\n'];
