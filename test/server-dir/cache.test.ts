/** The Dir record cache: dir.c's whole-second freshness, single-flight refreshes, the LRU bound, kept bytes. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CACHE_SIZE, CONTENT_FILE_MAX, CONTENT_TOTAL_MAX, RecordCache, type FileRecord } from '../../src/server/dir/cache.js';
import { tempDir } from './helpers.js';

async function recordOf(file: string, loadedAt: number): Promise<FileRecord> {
  return { fullPath: Buffer.from(file), stats: await fsp.stat(file), fields: undefined, loadedAt, content: undefined, head200: undefined };
}

/** A cache over one real file whose resolutions are counted. */
async function counted(t: Parameters<typeof tempDir>[0], ttl = 0): Promise<{ cache: RecordCache; file: string; calls: () => number }> {
  const dir = await tempDir(t);
  const file = path.join(dir, 'f.txt');
  await fsp.writeFile(file, 'hello');
  let n = 0;
  const cache = new RecordCache(ttl, async (_key, now) => {
    n++;
    return recordOf(file, now);
  });
  return { cache, file, calls: () => n };
}

describe('RecordCache', () => {
  test('concurrent lookups of a missing path share one resolution', async (t) => {
    const { cache, calls } = await counted(t);
    const got = await Promise.all(Array.from({ length: 20 }, () => cache.lookup('/f', 100)));
    assert.equal(calls(), 1);
    assert.ok(got.every((r) => r === got[0] && r !== undefined));
    // Fresh now: answered without a promise.
    assert.equal(cache.lookup('/f', 100), got[0]);
  });

  test('ttl 0: fresh within the loading second, re-stat\'ed after; an unchanged file keeps its record and bytes', async (t) => {
    const { cache, calls } = await counted(t);
    const first = (await cache.lookup('/f', 100))!;
    cache.keepContent('/f', first, Buffer.from('hello'));
    const stale = [cache.lookup('/f', 101), cache.lookup('/f', 101)];
    assert.ok(stale[0] instanceof Promise, 'a stale record is re-stat\'ed');
    assert.equal(stale[0], stale[1], 'one shared re-stat');
    const again = await stale[0];
    assert.equal(again, first);
    assert.equal(again!.content?.toString(), 'hello');
    assert.equal(again!.loadedAt, 101);
    assert.equal(calls(), 1);
  });

  test('a stale record whose file changed is resolved again', async (t) => {
    const { cache, file, calls } = await counted(t, 5);
    const first = (await cache.lookup('/f', 100))!;
    await fsp.writeFile(file, 'hello, again');
    assert.equal(cache.lookup('/f', 105), first, 'within cache_ttl seconds');
    const next = await cache.lookup('/f', 106);
    assert.notEqual(next, first);
    assert.equal(next!.stats.size, 12);
    assert.equal(calls(), 2);
  });

  test('forget drops the record only if it is still the cached one', async (t) => {
    const { cache, file, calls } = await counted(t);
    const first = (await cache.lookup('/f', 100))!;
    cache.forget('/f', await recordOf(file, 100));
    assert.equal(cache.lookup('/f', 100), first);
    cache.forget('/f', first);
    assert.notEqual(await cache.lookup('/f', 100), first);
    assert.equal(calls(), 2);
  });

  test('keepContent: only for the current record and at most CONTENT_FILE_MAX bytes', async (t) => {
    const { cache, file } = await counted(t);
    const rec = (await cache.lookup('/f', 100))!;
    cache.keepContent('/f', rec, Buffer.alloc(CONTENT_FILE_MAX + 1));
    assert.equal(rec.content, undefined);
    const other = await recordOf(file, 100);
    cache.keepContent('/f', other, Buffer.from('x'));
    assert.equal(other.content, undefined);
    cache.keepContent('/f', rec, Buffer.from('hello'));
    assert.equal((rec.content as Buffer | undefined)?.toString(), 'hello');
  });

  test(`kept bytes stay within CONTENT_TOTAL_MAX; dropped and evicted records give theirs back`, async (t) => {
    const { cache } = await counted(t, 3600);
    const fits = CONTENT_TOTAL_MAX / CONTENT_FILE_MAX;
    const recs: FileRecord[] = [];
    for (let i = 0; i <= fits; i++) {
      const r = (await cache.lookup(`/k${i}`, 100))!;
      cache.keepContent(`/k${i}`, r, Buffer.alloc(CONTENT_FILE_MAX));
      recs.push(r);
    }
    assert.equal(cache.heldBytes, CONTENT_TOTAL_MAX);
    assert.equal(recs[fits]!.content, undefined, 'no room for one more');
    cache.forget('/k0', recs[0]!);
    assert.equal(cache.heldBytes, CONTENT_TOTAL_MAX - CONTENT_FILE_MAX);
    cache.keepContent(`/k${fits}`, recs[fits]!, Buffer.alloc(CONTENT_FILE_MAX));
    assert.equal(cache.heldBytes, CONTENT_TOTAL_MAX);
    // Filling the records up to CACHE_SIZE evicts the least recently used, and their bytes with them.
    for (let i = fits + 1; i <= CACHE_SIZE + 1; i++) await cache.lookup(`/k${i}`, 100);
    assert.ok(cache.heldBytes < CONTENT_TOTAL_MAX, `held ${cache.heldBytes}`);
    assert.equal(cache.heldBytes % CONTENT_FILE_MAX, 0);
  });

  test(`at most ${CACHE_SIZE} records, least recently used evicted`, async (t) => {
    const { cache, calls } = await counted(t, 3600);
    for (let i = 0; i <= CACHE_SIZE; i++) await cache.lookup(`/k${i}`, 100);
    assert.equal(calls(), CACHE_SIZE + 1);
    // /k0 was evicted; /k1 is still there.
    assert.ok(!(cache.lookup('/k1', 100) instanceof Promise));
    await cache.lookup('/k0', 100);
    assert.equal(calls(), CACHE_SIZE + 2);
  });

  test('a failed resolution is not cached and does not stick', async () => {
    let n = 0;
    const cache = new RecordCache(0, async () => {
      n++;
      return undefined;
    });
    assert.equal(await cache.lookup('/x', 100), undefined);
    assert.equal(await cache.lookup('/x', 100), undefined);
    assert.equal(n, 2);
  });
});
