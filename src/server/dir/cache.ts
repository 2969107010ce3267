/**
 * The Dir handler's record cache (Mongrel2's dir.c FileRecord cache): request
 * path → what a lookup resolved (real path, stat, head fields) and, for files
 * up to CONTENT_FILE_MAX, their bytes (at most CONTENT_TOTAL_MAX bytes per
 * cache). Keyed by the raw request path, at most CACHE_SIZE records, least
 * recently used evicted first.
 *
 * Freshness is dir.c's, in whole seconds: a record is used as is while at
 * most `cache_ttl` seconds have passed since it was loaded (time(NULL)
 * arithmetic), so `cache_ttl = 0` re-stats a path at most once per wall-clock
 * second. A stale record is re-stat'ed; unchanged, it is kept (with its
 * bytes), else dropped and the path resolved again. Concurrent lookups of one
 * path share that single stat or resolution, so a burst of requests for a
 * file costs one round trip to the thread pool, not one each.
 */
import type { Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { FileHeadFields } from './dir-responses.js';

/** Mongrel2's FR_CACHE_SIZE. */
export const CACHE_SIZE = 32;
/**
 * Files up to this size are kept in memory once read whole and checked: Node
 * has no sendfile, so serving them from memory saves a read (a copy and a
 * thread-pool round trip) per request.
 */
export const CONTENT_FILE_MAX = 1024 * 1024;
/** The bound on the bytes kept per cache (one per Dir route): beyond it, new files are streamed. */
export const CONTENT_TOTAL_MAX = 16 * 1024 * 1024;

export interface FileRecord {
  readonly fullPath: Buffer;
  readonly stats: Stats;
  /** Undefined for a directory. */
  readonly fields: FileHeadFields | undefined;
  /** Whole seconds (dir.c's `loaded = time(NULL)`). */
  loadedAt: number;
  /** The whole file, once read and checked against `stats` (small files only). */
  content: Buffer | undefined;
  /** The last 200 head built for `content`, and the second its Date says. */
  head200: { readonly second: number; readonly bytes: Buffer } | undefined;
}

/** dir.c's eviction test: any of these changing means a different file. */
export function sameFile(a: Stats, b: Stats): boolean {
  return (
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.mode === b.mode &&
    a.size === b.size &&
    a.ino === b.ino &&
    a.dev === b.dev
  );
}

export class RecordCache {
  private readonly records = new Map<string, FileRecord>();
  /** The stat or resolution in flight per path: later lookups wait for it. */
  private readonly pending = new Map<string, Promise<FileRecord | undefined>>();
  /** Bytes of `content` held by the cached records. */
  private contentBytes = 0;

  constructor(
    private readonly ttlSeconds: number,
    /** A fresh resolution of `key` (undefined: nothing to serve). */
    private readonly resolve: (key: string, nowSeconds: number) => Promise<FileRecord | undefined>,
  ) {}

  /** The record for `key`: at once when fresh, else after one shared re-stat or resolution. */
  lookup(key: string, nowSeconds: number): FileRecord | Promise<FileRecord | undefined> {
    const cached = this.records.get(key);
    if (cached !== undefined && nowSeconds - cached.loadedAt <= this.ttlSeconds) {
      this.touch(key, cached);
      return cached;
    }
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    const p = this.refresh(key, cached, nowSeconds);
    this.pending.set(key, p);
    const clear = (): void => {
      if (this.pending.get(key) === p) this.pending.delete(key);
    };
    p.then(clear, clear);
    return p;
  }

  /** Drops `record` if it is still the one cached for `key` (its file was found changed). */
  forget(key: string, record: FileRecord): void {
    if (this.records.get(key) === record) this.remove(key, record);
  }

  /** Keeps the bytes read for `record` if it is still current, small enough and there is room. */
  keepContent(key: string, record: FileRecord, content: Buffer): void {
    if (record.content !== undefined || content.length > CONTENT_FILE_MAX || this.contentBytes + content.length > CONTENT_TOTAL_MAX) return;
    if (this.records.get(key) !== record) return;
    record.content = content;
    this.contentBytes += content.length;
  }

  /** Bytes of file content held now (tests, status). */
  get heldBytes(): number {
    return this.contentBytes;
  }

  private remove(key: string, record: FileRecord): void {
    this.records.delete(key);
    if (record.content !== undefined) this.contentBytes -= record.content.length;
  }

  private async refresh(key: string, cached: FileRecord | undefined, nowSeconds: number): Promise<FileRecord | undefined> {
    if (cached !== undefined) {
      const stats = await fsp.stat(cached.fullPath).catch(() => undefined);
      // Still the record (no body found the file changed meanwhile) and the same file: keep it, bytes and all.
      if (stats !== undefined && sameFile(stats, cached.stats) && this.records.get(key) === cached) {
        cached.loadedAt = nowSeconds;
        this.touch(key, cached);
        return cached;
      }
      this.forget(key, cached);
    }
    const record = await this.resolve(key, nowSeconds);
    if (record !== undefined) this.touch(key, record);
    return record;
  }

  /** Most recently used last; the oldest goes beyond CACHE_SIZE. */
  private touch(key: string, record: FileRecord): void {
    const had = this.records.get(key);
    if (had !== undefined) this.remove(key, had);
    this.records.set(key, record);
    if (record.content !== undefined) this.contentBytes += record.content.length;
    if (this.records.size > CACHE_SIZE) {
      const [oldest, evicted] = this.records.entries().next().value ?? [];
      if (oldest !== undefined && evicted !== undefined) this.remove(oldest, evicted);
    }
  }
}
