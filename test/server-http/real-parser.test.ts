/**
 * The real (Debian 1.12.2) Mongrel2 agrees with our accept/refuse decision on
 * every hand-written request vector: what we refuse it answers with 400 at once,
 * what we accept it routes (a response other than 400, or silence from a handler).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHead } from '../../src/server/http/request-parser.js';
import { rawHttp, RawHttpTimeoutError, startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/http-parser-vectors.jsonl');

interface Row {
  input?: string;
  offset: number;
  relaxed: number;
  json?: number;
  xml?: number;
  result: string;
}

let peer: Mongrel2Peer | undefined;
after(() => peer?.stop());

test('real Mongrel2 answers 400 exactly where parseHead reports an error', async (t) => {
  const rows = readFileSync(VECTORS, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row)
    .filter((r) => r.input !== undefined && r.offset === 0 && r.relaxed === 0 && r.json !== 1 && r.xml !== 1 && r.result !== 'incomplete');
  assert.ok(rows.length >= 30, `only ${rows.length} hand-written request vectors`);
  peer = await startMongrel2();
  const port = peer.httpPort;
  let checked = 0;
  for (const r of rows) {
    const buf = Buffer.from(r.input as string, 'latin1');
    const ours = parseHead(buf, 0);
    // A parse error is answered at once; an accepted request routed to a silent handler gets nothing back.
    const reply = await rawHttp(port, buf, { until: (got) => got.includes('\r\n\r\n'), timeoutMs: 1000 }).catch((e: unknown) => {
      if (e instanceof RawHttpTimeoutError) return e.received;
      throw e;
    });
    const statusLine = reply.toString('latin1').split('\r\n')[0] ?? '';
    const realRefused = statusLine === 'HTTP/1.1 400 Bad Request';
    assert.equal(ours.kind === 'error', realRefused, `${JSON.stringify(r.input)}: ours ${ours.kind}, real ${JSON.stringify(statusLine)}`);
    checked++;
  }
  t.diagnostic(`${checked} requests agree with the real server`);

  // The deliberate difference (docs/differences.md): the real server lets control bytes into header
  // names and values (its HTTP_CTL is only NUL and DEL); we refuse them.
  const ctlValue = await rawHttp(port, Buffer.from('GET /static/hello.txt HTTP/1.1\r\nX: a\x01b\r\n\r\n', 'latin1'), {
    until: (got) => got.includes('\r\n\r\n'),
  });
  assert.match(ctlValue.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(parseHead(Buffer.from('GET /static/hello.txt HTTP/1.1\r\nX: a\x01b\r\n\r\n', 'latin1'), 0).kind, 'error');
});
