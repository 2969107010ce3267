/**
 * Small helpers shared by the bench scripts: a one-off GET, the "Hello,
 * World!" answer check, and number formatting for the result tables.
 */
import http from 'node:http';

/** One GET on a fresh connection: status and body. */
export function get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** `times` GETs in a row, each must answer 200 with exactly `expected`. */
export async function checkHello(url: string, times = 4, expected = 'Hello, World!'): Promise<void> {
  for (let i = 0; i < times; i++) {
    const r = await get(url);
    if (r.status !== 200 || r.body !== expected) {
      throw new Error(`GET ${url}: expected 200 ${JSON.stringify(expected)}, got ${r.status} ${JSON.stringify(r.body.slice(0, 200))}`);
    }
  }
}

/** A table cell: fixed digits, '-' for a missing value. */
export const fmt = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));

/** Mean of the finite values, null when there are none. */
export const mean = (xs: ReadonlyArray<number | null>): number | null => {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
};

/** a / b, null when either is missing or b is 0. */
export const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
