/**
 * Benchmark: Mongrel2 + `m2bridge --http` against Mongrel2's own Proxy
 * route, both in front of ONE node:http "Hello, World!" server, in one run.
 *
 *   node --import tsx bench/bridge-http.ts
 *
 * Env: DUR (10s) CONNS (50) THREADS (2) RUNS (2) WARM (2s)
 *      WORKERS (1: m2bridge --workers)
 *      FLOW (1: Mongrel2 download.flow_control=1 for the bridge front, as the README recommends)
 *      DIRECT (1: also measure the origin without anything in front: the ceiling; 0 = skip)
 *      OUT (unset; a file: the markdown section is written there too)
 *      PROFILE (unset; a directory: m2bridge gets bench/lib/cpu-profile.mjs preloaded
 *               through NODE_OPTIONS and writes DIR/<pid>.cpuprofile when it stops)
 *
 * Fronts: A = real Mongrel2 (rootRoute) + m2bridge --http → origin;
 * P = another real Mongrel2 whose '/' route is `Proxy(addr, port)` → the same
 * origin (bench/mongrel2-proxy.conf.in); D = the origin itself. Each gets a
 * warm-up (`wrk -tT -cC -dWARM`), then the measured rounds alternate
 * A, P, D, A, P, D ... with `wrk -tT -cC -dDUR --latency URL/hello`.
 *
 * Every process started here is stopped in a finally block, also on
 * SIGINT/SIGTERM (wrk is killed first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startMongrel2, renderMongrel2Conf, M2SH_BIN, MONGREL2_BIN } from '../test/support/mongrel2.js';
import { startBridge, M2BRIDGE_BIN } from '../test/support/m2bridge.js';
import { freePorts, spawnDaemon, terminateDaemon, tryConnect, readIf, tail } from '../test/support/process.js';
import { parseWrk, runWrk, stopWrkOnSignal, type WrkResult } from './lib/wrk.js';
import { checkHello, fmt, mean, ratio } from './lib/report.js';
import { CLK_TCK, descendants, memOf, systemCpu, treeTicks } from './lib/proc.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const PROXY_CONF = path.join(ROOT, 'bench', 'mongrel2-proxy.conf.in');

const DUR = process.env.DUR ?? '10s';
const CONNS = Number(process.env.CONNS ?? 50);
const THREADS = Number(process.env.THREADS ?? 2);
const RUNS = Number(process.env.RUNS ?? 2);
const WARM = process.env.WARM ?? '2s';
const WORKERS = Number(process.env.WORKERS ?? 1);
const FLOW = (process.env.FLOW ?? '1') !== '0';
const DIRECT = (process.env.DIRECT ?? '1') !== '0';
const OUT = process.env.OUT ? path.resolve(process.env.OUT) : undefined;
const PROFILE = process.env.PROFILE ? path.resolve(process.env.PROFILE) : undefined;

if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 10) throw new Error('RUNS must be 1..10');
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 16) throw new Error('WORKERS must be 1..16');
if (!/^\d+[sm]?$/.test(DUR) || !/^\d+[sm]?$/.test(WARM)) throw new Error('DUR/WARM look like 10s');
const seconds = (d: string): number => (d.endsWith('m') ? parseInt(d, 10) * 60 : parseInt(d, 10));

const HELLO = 'Hello, World!';
/** The origin: plain node:http, one process, keep-alive on (Node's defaults). */
const HELLO_JS = `const http = require('node:http');
const s = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/plain'); res.end(${JSON.stringify(HELLO)}); });
s.listen(0, '127.0.0.1', () => process.stdout.write('PORT ' + s.address().port + '\\n'));
process.on('SIGTERM', () => { s.closeAllConnections(); s.close(() => process.exit(0)); });`;

