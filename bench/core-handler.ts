/**
 * Benchmark (issue 3, item 9): OUR server core + our TypeScript handler
 * against the real Mongrel2, for one hello-world response (200, text/plain,
 * "Hello World\n", keep-alive), in one run on loopback with wrk:
 *
 *   N  bare node:http (bench/servers/node-http.ts): the ceiling
 *   P  real Mongrel2 (startMongrel2) + a plain pyzmq handler (bench/handlers/hello.py)
 *   M  real Mongrel2 (another startMongrel2) + our TS handler (bench/handlers/hello.ts)
 *   C  our core (bench/servers/core.ts, src/server runServer) + the same TS handler;
 *      CORE_RUN=bundled (default: one esbuild bundle under bare node, as the
 *      compiled bins run it) or tsx (the sources through tsx)
 *
 * Every server and handler is its own process (nothing pinned). Each front
 * gets a warm-up, then RUNS rounds of `wrk -tTHREADS -cCONNS -dDUR --latency`,
 * interleaved N, P, M, C, N, P, ...; the report gives the medians and ratios.
 * Then the idle test: IDLE keep-alive connections (each answered once) opened
 * by a separate process (bench/lib/idle-clients.ts) against C, then against M,
 * with the server's VmRSS before, with them open, and after they close.
 *
 *   node --import tsx bench/core-handler.ts [--profile]
 *
 * Env: DUR (10 s) CONNS (50) RUNS (3) THREADS (2) WARM (3 s) IDLE (10000; 0 = skip)
 *      FRONTS (N,P,M,C) OUT (also write the markdown report to this file)
 *      PROFILE (a directory; `--profile` = /tmp/m2-core-profile): the core runs
 *      under `node --cpu-prof` and the report lists its top self-time functions.
 *
 * The report is markdown on stdout. Every process started here is stopped in
 * a finally block (and dies with the bench through setpriv --pdeathsig).
 */
import { envNum, median } from './lib/stats.js';
import { ratio } from './lib/report.js';
import { bundleCore, CORE_RUN } from './lib/bundle-core.js';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { startMongrel2, type Mongrel2Peer } from '../test/support/mongrel2.js';
import { freePorts } from '../test/support/process.js';
import { spawnReady, type BenchChild } from './lib/child.js';
import { memOf, socketInodes, ticksOf, CLK_TCK } from './lib/proc.js';
import { userSys } from './lib/cpu-split.js';
import { topSelf, type ProfileSummary } from './lib/profile-top.js';
import { parseWrk, runWrk, runningWrk, type WrkResult } from './lib/wrk.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const PYTHON = '/usr/bin/python3';
const NODE_TS = ['--import', 'tsx'];

const DUR = envNum('DUR', 10);
const WARM = envNum('WARM', 3);
const CONNS = envNum('CONNS', 50);
const RUNS = envNum('RUNS', 3);
const THREADS = envNum('THREADS', 2);
const IDLE = envNum('IDLE', 10_000);
/** Extra node flags for the core (as in core-static-proxy.ts). */
const CORE_FLAGS = (process.env.CORE_FLAGS ?? '').split(' ').filter(Boolean);
const FRONTS = (process.env.FRONTS ?? 'N,P,M,C').split(',').map((s) => s.trim()).filter(Boolean);
const PROFILE = process.env.PROFILE ? path.resolve(process.env.PROFILE) : process.argv.includes('--profile') ? '/tmp/m2-core-profile' : undefined;
const BODY = 'Hello World\n';
/** The core must keep idle keep-alive connections open during the idle test (src/server/settings.ts). */
const CORE_SETTINGS = ['limits.min_ping=0', 'limits.header_timeout=0'];

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
const fmt = (n: number | null | undefined, d = 0): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
const mib = (kib: number | undefined): string => (kib === undefined ? '-' : (kib / 1024).toFixed(1));
const loadavg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');


