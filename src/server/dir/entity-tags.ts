/**
 * Entity-tag fields (RFC 9110 §8.8.3, §13.1.1-2): parsing `If-Match` /
 * `If-None-Match` / `If-Range` values and the strong/weak comparisons.
 */

export interface EntityTag {
  readonly weak: boolean;
  /** The opaque-tag including its double quotes, e.g. `"5f3a-d"`. */
  readonly opaque: string;
}

/** `*`, a list of entity-tags, or invalid (undefined). */
export type EntityTagField = { readonly any: true } | { readonly any: false; readonly tags: readonly EntityTag[] };

const OWS = /[ \t]/;

/** etagc = %x21 / %x23-7E / obs-text (header values arrive as latin1 strings). */
function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/**
 * Read one entity-tag at `i`: returns it and the index after it, or undefined
 * when the text there is not an entity-tag.
 */
function readEntityTag(value: string, i: number): { tag: EntityTag; next: number } | undefined {
  let weak = false;
  if (value.startsWith('W/', i)) {
    weak = true;
    i += 2;
  }
  if (value[i] !== '"') return undefined;
  let j = i + 1;
  while (j < value.length && isEtagc(value.charCodeAt(j))) j++;
  if (value[j] !== '"') return undefined;
  return { tag: { weak, opaque: value.slice(i, j + 1) }, next: j + 1 };
}

/**
 * `"*" / #entity-tag`. Empty list members are accepted (RFC 9110 §5.6.1.2);
 * anything else that is not an entity-tag makes the whole field invalid.
 */
export function parseEntityTagList(value: string): EntityTagField | undefined {
  if (value.trim() === '*') return { any: true };
  const tags: EntityTag[] = [];
  let i = 0;
  let needComma = false;
  while (i < value.length) {
    const c = value[i]!;
    if (OWS.test(c)) {
      i++;
    } else if (c === ',') {
      needComma = false;
      i++;
    } else {
      if (needComma) return undefined;
      const r = readEntityTag(value, i);
      if (!r) return undefined;
      tags.push(r.tag);
      i = r.next;
      needComma = true;
    }
  }
  return tags.length > 0 ? { any: false, tags } : undefined;
}

/** A single entity-tag with optional surrounding whitespace (If-Range), or undefined. */
export function parseEntityTag(value: string): EntityTag | undefined {
  const v = value.trim();
  const r = readEntityTag(v, 0);
  return r && r.next === v.length ? r.tag : undefined;
}

/** Strong comparison: both strong and the same opaque-tag. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison: the same opaque-tag, weakness ignored. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}
