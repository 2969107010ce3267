/**
 * Benchmark: an Express 5 "Hello, World!" app on node:http against the same
 * app behind the real Mongrel2 + `m2bridge --app`, in one run (issue 6).
 *
 *   node --import tsx bench/bridge-express.ts
 *
 * Env: DUR (10s) CONNS (50) THREADS (2) RUNS (2) WARM (2s)
 *      WORKERS (1,2: the m2bridge --workers values measured, each its own front)
 *      OURS (1: also O1 = OUR core, bin/mongrel2.js run like the real one,
 *            + m2bridge --app --workers 1, as issue 6 asks; 0 = skip)
 *      CEILING (1: also H = another Mongrel2 + a trivial handler in this process
 *               answering "Hello, World!" through src/handler's Connection:
 *               the most anything behind Mongrel2 gets on this machine; 0 = skip)
 *
 * Fronts: D = the app in its own node process on node:http (the reference),
 * B1, B2... = a real Mongrel2 (rootRoute, flow control off, as in
 * test/support/mongrel2.ts) + `m2bridge --app FILE --workers N`. Each gets a
 * warm-up, then measured rounds alternate D, B1, B2, D, B1, B2 ... with
 * `wrk -tT -cC -dDUR --latency URL/hello`. Output: a markdown table of req/s,
 * p50, p99 and their ratios to D (goal ≥ 0.9× req/s), and CPU µs per request
 * of the serving processes (/proc, whole process trees). Nothing is written
 * to bench/RESULTS.md. Every process is stopped in a finally block.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMongrel2 } from '../test/support/mongrel2.js';
import { startBridge, M2BRIDGE_BIN } from '../test/support/m2bridge.js';
import { freePorts } from '../test/support/process.js';
import { Connection } from '../src/handler/index.js';
import { parseWrk, runWrk, runningWrk, type WrkResult } from './lib/wrk.js';
import { CLK_TCK, descendants, ticksOf } from './lib/proc.js';
import { checkHello, fmt, mean, ratio } from './lib/report.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const DUR = process.env.DUR ?? '10s';
const WARM = process.env.WARM ?? '2s';
const CONNS = Number(process.env.CONNS ?? 50);
const THREADS = Number(process.env.THREADS ?? 2);
const RUNS = Number(process.env.RUNS ?? 2);
const WORKERS = (process.env.WORKERS ?? '1,2').split(',').map(Number);
const OURS = (process.env.OURS ?? '1') !== '0';
if (!/^\d+[sm]?$/.test(DUR) || !/^\d+[sm]?$/.test(WARM)) throw new Error('DUR/WARM look like 10s');
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 10) throw new Error('RUNS must be 1..10');
if (WORKERS.some((w) => !Number.isInteger(w) || w < 1 || w > 16)) throw new Error('WORKERS: a list of 1..16');
const CEILING = (process.env.CEILING ?? '1') !== '0';
const seconds = (d: string): number => parseInt(d, 10) * (d.endsWith('m') ? 60 : 1);

const log = (msg: string): void => void process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Front {
  key: string;
  label: string;
  url: string;
  /** Processes whose CPU counts (trees are expanded at measurement time). */
  pids: () => number[];
}

const stops: Array<() => Promise<unknown>> = [];
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true;
    for (const c of runningWrk) c.kill('SIGKILL');
  });
}

/** The app module and a node:http launcher for it, in a temp dir (express resolved from this repo). */
function writeApp(dir: string): { app: string; direct: string } {
  const app = path.join(dir, 'hello-express.mjs');
  fs.writeFileSync(
    app,
    `import { createRequire } from 'node:module';\n` +
      `const express = createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))})('express');\n` +
      `const app = express();\napp.get('/hello', (req, res) => { res.type('text/plain').send('Hello, World!'); });\nexport default app;\n`,
  );
  const direct = path.join(dir, 'direct.mjs');
  fs.writeFileSync(
    direct,
    `import http from 'node:http';\nimport app from ${JSON.stringify(app)};\n` +
      `http.createServer(app).listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('listening\\n'));\n`,
  );
  return { app, direct };
}