/** One raw GET: the whole response (so its bytes can be compared across fronts). */
function rawGet(port: number, reqPath: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`GET ${reqPath} on ${port}: no answer in 5 s`)), 5000);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(got);
    };
    sock.on('connect', () => sock.write(`GET ${reqPath} HTTP/1.1\r\nHost: localhost\r\n\r\n`));
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.subarray(got.indexOf('\r\n\r\n') + 4).toString('latin1') === BODY && got.indexOf('\r\n\r\n') > 0) done();
    });
    sock.on('error', (e) => done(e));
  });
}

// ---------------------------------------------------------------------------
// fronts

interface Front {
  key: string;
  label: string;
  port: number;
  /** The server process (node:http, mongrel2, our core). */
  serverPid: number;
  /** The handler process, if any. */
  handlerPid?: number;
  response?: Buffer;
  runs: Array<{ wrk: WrkResult; serverTicks: number; serverSys: number; handlerTicks: number; load: string }>;
}

interface Started {
  children: BenchChild[];
  peers: Mongrel2Peer[];
  fronts: Front[];
  home: string;
}

async function startFronts(st: Started): Promise<void> {
  const logFile = (n: string): string => path.join(st.home, `${n}.log`);
  const child = async (name: string, cmd: string, args: string[]): Promise<BenchChild> => {
    const c = await spawnReady(name, cmd, args, { cwd: ROOT, logFile: logFile(name) });
    st.children.push(c);
    return c;
  };
  const tsHandler = (name: string, send: string, recv: string): Promise<BenchChild> => child(name, process.execPath, [...NODE_TS, 'bench/handlers/hello.ts', send, recv]);

  if (FRONTS.includes('N')) {
    const n = await child('node-http', process.execPath, [...NODE_TS, 'bench/servers/node-http.ts']);
    st.fronts.push({ key: 'N', label: 'bare node:http (ceiling)', port: Number(n.ready.split(' ')[1]), serverPid: n.pid, runs: [] });
  }
  if (FRONTS.includes('P')) {
    const peer = await startMongrel2();
    st.peers.push(peer);
    const h = await child('hello-py', PYTHON, ['bench/handlers/hello.py', peer.handler.sendSpec, peer.handler.recvSpec]);
    st.fronts.push({ key: 'P', label: 'real Mongrel2 + pyzmq handler', port: peer.httpPort, serverPid: peer.pid, handlerPid: h.pid, runs: [] });
  }
  if (FRONTS.includes('M')) {
    const peer = await startMongrel2();
    st.peers.push(peer);
    const h = await tsHandler('hello-ts-m2', peer.handler.sendSpec, peer.handler.recvSpec);
    st.fronts.push({ key: 'M', label: 'real Mongrel2 + TS handler', port: peer.httpPort, serverPid: peer.pid, handlerPid: h.pid, runs: [] });
  }
  if (FRONTS.includes('C')) {
    const [send, recv] = (await freePorts(2)) as [number, number];
    const sendSpec = `tcp://127.0.0.1:${send}`;
    const recvSpec = `tcp://127.0.0.1:${recv}`;
    const home = path.join(st.home, 'core');
    await fsp.mkdir(home);
    const prof = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE, '--cpu-prof-interval', '200'] : [];
    if (PROFILE) await fsp.mkdir(PROFILE, { recursive: true });
    const coreEntry = CORE_RUN === 'tsx' ? [...NODE_TS, 'bench/servers/core.ts'] : [bundleCore(ROOT)];
    const core = await child('core', process.execPath, [...CORE_FLAGS, ...prof, ...coreEntry, '--home', home, '--send-spec', sendSpec, '--recv-spec', recvSpec, ...CORE_SETTINGS.flatMap((s) => ['--set', s])]);
    const h = await tsHandler('hello-ts-core', sendSpec, recvSpec);
    st.fronts.push({ key: 'C', label: 'OUR core + TS handler', port: Number(core.ready.split(' ')[1]), serverPid: core.pid, handlerPid: h.pid, runs: [] });
  }
}

