/**
 * What makes a Dir or Proxy target, a route path or a host matching string
 * unusable by the server. One set of rules, checked where a config is made
 * (m2sh load: file:line:column), where one is read (config.sqlite or a config
 * module: function, row and cell) and by the Dir handler itself, so a bad
 * value stops the server at startup instead of failing the first request.
 * Pure; each check gives the problems found, worded to follow the value.
 */
import { splitHostMatching } from '../server/routing/host-map.js';
import { compilePattern, PatternError } from '../server/routing/pattern.js';
import { splitRoutePath } from '../server/routing/route-map.js';
import type { DirTarget, ProxyTarget } from './types.js';

/** A column (as named in config.sqlite and the .conf) and what is wrong with its value. */
export interface FieldProblem {
  readonly column: string;
  readonly value: string | number;
  /** Follows the value: `must end in '/'`. */
  readonly problem: string;
}

/** A header value Dir can send: printable ASCII, not empty. */
export const HEADER_VALUE = /^[\x20-\x7e]+$/;

export function dirProblems(dir: Pick<DirTarget, 'base' | 'defaultCtype' | 'cacheTtl'>): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (!dir.base.endsWith('/')) out.push({ column: 'base', value: dir.base, problem: "must end in '/'" });
  if (!HEADER_VALUE.test(dir.defaultCtype)) out.push({ column: 'default_ctype', value: dir.defaultCtype, problem: 'is not a valid header value (printable ASCII, not empty)' });
  if (!Number.isFinite(dir.cacheTtl) || dir.cacheTtl < 0) out.push({ column: 'cache_ttl', value: dir.cacheTtl, problem: 'must be >= 0' });
  return out;
}

export function proxyProblems(proxy: Pick<ProxyTarget, 'addr' | 'port'>): FieldProblem[] {
  const out: FieldProblem[] = [];
  if (proxy.addr === '') out.push({ column: 'addr', value: proxy.addr, problem: 'must not be empty' });
  if (!Number.isInteger(proxy.port) || proxy.port < 1 || proxy.port > 65535) out.push({ column: 'port', value: proxy.port, problem: 'must be in 1..65535' });
  return out;
}

/** The PatternError message when the pattern part of a route path (from its first '(') does not compile. */
export function routePathProblem(path: string): string | undefined {
  return patternProblem(splitRoutePath(path).pattern);
}

/** The same for a host's matching string (its pattern is up to the last ')'). */
export function hostMatchingProblem(matching: string): string | undefined {
  return patternProblem(splitHostMatching(matching).pattern);
}

function patternProblem(pattern: string | undefined): string | undefined {
  if (pattern === undefined) return undefined;
  try {
    compilePattern(pattern);
    return undefined;
  } catch (err) {
    if (err instanceof PatternError) return err.message;
    throw err;
  }
}

/** `base "static" must end in '/'`: a problem as one phrase. */
export function describeProblem(p: FieldProblem, label = p.column): string {
  return `${label} ${JSON.stringify(p.value)} ${p.problem}`;
}
