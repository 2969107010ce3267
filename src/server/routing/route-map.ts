/**
 * A host's route table. A configured path is a literal prefix (the text before
 * its first '(') optionally followed by a pattern (from that '(' to the end),
 * which must match the rest of the request path after the prefix.
 *
 * Resolution, deliberately saner than Mongrel2's TST walk (docs/differences.md):
 * the longest configured prefix that really is a prefix of the path and whose
 * pattern (if any) matches wins; when it fails, shorter prefixes are tried.
 * A prefix longer than the path never matches (Mongrel2 sends `/us` to
 * `/users`). Among routes with the same prefix, patterned routes are tried in
 * insertion order before a plain one, since a plain route takes everything
 * under its prefix and would otherwise make the patterned ones dead.
 *
 * Paths are matched as given: the caller passes the raw, still
 * percent-encoded request path, as Mongrel2 does.
 */
import { compilePattern, type CompiledPattern } from './pattern.js';

export interface Route<T> {
  /** The configured path, e.g. `/users/([0-9]+)` (Mongrel2 sends it as the PATTERN header). */
  readonly path: string;
  readonly prefix: string;
  /** The part from the first '(' on, or undefined for a plain prefix route. */
  readonly pattern: string | undefined;
  readonly value: T;
}

export interface RouteMapOptions<T> {
  /** Called when a route's pattern ran out of backtracking steps on `path`; the route is treated as not matching. */
  onBudgetExceeded?: (route: Route<T>, path: string) => void;
  /** Step budget per pattern attempt (pattern.ts DEFAULT_STEP_BUDGET when unset). */
  stepBudget?: number;
}

interface Entry<T> {
  readonly route: Route<T>;
  readonly compiled: CompiledPattern | undefined;
}

/** Splits a configured route path into its literal prefix and its pattern part. */
export function splitRoutePath(path: string): { prefix: string; pattern: string | undefined } {
  const paren = path.indexOf('(');
  return paren < 0 ? { prefix: path, pattern: undefined } : { prefix: path.slice(0, paren), pattern: path.slice(paren) };
}

export class RouteMap<T> {
  /** Per prefix: patterned routes in insertion order, then plain ones. */
  private readonly byPrefix = new Map<string, Entry<T>[]>();
  /** Distinct prefix lengths, longest first: a lookup costs one map probe per length. */
  private lengths: number[] = [];
  private readonly options: RouteMapOptions<T>;

  constructor(options: RouteMapOptions<T> = {}) {
    this.options = options;
  }

  /** Adds a route; a malformed pattern throws PatternError (naming the pattern and offset) so config loading fails early. */
  insert(path: string, value: T): void {
    const { prefix, pattern } = splitRoutePath(path);
    const compiled = pattern === undefined ? undefined : compilePattern(pattern);
    const entry: Entry<T> = { route: { path, prefix, pattern, value }, compiled };
    let list = this.byPrefix.get(prefix);
    if (!list) {
      list = [];
      this.byPrefix.set(prefix, list);
      this.lengths = [...new Set([...this.lengths, prefix.length])].sort((a, b) => b - a);
    }
    if (compiled) {
      const firstPlain = list.findIndex((e) => e.compiled === undefined);
      list.splice(firstPlain < 0 ? list.length : firstPlain, 0, entry);
    } else {
      list.push(entry);
    }
  }

  /** The route for a raw request path, or undefined (the caller answers 404). */
  match(path: string): Route<T> | undefined {
    for (const len of this.lengths) {
      if (len > path.length) continue;
      const list = this.byPrefix.get(path.slice(0, len));
      if (!list) continue;
      const rest = path.slice(len);
      for (const { route, compiled } of list) {
        if (!compiled) return route;
        const outcome = compiled.exec(rest, this.options.stepBudget);
        if (outcome === 'match') return route;
        if (outcome === 'budget') this.options.onBudgetExceeded?.(route, path);
      }
    }
    return undefined;
  }

  /** Every route in the order match() tries them (longest prefix first). */
  *routes(): IterableIterator<Route<T>> {
    for (const len of this.lengths) {
      for (const [prefix, list] of this.byPrefix) if (prefix.length === len) for (const e of list) yield e.route;
    }
  }
}
