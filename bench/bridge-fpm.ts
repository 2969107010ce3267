/**
 * Benchmark: Mongrel2 + m2bridge + PHP-FPM against nginx + PHP-FPM, both in
 * front of ONE FPM pool (pm = static, 2 workers, unix socket), in one run.
 *
 *   node --import tsx bench/bridge-fpm.ts
 *
 * Env: DUR (10s) CONNS (50) THREADS (2) RUNS (2) WARM (2s)
 *      VARIANTS (w1,w2,o1: m2bridge --workers 1 --max-connections 2, and
 *                --workers 2 --max-connections 1, behind the real Mongrel2;
 *                o1 = the first behind OUR core, bin/mongrel2.js run the same
 *                way; "w1" for only the first)
 *      FLOW (1: Mongrel2 download.flow_control=1 as the README recommends; 0 = off)
 *      CEILING (1: also measure H = another Mongrel2 + a trivial in-process
 *               handler answering "Hello, World!" without FPM (examples/hello.ts's
 *               code, run inside this bench process): the ceiling for anything
 *               behind Mongrel2 on this machine; 0 = skip)
 *      WRITE (1: write/update bench/RESULTS.md; 0 = print only)
 *      PROFILE (unset; a directory: the bridge processes get bench/lib/cpu-profile.mjs
 *               preloaded through NODE_OPTIONS and write DIR/<variant>/<pid>.cpuprofile
 *               when they stop; open them in Chrome DevTools)
 *
 * Fronts: A = real Mongrel2 (rootRoute) + m2bridge --workers 1, C = another
 * real Mongrel2 + m2bridge --workers 2, B = a private nginx (1 worker), H = the
 * ceiling (see CEILING). Each gets a warm-up (`wrk -t2 -c50 -d2s`), then the
 * measured rounds alternate A, B, C, H, A, B, C, H ... with
 * `wrk -t2 -c50 -d10s --latency URL/hello.php`.
 *
 * Before every phase that uses FPM the bench waits (bounded) until no m2bridge
 * process holds a FastCGI connection (unix socket fds beyond those it had at
 * idle): a kept FastCGI connection pins an FPM worker until the bridge's
 * FastCGI client drops it (idle timeout 30 s; FPM itself does not time it
 * out), which would otherwise stall the next front on the shared pool.
 *
 * Every process started here is stopped by the harness stop() functions in a
 * finally block, also on SIGINT/SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { startMongrel2, type Mongrel2Peer } from '../test/support/mongrel2.js';
import { startPhpFpm, PHP_DOCROOT, type PhpFpm } from '../test/support/php-fpm.js';
import { startNginx, type Nginx } from '../test/support/nginx.js';
import { startBridge, M2BRIDGE_BIN, type BridgeProcess } from '../test/support/m2bridge.js';
import { parseWrk, runWrk, stopWrkOnSignal, type WrkResult } from './lib/wrk.js';
import { checkHello, fmt, get, mean, ratio } from './lib/report.js';
import { Connection } from '../src/handler/index.js';
import { CLK_TCK, commOf, descendants, memOf, ownAndReapedTicks, socketInodes, systemCpu, threadTicks, treeTicks, unixSocketInodes, type Mem } from './lib/proc.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const RESULTS_MD = path.join(ROOT, 'bench', 'RESULTS.md');

const DUR = process.env.DUR ?? '10s';
const CONNS = Number(process.env.CONNS ?? 50);
const THREADS = Number(process.env.THREADS ?? 2);
const RUNS = Number(process.env.RUNS ?? 2);
const WARM = process.env.WARM ?? '2s';
const VARIANTS = (process.env.VARIANTS ?? 'w1,w2,o1').split(',').map((s) => s.trim()).filter(Boolean);
const FLOW = (process.env.FLOW ?? '1') !== '0';
const WRITE = (process.env.WRITE ?? '1') !== '0';
const CEILING = (process.env.CEILING ?? '1') !== '0';
const PROFILE = process.env.PROFILE ? path.resolve(process.env.PROFILE) : undefined;
const SETTLE_MAX_MS = 45_000;
const PAUSE_MS = 1000;

for (const v of VARIANTS) if (v !== 'w1' && v !== 'w2' && v !== 'o1') throw new Error(`VARIANTS: unknown variant ${v} (use w1, w2, o1)`);
/** Our server core as a drop-in for /usr/bin/mongrel2 (same config.sqlite, same arguments). */
const OUR_MONGREL2 = path.join(ROOT, 'bin', 'mongrel2.js');
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 10) throw new Error('RUNS must be 1..10');
if (!/^\d+[sm]?$/.test(DUR) || !/^\d+[sm]?$/.test(WARM)) throw new Error('DUR/WARM look like 10s');

function seconds(d: string): number {
  const n = parseInt(d, 10);
  return d.endsWith('m') ? n * 60 : n;
}

// ---------------------------------------------------------------------------
// small helpers

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).trim();
  } catch {
    return '?';
  }
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

/**
 * sha256 (first 12 hex digits) over the code under test - src/, adapters/, bin/
 * and package.json - plus the newest mtime among them: which version was measured
 * (the bench does not use git).
 */
