/**
 * Small shared bits of the core benches: numeric env knobs and medians
 * (formatting and ratios are in report.ts).
 */

/** A non-negative number from the environment ("10" or "10s"), `def` when unset; throws naming the variable otherwise. */
export function envNum(name: string, def: number): number {
  const raw = process.env[name];
  const v = Number(String(raw ?? def).replace(/s$/, ''));
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name}=${raw}: expected a non-negative number`);
  return v;
}

/** Median of the finite values, null when there are none. */
export function median(xs: ReadonlyArray<number | null | undefined>): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
