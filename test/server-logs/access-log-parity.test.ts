// The access-log line against the real Mongrel2's: each line it writes, parsed
// back into an entry, must format to the very same bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
import { formatAccessLine, type AccessLogEntry } from '../../src/server/logs/access-log.js';
import { parseExact } from '../../src/protocol/tnetstring.js';

let peer: Mongrel2Peer | undefined;
after(() => peer?.stop());

function get(port: number, path: string): Promise<{ status: number; localPort: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort: req.socket?.localPort ?? -1, bytes }));
    });
    req.on('error', reject);
  });
}

/** Bounded poll: the real server writes its access log from a separate thread. */
async function accessLines(p: Mongrel2Peer, count: number): Promise<Buffer[]> {
  for (let i = 0; i < 100; i++) {
    const lines = p
      .accessLog()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => Buffer.from(l + '\n', 'latin1'));
    if (lines.length >= count) return lines;
    await delay(50);
  }
  throw new Error(`the real access log never reached ${count} lines:\n${p.accessLog()}`);
}

function entryOf(line: Buffer): AccessLogEntry {
  const v = parseExact(line.subarray(0, -1));
  assert.ok(Array.isArray(v) && v.length === 9, `not a 9-item list: ${line.toString('latin1')}`);
  const s = (x: unknown): string => (Buffer.isBuffer(x) ? x.toString('latin1') : assert.fail(`expected a string, got ${String(x)}`));
  const n = (x: unknown): number => (typeof x === 'number' ? x : assert.fail(`expected a number, got ${String(x)}`));
  return { host: s(v[0]), remoteAddr: s(v[1]), remotePort: n(v[2]), time: n(v[3]), method: s(v[4]), path: s(v[5]), version: s(v[6]), status: n(v[7]), size: n(v[8]) };
}

test('formatAccessLine reproduces the real Mongrel2 access-log lines byte for byte', async () => {
  peer = await startMongrel2();
  const before = Math.floor(Date.now() / 1000);
  const ok = await get(peer.httpPort, '/static/hello.txt');
  const missing = await get(peer.httpPort, '/static/nope.txt');
  assert.equal(ok.status, 200);
  assert.equal(missing.status, 404);
  const lines = await accessLines(peer, 2);
  const entries = lines.map(entryOf);
  for (const [i, line] of lines.entries()) assert.deepEqual(formatAccessLine(entries[i]!), line, line.toString('latin1'));

  const [first, second] = entries;
  assert.deepEqual({ ...first, time: 0, size: 0 }, { host: 'localhost', remoteAddr: '127.0.0.1', remotePort: ok.localPort, time: 0, method: 'GET', path: '/static/hello.txt', version: 'HTTP/1.1', status: 200, size: 0 });
  // Mongrel2's time(NULL) reads the kernel's coarse clock, which can lag Date.now() by a tick.
  assert.ok(first!.time >= before - 1 && first!.time <= before + 60, `time ${first!.time}`);
  assert.equal(second?.status, 404);
  assert.equal(second?.path, '/static/nope.txt');
});
