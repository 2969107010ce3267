/**
 * Host selection by a host's `matching` string, Mongrel2-style: the text after
 * the last ')' is a literal suffix of the host name, and the text up to and
 * including that ')' is a pattern that must match all of the name before the
 * suffix (Mongrel2 anchors it with an appended `$`). Without a ')' the whole
 * string is the suffix. Backslashes in the suffix stay literal, as in Mongrel2.
 *
 * Deliberate fixes over Mongrel2 (docs/differences.md):
 * - names compare case-insensitively (RFC 9110 §4.2.3): the name and suffixes
 *   are ASCII-lowercased (A-Z only: other bytes stay as sent); a pattern matches when it accepts the name part
 *   lowercased or as sent, so lower-case patterns ignore case and Mongrel2's
 *   case-exact ones keep working;
 * - a plain suffix matches only whole labels: `example.com` matches
 *   `example.com` and `www.example.com`, never `badexample.com`, and a
 *   configured name longer than the request's never matches (Mongrel2 picks
 *   `example.com` for `ample.com`);
 * - a pattern-only host such as `(.+)` (empty suffix) matches any name its
 *   pattern accepts (Mongrel2 never selects it).
 * Precedence: a plain exact name, then the longest suffix; for equal suffixes
 * patterned hosts (insertion order) before a plain one, which is the catch-all.
 * The caller uses the default host when match() returns undefined.
 */
import { asciiLower } from '../../http/ascii-lower.js';
import { compilePattern, type CompiledPattern } from './pattern.js';

interface HostEntry<T> {
  readonly matching: string;
  readonly suffix: string;
  readonly compiled: CompiledPattern | undefined;
  readonly value: T;
}

/** Splits a host `matching` string into its lowercased literal suffix and its pattern (with the `$` Mongrel2 appends). */
export function splitHostMatching(matching: string): { suffix: string; pattern: string | undefined } {
  const paren = matching.lastIndexOf(')');
  if (paren < 0) return { suffix: asciiLower(matching), pattern: undefined };
  return { suffix: asciiLower(matching.slice(paren + 1)), pattern: matching.slice(0, paren + 1) + '$' };
}

export class HostMap<T> {
  /** Plain hosts by exact (lowercased) name; the first inserted wins. */
  private readonly exact = new Map<string, T>();
  /** In match order: longest suffix first, patterned before plain, then insertion order. */
  private readonly ordered: HostEntry<T>[] = [];

  /** Adds a host; a malformed pattern throws PatternError. */
  insert(matching: string, value: T): void {
    const { suffix, pattern } = splitHostMatching(matching);
    const compiled = pattern === undefined ? undefined : compilePattern(pattern);
    if (!compiled && suffix !== '' && !this.exact.has(suffix)) this.exact.set(suffix, value);
    const entry: HostEntry<T> = { matching, suffix, compiled, value };
    const rank = (e: HostEntry<T>): number => e.suffix.length * 2 + (e.compiled ? 1 : 0);
    const at = this.ordered.findIndex((e) => rank(e) < rank(entry));
    this.ordered.splice(at < 0 ? this.ordered.length : at, 0, entry);
  }

  /** The value of the best matching host, or undefined (then the default host applies). */
  match(hostName: string): T | undefined {
    const name = asciiLower(hostName);
    const exact = this.exact.get(name);
    if (exact !== undefined || this.exact.has(name)) return exact;
    for (const e of this.ordered) {
      if (!name.endsWith(e.suffix)) continue;
      const cut = name.length - e.suffix.length;
      const before = name.slice(0, cut);
      if (e.compiled) {
        const asSent = hostName.slice(0, cut);
        if (e.compiled.exec(before) === 'match' || (asSent !== before && e.compiled.exec(asSent) === 'match')) return e.value;
      } else if (e.suffix !== '' && before.endsWith('.')) {
        return e.value;
      }
    }
    return undefined;
  }
}
