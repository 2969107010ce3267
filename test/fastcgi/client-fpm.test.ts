/**
 * FastCgiClient against the REAL php-fpm (test/support/php-fpm.ts), with PHP
 * scripts written to a temp docroot by this file.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { FastCgiClient, type FastCgiClientOptions, type FastCgiResponse } from '../../src/fastcgi/client.js';
import { startPhpFpm, type PhpFpm } from '../support/php-fpm.js';
import { countingBody, md5, readAll, rejectsWith, waitStable, waitUntil } from './helpers.js';

const SCRIPTS: Record<string, string> = {
  'hello.php': `<?php
header('Content-Type: text/plain');
echo 'hello ', $_GET['name'] ?? 'world';
`,
  'input.php': `<?php
// The body as PHP sees it: length and md5 of php://input.
$in = file_get_contents('php://input');
header('Content-Type: text/plain');
echo strlen($in), ' ', md5($in);
`,
  'headers.php': `<?php
// HTTP_X_* params in name order: count and md5 of "name=value\\n" lines; the cookie's length and md5.
$lines = [];
foreach ($_SERVER as $k => $v) if (strncmp($k, 'HTTP_X_', 7) === 0) $lines[$k] = "$k=$v\\n";
ksort($lines, SORT_STRING);
$cookie = $_SERVER['HTTP_COOKIE'] ?? '';
header('Content-Type: text/plain');
echo count($lines), ' ', md5(implode('', $lines)), ' ', strlen($cookie), ' ', md5($cookie);
`,
  'stderr.php': `<?php
error_log('something went wrong');
echo 'out';
`,
  'loop.php': `<?php
// Streams forever-ish: one line per 20 ms with flush(), and a line in the marker
// file per iteration so the test can see when the worker stops.
$marker = $_SERVER['M2_MARKER'];
header('Content-Type: text/plain');
for ($i = 0; $i < 100000; $i++) {
    echo "tick $i\\n";
    flush();
    file_put_contents($marker, "$i\\n", FILE_APPEND);
    usleep(20000);
}
file_put_contents($marker, "done\\n", FILE_APPEND);
`,
  'flood.php': `<?php
// 32 MiB in 64 KiB flushes, progress per chunk in the marker file.
$marker = $_SERVER['M2_MARKER'];
header('Content-Type: application/octet-stream');
$chunk = str_repeat('0123456789abcdef', 4096);
for ($i = 0; $i < 512; $i++) {
    echo $chunk;
    flush();
    file_put_contents($marker, "$i\n", FILE_APPEND);
}
file_put_contents($marker, "done\n", FILE_APPEND);
`,
  'exit.php': `<?php
if (($_GET['how'] ?? '') === 'fatal') undefined_function();
echo 'bye';
exit(3);
`,
  'pid.php': `<?php
usleep((int)($_GET['ms'] ?? 0) * 1000);
echo getmypid();
`,
};

let docRoot = '';

before(() => {
  docRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'm2fcgi-docroot-'));
  fs.chmodSync(docRoot, 0o755); // the pool runs as www-data when we are root
  for (const [name, code] of Object.entries(SCRIPTS)) fs.writeFileSync(path.join(docRoot, name), code, { mode: 0o644 });
});

after(() => {
  if (docRoot) fs.rmSync(docRoot, { recursive: true, force: true });
});

/** The CGI params nginx's fastcgi_params would send for `script?query`. */
function cgi(script: string, opts: { method?: string; query?: string; contentLength?: number; extra?: Array<[string, string]> } = {}): Array<[string, string]> {
  const method = opts.method ?? 'GET';
  const params: Array<[string, string]> = [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', method],
    ['SCRIPT_FILENAME', path.join(docRoot, script)],
    ['SCRIPT_NAME', '/' + script],
    ['REQUEST_URI', '/' + script + (opts.query ? '?' + opts.query : '')],
    ['QUERY_STRING', opts.query ?? ''],
    ['DOCUMENT_ROOT', docRoot],
    ['SERVER_NAME', 'localhost'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['REDIRECT_STATUS', '200'],
  ];
  if (opts.contentLength !== undefined) params.push(['CONTENT_LENGTH', String(opts.contentLength)], ['CONTENT_TYPE', 'application/octet-stream']);
  return [...params, ...(opts.extra ?? [])];
}

/** stdout split at the CGI head. */
async function body(res: FastCgiResponse): Promise<{ head: string; body: string; stderr: string }> {
  const [out, err] = await Promise.all([readAll(res.stdout), readAll(res.stderr)]);
  const text = out.toString('latin1');
  const cut = text.indexOf('\r\n\r\n');
  assert.ok(cut >= 0, `no CGI head in ${JSON.stringify(text.slice(0, 200))}`);
  return { head: text.slice(0, cut), body: text.slice(cut + 4), stderr: err.toString() };
}

interface FpmHandle {
  get: () => PhpFpm;
  /**
   * Runs `fn` with a fresh client and always closes it afterwards: an idle kept
   * socket pins an FPM worker, so a client left open would starve later tests.
   */
  withClient: <T>(fn: (client: FastCgiClient) => Promise<T>, opts?: Partial<FastCgiClientOptions>) => Promise<T>;
}

function startFpm(opts: Parameters<typeof startPhpFpm>[0]): FpmHandle {
  let fpm: PhpFpm | undefined;
  before(async () => {
    fpm = await startPhpFpm({ ...opts, docRoot });
  });
  after(async () => {
    await fpm?.stop();
  });
  return {
    get: () => fpm!,
    withClient: async (fn, o = {}) => {
      const client = new FastCgiClient({ address: fpm!.address, connectTimeoutMs: 3000, readTimeoutMs: 20_000, ...o });
      try {
        return await fn(client);
      } finally {
        await client.close({ timeoutMs: 0 });
        assert.equal(client.stats().open, 0, 'client sockets left open');
      }
    },
  };
}

describe('php-fpm over TCP', () => {
  const fpm = startFpm({ workers: 2, listen: 'tcp' });

  test('GET a script: its output, X-Powered-By from PHP, appStatus 0', async () => {
    await fpm.withClient(async (client) => {
      const res = await client.request({ params: cgi('hello.php', { query: 'name=fpm' }) });
      const r = await body(res);
      assert.equal(r.body, 'hello fpm');
      assert.match(r.head, /^X-Powered-By: PHP\/8/m);
      assert.match(r.head, /^Content-type: text\/plain;charset=UTF-8$/m); // PHP writes "Content-type" and adds the charset
      assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
    });
  });

  test('a 10 MB POST body reaches php://input (Buffer and stream)', async () => {
    await fpm.withClient(async (client) => {
      const size = 10 * 1024 * 1024;
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
      const res = await client.request({ params: cgi('input.php', { method: 'POST', contentLength: size }), stdin: data });
      assert.equal((await body(res)).body, `${size} ${md5(data)}`);
      await res.done;

      const streamed = countingBody(size + 5, 50_001);
      const res2 = await client.request({ params: cgi('input.php', { method: 'POST', contentLength: size + 5 }), stdin: Readable.from(streamed.iterable) });
      assert.equal((await body(res2)).body, `${size + 5} ${streamed.md5}`);
      await res2.done;
    });
  });

  test('params over 64 KiB in total (500 HTTP_X_* pairs) arrive intact', async () => {
    await fpm.withClient(async (client) => {
      const extra: Array<[string, string]> = [];
      for (let i = 0; i < 500; i++) extra.push([`HTTP_X_H${String(i).padStart(3, '0')}`, `${i}:`.padEnd(200, 'abcdefgh')]);
      const total = extra.reduce((n, [k, v]) => n + k.length + v.length, 0);
      assert.ok(total > 100_000);
      const expected = md5(Buffer.from(extra.map(([k, v]) => `${k}=${v}\n`).join('')));
      const res = await client.request({ params: cgi('headers.php', { extra }) });
      assert.equal((await body(res)).body, `500 ${expected} 0 ${md5(Buffer.alloc(0))}`);
    });
  });

  test('a 60 KB cookie works; so does the largest pair a record can hold (65528 bytes)', async () => {
    await fpm.withClient(async (client) => {
      for (const cookie of ['session=' + 'c'.repeat(60 * 1024), 'k=' + 'v'.repeat(65528 - 1 - 4 - 'HTTP_COOKIE'.length - 2)]) {
        const res = await client.request({ params: cgi('headers.php', { extra: [['HTTP_X_BEFORE', 'x'.repeat(9000)], ['HTTP_COOKIE', cookie], ['HTTP_X_AFTER', 'y']] }) });
        const [count, , len, sum] = (await body(res)).body.split(' ');
        assert.equal(count, '2');
        assert.equal(Number(len), cookie.length);
        assert.equal(sum, md5(Buffer.from(cookie)));
      }
    });
  });

  test('FCGI_GET_VALUES: FPM answers FCGI_MPXS_CONNS=0 (and nothing about MAX_CONNS/MAX_REQS)', async () => {
    await fpm.withClient(async (client) => {
      const values = await client.getValues(['FCGI_MPXS_CONNS', 'FCGI_MAX_CONNS', 'FCGI_MAX_REQS']);
      assert.deepStrictEqual(values, { FCGI_MPXS_CONNS: '0' });
      await waitUntil(() => client.stats().open === 0, 'the GET_VALUES socket is closed');
    });
  });

  test('keep-alive: 20 sequential requests use one socket', async () => {
    await fpm.withClient(async (client) => {
      const pids = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const res = await client.request({ params: cgi('pid.php') });
        pids.add((await body(res)).body);
        await res.done;
      }
      const s = client.stats();
      assert.ok(s.created < 20, `created ${s.created} sockets for 20 requests`);
      assert.equal(s.created, 1);
      assert.equal(pids.size, 1, 'one worker served them all over the kept connection');
      assert.deepStrictEqual({ ...s, created: 0 }, { active: 0, idle: 1, queued: 0, open: 1, created: 0 });
    });
  });

  test('keep-alive under load: 300 requests, 30 at a time, over exactly maxConnections (2) sockets', async () => {
    await fpm.withClient(
      async (client) => {
        let next = 0;
        const lane = async (): Promise<void> => {
          while (next++ < 300) {
            const res = await client.request({ params: cgi('pid.php') });
            assert.match((await body(res)).body, /^[0-9]+$/);
            await res.done;
          }
        };
        await Promise.all(Array.from({ length: 30 }, lane));
        assert.deepStrictEqual(client.stats(), { active: 0, idle: 2, queued: 0, open: 2, created: 2 });
      },
      { maxConnections: 2 },
    );
  });

  test('stderr: error_log() arrives as FCGI_STDERR ("PHP message: ...")', async () => {
    await fpm.withClient(async (client) => {
      const r = await body(await client.request({ params: cgi('stderr.php') }));
      assert.equal(r.body, 'out');
      assert.match(r.stderr, /PHP message: something went wrong/);
    });
  });

  test('FPM reports appStatus 0 even for exit(3) and a fatal error', async () => {
    await fpm.withClient(async (client) => {
      const res = await client.request({ params: cgi('exit.php') });
      assert.equal((await body(res)).body, 'bye');
      assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
      const fatal = await client.request({ params: cgi('exit.php', { query: 'how=fatal' }) });
      const r = await body(fatal);
      assert.match(r.head, /^Status: 500/m);
      assert.match(r.stderr, /PHP Fatal error: {2}Uncaught Error: Call to undefined function undefined_function\(\)/);
      assert.deepStrictEqual(await fatal.done, { appStatus: 0, protocolStatus: 0 });
    });
  });

  test('a missing script: FPM answers 404 and "Primary script unknown" on stderr', async () => {
    await fpm.withClient(async (client) => {
      const res = await client.request({ params: cgi('no-such-script.php') });
      const r = await body(res);
      assert.match(r.head, /^Status: 404/m);
      assert.match(r.stderr, /Primary script unknown/);
      assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
    });
  });
});