async function measure(front: Front, secs: number, record: boolean): Promise<void> {
  const url = `http://127.0.0.1:${front.port}/handler`;
  const pids = { s: [front.serverPid], h: front.handlerPid ? [front.handlerPid] : [] };
  const t0 = { s: ticksOf(pids.s), h: ticksOf(pids.h), sys: userSys(front.serverPid).sys };
  const load = loadavg();
  const out = await runWrk([`-t${THREADS}`, `-c${CONNS}`, `-d${secs}s`, '--latency', url], (secs + 30) * 1000);
  if (!record) return;
  const wrk = parseWrk(out);
  front.runs.push({ wrk, serverTicks: ticksOf(pids.s) - t0.s, serverSys: userSys(front.serverPid).sys - t0.sys, handlerTicks: ticksOf(pids.h) - t0.h, load });
  log(`${front.key}: ${fmt(wrk.rps)} req/s p50 ${fmt(wrk.p50Ms, 2)} ms p99 ${fmt(wrk.p99Ms, 2)} ms non2xx ${wrk.non2xx} errors ${wrk.socketErrors}`);
}

// ---------------------------------------------------------------------------
// idle connections

interface IdleResult {
  key: string;
  rssBefore?: number;
  rssWith?: number;
  hwm?: number;
  rssAfter?: number;
  ready?: { open: number; answered: number; failed: number; errors: Record<string, number>; ms: number };
  stillOpen?: number;
  serverSockets?: number;
}

async function idleTest(front: Front, st: Started): Promise<IdleResult> {
  const r: IdleResult = { key: front.key, rssBefore: memOf(front.serverPid)?.rssKiB };
  const sockBefore = socketInodes(front.serverPid).size;
  const c = await spawnReady(`idle-${front.key}`, process.execPath, [...NODE_TS, 'bench/lib/idle-clients.ts', String(front.port), String(IDLE), '/handler', '100'], {
    cwd: ROOT,
    logFile: path.join(st.home, `idle-${front.key}.log`),
    timeoutMs: 600_000,
    stdin: true,
  });
  try {
    r.ready = JSON.parse(c.ready.slice('ready '.length)) as IdleResult['ready'];
    await sleep(3000); // let the server settle (GC, buffers) with everything idle
    const mem = memOf(front.serverPid);
    r.rssWith = mem?.rssKiB;
    r.hwm = mem?.hwmKiB;
    r.serverSockets = socketInodes(front.serverPid).size - sockBefore;
    c.proc.stdin!.write('status\n');
    const deadline = Date.now() + 5000;
    let status: RegExpExecArray | null = null;
    while (!(status = /^status (.*)$/m.exec(c.output())) && Date.now() < deadline) await sleep(20);
    if (status?.[1]) r.stillOpen = (JSON.parse(status[1]) as { open: number }).open;
  } finally {
    await c.stop();
  }
  await sleep(3000);
  r.rssAfter = memOf(front.serverPid)?.rssKiB;
  log(`idle ${front.key}: ${JSON.stringify(r)}`);
  return r;
}

// ---------------------------------------------------------------------------
// report