async function startDirect(script: string): Promise<{ child: ChildProcess; port: number }> {
  const [port] = await freePorts(1);
  const child = spawn(process.execPath, [script, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  stops.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  child.stdout!.setEncoding('utf8');
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the node:http app did not start within 10 s')), 10_000);
    child.stdout!.on('data', (s: string) => {
      out += s;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the node:http app exited (code ${code})`)));
  });
  return { child, port: port! };
}

let exitCode = 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-express-'));
try {
  const files = writeApp(dir);
  const fronts: Front[] = [];
  const direct = await startDirect(files.direct);
  fronts.push({ key: 'D', label: 'Express on node:http (1 process)', url: `http://127.0.0.1:${direct.port}/hello`, pids: () => [direct.child.pid!] });
  const bridged: Array<{ workers: number; ours: boolean }> = WORKERS.map((workers) => ({ workers, ours: false }));
  if (OURS) bridged.push({ workers: 1, ours: true });
  for (const { workers, ours } of bridged) {
    const peer = await startMongrel2({ rootRoute: true, ...(ours ? { bin: path.join(ROOT, 'bin', 'mongrel2.js') } : {}) });
    stops.push(() => peer.stop());
    const bridge = await startBridge(['--app', files.app, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--workers', String(workers), '--log-level', 'info']);
    stops.push(() => bridge.stop());
    const deadline = Date.now() + 10_000;
    while ((bridge.log().match(/"msg":"worker ready"/g) ?? []).length < workers) {
      if (Date.now() > deadline) throw new Error(`m2bridge --workers ${workers}: not every worker ready:\n${bridge.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const bpid = bridge.child.pid!;
    fronts.push({
      key: `${ours ? 'O' : 'B'}${workers}`,
      label: `${ours ? 'OUR core' : 'Mongrel2'} + m2bridge --app --workers ${workers}`,
      url: `${peer.baseUrl}/hello`,
      pids: () => [peer.pid, bpid, ...descendants(bpid)],
    });
  }
  if (CEILING) {
    const peer = await startMongrel2({ rootRoute: true });
    stops.push(() => peer.stop());
    const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec });
    const loop = (async () => {
      for await (const req of conn) if (req.kind === 'http') void conn.replyHttp(req, 'Hello, World!', { headers: { 'Content-Type': 'text/plain' } });
    })();
    stops.push(async () => {
      await conn.shutdown();
      await loop;
    });
    await conn.ready();
    fronts.push({ key: 'H', label: 'Mongrel2 + trivial in-process handler (ceiling, no Express)', url: `${peer.baseUrl}/hello`, pids: () => [peer.pid, process.pid] });
  }
  for (const f of fronts) await checkHello(f.url);

  const wrkArgs = (url: string, dur: string): string[] => [`-t${THREADS}`, `-c${CONNS}`, `-d${dur}`, '--latency', url];
  for (const f of fronts) {
    log(`warm-up ${f.key}: wrk ${wrkArgs(f.url, WARM).join(' ')}`);
    await runWrk(wrkArgs(f.url, WARM), (seconds(WARM) + 30) * 1000);
  }
  const runs: Array<{ key: string; round: number; wrk: WrkResult; cpuUsPerReq: number | null }> = [];
  for (let round = 1; round <= RUNS && !interrupted; round++) {
    for (const f of fronts) {
      if (interrupted) break;
      const pids = f.pids();
      const t0 = ticksOf(pids);
      const out = await runWrk(wrkArgs(f.url, DUR), (seconds(DUR) + 30) * 1000);
      const ticks = ticksOf(pids) - t0;
      const wrk = parseWrk(out);
      const cpuUsPerReq = wrk.requests ? (ticks / CLK_TCK / wrk.requests) * 1e6 : null;
      runs.push({ key: f.key, round, wrk, cpuUsPerReq });
      log(`${f.key} round ${round}: ${fmt(wrk.rps)} req/s, p50 ${fmt(wrk.p50Ms, 2)} ms, p99 ${fmt(wrk.p99Ms, 2)} ms, non-2xx ${wrk.non2xx}, socket errors ${wrk.socketErrors}, ${fmt(cpuUsPerReq)} µs CPU/request`);
    }
  }
  for (const f of fronts) await checkHello(f.url);

  const summary = fronts.map((f) => {
    const mine = runs.filter((r) => r.key === f.key);
    return { f, rps: mean(mine.map((r) => r.wrk.rps)), p50: mean(mine.map((r) => r.wrk.p50Ms)), p99: mean(mine.map((r) => r.wrk.p99Ms)), cpu: mean(mine.map((r) => r.cpuUsPerReq)), bad: mine.some((r) => r.wrk.non2xx > 0 || r.wrk.socketErrors > 0) };
  });
  const ref = summary[0]!;
  const lines = [
    `Express 5 "Hello, World!" (GET /hello), \`wrk -t${THREADS} -c${CONNS} -d${DUR} --latency\`, ${RUNS} rounds alternating, means. Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), shared by wrk and the servers. m2bridge = \`node ${path.relative(ROOT, M2BRIDGE_BIN)} --app FILE --workers N\`.`,
    '',
    '| front | req/s | p50 ms | p99 ms | req/s ratio vs D | p99 ratio vs D | goal ≥ 0.9× req/s | server CPU µs/request |',
    '|---|---:|---:|---:|---:|---:|---|---:|',
    ...summary.map((s) => {
      const r = ratio(s.rps, ref.rps);
      return `| ${s.f.key}: ${s.f.label} | ${fmt(s.rps)} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(r, 2)} | ${fmt(ratio(s.p99, ref.p99), 2)} | ${s === ref ? '(reference)' : s.f.key === 'H' ? '(ceiling, not a candidate)' : r !== null && r >= 0.9 ? '**met**' : '**not met**'} | ${fmt(s.cpu)} |`;
    }),
    '',
    summary.some((s) => s.bad) ? '**Some runs had non-2xx responses or socket errors.**' : 'Every measured response was a 2xx; no socket errors.',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  for (const stop of stops.reverse()) await stop().catch((err: unknown) => log(`stop failed: ${(err as Error).message}`));
  fs.rmSync(dir, { recursive: true, force: true });
  log('all processes stopped');
}
process.exit(exitCode);
