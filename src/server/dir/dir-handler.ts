/**
 * The Dir handler of the server core: serves files under a configured base
 * directory for one route, like Mongrel2's src/dir.c, with RFC 9110 validators,
 * conditionals and single byte ranges added (reference/server-core.md §6).
 * The server gives us a parsed request and writes what we return.
 */
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { Readable } from 'node:stream';
import { describeProblem, dirProblems, HEADER_VALUE } from '../../config/target-rules.js';
import type { DirTarget } from '../../config/types.js';
import { keepAliveFor } from '../http/body.js';
import { CONTENT_FILE_MAX, RecordCache, type FileRecord } from './cache.js';
import { evaluatePreconditions, ifRangeAllows, type Validators } from './conditional.js';
import {
  fileHead,
  fixedStatus,
  notModifiedHead,
  rangeNotSatisfiableHead,
  redirectHead,
  type FileHeadFields,
  type DirFixedStatus,
} from './dir-responses.js';
import { FileRangeStream } from './file-stream.js';
import { mimeTypeFor } from './mime.js';
import { evaluateRange } from './range.js';
import { isInside, targetSuffix } from './target-path.js';

export interface DirRequest {
  readonly method: string;
  /** The raw (still percent-encoded) request path, without query. */
  readonly path: string;
  /** The request-target as sent (path, query). */
  readonly uri: string;
  readonly version: string;
  /** Lower-case name → first value, or undefined. */
  header(name: string): string | undefined;
}

export interface DirResponse {
  readonly status: number;
  /** The complete response head; for the fixed error responses also their body. */
  readonly head: Buffer;
  /** Body bytes from memory to send after `head` (then `body` is null). */
  readonly content?: Buffer;
  /**
   * Body bytes to send after `head`, or null. It may fail (error event) when
   * the file vanished, changed or shrank after the head was built: the server
   * must then close the connection (the client sees a short body).
   */
  readonly body: Readable | null;
  /** Close the connection after this response. */
  readonly close: boolean;
  /** Status for the access log. */
  readonly logStatus: number;
  /** Body bytes for the access log (Mongrel2: the file size for GET, 0 otherwise). */
  readonly bytes: number;
}

export interface DirHandlerOptions {
  /** Where a relative base is resolved (default process.cwd()). */
  cwd?: string;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** The core's keep-alive rule (http/body.ts); the server also applies it to every Connection header. */
function wantsClose(req: DirRequest): boolean {
  const connection = req.header('connection');
  return !keepAliveFor(req.version, connection === undefined ? [] : [connection]);
}

/**
 * Path-absolute redirect target for a directory requested without its '/':
 * never `//host` (Mongrel2 builds `//<Host header><uri>/`, an open redirect),
 * leading slashes collapsed and backslashes escaped so no browser reads it as
 * scheme-relative. Undefined if it would not be a clean header value.
 */
function directoryLocation(req: DirRequest): string | undefined {
  const q = req.uri.indexOf('?');
  const query = q >= 0 ? req.uri.slice(q).split('#')[0]! : '';
  const location = ('/' + req.path.replace(/^\/+/, '') + '/' + query).replace(/\\/g, '%5C');
  return HEADER_VALUE.test(location) ? location : undefined;
}

/** A response that is all head (fixed error bodies live inside `head`). */
function bodiless(status: number, head: Buffer, close: boolean): DirResponse {
  return { status, head, body: null, close, logStatus: status, bytes: 0 };
}

export class DirHandler {
  private readonly cache: RecordCache;
  private base: Buffer | undefined;
  private readonly now: () => number;
  private readonly cwd: string;

  constructor(
    readonly target: DirTarget,
    readonly routePrefix: string,
    private readonly mimetypes: ReadonlyMap<string, string>,
    options: DirHandlerOptions = {},
  ) {
    // The config read refuses these already (target-rules.ts); a target built by hand is checked the same way.
    const [bad] = dirProblems(target);
    if (bad) throw new Error(`Dir ${target.id}: ${describeProblem(bad)}`);
    for (const [ext, type] of mimetypes) {
      if (!HEADER_VALUE.test(type)) throw new Error(`mimetypes[${JSON.stringify(ext)}]: ${JSON.stringify(type)} is not a valid header value`);
    }
    this.now = options.now ?? Date.now;
    this.cwd = options.cwd ?? process.cwd();
    this.cache = new RecordCache(target.cacheTtl, (key, nowSeconds) => this.resolve(key, nowSeconds));
  }

