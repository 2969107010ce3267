/**
 * A tiny regular-language compiler: byte-set expressions → Thompson NFA →
 * DFA (subset construction over byte classes).
 *
 * Mongrel2's request parser is a Ragel state machine; the byte at which it
 * fails is the first byte after which no word of the grammar can follow. A
 * DFA built from the same grammar fails at exactly the same byte, so we
 * transcribe the grammar (request-grammar.ts) instead of hand-coding checks.
 */

export type Expr =
  | { readonly kind: 'set'; readonly bytes: Uint8Array }
  | { readonly kind: 'seq'; readonly items: readonly Expr[] }
  | { readonly kind: 'alt'; readonly items: readonly Expr[] }
  | { readonly kind: 'rep'; readonly item: Expr; readonly min: number; readonly max: number };

// ---- byte sets ---------------------------------------------------------

function bitmap(pred: (b: number) => boolean): Uint8Array {
  const bytes = new Uint8Array(256);
  for (let b = 0; b < 256; b++) bytes[b] = pred(b) ? 1 : 0;
  return bytes;
}

/** The bytes of an ASCII string (and optionally single byte values). */
export function chars(...parts: ReadonlyArray<string | number>): Expr {
  const wanted = new Set<number>();
  for (const p of parts) {
    if (typeof p === 'number') wanted.add(p);
    else for (let i = 0; i < p.length; i++) wanted.add(p.charCodeAt(i));
  }
  return { kind: 'set', bytes: bitmap((b) => wanted.has(b)) };
}

/** Inclusive byte range; `from`/`to` are one-character strings or byte values. */
export function range(from: string | number, to: string | number): Expr {
  const lo = typeof from === 'number' ? from : from.charCodeAt(0);
  const hi = typeof to === 'number' ? to : to.charCodeAt(0);
  return { kind: 'set', bytes: bitmap((b) => b >= lo && b <= hi) };
}

function setOf(e: Expr): Uint8Array {
  if (e.kind !== 'set') throw new TypeError('byte-set operation on a non-set expression');
  return e.bytes;
}

/** Union of byte sets (stays a single set, unlike alt()). */
export function anyOf(...sets: Expr[]): Expr {
  const all = sets.map(setOf);
  return { kind: 'set', bytes: bitmap((b) => all.some((s) => s[b] === 1)) };
}

/** Byte set difference (Ragel's `--` on single characters). */
export function minus(a: Expr, b: Expr): Expr {
  const x = setOf(a);
  const y = setOf(b);
  return { kind: 'set', bytes: bitmap((i) => x[i] === 1 && y[i] !== 1) };
}

// ---- combinators ---------------------------------------------------------

export const seq = (...items: Expr[]): Expr => ({ kind: 'seq', items });
export const alt = (...items: Expr[]): Expr => ({ kind: 'alt', items });
export const rep = (item: Expr, min: number, max = Infinity): Expr => ({ kind: 'rep', item, min, max });
export const star = (item: Expr): Expr => rep(item, 0);
export const plus = (item: Expr): Expr => rep(item, 1);
export const opt = (item: Expr): Expr => rep(item, 0, 1);
/** A literal ASCII string. */
export const lit = (s: string): Expr => seq(...Array.from(s, (c) => chars(c)));

// ---- NFA -------------------------------------------------------------------

interface Nfa {
  readonly eps: number[][];
  readonly edgeSet: Array<Uint8Array | undefined>;
  readonly edgeTo: number[];
}

function newState(n: Nfa): number {
  n.eps.push([]);
  n.edgeSet.push(undefined);
  n.edgeTo.push(-1);
  return n.eps.length - 1;
}

function addEps(n: Nfa, from: number, to: number): void {
  (n.eps[from] as number[]).push(to);
}