function codeFingerprint(): { hash: string; files: number; newest: string } {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  for (const d of ['src', 'adapters', 'bin']) {
    if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  }
  files.push(path.join(ROOT, 'package.json'));
  files.sort();
  const h = createHash('sha256');
  let newest = 0;
  for (const f of files) {
    h.update(path.relative(ROOT, f)).update('\0').update(fs.readFileSync(f)).update('\0');
    newest = Math.max(newest, fs.statSync(f).mtimeMs);
  }
  return { hash: h.digest('hex').slice(0, 12), files: files.length, newest: new Date(newest).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') };
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function log(msg: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------
// fronts

interface BridgeFront {
  kind: 'bridge';
  key: string;
  label: string;
  url: string;
  workers: number;
  maxConnections: number;
  peer: Mongrel2Peer;
  bridge: BridgeProcess;
  args: string[];
  /** m2bridge pids (primary + cluster workers) and the socket inodes each had at idle. */
  baseline: Map<number, Set<string>>;
  memIdle: Map<number, Mem>;
  memAfter?: Map<number, Mem>;
}

interface NginxFront {
  kind: 'nginx';
  key: string;
  label: string;
  url: string;
}

interface HelloFront {
  kind: 'hello';
  key: string;
  label: string;
  url: string;
  peer: Mongrel2Peer;
}

type Front = BridgeFront | NginxFront | HelloFront;

interface CpuShare {
  mongrel2: number;
  bridge: number;
  /** the bridge's split: JS main threads, libzmq I/O threads, other threads (V8 helpers, libuv pool) */
  bridgeMain: number;
  bridgeZmq: number;
  bridgeOther: number;
  nginx: number;
  fpm: number;
  /** wrk: CPU of reaped children of this process (only wrk is reaped during a run) */
  wrk: number;
  /** this bench process itself (the in-process hello handler of H; ~0 otherwise) */
  bench: number;
  busy: number;
  total: number;
}

interface Run {
  front: string;
  round: number;
  cmd: string;
  wrk: WrkResult;
  raw: string;
  settleMs: number;
  cpu: CpuShare;
}

function bridgePids(f: BridgeFront): number[] {
  const pid = f.bridge.child.pid;
  if (pid === undefined) return [];
  return [pid, ...descendants(pid)];
}

/** FastCGI (unix) sockets a bridge process holds beyond its idle baseline. */
function extraFcgiSockets(f: BridgeFront): number {
  const unix = unixSocketInodes();
  let n = 0;
  for (const [pid, base] of f.baseline) {
    for (const inode of socketInodes(pid)) if (!base.has(inode) && unix.has(inode)) n++;
  }
  return n;
}

/** Waits (bounded) until no bridge holds a FastCGI connection; returns the ms waited. */
async function settle(bridges: readonly BridgeFront[]): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const open = bridges.reduce((a, f) => a + extraFcgiSockets(f), 0);
    if (open === 0) return Date.now() - t0;
    if (Date.now() - t0 > SETTLE_MAX_MS) {
      log(`warning: ${open} FastCGI connection(s) still open after ${SETTLE_MAX_MS} ms; going on`);
      return Date.now() - t0;
    }
    await sleep(50);
  }
}

async function waitWorkersReady(b: BridgeProcess, workers: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = (b.log().match(/"msg":"worker ready"/g) ?? []).length;
    if (n >= workers) return;
    if (Date.now() > deadline) throw new Error(`m2bridge: only ${n}/${workers} 'worker ready' lines within ${timeoutMs} ms:\n${b.log()}`);
    await sleep(50);
  }
}

function memMap(pids: readonly number[]): Map<number, Mem> {
  const m = new Map<number, Mem>();
  for (const p of pids) {
    const mem = memOf(p);
    if (mem) m.set(p, mem);
  }
  return m;
}

// ---------------------------------------------------------------------------
// log digests

function bridgeLogDigest(text: string): { counts: Record<string, number>; samples: string[] } {
  const counts: Record<string, number> = {};
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let j: { level?: number; msg?: string };
    try {
      j = JSON.parse(line) as { level?: number; msg?: string };
    } catch {
      counts['(non-JSON line)'] = (counts['(non-JSON line)'] ?? 0) + 1;
      if (samples.length < 5) samples.push(line.slice(0, 300));
      continue;
    }
    if ((j.level ?? 0) < 40) continue; // warn and above
    const k = `${j.level === 40 ? 'warn' : j.level === 50 ? 'error' : 'fatal'}: ${j.msg ?? '?'}`;
    counts[k] = (counts[k] ?? 0) + 1;
    if (samples.length < 5) samples.push(line.slice(0, 300));
  }
  return { counts, samples };
}

/**
 * Status code histogram of an access log: nginx's combined format (the field
 * after the quoted request line) or Mongrel2's tnetstring lines
 * (`...,8:HTTP/1.1,3:200#2:13#]`).
 */
function statusHistogram(text: string): Record<string, number> {
  const h: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /" (\d{3}) /.exec(line) ?? /,\d+:HTTP\/\d\.\d,3:(\d{3})#/.exec(line);
    if (m?.[1]) h[m[1]] = (h[m[1]] ?? 0) + 1;
  }
  return h;
}

/**
 * Lines matching `re`, grouped by their text without the leading timestamp
 * (Mongrel2: 'Thu, 26 Nov 2026 00:02:45 GMT ', nginx/FPM: '2026/11/26 00:02:45 ' or
 * '[26-Nov-2026 00:02:45] '): "N× message (first at TIME, last at TIME)".
 */
