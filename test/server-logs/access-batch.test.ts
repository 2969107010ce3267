// The access log batches its lines (src/server/logs/writers.ts): they must
// still reach the file without a close, survive process.exit, and a reopen
// that lands while a batch is being written must not lose or misplace lines.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { AccessLog } from '../../src/server/logs/writers.js';
import { formatAccessLine, type AccessLogEntry } from '../../src/server/logs/access-log.js';

const entry = (n: number): AccessLogEntry => ({ host: 'localhost', remoteAddr: '127.0.0.1', remotePort: 40000 + (n % 20000), time: 1700000000 + n, method: 'GET', path: `/item/${n}`, version: 'HTTP/1.1', status: 200, size: n });
const lines = (from: number, to: number): Buffer => Buffer.concat(Array.from({ length: to - from }, (_, i) => formatAccessLine(entry(from + i))));

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'm2-batch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Bounded poll of a file the log writes asynchronously. */
async function until(file: string, want: Buffer, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  let got = Buffer.alloc(0);
  while (Date.now() < deadline) {
    got = readFileSync(file);
    if (got.equals(want)) return;
    await delay(10);
  }
  assert.deepEqual(got, want);
}

test('a single line reaches the file without a close or more traffic', async (t) => {
  const file = path.join(await tempDir(t), 'access.log');
  const log = await AccessLog.open(file);
  t.after(() => log.close());
  log.write(entry(1));
  await until(file, lines(1, 2));
});

test('a burst larger than a batch is written in order, the tail by the timer', async (t) => {
  const file = path.join(await tempDir(t), 'access.log');
  const log = await AccessLog.open(file);
  t.after(() => log.close());
  for (let i = 0; i < 1000; i++) log.write(entry(i));
  await until(file, lines(0, 1000));
});

test('reopen while a batch is being written: no line lost or reordered across the two files, close still resolves', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'access.log');
  const log = await AccessLog.open(file);
  // Over one batch: handed to the file at once, so a write is in flight when reopen() comes.
  for (let i = 0; i < 400; i++) log.write(entry(i));
  await rename(file, file + '.1');
  log.reopen();
  log.write(entry(400));
  await log.close();
  // Lines still queued when the reopen lands go to the new file (sonic-boom); later ones always do.
  const [before, after] = [await readFile(file + '.1'), await readFile(file)];
  assert.ok(before.length > 0, 'the first batch went to the rotated file');
  assert.ok(after.subarray(-formatAccessLine(entry(400)).length).equals(formatAccessLine(entry(400))), 'the line after reopen is in the new file');
  assert.deepEqual(Buffer.concat([before, after]), lines(0, 401));
});

test('lines still pending when the process exits are written', async (t) => {
  const file = path.join(await tempDir(t), 'access.log');
  const writers = fileURLToPath(new URL('../../src/server/logs/writers.ts', import.meta.url));
  const script = `const { AccessLog } = await import(${JSON.stringify(writers)});
const log = await AccessLog.open(${JSON.stringify(file)});
for (let i = 0; i < 3; i++) log.write({ host: 'localhost', remoteAddr: '127.0.0.1', remotePort: 40000 + i, time: 1700000000 + i, method: 'GET', path: '/item/' + i, version: 'HTTP/1.1', status: 200, size: i });
process.exit(0);`;
  const code = await new Promise<number | null>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 20_000 }, () => undefined);
    child.on('exit', resolve);
  });
  assert.equal(code, 0);
  assert.deepEqual(await readFile(file), lines(0, 3));
});
