/**
 * Loads the captured Mongrel2 wire fixtures (`*.bin` plus the `.txt` that
 * describes each one) from /work/shared/fixtures/mongrel2-wire.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WIRE_FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/mongrel2-wire');

const DECODED_MARKER = '--- decoded (informational) ---';

/** The JSON block after `--- decoded (informational) ---` in a fixture's .txt. */
export interface DecodedFixture {
  socket: string;
  bytes: number;
  sender: string;
  conn_id: string;
  path: string;
  headers: Record<string, string | string[]>;
  body_len: number;
}

export interface WireFixture {
  /** File name without the extension, e.g. `ws-text`. */
  name: string;
  bin: Buffer;
  decoded: DecodedFixture;
}

function fail(name: string, what: string): never {
  throw new Error(`fixture ${name}: ${what}`);
}

function checkDecoded(name: string, value: unknown): DecodedFixture {
  if (value === null || typeof value !== 'object') fail(name, 'decoded block is not an object');
  const v = value as Record<string, unknown>;
  for (const key of ['socket', 'sender', 'conn_id', 'path'] as const) {
    if (typeof v[key] !== 'string') fail(name, `decoded.${key} is not a string`);
  }
  for (const key of ['bytes', 'body_len'] as const) {
    if (typeof v[key] !== 'number') fail(name, `decoded.${key} is not a number`);
  }
  const headers = v.headers;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) fail(name, 'decoded.headers is not an object');
  for (const [k, h] of Object.entries(headers as Record<string, unknown>)) {
    const ok = typeof h === 'string' || (Array.isArray(h) && h.every((x) => typeof x === 'string'));
    if (!ok) fail(name, `decoded header ${k} is neither a string nor a list of strings`);
  }
  return v as unknown as DecodedFixture;
}

/** Parses the decoded JSON out of a fixture description. */
export function decodedFromText(name: string, text: string): DecodedFixture {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.trim() === DECODED_MARKER);
  if (at < 0) fail(name, `no "${DECODED_MARKER}" line`);
  return checkDecoded(name, JSON.parse(lines.slice(at + 1).join('\n')));
}

/** Every `*.bin` fixture with its decoded description, sorted by name. */
export function loadWireFixtures(dir = WIRE_FIXTURE_DIR): WireFixture[] {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .map((f) => f.slice(0, -'.bin'.length))
    .sort();
  return names.map((name) => ({
    name,
    bin: readFileSync(path.join(dir, `${name}.bin`)),
    decoded: decodedFromText(name, readFileSync(path.join(dir, `${name}.txt`), 'utf8')),
  }));
}

/** Decodes the body of a Python bytes literal (the part between b' and '), as the captures' .txt files write client input. */
export function pyBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') {
      out.push(s.charCodeAt(i));
      continue;
    }
    const c = s[++i]!;
    if (c === 'x') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(({ r: 13, n: 10, t: 9, '\\': 92, "'": 39 } as Record<string, number>)[c] ?? c.charCodeAt(0));
  }
  return Buffer.from(out);
}
