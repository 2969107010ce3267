/**
 * A quick A/B probe of m2bridge builds for profile-driven work, not a
 * reportable benchmark (the three bench/bridge-*.ts scripts are):
 *
 *   MODE=app BINS=/tmp/base/bin/m2bridge.js,bin/m2bridge.js node --import tsx bench/lib/bridge-probe.ts
 *
 * Env: MODE (app | fcgi | http), BINS (comma-separated m2bridge entry points;
 * default this checkout's bin/m2bridge.js), DUR (8s), CONNS (50), ROUNDS (2),
 * FLOW (1 for fcgi/http, 0 for app: as the benches), PROFILE (a directory:
 * the first bin runs under bench/lib/cpu-profile.mjs and its top self-time
 * functions are printed), PERF (a file: `perf record -g` of the first bin's
 * first round; run with NODE_OPTIONS=--perf-basic-prof for JS frame names),
 * STRACE (a file: `strace -c -f` syscall counts of that same round), REF (1:
 * also measure the bench's reference in the same rounds: nginx + its own FPM
 * pool for fcgi, the Express app on node:http for app, the origin itself for
 * http; 0 = skip).
 *
 * Each bin gets its own Mongrel2 (and, for fcgi, its own 2-worker FPM pool,
 * so kept FastCGI connections of one never starve the other); the measured
 * rounds alternate between bins. Printed per bin: req/s, p99 and the bridge
 * process tree's CPU µs per request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMongrel2 } from '../../test/support/mongrel2.js';
import { startPhpFpm, PHP_DOCROOT } from '../../test/support/php-fpm.js';
import { startNginx } from '../../test/support/nginx.js';
import { startBridgeBin } from './bridge-bin.js';
import { topSelf } from './profile-top.js';
import { CLK_TCK, treeTicks } from './proc.js';
import { checkHello, fmt, mean, ratio } from './report.js';
import { parseWrk, runWrk } from './wrk.js';

const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MODE = process.env.MODE ?? 'app';
const BINS = (process.env.BINS ?? path.join(ROOT, 'bin', 'm2bridge.js')).split(',').map((b) => path.resolve(b));
const DUR = process.env.DUR ?? '8s';
const CONNS = Number(process.env.CONNS ?? 50);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const FLOW = (process.env.FLOW ?? (MODE === 'app' ? '0' : '1')) !== '0';
const PROFILE = process.env.PROFILE ? path.resolve(process.env.PROFILE) : undefined;
const PERF = process.env.PERF ? path.resolve(process.env.PERF) : undefined;
const STRACE = process.env.STRACE ? path.resolve(process.env.STRACE) : undefined;
const REF = (process.env.REF ?? '1') !== '0';
if (!['app', 'fcgi', 'http'].includes(MODE)) throw new Error('MODE: app, fcgi or http');

const stops: Array<() => Promise<unknown>> = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bridge-probe-'));

/** Runs `node -e js` (a server that prints `PORT n`) until the probe stops; resolves with its port and pid. */
async function spawnPortServer(js: string, what: string): Promise<{ port: string; pid: number }> {
  const child: ChildProcess = spawn(process.execPath, ['-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  stops.push(async () => {
    child.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = /PORT (\d+)/.exec(line.toString())?.[1];
  if (!port) throw new Error(`${what}: ${line.toString()}`);
  return { port, pid: child.pid! };
}

async function startOrigin(): Promise<string> {
  const js = `require('node:http').createServer((q, s) => { s.setHeader('Content-Type', 'text/plain'); s.end('Hello, World!'); }).listen(0, '127.0.0.1', function () { process.stdout.write('PORT ' + this.address().port + '\\n'); });`;
  const { port } = await spawnPortServer(js, 'origin');
  return `http://127.0.0.1:${port}`;
}

/** The Express app on node:http in its own process (the reference of bench/bridge-express.ts). */
async function startExpressDirect(app: string): Promise<{ url: string; pid: number }> {
  const js = `import(${JSON.stringify(app)}).then(({ default: app }) => require('node:http').createServer(app).listen(0, '127.0.0.1', function () { process.stdout.write('PORT ' + this.address().port + '\\n'); }));`;
  const { port, pid } = await spawnPortServer(js, 'express direct');
  return { url: `http://127.0.0.1:${port}/hello`, pid };
}

function writeExpressApp(): string {
  const app = path.join(dir, 'hello-express.mjs');
  fs.writeFileSync(
    app,
    `import { createRequire } from 'node:module';\nconst express = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('express');\n` +
      `const app = express();\napp.get('/hello', (req, res) => { res.type('text/plain').send('Hello, World!'); });\nexport default app;\n`,
  );
  return app;
}

interface Front {
  bin: string;
  url: string;
  pid: number;
  stop: () => Promise<unknown>;
  profileDir?: string;
}

try {
  const origin = MODE === 'http' ? await startOrigin() : undefined;
  const app = MODE === 'app' ? writeExpressApp() : undefined;
  const fronts: Front[] = [];
  for (const [i, bin] of BINS.entries()) {
    const peer = await startMongrel2({ rootRoute: true, flowControl: FLOW });
    stops.push(() => peer.stop());
    let backend: string[];
    let urlPath = '/hello';
    if (MODE === 'fcgi') {
      const fpm = await startPhpFpm({ workers: 2, listen: 'unix' });
      stops.push(() => fpm.stop());
      backend = ['--fcgi', `unix:${(fpm.address as { path: string }).path}`, '--root', PHP_DOCROOT, '--max-connections', '2'];
      urlPath = '/hello.php';
    } else if (MODE === 'app') backend = ['--app', app!];
    else backend = ['--http', origin!];
    const profileDir = i === 0 && PROFILE ? path.join(PROFILE, String(Date.now())) : undefined;
    const bridge = await startBridgeBin(bin, [...backend, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--log-level', 'info'], profileDir);
    stops.push(() => bridge.stop());
    fronts.push({ bin, url: peer.baseUrl + urlPath, pid: bridge.child.pid!, stop: () => bridge.stop(), profileDir });
    if (process.env.SHOWLOG) stops.push(async () => process.stdout.write(bridge.log().split('\n').filter((l) => !l.startsWith('{')).join('\n')));
  }
  if (REF) {
    if (MODE === 'fcgi') {
      const fpm = await startPhpFpm({ workers: 2, listen: 'unix' });
      stops.push(() => fpm.stop());
      const ngx = await startNginx({ fpm });
      stops.push(() => ngx.stop());
      fronts.push({ bin: 'reference: nginx + FPM', url: `${ngx.baseUrl}/hello.php`, pid: ngx.pid, stop: () => ngx.stop() });
    } else if (MODE === 'app') {
      const direct = await startExpressDirect(app!);
      fronts.push({ bin: 'reference: Express on node:http', url: direct.url, pid: direct.pid, stop: async () => undefined });
    } else {
      fronts.push({ bin: 'reference: the origin itself', url: `${origin!}/hello`, pid: 0, stop: async () => undefined });
    }
  }
  for (const f of fronts) await checkHello(f.url, 4);
  for (const f of fronts) await runWrk(['-t2', `-c${CONNS}`, '-d2s', f.url], 40_000);
  const results = new Map<Front, Array<{ rps: number | null; p99: number | null; cpu: number | null }>>(fronts.map((f) => [f, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const f of fronts) {
      const t0 = f.pid ? treeTicks(f.pid) : 0;
      // PERF=file: an on-CPU profile (perf record) of the first bin's first round; start the bins with NODE_OPTIONS=--perf-basic-prof for JS names.
      const perf = PERF && round === 0 && f === fronts[0] ? spawn('perf', ['record', '-F', '1999', '-g', '-o', PERF, '-p', String(f.pid), '--', 'sleep', String(parseInt(DUR, 10))], { stdio: 'ignore' }) : undefined;
      // STRACE=file: syscall counts (strace -c -f) of the first bin's first round.
      const strace = STRACE && round === 0 && f === fronts[0] ? spawn('timeout', ['-s', 'INT', String(parseInt(DUR, 10)), 'strace', '-c', '-f', '-o', STRACE, '-p', String(f.pid)], { stdio: 'ignore' }) : undefined;
      const w = parseWrk(await runWrk(['-t2', `-c${CONNS}`, `-d${DUR}`, '--latency', f.url], 60_000));
      if (perf && perf.exitCode === null) await once(perf, 'exit');
      if (strace && strace.exitCode === null) await once(strace, 'exit');
      const cpu = w.requests && f.pid ? (((treeTicks(f.pid) - t0) / CLK_TCK) * 1e6) / w.requests : null;
      results.get(f)!.push({ rps: w.rps, p99: w.p99Ms, cpu });
      process.stdout.write(`round ${round + 1} ${f.bin.startsWith('reference') ? f.bin : path.relative(ROOT, f.bin)}: ${fmt(w.rps)} req/s p99 ${fmt(w.p99Ms, 2)} ms cpu ${fmt(cpu)} µs/req non2xx ${w.non2xx} errors ${w.socketErrors}\n`);
    }
  }
  process.stdout.write(`\nMODE=${MODE} FLOW=${FLOW ? 1 : 0} DUR=${DUR} CONNS=${CONNS} load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n| bin | req/s | p99 ms | req/s ratio vs reference | p99 ratio vs reference | bridge (reference: server) CPU µs/req |\n|---|---:|---:|---:|---:|---:|\n`);
  const ref = REF ? results.get(fronts[fronts.length - 1]!)! : undefined;
  const refRps = ref ? mean(ref.map((r) => r.rps)) : null;
  const refP99 = ref ? mean(ref.map((r) => r.p99)) : null;
  for (const [f, rs] of results) {
    const rps = mean(rs.map((r) => r.rps));
    const p99 = mean(rs.map((r) => r.p99));
    process.stdout.write(`| ${f.bin} | ${fmt(rps)} | ${fmt(p99, 2)} | ${fmt(ratio(rps, refRps), 2)} | ${fmt(ratio(p99, refP99), 2)} | ${fmt(mean(rs.map((r) => r.cpu)))} |\n`);
  }
  for (const f of fronts) {
    if (!f.profileDir) continue;
    await f.stop();
    for (const file of fs.readdirSync(f.profileDir)) {
      process.stdout.write(`\nprofile ${path.join(f.profileDir, file)}\n`);
      const top = await topSelf(path.join(f.profileDir, file), Number(process.env.TOP ?? 30), path.dirname(path.dirname(f.bin)));
      for (const h of [...top.functions, ...top.files.slice(0, 12)]) process.stdout.write(`${h.pct.toFixed(1).padStart(5)}%  ${h.fn}  ${h.where}\n`);
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
}