function grepLines(text: string, re: RegExp, max = 8): { count: number; samples: string[] } {
  const hits = text.split('\n').filter((l) => re.test(l));
  const groups = new Map<string, { n: number; first: string; last: string }>();
  const STAMP = /^(\w{3}, \d+ \w{3} \d{4} ([\d:]+) GMT |\d{4}\/\d\d\/\d\d ([\d:]+) |\[\d+-\w+-\d{4} ([\d:]+)\] )/;
  for (const l of hits) {
    const m = STAMP.exec(l);
    const time = m ? (m[2] ?? m[3] ?? m[4] ?? '') : '';
    const key = (m ? l.slice(m[0].length) : l).slice(0, 240);
    const g = groups.get(key);
    if (g) {
      g.n++;
      g.last = time;
    } else groups.set(key, { n: 1, first: time, last: time });
  }
  const samples = [...groups].slice(0, max).map(([k, g]) => `${g.n}× ${k}${g.first ? (g.n > 1 ? ` (${g.first} … ${g.last})` : ` (${g.first})`) : ''}`);
  return { count: hits.length, samples };
}

// ---------------------------------------------------------------------------
// main

const started: Array<{ name: string; stop: () => Promise<unknown> }> = [];
const interrupted = stopWrkOnSignal(log);

async function stopAll(): Promise<void> {
  // reverse start order: bridges, then their mongrel2, nginx, FPM last
  for (const s of [...started].reverse()) {
    try {
      await s.stop();
    } catch (err) {
      log(`stopping ${s.name} failed: ${(err as Error).message}`);
    }
  }
}

