/**
 * Parity with Mongrel2 1.13's compiled http11_parser on every record of
 * /work/shared/fixtures/http-parser-vectors.jsonl (And-httpd corpus, the repo's
 * sample inputs and hand-written cases).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHead, type HeadResult } from '../../src/server/http/request-parser.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures');

interface VectorRecord {
  file: string | null;
  idx: number;
  offset: number;
  result: 'ok' | 'error' | 'incomplete';
  nread: number;
  relaxed: 0 | 1;
  input?: string;
  method?: string;
  uri?: string;
  path?: string;
  query?: string;
  fragment?: string;
  version?: string;
  headers?: Array<[string, string]>;
  json?: 0 | 1;
  xml?: 0 | 1;
  body_start?: number;
  msg_len?: number;
}

/** Deliberate differences from the real parser: key `file#idx` → why. */
const DIFFERENCES: Record<string, string> = {
  // Ragel's `HTTP_CTL = (0 - 31) | 127` is NUL|DEL (a subtraction, not a range), so the real parser takes
  // "HOST\n\n" as an unfinished header *name* and waits; we refuse control bytes in names and values (RFC 9110).
  'tests/and_suite/ex_httpd_conf_13_tst_1#5': 'control bytes (here LF) in a header name are refused instead of waited on',
};

function loadRecords(): VectorRecord[] {
  const lines = readFileSync(path.join(FIXTURES, 'http-parser-vectors.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.slice(1).map((l) => JSON.parse(l) as VectorRecord);
}

function inputOf(r: VectorRecord): Buffer {
  if (r.input !== undefined) return Buffer.from(r.input, 'latin1');
  return readFileSync(path.join(FIXTURES, 'mongrel2-parser-inputs', r.file as string));
}

/** Returns undefined on parity, else what differs. */
function compare(r: VectorRecord, got: HeadResult, buf: Buffer): string | undefined {
  const diffs: string[] = [];
  const eq = (what: string, actual: unknown, expected: unknown): void => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) diffs.push(`${what}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
  };
  if (r.result === 'incomplete') {
    eq('kind', got.kind, 'incomplete');
    eq('nread (all bytes consumed)', buf.length - r.offset, r.nread);
  } else if (r.result === 'error') {
    eq('kind', got.kind, 'error');
    if (got.kind === 'error') eq('offset', got.offset - r.offset, r.nread);
  } else if (r.json === 1) {
    eq('kind', got.kind, 'json');
    if (got.kind === 'json') {
      eq('path', got.path, r.path);
      eq('nread', got.end - r.offset, r.nread);
      eq('body_start', got.end - r.offset - (got.body.length + 1), r.body_start);
      eq('msg_len', got.body.length + 1, r.msg_len);
    }
  } else if (r.xml === 1) {
    const path = got.kind === 'xml' ? got.path : got.kind === 'policy' ? '<policy-file-request' : undefined;
    eq('kind', got.kind === 'policy' || got.kind === 'xml', true);
    eq('path', path, r.path);
    if (got.kind === 'xml' || got.kind === 'policy') eq('nread', got.end - r.offset, r.nread);
    if (got.kind === 'xml') eq('msg_len', got.body.length + 1, r.msg_len);
  } else {
    eq('kind', got.kind, 'request');
    if (got.kind === 'request') {
      const h = got.head;
      eq('nread', got.end - r.offset, r.nread);
      eq('body_start', got.end - r.offset, r.body_start);
      eq('method', h.method, r.method);
      eq('uri', h.uri, r.uri);
      eq('path', h.path, r.path);
      eq('query', h.query, r.query);
      eq('fragment', h.fragment, r.fragment);
      eq('version', h.version, r.version);
      eq('headers', h.headers, r.headers);
    }
  }
  return diffs.length === 0 ? undefined : diffs.join('; ');
}

test('every vector record: parity with the real parser', (t) => {
  const records = loadRecords();
  assert.equal(records.length, 473, 'the vectors file changed; update the expected count');
  let same = 0;
  const unexpected: string[] = [];
  const seenDifferences = new Set<string>();
  for (const r of records) {
    const key = `${r.file ?? JSON.stringify(r.input)}#${r.idx}${r.relaxed ? ' (relaxed)' : ''}`;
    const buf = inputOf(r);
    const got = parseHead(buf, r.offset, { relaxed: r.relaxed === 1, maxHeadBytes: Infinity });
    const diff = compare(r, got, buf);
    if (diff === undefined) same++;
    else if (key in DIFFERENCES) seenDifferences.add(key);
    else unexpected.push(`${key}: ${diff}`);
  }
  t.diagnostic(`parity ${same}/${records.length}`);
  assert.deepEqual(unexpected, []);
  assert.deepEqual([...seenDifferences].sort(), Object.keys(DIFFERENCES).sort(), 'every listed difference must still differ');
});