function report(st: Started, idle: IdleResult[], hot: ProfileSummary | undefined, meta: { versions: string; loadStart: string; loadEnd: string; started: string; secs: number }): string {
  const L: string[] = [];
  const byKey = new Map(st.fronts.map((f) => [f.key, f]));
  const med = (f: Front | undefined, pick: (w: WrkResult) => number | null): number | null => (f ? median(f.runs.map((r) => pick(r.wrk))) : null);
  const N = byKey.get('N');
  L.push(`Date: ${meta.started} UTC, ${meta.secs} s. \`DUR=${DUR} CONNS=${CONNS} RUNS=${RUNS} THREADS=${THREADS} WARM=${WARM} IDLE=${IDLE}${CORE_FLAGS.length ? ` CORE_FLAGS='${CORE_FLAGS.join(' ')}'` : ''}${PROFILE ? ` PROFILE=${PROFILE}` : ''} node --import tsx bench/core-handler.ts\``);
  L.push(`Versions: ${meta.versions}.`);
  L.push(`Machine: nproc = ${os.cpus().length} (shared by wrk, servers and handlers; nothing pinned), load average at start ${meta.loadStart}, at end ${meta.loadEnd}.`);
  L.push('');
  L.push(`| front | median req/s | median p50 ms | median p99 ms | req/s vs node:http | server CPU µs/req (of it kernel) | handler CPU µs/req | response bytes | non-2xx / socket errors |`);
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const f of st.fronts) {
    const reqs = f.runs.reduce((a, r) => a + (r.wrk.requests ?? 0), 0);
    const us = (t: number): string => (reqs ? fmt((t / CLK_TCK) * 1e6 / reqs) : '-');
    const rps = med(f, (w) => w.rps);
    L.push(
      `| ${f.key}: ${f.label} | ${fmt(rps)} | ${fmt(med(f, (w) => w.p50Ms), 2)} | ${fmt(med(f, (w) => w.p99Ms), 2)} | ${fmt(ratio(rps, med(N, (w) => w.rps)), 2)}× | ${us(f.runs.reduce((a, r) => a + r.serverTicks, 0))} (${us(f.runs.reduce((a, r) => a + r.serverSys, 0))}) | ${f.handlerPid ? us(f.runs.reduce((a, r) => a + r.handlerTicks, 0)) : '-'} | ${f.response?.length ?? '-'} | ${f.runs.map((r) => `${r.wrk.non2xx}/${r.wrk.socketErrors}`).join(', ')} |`,
    );
  }
  const C = byKey.get('C');
  const M = byKey.get('M');
  if (C && M) {
    const rr = ratio(med(C, (w) => w.rps), med(M, (w) => w.rps));
    L.push('');
    L.push(`**Ours vs real Mongrel2, same TS handler (C / M):** ${fmt(rr, 2)}× req/s (goal ≥ 1.0×: ${rr !== null && rr >= 1 ? 'met' : '**not met**'}), p50 ${fmt(ratio(med(C, (w) => w.p50Ms), med(M, (w) => w.p50Ms)), 2)}×, p99 ${fmt(ratio(med(C, (w) => w.p99Ms), med(M, (w) => w.p99Ms)), 2)}×.`);
    const perRound = C.runs.map((r, i) => fmt(ratio(r.wrk.rps, M.runs[i]?.wrk.rps ?? null), 2)).join(', ');
    L.push(`Per round C / M req/s: ${perRound}.`);
  }
  L.push('');
  L.push('<details><summary>Every run</summary>\n');
  L.push('| front | round | req/s | p50 ms | p99 ms | max ms | requests | load avg before |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---|');
  for (let i = 0; i < RUNS; i++) {
    for (const f of st.fronts) {
      const r = f.runs[i];
      if (r) L.push(`| ${f.key} | ${i + 1} | ${fmt(r.wrk.rps)} | ${fmt(r.wrk.p50Ms, 2)} | ${fmt(r.wrk.p99Ms, 2)} | ${fmt(r.wrk.maxMs, 2)} | ${r.wrk.requests ?? '-'} | ${r.load} |`);
    }
  }
  L.push('\n</details>');
  if (idle.length) {
    L.push('');
    L.push(`Idle keep-alive connections (${IDLE} requested, opened 100 at a time by a separate node process, each answered once, then idle ≥ 3 s):`);
    L.push('');
    L.push('| server | RSS before MiB | RSS with them MiB | KiB per connection | VmHWM MiB | RSS after close MiB | answered / failed | still open at the end | server sockets added | goal < 300 MB |');
    L.push('|---|---:|---:|---:|---:|---:|---|---:|---:|---|');
    for (const r of idle) {
      const open = r.stillOpen ?? r.ready?.open ?? 0;
      const per = r.rssWith !== undefined && r.rssBefore !== undefined && open ? fmt((r.rssWith - r.rssBefore) / open, 1) : '-';
      const errs = r.ready && Object.keys(r.ready.errors).length ? ` (${Object.entries(r.ready.errors).map(([k, v]) => `${v}× ${k}`).join(', ')})` : '';
      const goal = r.key === 'C' && r.rssWith !== undefined ? (r.rssWith * 1024 < 300e6 ? 'met' : '**not met**') : '-';
      L.push(`| ${r.key}: ${byKey.get(r.key)?.label ?? ''} | ${mib(r.rssBefore)} | ${mib(r.rssWith)} | ${per} | ${mib(r.hwm)} | ${mib(r.rssAfter)} | ${r.ready?.answered ?? '-'} / ${r.ready?.failed ?? '-'}${errs} | ${r.stillOpen ?? '-'} | ${r.serverSockets ?? '-'} | ${goal} |`);
    }
  }
  if (hot) {
    L.push('');
    L.push(`Core CPU profile (${PROFILE}; \`node --cpu-prof --cpu-prof-interval 200\`, main thread, whole run incl. warm-ups${IDLE ? ' and the idle test' : ''}), top self time:`);
    L.push('');
    L.push('| # | function | where (TS source) | self % | self ms |');
    L.push('|---:|---|---|---:|---:|');
    hot.functions.forEach((h, i) => L.push(`| ${i + 1} | \`${h.fn}\` | ${h.where} | ${fmt(h.pct, 1)} | ${fmt(h.selfMs)} |`));
    L.push('');
    L.push('Self time per file:');
    L.push('');
    L.push('| file | self % | self ms |');
    L.push('|---|---:|---:|');
    for (const h of hot.files) L.push(`| ${h.where} | ${fmt(h.pct, 1)} | ${fmt(h.selfMs)} |`);
  }
  L.push('');
  L.push('Response bytes per front (first answer):');
  L.push('');
  for (const f of st.fronts) L.push(`- ${f.key}: \`${JSON.stringify(f.response?.toString('latin1') ?? '')}\``);
  return L.join('\n');
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const st: Started = { children: [], peers: [], fronts: [], home: await fsp.mkdtemp(path.join(os.tmpdir(), 'm2bench-core-')) };
  const started = new Date();
  const loadStart = loadavg();
  let stopping = false;
  const cleanup = async (): Promise<void> => {
    for (const w of runningWrk) w.kill('SIGKILL');
    await Promise.allSettled(st.children.map((c) => c.stop()));
    await Promise.allSettled(st.peers.map((p) => p.stop()));
  };
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const idle: IdleResult[] = [];
  let hot: ProfileSummary | undefined;
  try {
    log(`load average ${loadStart}; logs in ${st.home}`);
    await startFronts(st);
    for (const f of st.fronts) {
      log(`${f.key} ${f.label}: port ${f.port}, server pid ${f.serverPid}${f.handlerPid ? `, handler pid ${f.handlerPid}` : ''}`);
      f.response = await rawGet(f.port, '/handler');
      if (!f.response.toString('latin1').startsWith('HTTP/1.1 200 ')) throw new Error(`${f.key}: expected a 200, got ${JSON.stringify(f.response.toString('latin1'))}`);
    }
    for (const f of st.fronts) await measure(f, WARM, false);
    for (let i = 0; i < RUNS; i++) for (const f of st.fronts) await measure(f, DUR, true);
    if (IDLE > 0) {
      for (const key of ['C', 'M']) {
        const f = st.fronts.find((x) => x.key === key);
        if (f) idle.push(await idleTest(f, st));
      }
    }
  } finally {
    await cleanup();
  }
  if (PROFILE) {
    const core = st.children.find((c) => c.name === 'core');
    const file = core ? path.join(PROFILE, fs.readdirSync(PROFILE).sort().find((n) => n.includes(`.${core.pid}.0.`)) ?? '') : '';
    if (core && fs.existsSync(file) && fs.statSync(file).isFile()) hot = await topSelf(file, 10, ROOT);
    else log(`no CPU profile of the core found in ${PROFILE}`);
  }
  const run = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '?';
    }
  };
  const versions = [
    `node ${process.version}`,
    ...run('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'mongrel2-core', 'wrk']).split('\n'),
    run(PYTHON, ['-c', 'import zmq; print("pyzmq", zmq.__version__, "libzmq", zmq.zmq_version())']),
  ].join('; ');
  const md = report(st, idle, hot, { versions, loadStart, loadEnd: loadavg(), started: started.toISOString().slice(0, 19).replace('T', ' '), secs: Math.round((Date.now() - started.getTime()) / 1000) });
  process.stdout.write(`${md}\n`);
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, `${md}\n`);
  await fsp.rm(st.home, { recursive: true, force: true });
}

await main();
