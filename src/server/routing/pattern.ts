/**
 * Mongrel2's route/host pattern language (src/pattern.c): Lua patterns with
 * `\` as the escape character and no captures.
 *
 * - Anchored at the start of the subject; trailing subject text is fine unless
 *   the pattern ends in `$` (a `$` anywhere else is a literal).
 * - `(` and `)` are skipped where an item could start (inside a set they are literal).
 * - Items: `.`, a literal char, `\x` (a C-locale class for a c d l p s u w x z,
 *   negated when upper case, else the literal char), `[set]` / `[^set]` with
 *   ranges and `\` classes; each may take `*` (greedy), `+`, `-` (lazy 0+), `?`.
 * - `\bxy` matches a balanced x…y run; `\f[set]` is a frontier.
 *
 * The matcher is a direct port of the C backtracking matcher, walking the
 * pattern string by index so its quirks stay identical (a quantifier char at
 * the start of an item is a literal, `[]]` is a set holding `]`, …). Two
 * deliberate differences: malformed patterns are rejected up front by
 * compilePattern (the C code logs and reads past the end), and a step budget
 * turns pathological backtracking into "no match" instead of a stalled server.
 * Characters compare as unsigned code units (C compares signed chars there).
 */

/** A pattern that the C matcher would read past the end of, with where. */
export class PatternError extends Error {
  override readonly name = 'PatternError';
  readonly pattern: string;
  /** Offset in the pattern where the problem was found. */
  readonly offset: number;

  constructor(pattern: string, offset: number, problem: string) {
    super(`bad pattern ${JSON.stringify(pattern)}: ${problem} (at offset ${offset})`);
    this.pattern = pattern;
    this.offset = offset;
  }
}

/** What one match attempt came to; 'budget' means the step budget ran out (treat as no match, and log it). */
export type MatchOutcome = 'match' | 'no-match' | 'budget';

export interface CompiledPattern {
  readonly source: string;
  /** Matches `subject` from its start; `budget` caps the backtracking steps (default DEFAULT_STEP_BUDGET). */
  exec(subject: string, budget?: number): MatchOutcome;
}

/**
 * Enough for any sane pattern over a 4 KiB head (a few steps per subject char
 * per quantified item), small enough that a hostile one costs well under 100 ms.
 */
export const DEFAULT_STEP_BUDGET = 200_000;

const ESC = 0x5c; // '\'
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;
const DOLLAR = 0x24;
const DOT = 0x2e;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LOWER_B = 0x62;
const LOWER_F = 0x66;
const QUESTION = 0x3f;
const STAR = 0x2a;
const PLUS = 0x2b;

/** Thrown inside the matcher when the budget runs out; caught by exec. */
class BudgetExceeded {}
const BUDGET_EXCEEDED = new BudgetExceeded();

/** Validates `pattern` the way the matcher will walk it; throws PatternError on the first malformed item. */
export function compilePattern(pattern: string): CompiledPattern {
  validate(pattern);
  return {
    source: pattern,
    exec(subject: string, budget = DEFAULT_STEP_BUDGET): MatchOutcome {
      const m = new Matcher(subject, pattern, budget);
      try {
        return m.match(0, 0) >= 0 ? 'match' : 'no-match';
      } catch (err) {
        if (err === BUDGET_EXCEEDED) return 'budget';
        throw err;
      }
    },
  };
}

/** The contract entry point: true when `pattern` matches `subject` from its start. Malformed patterns throw PatternError. */
export function patternMatch(subject: string, pattern: string): boolean {
  return compilePattern(pattern).exec(subject) === 'match';
}

/** Where the item starting at `p` ends (Lua's classend), or a PatternError. */
function classEnd(pattern: string, p: number): number {
  const start = p;
  const c = pattern.charCodeAt(p++);
  if (c === ESC) {
    if (p >= pattern.length) throw new PatternError(pattern, start, "ends with a lone '\\'");
    return p + 1;
  }
  if (c === LBRACKET) {
    if (pattern.charCodeAt(p) === CARET) p++;
    // The first char of a set is always a member, so `[]]` holds `]`.
    do {
      if (p >= pattern.length) throw new PatternError(pattern, start, "missing ']' to close the set");
      if (pattern.charCodeAt(p++) === ESC) {
        if (p >= pattern.length) throw new PatternError(pattern, start, "missing ']' to close the set");
        p++;
      }
    } while (p >= pattern.length || pattern.charCodeAt(p) !== RBRACKET);
    return p + 1;
  }
  return p;
}

/** Walks the pattern along the same path as Matcher.match, so anything it accepts the matcher can run safely. */
function validate(pattern: string): void {
  let p = 0;
  const end = pattern.length;
  while (p < end) {
    const c = pattern.charCodeAt(p);
    if (c === LPAREN || c === RPAREN) {
      p++;
      continue;
    }
    if (c === ESC && pattern.charCodeAt(p + 1) === LOWER_B) {
      if (p + 3 >= end) throw new PatternError(pattern, p, "'\\b' needs two characters after it");
      p += 4;
      continue;
    }
    if (c === ESC && pattern.charCodeAt(p + 1) === LOWER_F) {
      if (pattern.charCodeAt(p + 2) !== LBRACKET) throw new PatternError(pattern, p, "missing '[' after '\\f'");
      p = classEnd(pattern, p + 2);
      continue;
    }
    if (c === DOLLAR && p + 1 === end) return;
    const ep = classEnd(pattern, p);
    const q = pattern.charCodeAt(ep);
    p = q === QUESTION || q === STAR || q === PLUS || q === DASH ? ep + 1 : ep;
  }
}