describe('php-fpm over a unix socket with pm.max_requests = 3', () => {
  const fpm = startFpm({ workers: 2, listen: 'unix', maxRequests: 3 });

  test('recycled workers close kept sockets; every request still succeeds (stale socket → one retry)', async () => {
    assert.match(fpm.get().addressText, /^unix:\//);
    await fpm.withClient(async (client) => {
      const pids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await client.request({ params: cgi('pid.php') });
        pids.push((await body(res)).body);
        await res.done;
      }
      // 3 requests per worker process, then a new one.
      assert.ok(new Set(pids).size >= 7, `pids: ${pids.join(' ')}`);
      const s = client.stats();
      assert.ok(s.created < 20, `created ${s.created} sockets for 20 requests`);
      assert.equal(s.active, 0);
      assert.ok(s.idle <= 1);
    }, { address: fpm.get().addressText });
  });
});

describe('php-fpm with one worker', () => {
  const fpm = startFpm({ workers: 1, listen: 'tcp' });

  test('abort mid-stream stops the PHP worker; the next request is served', async () => {
    await fpm.withClient(async (client) => {
      const marker = path.join(fpm.get().tmpDir, `loop-${process.pid}.txt`);
      const ac = new AbortController();
      const res = await client.request({ params: cgi('loop.php', { extra: [['M2_MARKER', marker]] }), signal: ac.signal });
      const it = res.stdout[Symbol.asyncIterator]();
      let seen = '';
      while (!seen.includes('tick 5\n')) seen += ((await it.next()) as IteratorResult<Buffer>).value.toString();
      ac.abort();
      await rejectsWith(it.next(), 'ABORTED');
      await rejectsWith(res.done, 'ABORTED');
      const size = (): number => fs.statSync(marker).size;
      // The script notices at its next flush() into the closed socket; 400 ms is 20 iterations.
      const stable = await waitStable(size, 'the marker file', 400, 10_000);
      const lines = fs.readFileSync(marker, 'utf8').trim().split('\n');
      assert.ok(!lines.includes('done'), 'the script ran to the end');
      assert.ok(lines.length < 60, `the script kept running for ${lines.length} iterations`);
      // One worker: this only works if the aborted script is gone.
      const next = await client.request({ params: cgi('hello.php') });
      assert.equal((await body(next)).body, 'hello world');
      assert.equal(size(), stable, 'the marker file grew again');
    });
  });

  test('more sockets than workers: a request stuck behind our idle socket is rescued', async () => {
    await fpm.withClient(async (client) => {
      const started = Date.now();
      const results = await Promise.all(
        [1, 2].map(async (i) => {
          const res = await client.request({ params: cgi('pid.php', { query: `ms=${100 * i}` }) });
          return (await body(res)).body;
        }),
      );
      assert.equal(new Set(results).size, 1, 'the single worker served both');
      assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
    }, { maxConnections: 2, idleRescueMs: 100, readTimeoutMs: 5000 });
  });
});