function log(msg: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------
// processes

interface Started {
  name: string;
  stop(): Promise<unknown>;
}
const started: Started[] = [];

async function startOrigin(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', HELLO_JS], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push({
    name: 'origin',
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (s: string) => {
      out += s;
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1]) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the origin exited (code ${code}) before listening`)));
  });
  return { port, child };
}

/**
 * The real Mongrel2 with bench/mongrel2-proxy.conf.in: the same launch as
 * test/support/mongrel2.ts (fresh chroot folder, m2sh load, bounded
 * readiness poll), with a Proxy route instead of handlers.
 */
async function startProxyMongrel2(upstreamPort: number): Promise<{ pid: number; port: number; home: string }> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2proxy-'));
  for (const dir of ['run', 'logs', 'tmp']) await fsp.mkdir(path.join(home, dir));
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no free port');
  const uuid = randomUUID();
  await fsp.writeFile(path.join(home, 'mongrel2.conf'), renderMongrel2Conf(await fsp.readFile(PROXY_CONF, 'utf8'), { SERVER_UUID: uuid, HTTP_PORT: port, PROXY_PORT: upstreamPort }));
  const env = { ...process.env, LOGNAME: process.env.LOGNAME ?? process.env.USER ?? 'root' };
  const load = await new Promise<string>((resolve) => {
    const c = spawn(M2SH_BIN, ['load', '-config', 'mongrel2.conf', '-db', 'config.sqlite'], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.on('data', (b: Buffer) => (text += b.toString()));
    c.stderr.on('data', (b: Buffer) => (text += b.toString()));
    c.on('close', () => resolve(text));
  });
  if (/\[ERROR\]/.test(load) || !fs.existsSync(path.join(home, 'config.sqlite'))) throw new Error(`m2sh load failed for the Proxy conf:\n${tail(load)}`);
  const outLog = path.join(home, 'logs', 'mongrel2.out');
  const daemon = await spawnDaemon(MONGREL2_BIN, ['config.sqlite', uuid], { cwd: home, env, outLog, pdeathsig: 'SIGKILL', comms: ['mongrel2'] });
  started.push({
    name: 'mongrel2 (Proxy)',
    stop: async () => {
      await terminateDaemon(daemon, [
        ['SIGINT', 5000],
        ['SIGTERM', 3000],
        ['SIGKILL', 3000],
      ]);
      await fsp.rm(home, { recursive: true, force: true });
    },
  });
  const deadline = Date.now() + 10_000;
  while (!(await tryConnect({ port }, 500))) {
    if (Date.now() > deadline) throw new Error(`the Proxy mongrel2 is not listening after 10 s:\n${tail(readIf(outLog) + readIf(path.join(home, 'logs', 'error.log')))}`);
    await sleep(50);
  }
  return { pid: daemon.pid, port, home };
}

// ---------------------------------------------------------------------------
// runs

interface Front {
  key: 'A' | 'P' | 'D';
  label: string;
  url: string;
  /** Process trees whose CPU time is charged to this front: [role, pid]. */
  pids: Array<[string, number]>;
}

interface Run {
  front: Front['key'];
  round: number;
  wrk: WrkResult;
  raw: string;
  /** CPU seconds per role during the run. */
  cpu: Record<string, number>;
  /** Seconds all cores were busy / available. */
  busy: number;
  total: number;
}

async function measure(front: Front, round: number): Promise<Run> {
  const before = front.pids.map(([, pid]) => treeTicks(pid));
  const sys0 = systemCpu();
  const args = [`-t${THREADS}`, `-c${CONNS}`, `-d${DUR}`, '--latency', `${front.url}/hello`];
  const raw = await runWrk(args, (seconds(DUR) + 30) * 1000);
  const sys1 = systemCpu();
  const cpu: Record<string, number> = {};
  front.pids.forEach(([role, pid], i) => (cpu[role] = (treeTicks(pid) - before[i]!) / CLK_TCK));
  return { front: front.key, round, wrk: parseWrk(raw), raw, cpu, busy: (sys1.busy - sys0.busy) / CLK_TCK, total: (sys1.total - sys0.total) / CLK_TCK };
}

const interrupted = stopWrkOnSignal(log);

let exitCode = 0;
try {
  const loadStart = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  log(`nproc ${os.availableParallelism()}; node ${process.version}; loadavg ${loadStart}; DUR=${DUR} CONNS=${CONNS} THREADS=${THREADS} RUNS=${RUNS} WARM=${WARM} WORKERS=${WORKERS} FLOW=${FLOW ? 1 : 0}`);

  const origin = await startOrigin();
  const originUrl = `http://127.0.0.1:${origin.port}`;
  log(`origin (node:http hello) on ${originUrl}, pid ${origin.child.pid}`);

  const peer = await startMongrel2({ rootRoute: true, flowControl: FLOW });
  started.push({ name: 'mongrel2 (bridge front)', stop: () => peer.stop() });
  const bridgeArgs = ['--http', originUrl, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec, '--workers', String(WORKERS), '--log-level', 'info'];
  // --cpu-prof is not allowed in NODE_OPTIONS, so a preload starts the profiler (workers inherit it).
  const env = PROFILE ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${path.join(ROOT, 'bench', 'lib', 'cpu-profile.mjs')}`.trim(), M2B_CPU_PROFILE_DIR: PROFILE } : {};
  if (PROFILE) fs.mkdirSync(PROFILE, { recursive: true });
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const bridge = await startBridge(bridgeArgs).finally(() => {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  started.push({ name: 'm2bridge', stop: () => bridge.stop() });
  const proxy = await startProxyMongrel2(origin.port);
  log(`A: mongrel2 ${peer.pid} :${peer.httpPort} + m2bridge ${bridge.child.pid}; P: mongrel2 ${proxy.pid} :${proxy.port} Proxy`);

  const originPid = origin.child.pid!;
  const bridgePid = bridge.child.pid!;
  const fronts: Front[] = [
    { key: 'A', label: 'Mongrel2 + m2bridge --http', url: peer.baseUrl, pids: [['mongrel2', peer.pid], ['m2bridge', bridgePid], ['origin', originPid]] },
    { key: 'P', label: 'Mongrel2 Proxy route', url: `http://127.0.0.1:${proxy.port}`, pids: [['mongrel2', proxy.pid], ['origin', originPid]] },
  ];
  if (DIRECT) fronts.push({ key: 'D', label: 'the origin directly (ceiling)', url: originUrl, pids: [['origin', originPid]] });

  for (const f of fronts) await checkHello(`${f.url}/hello`, 4, HELLO);
  if (WORKERS > 1) {
    // Wait (bounded) for the cluster workers to be up before loading them.
    const deadline = Date.now() + 10_000;
    while ((bridge.log().match(/"msg":"worker ready"/g) ?? []).length < WORKERS && Date.now() < deadline) await sleep(50);
  }
  const rssIdle = memOf(bridgePid);
  for (const f of fronts) {
    if (interrupted()) throw new Error('interrupted');
    log(`warm-up ${f.key}`);
    await runWrk([`-t${THREADS}`, `-c${CONNS}`, `-d${WARM}`, `${f.url}/hello`], (seconds(WARM) + 30) * 1000);
  }
  const runs: Run[] = [];
  for (let round = 1; round <= RUNS; round++) {
    for (const f of fronts) {
      if (interrupted()) throw new Error('interrupted');
      await sleep(1000); // let TIME_WAIT sockets and the previous front's tail settle
      const r = await measure(f, round);
      runs.push(r);
      log(`${f.key}${round}: ${fmt(r.wrk.rps)} req/s, p50 ${fmt(r.wrk.p50Ms, 2)} ms, p99 ${fmt(r.wrk.p99Ms, 2)} ms, non-2xx ${r.wrk.non2xx}, socket errors ${r.wrk.socketErrors}`);
    }
  }
  for (const f of fronts) await checkHello(`${f.url}/hello`, 4, HELLO);
  const rssAfter = memOf(bridgePid);
  const loadEnd = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const workerPids = descendants(bridgePid);

  // -------------------------------------------------------------------------
  // report
  const of = (key: Front['key']): Run[] => runs.filter((r) => r.front === key);
  const avg = (key: Front['key'], pick: (r: Run) => number | null): number | null => mean(of(key).map(pick));
  const pRps = avg('P', (r) => r.wrk.rps);
  const pP99 = avg('P', (r) => r.wrk.p99Ms);
  const anyBad = runs.some((r) => r.wrk.non2xx > 0 || r.wrk.socketErrors > 0 || r.wrk.rps === null);
  if (anyBad) exitCode = 1;

  const lines: string[] = [];
  lines.push(`Date: ${new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}. Run by \`node --import tsx bench/bridge-http.ts\` (DUR=${DUR} CONNS=${CONNS} THREADS=${THREADS} RUNS=${RUNS} WARM=${WARM} WORKERS=${WORKERS} FLOW=${FLOW ? 1 : 0}).`);
  lines.push('');
  lines.push('| front | mean req/s | mean p50 ms | mean p99 ms | req/s vs Proxy | p99 vs Proxy |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const f of fronts) {
    const rps = avg(f.key, (r) => r.wrk.rps);
    const p99 = avg(f.key, (r) => r.wrk.p99Ms);
    lines.push(`| ${f.key}: ${f.label} | ${fmt(rps)} | ${fmt(avg(f.key, (r) => r.wrk.p50Ms), 2)} | ${fmt(p99, 2)} | ${fmt(ratio(rps, pRps), 2)} | ${fmt(ratio(p99, pP99), 2)} |`);
  }
  lines.push('');
  lines.push(anyBad ? '**Some runs had non-2xx responses or socket errors: see the raw table.**' : `Every measured response was a 2xx (non-2xx = 0 and socket errors = 0 in all ${runs.length} runs).`);
  lines.push('');
  lines.push('Raw runs (CPU seconds per process tree during the run; "machine" = all busy CPU on the box):');
  lines.push('');
  lines.push('| front | round | req/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors | CPU s | machine busy |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const r of runs) {
    const cpu = Object.entries(r.cpu).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
    lines.push(`| ${r.front} | ${r.round} | ${fmt(r.wrk.rps)} | ${fmt(r.wrk.p50Ms, 2)} | ${fmt(r.wrk.p99Ms, 2)} | ${fmt(r.wrk.maxMs, 2)} | ${r.wrk.requests ?? '-'} | ${r.wrk.non2xx} | ${r.wrk.socketErrors} | ${cpu} | ${((100 * r.busy) / Math.max(1, r.total)).toFixed(0)} % |`);
  }
  lines.push('');
  lines.push('CPU µs per request (summed over the rounds):');
  lines.push('');
  for (const f of fronts) {
    const rr = of(f.key);
    const req = rr.reduce((a, r) => a + (r.wrk.requests ?? 0), 0);
    const parts = f.pids.map(([role]) => `${role} ${req ? ((rr.reduce((a, r) => a + (r.cpu[role] ?? 0), 0) / req) * 1e6).toFixed(0) : '-'}`);
    lines.push(`- ${f.key}: ${parts.join(', ')}`);
  }
  lines.push('');
  lines.push('Setup:');
  lines.push('');
  lines.push(`- Machine: ${os.availableParallelism()} cores (\`${/^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?'}\`), shared by wrk, Mongrel2, m2bridge and the origin; loadavg at start \`${loadStart}\`, at end \`${loadEnd}\`. Node ${process.version}.`);
  lines.push(`- Origin: one \`node -e\` process, \`http.createServer\` answering \`${HELLO}\` (text/plain, Content-Length, keep-alive).`);
  lines.push(`- A: \`startMongrel2({ rootRoute: true, flowControl: ${FLOW} })\` (test/mongrel2/interop.conf.in, '/' → the JSON handler), then \`node ${path.relative(ROOT, M2BRIDGE_BIN)} ${bridgeArgs.join(' ')}\` (undici Pool to the origin, 128 connections max).`);
  lines.push(`- P: the real mongrel2 with bench/mongrel2-proxy.conf.in: \`Proxy(addr='127.0.0.1', port=ORIGIN)\` on '/', zeromq.threads 1, access log on.`);
  if (DIRECT) lines.push('- D: wrk straight at the origin: what one Node process answers with nothing in front.');
  lines.push(`- Each front: a \`wrk -t${THREADS} -c${CONNS} -d${WARM}\` warm-up, then ${RUNS} measured rounds in the order ${fronts.map((f) => f.key).join(', ')}, each \`wrk -t${THREADS} -c${CONNS} -d${DUR} --latency URL/hello\`, 1 s apart.`);
  lines.push(`- m2bridge RSS: ${rssIdle ? (rssIdle.rssKiB / 1024).toFixed(1) : '-'} MiB before the warm-ups, ${rssAfter ? (rssAfter.rssKiB / 1024).toFixed(1) : '-'} MiB after (peak ${rssAfter ? (rssAfter.hwmKiB / 1024).toFixed(1) : '-'} MiB)${workerPids.length ? `; plus ${workerPids.length} worker process(es)` : ''}.`);
  const warn = bridge.log().split('\n').filter((l) => /"level":(40|50|60)/.test(l));
  lines.push(`- m2bridge log lines at warn or above: ${warn.length}${warn.length ? ` (first: \`${warn[0]!.slice(0, 200)}\`)` : ''}.`);
  lines.push('');
  lines.push('<details><summary>Raw wrk output</summary>');
  lines.push('');
  for (const r of runs) lines.push('```', `# ${r.front} round ${r.round}`, r.raw.trimEnd(), '```');
  lines.push('', '</details>');

  const section = lines.join('\n');
  process.stdout.write('\n' + section + '\n');
  if (OUT) {
    fs.writeFileSync(OUT, section + '\n');
    log(`wrote ${OUT}`);
  }
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
} finally {
  for (const s of [...started].reverse()) {
    try {
      await s.stop();
    } catch (err) {
      log(`stopping ${s.name} failed: ${(err as Error).message}`);
    }
  }
  log('all processes stopped');
}
process.exit(exitCode);