  async serve(req: DirRequest): Promise<DirResponse> {
    const now = Math.floor(this.now() / 1000);
    const isHead = req.method === 'HEAD';
    if (req.method !== 'GET' && !isHead) return this.fixed(405, false);

    const prefix = this.routePrefix;
    // dir.c: a prefix longer than the path, or not starting with '/', is a 404.
    // A path outside the prefix can only come from a routing bug: refuse it too.
    if (!prefix.startsWith('/') || prefix.length > req.path.length || !req.path.startsWith(prefix)) {
      return this.fixed(404, isHead);
    }
    const record = await this.cache.lookup(req.path, now);
    if (record === undefined) return this.fixed(404, isHead);

    const keepAliveClose = wantsClose(req);
    const f = record.fields;
    if (f === undefined) {
      const location = req.path.endsWith('/') ? undefined : directoryLocation(req);
      if (location === undefined) return this.fixed(404, isHead);
      return bodiless(301, redirectHead(location, now), keepAliveClose);
    }

    const validators: Validators = { etag: { weak: false, opaque: f.etag }, lastModified: f.lastModified };
    const pre = evaluatePreconditions(
      {
        ifMatch: req.header('if-match'),
        ifUnmodifiedSince: req.header('if-unmodified-since'),
        ifNoneMatch: req.header('if-none-match'),
        ifModifiedSince: req.header('if-modified-since'),
      },
      validators,
      now,
    );
    if (pre === 'failed') return this.fixed(412, isHead);
    if (pre === 'not-modified') {
      return bodiless(304, notModifiedHead(f, now), keepAliveClose);
    }

    // Ranges apply to GET only (RFC 9110 §14.2); If-Range false → the whole file.
    const rangeHeader = isHead ? undefined : req.header('range');
    const ifRange = req.header('if-range');
    const range =
      rangeHeader === undefined || (ifRange !== undefined && !ifRangeAllows(ifRange, validators, now))
        ? ({ kind: 'ignore' } as const)
        : evaluateRange(rangeHeader, f.size);
    if (range.kind === 'unsatisfiable') {
      return bodiless(416, rangeNotSatisfiableHead(f, now), keepAliveClose);
    }
    const span = range.kind === 'range' ? { start: range.start, end: range.end } : undefined;
    const start = span?.start ?? 0;
    const end = span?.end ?? f.size - 1;
    const length = end - start + 1;
    const status = span ? 206 : 200;
    const sends = !isHead && length > 0;
    const content = record.content;
    if (content !== undefined && sends) {
      // From memory; the 200 head is reused for the rest of its second.
      let head: Buffer;
      if (span) head = fileHead(f, now, span);
      else if (record.head200?.second === now) head = record.head200.bytes;
      else {
        head = fileHead(f, now, undefined);
        record.head200 = { second: now, bytes: head };
      }
      return { status, head, content: span ? content.subarray(start, end + 1) : content, body: null, close: keepAliveClose, logStatus: status, bytes: length };
    }
    const key = req.path;
    // A body that finds the file changed drops the cached record, so the retry gets a fresh stat;
    // a whole file small enough to keep is read in one chunk and its bytes kept for the next requests.
    const keep = !span && f.size <= CONTENT_FILE_MAX;
    const body = sends
      ? new FileRangeStream(
          record.fullPath,
          start,
          end,
          record.stats,
          () => this.cache.forget(key, record),
          keep ? (whole) => this.cache.keepContent(key, record, whole) : undefined,
          keep ? f.size : undefined,
        )
      : null;
    return {
      status,
      head: fileHead(f, now, span),
      body,
      close: keepAliveClose,
      logStatus: status,
      bytes: body ? length : 0,
    };
  }

  /** Fixed §8.4 responses say `Connection: close`, so we do close after them. */
  private fixed(status: DirFixedStatus, isHead: boolean): DirResponse {
    return bodiless(status, fixedStatus(status, isHead), true);
  }

  /** The realpath of the base, resolved on first use (and retried while it fails, like dir.c). */
  private async resolvedBase(): Promise<Buffer | undefined> {
    if (this.base === undefined) {
      const abs = nodePath.resolve(this.cwd, this.target.base);
      this.base = await fsp.realpath(abs, { encoding: 'buffer' }).catch(() => undefined);
    }
    return this.base;
  }

  /**
   * dir.c's Dir_resolve_file: base + decoded request part, realpath (resolves
   * `..` and symlinks; fails for a missing file), then the resolved path must
   * be the base or inside `base/` — dir.c's bare byte-prefix test would also
   * let `/static/../static2/x` through.
   */
  private async resolve(requestPath: string, nowSeconds: number): Promise<FileRecord | undefined> {
    const base = await this.resolvedBase();
    if (base === undefined) return undefined;
    const suffix = targetSuffix(requestPath, this.routePrefix, this.target.indexFile);
    if (suffix === undefined) return undefined;
    const fullPath = await fsp.realpath(Buffer.concat([base, suffix]), { encoding: 'buffer' }).catch(() => undefined);
    if (fullPath === undefined || !isInside(fullPath, base)) return undefined;
    const stats = await fsp.stat(fullPath).catch(() => undefined);
    if (stats === undefined) return undefined;
    if (stats.isDirectory()) return { fullPath, stats, fields: undefined, loadedAt: nowSeconds, content: undefined, head200: undefined };
    // FIFOs, sockets and devices are not served (reading a FIFO could block forever).
    if (!stats.isFile()) return undefined;
    const lastModified = Math.floor(stats.mtimeMs / 1000);
    const fields: FileHeadFields = {
      contentType: mimeTypeFor(fullPath.toString('utf8'), this.mimetypes, this.target.defaultCtype),
      // dir.c's "%x-%x" of mtime and size, quoted to make it a valid strong entity-tag.
      etag: `"${lastModified.toString(16)}-${stats.size.toString(16)}"`,
      lastModified,
      size: stats.size,
    };
    return { fullPath, stats, fields, loadedAt: nowSeconds, content: undefined, head200: undefined };
  }
}