describe('php-fpm: stdout backpressure end to end', () => {
  const fpm = startFpm({ workers: 1, listen: 'tcp' });

  test('an unread stdout blocks the PHP worker (no read timeout meanwhile); reading resumes it to the end', async () => {
    await fpm.withClient(async (client) => {
      const marker = path.join(fpm.get().tmpDir, `flood-${process.pid}.txt`);
      const res = await client.request({ params: cgi('flood.php', { extra: [['M2_MARKER', marker]] }) });
      const lines = (): string[] => (fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim().split('\n') : []);
      // Quiet for longer than readTimeoutMs: the pause is our consumer's, not FPM's silence.
      await waitStable(() => lines().length, 'the worker progress', 800, 15_000);
      const stalled = lines();
      assert.ok(!stalled.includes('done') && stalled.length < 256, `the worker wrote ${stalled.length} of 512 chunks while nobody read stdout`);
      const out = await readAll(res.stdout);
      const text = out.subarray(out.indexOf('\r\n\r\n') + 4);
      assert.equal(text.length, 32 * 1024 * 1024);
      assert.equal(md5(text), md5(Buffer.from('0123456789abcdef'.repeat(4096 * 512))));
      assert.deepStrictEqual(await res.done, { appStatus: 0, protocolStatus: 0 });
      assert.equal(lines().at(-1), 'done');
    }, { readTimeoutMs: 300 });
  });
});
