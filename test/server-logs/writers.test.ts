import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AccessLog, createErrorLog, errorLogLevel } from '../../src/server/logs/writers.js';
import { formatAccessLine, type AccessLogEntry } from '../../src/server/logs/access-log.js';

const entry = (n: number): AccessLogEntry => ({
  host: 'localhost',
  remoteAddr: '127.0.0.1',
  remotePort: 40000 + n,
  time: 1700000000 + n,
  method: 'GET',
  path: `/item/${n}`,
  version: 'HTTP/1.1',
  status: 200,
  size: n,
});

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'm2-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('AccessLog appends exact lines and close() flushes every queued line', async (t) => {
  const file = path.join(await tempDir(t), 'access.log');
  const log = await AccessLog.open(file);
  const expected: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    log.write(entry(i));
    expected.push(formatAccessLine(entry(i)));
  }
  await log.close();
  assert.deepEqual(await readFile(file), Buffer.concat(expected));
  await log.close(); // idempotent
  log.write(entry(1)); // after close: dropped, never a throw
});

test('AccessLog appends to an existing file', async (t) => {
  const file = path.join(await tempDir(t), 'access.log');
  for (const n of [1, 2]) {
    const log = await AccessLog.open(file);
    log.write(entry(n));
    await log.close();
  }
  assert.deepEqual(await readFile(file), Buffer.concat([formatAccessLine(entry(1)), formatAccessLine(entry(2))]));
});

test('AccessLog reopen() after a rename writes later lines to a new file at the path', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'access.log');
  const log = await AccessLog.open(file);
  log.write(entry(1));
  await rename(file, file + '.1');
  log.reopen();
  log.write(entry(2));
  log.write(entry(3));
  await log.close();
  assert.deepEqual(await readFile(file + '.1'), formatAccessLine(entry(1)));
  assert.deepEqual(await readFile(file), Buffer.concat([formatAccessLine(entry(2)), formatAccessLine(entry(3))]));
});

test('a log that cannot be opened rejects with its path, and the process still exits cleanly', async (t) => {
  const bad = path.join(await tempDir(t), 'missing-dir', 'access.log');
  await assert.rejects(AccessLog.open(bad), (err: Error) => err.message.includes(bad) && /ENOENT/.test(err.message));
  await assert.rejects(createErrorLog(bad, 2), (err: Error) => err.message.includes(bad));
  // pino flushes its destinations at exit; a failed one must not turn that into a crash.
  const writers = fileURLToPath(new URL('../../src/server/logs/writers.ts', import.meta.url));
  const script = `const { AccessLog } = await import(${JSON.stringify(writers)}); await AccessLog.open(${JSON.stringify(bad)}).catch(() => console.log('rejected'));`;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 20_000 }, (_err, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
  assert.equal(stdout.trim(), 'rejected', stderr);
  assert.equal(code, 0, stderr);
});

test('errorLogLevel maps Mongrel2 levels 0..3 onto pino levels', () => {
  assert.equal(errorLogLevel(0), 'error');
  assert.equal(errorLogLevel(1), 'warn');
  assert.equal(errorLogLevel(2), 'info');
  assert.equal(errorLogLevel(3), 'debug');
  assert.equal(errorLogLevel(9), 'debug');
  assert.equal(errorLogLevel(-1), 'error');
  assert.throws(() => errorLogLevel(1.5), /error_log_level must be an integer 0\.\.3, got 1\.5/);
});

test('createErrorLog(path, level) writes JSON lines at and above the level; reopen and close work', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'error.log');
  const log = await createErrorLog(file, 1);
  assert.equal(log.logger.level, 'warn');
  log.logger.info('not written');
  log.logger.warn({ route: '/x' }, 'first');
  await rename(file, file + '.1');
  log.reopen();
  log.logger.error('second');
  await log.close();
  const parse = (text: string): Array<Record<string, unknown>> =>
    text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const [first, ...restOld] = parse(await readFile(file + '.1', 'utf8'));
  assert.deepEqual(restOld, []);
  assert.equal(first?.msg, 'first');
  assert.equal(first?.route, '/x');
  assert.equal(first?.name, 'mongrel2');
  assert.match(String(first?.time), /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(
    parse(await readFile(file, 'utf8')).map((r) => r.msg),
    ['second'],
  );
});

test("createErrorLog('stderr', level) is the project's stderr logger at that level", async () => {
  const log = await createErrorLog('stderr', 3);
  assert.equal(log.logger.level, 'debug');
  log.reopen();
  await log.close();
});
