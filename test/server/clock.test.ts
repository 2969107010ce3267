/**
 * The core's cached seconds clock, driven by node:test mock timers (setInterval
 * and Date move together, so no real time passes): the value must be Unix
 * seconds of the last refresh, refreshed every 250 ms, never rounded up.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** 400 ms past a whole second. */
const START = 1_700_000_000_400;

test('nowSeconds: cached between refreshes, refreshed every 250 ms to floor(Date.now() / 1000)', async (t) => {
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: START });
  t.after(() => mock.timers.reset());
  // Imported under the mocks so its interval is a mocked one.
  const { nowSeconds } = await import('../../src/server/clock.js');

  assert.equal(nowSeconds(), 1_700_000_000, 'first call reads the clock');

  // Refreshes fire at START + 250 n. Move time so that every refresh is landed
  // on exactly (a larger tick would show the callbacks the end time instead).
  let now = START;
  const advance = (ms: number): void => {
    for (let left = ms; left > 0; ) {
      const step = Math.min(left, 250 - ((now - START) % 250));
      mock.timers.tick(step);
      now += step;
      left -= step;
    }
  };
  advance(599); // START+999: 999 ms into the second, still floored to it
  assert.equal(nowSeconds(), 1_700_000_000);
  advance(1); // Date.now() is in the next second, but the next refresh is at START+750
  assert.equal(Math.floor(Date.now() / 1000), 1_700_000_001);
  assert.equal(nowSeconds(), 1_700_000_000, 'cached until the next refresh');
  advance(149);
  assert.equal(nowSeconds(), 1_700_000_000);
  advance(1); // START+750: refreshed
  assert.equal(nowSeconds(), 1_700_000_001);

  // Walk 10 s in uneven steps: always the second of the latest refresh.
  for (const step of [1, 249, 250, 333, 17, 1000, 4000, 2399, 1751]) {
    advance(step);
    const lastRefresh = START + Math.floor((now - START) / 250) * 250;
    assert.equal(nowSeconds(), Math.floor(lastRefresh / 1000), `at START+${now - START} ms`);
  }
});

test('nowSeconds: its refresh timer does not keep the process alive', () => {
  const clock = fileURLToPath(new URL('../../src/server/clock.ts', import.meta.url));
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `const { nowSeconds } = await import(${JSON.stringify(clock)}); process.stdout.write(String(nowSeconds()));`],
    { encoding: 'utf8', timeout: 20_000 },
  );
  assert.equal(run.error, undefined, 'the process must exit by itself');
  assert.equal(run.status, 0, run.stderr);
  assert.ok(Math.abs(Number(run.stdout) - Date.now() / 1000) < 60, `a Unix time in seconds: ${run.stdout}`);
});