/** Thompson construction; returns [start, end]. Repetitions are expanded into fresh copies. */
function build(n: Nfa, e: Expr): [number, number] {
  switch (e.kind) {
    case 'set': {
      const s = newState(n);
      const t = newState(n);
      n.edgeSet[s] = e.bytes;
      n.edgeTo[s] = t;
      return [s, t];
    }
    case 'seq': {
      const s = newState(n);
      let cur = s;
      for (const item of e.items) {
        const [a, b] = build(n, item);
        addEps(n, cur, a);
        cur = b;
      }
      return [s, cur];
    }
    case 'alt': {
      const s = newState(n);
      const t = newState(n);
      for (const item of e.items) {
        const [a, b] = build(n, item);
        addEps(n, s, a);
        addEps(n, b, t);
      }
      return [s, t];
    }
    case 'rep': {
      const s = newState(n);
      let cur = s;
      for (let i = 0; i < e.min; i++) {
        const [a, b] = build(n, e.item);
        addEps(n, cur, a);
        cur = b;
      }
      if (e.max === Infinity) {
        const [a, b] = build(n, e.item);
        const t = newState(n);
        addEps(n, cur, a);
        addEps(n, b, a);
        addEps(n, cur, t);
        addEps(n, b, t);
        return [s, t];
      }
      const t = newState(n);
      addEps(n, cur, t);
      for (let i = e.min; i < e.max; i++) {
        const [a, b] = build(n, e.item);
        addEps(n, cur, a);
        addEps(n, b, t);
        cur = b;
      }
      return [s, t];
    }
  }
}

// ---- DFA -------------------------------------------------------------------

/** A compiled DFA. State 0 is the start state; DEAD (-1) means "no word of the grammar continues here". */
export interface Dfa {
  readonly classes: Uint8Array; // byte → class
  readonly classCount: number;
  readonly next: Int32Array; // state * classCount + class → state or DEAD
  readonly accepting: Uint8Array;
  readonly stateCount: number;
}

export const DEAD = -1;

function collectSets(e: Expr, out: Uint8Array[]): void {
  if (e.kind === 'set') out.push(e.bytes);
  else if (e.kind === 'rep') collectSets(e.item, out);
  else for (const item of e.items) collectSets(item, out);
}

/** Partition the 256 byte values into classes no set in the expression distinguishes. */
function byteClasses(e: Expr): { classes: Uint8Array; count: number; representative: number[] } {
  const sets: Uint8Array[] = [];
  collectSets(e, sets);
  const signatures = new Map<string, number>();
  const classes = new Uint8Array(256);
  const representative: number[] = [];
  for (let b = 0; b < 256; b++) {
    let sig = '';
    for (const s of sets) sig += s[b] === 1 ? '1' : '0';
    let cls = signatures.get(sig);
    if (cls === undefined) {
      cls = representative.length;
      signatures.set(sig, cls);
      representative.push(b);
    }
    classes[b] = cls;
  }
  if (representative.length > 255) throw new RangeError('too many byte classes');
  return { classes, count: representative.length, representative };
}

function closure(n: Nfa, seeds: Iterable<number>): number[] {
  const seen = new Set<number>();
  const stack = [...seeds];
  while (stack.length > 0) {
    const s = stack.pop() as number;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const t of n.eps[s] as number[]) if (!seen.has(t)) stack.push(t);
  }
  return [...seen].sort((a, b) => a - b);
}

export function compile(e: Expr): Dfa {
  const n: Nfa = { eps: [], edgeSet: [], edgeTo: [] };
  const [start, accept] = build(n, e);
  const { classes, count, representative } = byteClasses(e);

  const ids = new Map<string, number>();
  const pending: number[][] = [];
  const next: number[] = [];
  const accepting: number[] = [];
  const intern = (set: number[]): number => {
    const key = set.join(',');
    let id = ids.get(key);
    if (id === undefined) {
      id = pending.length;
      ids.set(key, id);
      pending.push(set);
      accepting.push(set.includes(accept) ? 1 : 0);
    }
    return id;
  };
  intern(closure(n, [start]));
  for (let d = 0; d < pending.length; d++) {
    const states = pending[d] as number[];
    for (let c = 0; c < count; c++) {
      const byte = representative[c] as number;
      const moved: number[] = [];
      for (const s of states) {
        const set = n.edgeSet[s];
        if (set !== undefined && set[byte] === 1) moved.push(n.edgeTo[s] as number);
      }
      next[d * count + c] = moved.length === 0 ? DEAD : intern(closure(n, moved));
    }
  }
  return {
    classes,
    classCount: count,
    next: Int32Array.from(next),
    accepting: Uint8Array.from(accepting),
    stateCount: pending.length,
  };
}