/** C-locale <ctype.h> classes; anything outside ASCII is in none of them. */
function matchClass(c: number, cl: number): boolean {
  let res: boolean;
  switch (cl | 0x20) {
    case 0x61: res = isAlpha(c); break; // a
    case 0x63: res = c < 0x20 || c === 0x7f; break; // c
    case 0x64: res = isDigit(c); break; // d
    case 0x6c: res = c >= 0x61 && c <= 0x7a; break; // l
    case 0x70: res = c > 0x20 && c < 0x7f && !isAlnum(c); break; // p
    case 0x73: res = c === 0x20 || (c >= 0x09 && c <= 0x0d); break; // s
    case 0x75: res = c >= 0x41 && c <= 0x5a; break; // u
    case 0x77: res = isAlnum(c); break; // w
    case 0x78: res = isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66); break; // x
    case 0x7a: res = c === 0; break; // z
    default: return cl === c;
  }
  // `cl | 0x20` also folds e.g. '@' → '`'; only letters reach here, so upper case means negated.
  return cl >= 0x61 ? res : !res;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isAlpha(c: number): boolean {
  const l = c | 0x20;
  return c < 0x80 && l >= 0x61 && l <= 0x7a;
}
function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}

class Matcher {
  private steps: number;

  constructor(
    private readonly s: string,
    private readonly p: string,
    budget: number,
  ) {
    this.steps = budget;
  }

  private tick(): void {
    if (--this.steps < 0) throw BUDGET_EXCEEDED;
  }

  /** Subject char at i, or 0 past the end (the C subject is NUL-terminated). */
  private at(i: number): number {
    return i < this.s.length ? this.s.charCodeAt(i) : 0;
  }

  /** `[set]` test; `p` is at '[', `ec` at the closing ']'. */
  private bracket(c: number, p: number, ec: number): boolean {
    const pat = this.p;
    let sig = true;
    if (pat.charCodeAt(p + 1) === CARET) {
      sig = false;
      p++;
    }
    while (++p < ec) {
      const pc = pat.charCodeAt(p);
      if (pc === ESC) {
        p++;
        if (matchClass(c, pat.charCodeAt(p))) return sig;
      } else if (pat.charCodeAt(p + 1) === DASH && p + 2 < ec) {
        p += 2;
        if (pc <= c && c <= pat.charCodeAt(p)) return sig;
      } else if (pc === c) return sig;
    }
    return !sig;
  }

  private single(c: number, p: number, ep: number): boolean {
    const pc = this.p.charCodeAt(p);
    if (pc === DOT) return true;
    if (pc === ESC) return matchClass(c, this.p.charCodeAt(p + 1));
    if (pc === LBRACKET) return this.bracket(c, p, ep - 1);
    return pc === c;
  }

  /** Index just past the match of pattern[p..] at subject[s..], or -1. */
  match(s: number, p: number): number {
    const pat = this.p;
    const pend = pat.length;
    const send = this.s.length;
    for (;;) {
      this.tick();
      if (p >= pend) return s;
      const pc = pat.charCodeAt(p);
      if (pc === LPAREN || pc === RPAREN) {
        p++;
        continue;
      }
      if (pc === ESC) {
        const next = pat.charCodeAt(p + 1);
        if (next === LOWER_B) {
          s = this.balance(s, p + 2);
          if (s < 0) return -1;
          p += 4;
          continue;
        }
        if (next === LOWER_F) {
          p += 2;
          const ep = classEnd(pat, p);
          const previous = s === 0 ? 0 : this.s.charCodeAt(s - 1);
          if (this.bracket(previous, p, ep - 1) || !this.bracket(this.at(s), p, ep - 1)) return -1;
          p = ep;
          continue;
        }
      } else if (pc === DOLLAR && p + 1 === pend) {
        return s === send ? s : -1;
      }
      const ep = classEnd(pat, p);
      const m = s < send && this.single(this.s.charCodeAt(s), p, ep);
      switch (pat.charCodeAt(ep)) {
        case QUESTION: {
          if (m) {
            const res = this.match(s + 1, ep + 1);
            if (res >= 0) return res;
          }
          p = ep + 1;
          continue;
        }
        case STAR:
          return this.maxExpand(s, p, ep);
        case PLUS:
          return m ? this.maxExpand(s + 1, p, ep) : -1;
        case DASH:
          return this.minExpand(s, p, ep);
        default:
          if (!m) return -1;
          s++;
          p = ep;
      }
    }
  }

  private balance(s: number, p: number): number {
    const send = this.s.length;
    if (s >= send || this.s.charCodeAt(s) !== this.p.charCodeAt(p)) return -1;
    const b = this.p.charCodeAt(p);
    const e = this.p.charCodeAt(p + 1);
    let depth = 1;
    while (++s < send) {
      this.tick();
      const c = this.s.charCodeAt(s);
      if (c === e) {
        if (--depth === 0) return s + 1;
      } else if (c === b) depth++;
    }
    return -1;
  }

  private maxExpand(s: number, p: number, ep: number): number {
    const send = this.s.length;
    let i = 0;
    while (s + i < send && this.single(this.s.charCodeAt(s + i), p, ep)) {
      this.tick();
      i++;
    }
    for (; i >= 0; i--) {
      const res = this.match(s + i, ep + 1);
      if (res >= 0) return res;
    }
    return -1;
  }

  private minExpand(s: number, p: number, ep: number): number {
    const send = this.s.length;
    for (;;) {
      const res = this.match(s, ep + 1);
      if (res >= 0) return res;
      if (s < send && this.single(this.s.charCodeAt(s), p, ep)) s++;
      else return -1;
    }
  }
}
