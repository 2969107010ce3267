/**
 * Conditional GET/HEAD evaluation (RFC 9110 §13.2.2), in the RFC's order:
 * If-Match → If-Unmodified-Since → If-None-Match → If-Modified-Since → If-Range.
 * Pure: every input is passed in.
 */
import { parseEntityTag, parseEntityTagList, strongMatch, weakMatch, type EntityTag } from './entity-tags.js';
import { parseHttpDate } from './http-date.js';

export interface Validators {
  /** Our (always strong) entity-tag. */
  readonly etag: EntityTag;
  /** Last-Modified, whole seconds. */
  readonly lastModified: number;
}

/** The precondition headers of one request (first field value of each). */
export interface Preconditions {
  readonly ifMatch?: string | undefined;
  readonly ifUnmodifiedSince?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
}

export type PreconditionResult = 'proceed' | 'not-modified' | 'failed';

/**
 * Steps 1-4 of §13.2.2 for a GET or HEAD of an existing file. Invalid dates
 * are ignored; an invalid If-Match list matches nothing (→ 412); an invalid
 * If-None-Match list matches nothing (→ proceed).
 */
export function evaluatePreconditions(p: Preconditions, v: Validators, nowSeconds: number): PreconditionResult {
  if (p.ifMatch !== undefined) {
    const field = parseEntityTagList(p.ifMatch);
    // '*' matches any current representation, and the file exists.
    const ok = field !== undefined && (field.any || field.tags.some((t) => strongMatch(t, v.etag)));
    if (!ok) return 'failed';
  } else if (p.ifUnmodifiedSince !== undefined) {
    const date = parseHttpDate(p.ifUnmodifiedSince, nowSeconds);
    if (date !== undefined && v.lastModified > date) return 'failed';
  }
  if (p.ifNoneMatch !== undefined) {
    const field = parseEntityTagList(p.ifNoneMatch);
    const matched = field !== undefined && (field.any || field.tags.some((t) => weakMatch(t, v.etag)));
    // For GET/HEAD a match is 304 (§13.1.2); no match skips If-Modified-Since.
    return matched ? 'not-modified' : 'proceed';
  }
  if (p.ifModifiedSince !== undefined) {
    const date = parseHttpDate(p.ifModifiedSince, nowSeconds);
    // A date in the future is ignored (RFC 7232 §3.3; Mongrel2 does the same).
    if (date !== undefined && date <= nowSeconds && v.lastModified <= date) return 'not-modified';
  }
  return 'proceed';
}

/**
 * Step 5: does an `If-Range` value allow the Range to apply (§13.1.5)? An
 * entity-tag needs a strong match; a date must equal Last-Modified exactly and
 * Last-Modified must be strong, i.e. at least one second before `nowSeconds`
 * (§8.8.2.2). Anything else, including a weak tag or an invalid value, is false.
 */
export function ifRangeAllows(ifRange: string, v: Validators, nowSeconds: number): boolean {
  const trimmed = ifRange.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/"')) {
    const tag = parseEntityTag(trimmed);
    return tag !== undefined && strongMatch(tag, v.etag);
  }
  const date = parseHttpDate(trimmed, nowSeconds);
  return date !== undefined && date === v.lastModified && nowSeconds - v.lastModified >= 1;
}