const env = {
  date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
  nproc: sh('nproc', []),
  cpu: /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?',
  memGiB: (os.totalmem() / 2 ** 30).toFixed(0),
  kernel: os.release(),
  node: process.version,
  m2bridge: (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  zeromq: pkgVersion('zeromq'),
  pino: pkgVersion('pino'),
  tsx: pkgVersion('tsx'),
  commander: pkgVersion('commander'),
  mongrel2: sh('dpkg-query', ['-W', '-f=${Version}', 'mongrel2-core']),
  nginx: sh('dpkg-query', ['-W', '-f=${Version}', 'nginx']),
  php: sh('dpkg-query', ['-W', '-f=${Version}', 'php8.2-fpm']),
  wrk: sh('sh', ['-c', 'wrk --version 2>&1 | head -1']).split(' ').slice(0, 2).join(' '),
  loadStart: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
  loadEnd: '',
  code: codeFingerprint(),
  codeAfter: undefined as ReturnType<typeof codeFingerprint> | undefined,
  /** % of all cores busy in the 2 s before anything was started */
  busyBefore: 0,
};

let exitCode = 0;
try {
  log(`nproc ${env.nproc}, ${env.cpu}; node ${env.node}; DUR=${DUR} CONNS=${CONNS} THREADS=${THREADS} RUNS=${RUNS} WARM=${WARM} VARIANTS=${VARIANTS.join(',')} FLOW=${FLOW ? 1 : 0}`);

  // Is the machine quiet? (other jobs on the same 2 cores skew everything)
  const q0 = systemCpu();
  await sleep(2000);
  const q1 = systemCpu();
  env.busyBefore = (100 * (q1.busy - q0.busy)) / Math.max(1, q1.total - q0.total);
  log(`machine busy ${env.busyBefore.toFixed(0)} % in the 2 s before starting${env.busyBefore > 10 ? ' - WARNING: something else is running' : ''}`);

  const fpm: PhpFpm = await startPhpFpm({ workers: 2, listen: 'unix' });
  started.push({ name: 'php-fpm', stop: () => fpm.stop() });
  log(`php-fpm pid ${fpm.pid} on ${fpm.addressText}, workers ${fpm.workerPids().join(' ')}`);

  const nginx: Nginx = await startNginx({ fpm });
  started.push({ name: 'nginx', stop: () => nginx.stop() });
  const fronts: Front[] = [];
  const nginxFront: NginxFront = { kind: 'nginx', key: 'B', label: 'nginx + FPM', url: `${nginx.baseUrl}/hello.php` };
  log(`nginx pid ${nginx.pid} on ${nginx.baseUrl}`);

  const bridges: BridgeFront[] = [];
  for (const v of VARIANTS) {
    const workers = v === 'w2' ? 2 : 1;
    const maxConnections = 2 / workers; // workers × connections = pm.max_children = 2
    const ours = v === 'o1';
    const peer = await startMongrel2({ rootRoute: true, flowControl: FLOW, ...(ours ? { bin: OUR_MONGREL2 } : {}) });
    started.push({ name: `mongrel2 (${v})`, stop: () => peer.stop() });
    const args = [
      '--fcgi', fpm.addressText, '--root', PHP_DOCROOT,
      '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec,
      '--max-connections', String(maxConnections), '--workers', String(workers), '--log-level', 'info',
    ];
    // PROFILE=dir: V8 CPU profiles of the bridge processes (written when they exit), to see where time goes.
    // (--cpu-prof is not allowed in NODE_OPTIONS, so a preload starts the profiler; cluster workers inherit it)
    const saved = { opts: process.env.NODE_OPTIONS, dir: process.env.M2B_CPU_PROFILE_DIR };
    if (PROFILE) {
      const dir = path.join(PROFILE, v);
      fs.mkdirSync(dir, { recursive: true });
      process.env.NODE_OPTIONS = `${saved.opts ?? ''} --import ${path.join(ROOT, 'bench', 'lib', 'cpu-profile.mjs')}`.trim();
      process.env.M2B_CPU_PROFILE_DIR = dir;
    }
    let bridge: BridgeProcess;
    try {
      bridge = await startBridge(args);
    } finally {
      for (const [k, val] of [['NODE_OPTIONS', saved.opts], ['M2B_CPU_PROFILE_DIR', saved.dir]] as const) {
        if (val === undefined) delete process.env[k];
        else process.env[k] = val;
      }
    }
    started.push({ name: `m2bridge (${v})`, stop: () => bridge.stop() });
    await waitWorkersReady(bridge, workers);
    const f: BridgeFront = {
      kind: 'bridge',
      key: v === 'w1' ? 'A' : v === 'w2' ? 'C' : 'O',
      label: `${ours ? 'OUR core' : 'Mongrel2'} + m2bridge --workers ${workers} --max-connections ${maxConnections} + FPM`,
      url: `${peer.baseUrl}/hello.php`,
      workers,
      maxConnections,
      peer,
      bridge,
      args,
      baseline: new Map(),
      memIdle: new Map(),
    };
    const pids = bridgePids(f);
    for (const p of pids) f.baseline.set(p, socketInodes(p));
    f.memIdle = memMap(pids);
    log(`m2bridge ${v}: pids ${pids.map((p) => `${p}(${commOf(p)})`).join(' ')}, mongrel2 pid ${peer.pid} on ${peer.baseUrl}; idle RSS ${[...f.memIdle.values()].map((m) => mib(m.rssKiB)).join(' + ')} MiB`);
    bridges.push(f);
  }
  // H: the ceiling, a trivial handler in this process behind its own Mongrel2 (no FPM)
  let hello: HelloFront | undefined;
  if (CEILING) {
    const peer = await startMongrel2({ rootRoute: true, flowControl: FLOW });
    started.push({ name: 'mongrel2 (H)', stop: () => peer.stop() });
    const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec });
    const loop = (async () => {
      for await (const req of conn) {
        if (req.kind !== 'http') continue;
        void conn.replyHttp(req, 'Hello, World!', { headers: { 'Content-Type': 'text/plain' } });
      }
    })();
    // stopped before its Mongrel2 (started is stopped in reverse order)
    started.push({ name: 'hello handler (H)', stop: async () => { await conn.shutdown(); await loop; } });
    await conn.ready();
    hello = { kind: 'hello', key: 'H', label: 'Mongrel2 + trivial in-process Node handler, no FPM (ceiling, extra)', url: `${peer.baseUrl}/hello.php`, peer };
    log(`hello handler H: mongrel2 pid ${peer.pid} on ${peer.baseUrl}`);
  }
  // order within a round: A (w1), B (nginx), C (w2), O (ours), H (ceiling)
  for (const b of bridges) if (b.key === 'A') fronts.push(b);
  fronts.push(nginxFront);
  for (const b of bridges) if (b.key === 'C') fronts.push(b);
  for (const b of bridges) if (b.key === 'O') fronts.push(b);
  if (hello) fronts.push(hello);
  const mongrel2Pids = [...bridges.map((b) => b.peer.pid), ...(hello ? [hello.peer.pid] : [])];

  // correctness first: 200 + exact body through every front (4× for round-robin workers)
  // (settle after each: a bridge's kept FastCGI connection would pin an FPM worker for the next front)
  for (const f of fronts) {
    await checkHello(f.url, 4);
    await settle(bridges);
  }
  log('every front answers 200 "Hello, World!"');

  // Diagnostic: what a bridge's idle kept FastCGI connections do to another client of the same pool.
  // Two overlapping requests through the first bridge leave up to 2 kept sockets = both FPM workers;
  // then one GET through nginx is timed.
  let pinProbe: { held: number; nginxMs: number; status: number } | undefined;
  const first = bridges[0];
  if (first) {
    await Promise.all([checkHello(first.url, 1), checkHello(first.url, 1)]);
    const held = extraFcgiSockets(first);
    const t0 = performance.now();
    const r = await get(nginxFront.url, 45_000);
    pinProbe = { held, nginxMs: performance.now() - t0, status: r.status };
    log(`pin probe: bridge ${first.key} held ${held} idle FastCGI socket(s); one nginx GET then took ${pinProbe.nginxMs.toFixed(0)} ms (status ${r.status})`);
    await settle(bridges);
  }

  const cpuSnap = (): CpuShare => {
    const sys = systemCpu();
    const split = { main: 0, zmq: 0, other: 0 };
    for (const b of bridges) {
      for (const p of b.baseline.keys()) {
        const t = threadTicks(p);
        split.main += t.main;
        split.zmq += t.zmq;
        split.other += t.other;
      }
    }
    return {
      mongrel2: mongrel2Pids.reduce((a, p) => a + treeTicks(p), 0),
      bridge: bridges.reduce((a, b) => a + (b.bridge.child.pid ? treeTicks(b.bridge.child.pid) : 0), 0),
      bridgeMain: split.main,
      bridgeZmq: split.zmq,
      bridgeOther: split.other,
      nginx: treeTicks(nginx.pid),
      fpm: treeTicks(fpm.pid),
      wrk: ownAndReapedTicks(process.pid).reaped,
      bench: ownAndReapedTicks(process.pid).own,
      busy: sys.busy,
      total: sys.total,
    };
  };
  const diff = (a: CpuShare, b: CpuShare): CpuShare => ({
    mongrel2: b.mongrel2 - a.mongrel2,
    bridge: b.bridge - a.bridge,
    bridgeMain: b.bridgeMain - a.bridgeMain,
    bridgeZmq: b.bridgeZmq - a.bridgeZmq,
    bridgeOther: b.bridgeOther - a.bridgeOther,
    nginx: b.nginx - a.nginx,
    fpm: b.fpm - a.fpm,
    wrk: b.wrk - a.wrk,
    bench: b.bench - a.bench,
    busy: b.busy - a.busy,
    total: b.total - a.total,
  });

  const wrkTimeout = (d: string): number => (seconds(d) + 30) * 1000;
  for (const f of fronts) {
    if (f.kind !== 'hello') await settle(bridges);
    log(`warm-up ${f.key}: wrk -t${THREADS} -c${CONNS} -d${WARM} ${f.url}`);
    const out = await runWrk([`-t${THREADS}`, `-c${CONNS}`, `-d${WARM}`, f.url], wrkTimeout(WARM));
    const w = parseWrk(out);
    log(`  warm-up ${f.key}: ${fmt(w.rps)} req/s, non-2xx ${w.non2xx}, socket errors ${w.socketErrors}`);
    if (interrupted()) throw new Error('interrupted');
  }

  const runs: Run[] = [];
  for (let round = 1; round <= RUNS; round++) {
    for (const f of fronts) {
      if (interrupted()) throw new Error('interrupted');
      const settleMs = f.kind === 'hello' ? 0 : await settle(bridges);
      await sleep(PAUSE_MS);
      const args = [`-t${THREADS}`, `-c${CONNS}`, `-d${DUR}`, '--latency', f.url];
      const cmd = `wrk ${args.join(' ')}`;
      const before = cpuSnap();
      const raw = await runWrk(args, wrkTimeout(DUR));
      const cpu = diff(before, cpuSnap());
      const wrk = parseWrk(raw);
      runs.push({ front: f.key, round, cmd, wrk, raw, settleMs, cpu });
      log(
        `round ${round} ${f.key}: ${fmt(wrk.rps)} req/s, p50 ${fmt(wrk.p50Ms, 2)} ms, p99 ${fmt(wrk.p99Ms, 2)} ms, ` +
          `non-2xx ${wrk.non2xx}, socket errors ${wrk.socketErrors} (settled ${settleMs} ms before)`,
      );
    }
  }

  // after the run: RSS, a last correctness check, logs
  await settle(bridges);
  for (const b of bridges) b.memAfter = memMap([...b.baseline.keys()]);
  for (const f of fronts) {
    await checkHello(f.url, 4);
    await settle(bridges);
  }
  env.loadEnd = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  env.codeAfter = codeFingerprint();
  // stop everything now (stop() is idempotent; the finally block repeats it) so that the
  // log snapshots below are final: Mongrel2 flushes its access log lazily
  await stopAll();

  const digests = {
    bridges: bridges.map((b) => ({ key: b.key, ...bridgeLogDigest(b.bridge.log()) })),
    mongrel2: [...bridges, ...(hello ? [hello] : [])].map((b) => ({
      key: b.key,
      errors: grepLines(b.peer.errorLog(), /\[(ERROR|WARN)\]/),
      access: statusHistogram(b.peer.accessLog()),
    })),
    nginx: { errors: grepLines(nginx.errorLog(), /\[(error|warn|crit|alert|emerg)\]/), access: statusHistogram(nginx.accessLog()) },
    fpm: grepLines(fpm.errorLog(), /(WARNING|ERROR|NOTICE: .*(child|exited))/),
  };

  // ---- summary
  const byFront = (key: string): Run[] => runs.filter((r) => r.front === key);
  const nginxRuns = byFront('B');
  const nRps = mean(nginxRuns.map((r) => r.wrk.rps));
  const nP99 = mean(nginxRuns.map((r) => r.wrk.p99Ms));
  const anyBad = runs.some((r) => r.wrk.non2xx > 0 || r.wrk.socketErrors > 0 || r.wrk.rps === null);
  if (anyBad) exitCode = 1;

  const lines: string[] = [];
  const table = (): string[] => {
    const t: string[] = [];
    t.push('| front | round | req/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors | CPU s: mongrel2 / m2bridge / nginx / FPM / wrk / bench process / whole machine |');
    t.push('|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
    for (const r of runs) {
      const c = r.cpu;
      const s = (ticks: number): string => (ticks / CLK_TCK).toFixed(1);
      const e = r.wrk.socketErrorDetail;
      t.push(
        `| ${r.front} | ${r.round} | ${fmt(r.wrk.rps)} | ${fmt(r.wrk.p50Ms, 2)} | ${fmt(r.wrk.p99Ms, 2)} | ${fmt(r.wrk.maxMs, 2)} | ${r.wrk.requests ?? '-'} | ${r.wrk.non2xx} | ` +
          `${r.wrk.socketErrors}${r.wrk.socketErrors ? ` (c${e.connect}/r${e.read}/w${e.write}/t${e.timeout})` : ''} | ` +
          `${s(c.mongrel2)} / ${s(c.bridge)} / ${s(c.nginx)} / ${s(c.fpm)} / ${s(c.wrk)} / ${s(c.bench)} / ${s(c.busy)} |`,
      );
    }
    return t;
  };
  const ratios: Array<{ key: string; label: string; rps: number | null; p99: number | null; rRps: number | null; rP99: number | null; met: boolean }> = [];
  for (const b of bridges) {
    const rr = byFront(b.key);
    const rps = mean(rr.map((r) => r.wrk.rps));
    const p99 = mean(rr.map((r) => r.wrk.p99Ms));
    const rRps = ratio(rps, nRps);
    const rP99 = ratio(p99, nP99);
    ratios.push({ key: b.key, label: b.label, rps, p99, rRps, rP99, met: rRps !== null && rP99 !== null && rRps >= 1.0 && rP99 <= 1.2 });
  }
  const ceiling = hello
    ? (() => {
        const rr = byFront('H');
        const rps = mean(rr.map((r) => r.wrk.rps));
        const p99 = mean(rr.map((r) => r.wrk.p99Ms));
        return { rps, p99, rRps: ratio(rps, nRps), rP99: ratio(p99, nP99) };
      })()
    : undefined;

  // CPU per request (ms of CPU time per request, averaged over the runs of a front)
  const cpuPerReq = (key: string): string => {
    const rr = byFront(key);
    const req = rr.reduce((a, r) => a + (r.wrk.requests ?? 0), 0);
    if (!req) return '-';
    const sum = (pick: (c: CpuShare) => number): number => rr.reduce((a, r) => a + pick(r.cpu), 0);
    const us = (ticks: number): string => ((ticks / CLK_TCK / req) * 1e6).toFixed(0);
    const known = sum((c) => c.mongrel2 + c.bridge + c.nginx + c.fpm + c.wrk + c.bench);
    const busy = sum((c) => c.busy);
    const util = (100 * busy) / Math.max(1, sum((c) => c.total));
    const split = key === 'A' || key === 'C' || key === 'O' ? ` (${us(sum((c) => c.bridgeMain))} / ${us(sum((c) => c.bridgeZmq))} / ${us(sum((c) => c.bridgeOther))})` : '';
    return `| ${key} | ${us(sum((c) => c.mongrel2))} | ${us(sum((c) => c.bridge))}${split} | ${us(sum((c) => c.nginx))} | ${us(sum((c) => c.fpm))} | ${us(sum((c) => c.wrk))} | ${us(sum((c) => c.bench))} | ${us(busy - known)} | ${us(busy)} | ${util.toFixed(0)} % |`;
  };

  lines.push(`Date: ${env.date}. Run by \`node --import tsx bench/bridge-fpm.ts\` (DUR=${DUR} CONNS=${CONNS} THREADS=${THREADS} RUNS=${RUNS} WARM=${WARM} VARIANTS=${VARIANTS.join(',')} FLOW=${FLOW ? 1 : 0}).`);
  lines.push('');
  lines.push('**Goal (issue #5):** Mongrel2 + m2bridge + FPM vs nginx + FPM: goal ≥ 1.0× req/s with p99 ≤ 1.2×.');
  lines.push('');
  lines.push('| front | mean req/s | mean p99 ms | req/s ratio vs nginx | p99 ratio vs nginx | goal (≥ 1.0× req/s, p99 ≤ 1.2×) |');
  lines.push('|---|---:|---:|---:|---:|---|');
  lines.push(`| B: nginx + FPM (reference) | ${fmt(nRps)} | ${fmt(nP99, 2)} | 1.00 | 1.00 | - |`);
  for (const r of ratios) {
    lines.push(`| ${r.key}: ${r.label} | ${fmt(r.rps)} | ${fmt(r.p99, 2)} | ${fmt(r.rRps, 2)} | ${fmt(r.rP99, 2)} | ${r.met ? '**met**' : '**not met**'} |`);
  }
  if (ceiling && hello) {
    lines.push(`| ${hello.key}: ${hello.label} | ${fmt(ceiling.rps)} | ${fmt(ceiling.p99, 2)} | ${fmt(ceiling.rRps, 2)} | ${fmt(ceiling.rP99, 2)} | (not a candidate: no PHP) |`);
  }
  lines.push('');
  lines.push(
    anyBad
      ? '**Some runs had non-2xx responses or socket errors: see below.**'
      : `Every measured response was a 2xx (wrk non-2xx = 0 and socket errors = 0 in all ${runs.length} runs).`,
  );
  lines.push('');
  lines.push('### Machine');
  lines.push('');
  lines.push(`- \`nproc\` = ${env.nproc}; CPU model from /proc/cpuinfo: \`${env.cpu}\`; ${env.memGiB} GiB RAM; kernel ${env.kernel}.`);
  lines.push(
    `- The ${env.nproc} cores are shared by everything: wrk (${THREADS} threads), Mongrel2, m2bridge, nginx and the 2 FPM workers all run on them, so every front competes with its own load generator.`,
  );
  lines.push(`- loadavg at start: \`${env.loadStart}\`; at end: \`${env.loadEnd}\`. CPU busy in the 2 s before the bench started anything: ${env.busyBefore.toFixed(0)} %.`);
  lines.push(
    `- Versions: Node ${env.node}; m2bridge ${env.m2bridge} (zeromq ${env.zeromq}, pino ${env.pino}, tsx ${env.tsx}, commander ${env.commander}); ` +
      `mongrel2-core ${env.mongrel2}; nginx ${env.nginx}; php8.2-fpm ${env.php}; ${env.wrk}.`,
  );
  lines.push(
    `- Code measured: sha256 \`${env.code.hash}\` over the ${env.code.files} files of src/, adapters/, bin/ and package.json (newest mtime ${env.code.newest})` +
      (env.codeAfter && env.codeAfter.hash !== env.code.hash
        ? `; **the tree changed during the run** (now \`${env.codeAfter.hash}\`, newest ${env.codeAfter.newest}), the running bridges kept the code they had loaded at start.`
        : '; unchanged during the run.'),
  );
  lines.push('');
  lines.push('### Setup and exact commands');
  lines.push('');
  lines.push(
    `- One PHP-FPM pool for all fronts: \`startPhpFpm({ workers: 2, listen: 'unix' })\` (test/support/php-fpm.ts): ` +
      `\`php-fpm8.2 -F -c HOME/php.ini -y HOME/php-fpm.conf\`, pm = static, pm.max_children = 2, \`listen = ${fpm.addressText}\`, no opcache (Debian's conf.d is not loaded), output_buffering = 0.`,
  );
  lines.push(
    `- B: \`startNginx({ fpm })\` (test/support/nginx.ts): nginx, \`worker_processes 1\`, access log on, the textbook PHP location, \`fastcgi_pass ${fpm.addressText}\` (no fastcgi_keep_conn: one FPM connection per request).`,
  );
  for (const b of bridges) {
    lines.push(
      `- ${b.key}: \`startMongrel2({ rootRoute: true, flowControl: ${FLOW}${b.key === 'O' ? ", bin: 'bin/mongrel2.js'" : ''} })\` (test/support/mongrel2.ts): ${b.key === 'O' ? 'OUR core, `bin/mongrel2.js config.sqlite UUID` (compiled dist/)' : 'the real `mongrel2 config.sqlite UUID`'} from test/mongrel2/interop.conf.in, '/' routed to the JSON handler, zeromq.threads 1, access log on; then`,
    );
    lines.push(`  \`node ${path.relative(ROOT, M2BRIDGE_BIN)} ${b.args.join(' ')}\``);
  }
  if (hello) {
    lines.push(
      `- H (extra, the ceiling): a third \`startMongrel2({ rootRoute: true, flowControl: ${FLOW} })\` and, inside the bench process, the loop of examples/hello.ts ` +
        '(`Connection` from src/handler, `replyHttp(req, \'Hello, World!\')` for every request): Mongrel2 + 0MQ + one Node handler, no FastCGI, no PHP. ' +
        'Nothing behind Mongrel2 can be faster than this on the same machine.',
    );
  }
  lines.push(
    `- Each front: warm-up \`wrk -t${THREADS} -c${CONNS} -d${WARM} URL\` (not recorded), then ${RUNS} measured rounds in the order ${fronts.map((f) => f.key).join(', ')}, ` +
      `each \`wrk -t${THREADS} -c${CONNS} -d${DUR} --latency URL\` with URL = \`http://127.0.0.1:PORT/hello.php\` (body \`Hello, World!\`).`,
  );
  lines.push(
    '- Before every phase the bench waits (up to 45 s) until no m2bridge process holds a FastCGI socket, then pauses 1 s: an idle kept connection pins an FPM worker until the bridge drops it ' +
      '(the FastCGI client\'s idle timeout, 30 s by default, no CLI flag), and the pool is shared. Those waits are listed below the raw table. H uses no FPM and is not waited for.',
  );
  if (pinProbe) {
    lines.push(
      `- Shared-pool probe (before the warm-ups): two overlapping GETs through ${bridges[0]?.key} left it holding ${pinProbe.held} idle kept FastCGI socket(s); ` +
        `a single GET through nginx right after took **${pinProbe.nginxMs.toFixed(0)} ms** (status ${pinProbe.status}).`,
    );
  }
  lines.push('');
  lines.push('### Raw numbers per run');
  lines.push('');
  lines.push(...table());
  lines.push('');
  lines.push(`Settle waits before each run (ms): ${runs.map((r) => `${r.front}${r.round} ${r.settleMs}`).join(', ')}.`);
  lines.push('');
  lines.push('Per-round ratios vs the nginx run of the same round (req/s ratio, p99 ratio):');
  lines.push('');
  for (const b of bridges) {
    const parts: string[] = [];
    for (let round = 1; round <= RUNS; round++) {
      const a = runs.find((r) => r.front === b.key && r.round === round);
      const n = runs.find((r) => r.front === 'B' && r.round === round);
      parts.push(`round ${round}: ${fmt(ratio(a?.wrk.rps ?? null, n?.wrk.rps ?? null), 2)}× req/s, ${fmt(ratio(a?.wrk.p99Ms ?? null, n?.wrk.p99Ms ?? null), 2)}× p99`);
    }
    lines.push(`- ${b.key}: ${parts.join('; ')}`);
  }
  lines.push('');
  lines.push('### Where the CPU goes');
  lines.push('');
  lines.push(
    'CPU time (utime + stime from /proc/PID/stat, whole process trees) per request, in µs, summed over the measured runs of each front. ' +
      '"wrk" is exact (the bench\'s reaped-children time, cutime + cstime, grows by each wrk run); "bench process" is this script, which is the handler for H and idle otherwise; ' +
      '"unattributed" = all busy CPU on the machine (/proc/stat) minus the listed processes: kernel work not charged to a process, anything else running on the machine, and tick rounding (hence small negative values).',
  );
  lines.push('');
  lines.push('| front | mongrel2 | m2bridge (JS main thread / libzmq I/O threads / other threads) | nginx | FPM (master + 2 workers) | wrk | bench process | unattributed | all | machine busy |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const f of fronts) lines.push(cpuPerReq(f.key));
  lines.push('');
  lines.push('### m2bridge memory (VmRSS from /proc/PID/status)');
  lines.push('');
  lines.push('| front | process | idle RSS (after start, before any request) MiB | RSS after the run MiB | peak (VmHWM) MiB |');
  lines.push('|---|---|---:|---:|---:|');
  for (const b of bridges) {
    const pids = [...b.baseline.keys()];
    let idleSum = 0;
    let afterSum = 0;
    for (const [i, p] of pids.entries()) {
      const idle = b.memIdle.get(p);
      const after = b.memAfter?.get(p);
      idleSum += idle?.rssKiB ?? 0;
      afterSum += after?.rssKiB ?? 0;
      const role = i === 0 ? (b.workers > 1 ? 'primary' : 'bridge') : `${commOf(p) || 'child'} (worker ${i})`;
      lines.push(`| ${b.key} | ${p} ${role} | ${idle ? mib(idle.rssKiB) : '-'} | ${after ? mib(after.rssKiB) : '-'} | ${after ? mib(after.hwmKiB) : '-'} |`);
    }
    if (pids.length > 1) lines.push(`| ${b.key} | total | ${mib(idleSum)} | ${mib(afterSum)} | |`);
  }
  lines.push('');
  lines.push('### Logs and response checks');
  lines.push('');
  lines.push('Before the warm-ups and after the last run, 4 GETs through each front returned 200 with the exact body `Hello, World!`.');
  lines.push('');
  for (const d of digests.bridges) {
    const c = Object.entries(d.counts);
    lines.push(`- m2bridge ${d.key} log, warn and above: ${c.length ? c.map(([k, v]) => `${v}× "${k}"`).join(', ') : 'none'}.`);
    for (const s of d.samples) lines.push(`  - \`${s.replace(/`/g, "'")}\``);
  }
  for (const d of digests.mongrel2) {
    lines.push(`- mongrel2 ${d.key} access log status codes (warm-ups, checks and runs): ${JSON.stringify(d.access)}; [ERROR]/[WARN] lines in error.log: ${d.errors.count}.`);
    for (const s of d.errors.samples) lines.push(`  - \`${s.replace(/`/g, "'")}\``);
  }
  lines.push(`- nginx access log status codes: ${JSON.stringify(digests.nginx.access)}; error.log warn and above: ${digests.nginx.errors.count}.`);
  for (const s of digests.nginx.errors.samples) lines.push(`  - \`${s.replace(/`/g, "'")}\``);
  lines.push(`- php-fpm log warnings/errors: ${digests.fpm.count}.`);
  for (const s of digests.fpm.samples) lines.push(`  - \`${s.replace(/`/g, "'")}\``);
  lines.push('');
  lines.push('<details><summary>Raw wrk output of every measured run</summary>');
  lines.push('');
  for (const r of runs) {
    lines.push('```');
    lines.push(`# ${r.front} round ${r.round}: ${r.cmd}`);
    lines.push(r.raw.trimEnd());
    lines.push('```');
  }
  lines.push('');
  lines.push('</details>');

  const section = lines.join('\n');
  process.stdout.write('\n' + ['| front | round | req/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors | CPU s |', ...table().slice(1)].join('\n') + '\n\n');
  process.stdout.write(lines.slice(0, lines.indexOf('### Machine')).join('\n') + '\n');
  for (const f of fronts) process.stdout.write(`cpu µs/request ${cpuPerReq(f.key)}\n`);
  for (const b of bridges) {
    process.stdout.write(
      `m2bridge ${b.key} RSS idle ${[...b.memIdle.values()].map((m) => mib(m.rssKiB)).join(' + ')} MiB, after ${[...(b.memAfter?.values() ?? [])].map((m) => `${mib(m.rssKiB)} (peak ${mib(m.hwmKiB)})`).join(' + ')} MiB\n`,
    );
  }

  const logsAt = lines.indexOf('### Logs and response checks');
  const rawAt = lines.indexOf('<details><summary>Raw wrk output of every measured run</summary>');
  if (logsAt >= 0 && rawAt > logsAt) process.stdout.write(lines.slice(logsAt, rawAt).join('\n') + '\n');
  if (pinProbe) process.stdout.write(`pin probe: ${JSON.stringify(pinProbe)}\n`);

  if (WRITE) {
    writeResults(section);
    log(`wrote ${path.relative(ROOT, RESULTS_MD)}`);
  }
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  // context for whoever reads this: the tails of the logs
  for (const s of started) process.stderr.write(`(started: ${s.name})\n`);
} finally {
  await stopAll();
  log('all processes stopped');
}
process.exit(exitCode);

// ---------------------------------------------------------------------------

/**
 * Replaces the generated section of bench/RESULTS.md (between the markers),
 * keeping everything else - hand-written notes survive re-runs.
 */
function writeResults(section: string): void {
  const BEGIN = '<!-- BEGIN bridge-fpm: generated by bench/bridge-fpm.ts, overwritten on every run -->';
  const END = '<!-- END bridge-fpm -->';
  const block = `${BEGIN}\n${section}\n${END}`;
  let text: string;
  try {
    text = fs.readFileSync(RESULTS_MD, 'utf8');
  } catch {
    text = '';
  }
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  if (i >= 0 && j > i) {
    text = text.slice(0, i) + block + text.slice(j + END.length);
  } else if (text) {
    text = `${text.trimEnd()}\n\n## Mongrel2 + m2bridge + FPM vs nginx + FPM\n\n${block}\n`;
  } else {
    text = `# Benchmark results\n\n## Mongrel2 + m2bridge + FPM vs nginx + FPM (\`bench/bridge-fpm.ts\`)\n\n${block}\n`;
  }
  fs.writeFileSync(RESULTS_MD, text);
}
