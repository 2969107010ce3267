/**
 * Benchmark (issue 4, item 11): OUR server core against the real Mongrel2
 * (Debian 1.12.2) on the same config rows, in one run on loopback:
 *
 *   1k     a Dir route serving a 1 KiB file    (wrk GET /static/1k.txt)
 *   1m     the same Dir route, a 1 MiB file     (wrk GET /static/1m.txt)
 *   proxy  a Proxy route to ONE node:http hello process both servers share
 *          (bench/servers/node-http.ts; wrk GET /proxy/hello)
 *   upload a 1 GiB Content-Length POST to a handler route with
 *          upload.temp_store set, streamed by this process without holding
 *          it (bench/lib/upload-client.ts); the handler
 *          (bench/lib/upload-handler.ts, our TS Connection) answers the
 *          upload-done message and deletes the file. The server's VmRSS is
 *          sampled every 50 ms and VmHWM read at the end; each server gets
 *          a fresh process for this, so its peak is the upload's.
 *
 * Both servers run bench/mongrel2-static-proxy.conf.in, each from its own
 * folder (the chroot) with the config.sqlite Debian's m2sh loaded there:
 * R = /usr/bin/mongrel2, C = bench/servers/core.ts --db (src/server via
 * runServer). Each is its own process; nothing is pinned. For each wrk case:
 * a warm-up per front, then RUNS rounds of `wrk -tTHREADS -cCONNS -dDUR
 * --latency`, interleaved R, C, R, C, ...; medians and C/R ratios are
 * reported with the server's CPU µs per request (user + kernel, from
 * /proc/PID/stat) and, for proxy, the backend's.
 *
 *   node --import tsx bench/core-static-proxy.ts [--profile]
 *
 * Env: DUR (10 s) CONNS (50) RUNS (3) THREADS (2) WARM (3 s)
 *      FRONTS (R,C) CASES (1k,1m,proxy,upload) UPLOAD_MB (1024) CACHE_TTL (0: the
 *      Dir row's cache_ttl, m2sh's default) CORE_FLAGS (extra node flags for the core)
 *      CORE_RUN (bundled: the core compiled into one bundle, as the bins run
 *      it; tsx: the sources through tsx, and the upload also on the bundle)
 *      KEEP_LOGS (1: keep the children's logs)
 *      PROFILE (a directory; `--profile` = /tmp/m2-static-profile): the
 *      wrk-phase core runs under `node --cpu-prof` and the report lists its
 *      top self-time functions. OUT (also write the report to this file).
 *
 * A case the core cannot serve yet (its first answer is not the expected
 * one) is reported as such and skipped; the rest still run. Every process
 * started here is stopped in a finally block (and dies with the bench
 * through setpriv --pdeathsig).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { bundleCore, CORE_RUN } from './lib/bundle-core.js';
import { spawnReady, type BenchChild } from './lib/child.js';
import { userSys } from './lib/cpu-split.js';
import { prepareSite, startRealMongrel2, type Site } from './lib/m2-site.js';
import { CLK_TCK, threadTicks, ticksOf } from './lib/proc.js';
import { profileTables } from './lib/profile-table.js';
import { topSelf, type ProfileSummary } from './lib/profile-top.js';
import { sampleRss, type RssPeak } from './lib/rss-sampler.js';
import { fmt, ratio } from './lib/report.js';
import { envNum, median } from './lib/stats.js';
import { streamUpload, type UploadResult } from './lib/upload-client.js';
import { parseWrk, runWrk, runningWrk, type WrkResult } from './lib/wrk.js';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const TEMPLATE = path.join(ROOT, 'bench', 'mongrel2-static-proxy.conf.in');
const NODE_TS = ['--import', 'tsx'];

const DUR = envNum('DUR', 10);
const WARM = envNum('WARM', 3);
const CONNS = envNum('CONNS', 50);
const RUNS = envNum('RUNS', 3);
const THREADS = envNum('THREADS', 2);
const UPLOAD_MB = envNum('UPLOAD_MB', 1024);
/** The Dir row's cache_ttl (m2sh's default is 0). */
const CACHE_TTL = envNum('CACHE_TTL', 0);
/** Extra node flags for the core (e.g. --max-semi-space-size=1), space-separated. */
const CORE_FLAGS = (process.env.CORE_FLAGS ?? '').split(' ').filter(Boolean);
const list = (name: string, def: string): string[] => (process.env[name] ?? def).split(',').map((s) => s.trim()).filter(Boolean);
const FRONTS = list('FRONTS', 'R,C');
const CASES = list('CASES', '1k,1m,proxy,upload');
const PROFILE = process.env.PROFILE ? path.resolve(process.env.PROFILE) : process.argv.includes('--profile') ? '/tmp/m2-static-profile' : undefined;
/** Peak RSS goal for the core during the upload (issue 4). */
const UPLOAD_RSS_GOAL = 100e6;

/** Deterministic, non-repeating-looking file bodies (no compression anywhere, but no zero pages either). */
function fileBody(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = 33 + ((i * 7 + (i >> 8)) % 90);
  return b;
}
const BACKEND_BODY = Buffer.from('Hello World\n');

interface Case {
  key: string;
  label: string;
  path: string;
  body: Buffer;
}
const WRK_CASES: Case[] = [
  { key: '1k', label: 'Dir, 1 KiB file', path: '/static/1k.txt', body: fileBody(1024) },
  { key: '1m', label: 'Dir, 1 MiB file', path: '/static/1m.txt', body: fileBody(1024 * 1024) },
  { key: 'proxy', label: 'Proxy → node:http hello', path: '/proxy/hello', body: BACKEND_BODY },
].filter((c) => CASES.includes(c.key));
const FILES = { '1k.txt': WRK_CASES.find((c) => c.key === '1k')?.body ?? fileBody(1024), '1m.txt': WRK_CASES.find((c) => c.key === '1m')?.body ?? fileBody(1024 * 1024) };

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
const loadavg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const mib = (kib: number | null | undefined): string => (kib === null || kib === undefined ? '-' : (kib / 1024).toFixed(1));

// ---------------------------------------------------------------------------
// processes

/**
 * R = the real mongrel2; C = our core, compiled into one bundle under bare
 * node as the bins run it (CORE_RUN=tsx: the sources through tsx instead);
 * Cb = with CORE_RUN=tsx, the upload also on the bundle.
 */
type FrontKey = 'R' | 'C' | 'Cb';
const FRONT_LABEL: Record<FrontKey, string> = { R: 'real Mongrel2', C: CORE_RUN === 'tsx' ? 'OUR core (tsx)' : 'OUR core (compiled)', Cb: 'OUR core (compiled)' };

interface Front {
  key: FrontKey;
  label: string;
  port: number;
  pid: number;
}

class Processes {
  readonly stops: Array<() => Promise<unknown>> = [];
  readonly homes: string[] = [];
  private bundle: string | undefined;
  constructor(readonly logDir: string) {}

  async child(name: string, args: string[]): Promise<BenchChild> {
    const c = await spawnReady(name, process.execPath, args, { cwd: ROOT, logFile: path.join(this.logDir, `${name}.log`) });
    this.stops.push(() => c.stop());
    return c;
  }

  async site(backendPort: number): Promise<Site> {
    const site = await prepareSite(TEMPLATE, { PROXY_PORT: backendPort, CACHE_TTL }, FILES);
    this.homes.push(site.home);
    return site;
  }

  /** One server on its own fresh site; `prof` = node flags for the core. */
  async front(key: FrontKey, backendPort: number, prof: string[] = []): Promise<{ front: Front; site: Site; stop: () => Promise<unknown> }> {
    const site = await this.site(backendPort);
    const label = FRONT_LABEL[key];
    if (key === 'R') {
      const real = await startRealMongrel2(site);
      this.stops.push(() => real.stop());
      return { front: { key, label, port: site.httpPort, pid: real.pid }, site, stop: () => real.stop() };
    }
    const bundled = key === 'Cb' || (key === 'C' && CORE_RUN === 'bundled');
    if (bundled && this.bundle === undefined) {
      const file = bundleCore(ROOT);
      this.bundle = file;
      this.stops.push(() => fsp.rm(file, { force: true }));
    }
    const entry = bundled ? [this.bundle!] : [...NODE_TS, 'bench/servers/core.ts'];
    const core = await this.child(`core-${path.basename(site.home)}`, [...CORE_FLAGS, ...prof, ...entry, '--home', site.home, '--db', site.db, '--uuid', site.uuid]);
    return { front: { key, label, port: Number(core.ready.split(' ')[1]), pid: core.pid }, site, stop: () => core.stop() };
  }

  async stopAll(): Promise<void> {
    for (const w of runningWrk) w.kill('SIGKILL');
    for (const stop of this.stops.reverse()) await stop().catch(() => undefined);
    for (const home of this.homes) await fsp.rm(home, { recursive: true, force: true });
  }
}

/** One GET on a fresh connection: status + headers and the body bytes, or the error. */
function rawGet(port: number, reqPath: string): Promise<{ head: string; body: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: reqPath, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ head: `${res.statusCode} ${Object.entries(res.headers).map(([k, v]) => `${k}: ${String(v)}`).join('; ')}`, body: Buffer.concat(chunks) }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${reqPath}: no answer within 5 s`)));
    req.on('error', (e) => resolve({ error: e.message }));
  });
}

// ---------------------------------------------------------------------------
// wrk cases

interface Run {
  wrk: WrkResult;
  serverTicks: number;
  serverSys: number;
  /** The server's ticks on its main thread (where Node runs JavaScript) and on all other threads (libuv's fs pool, V8 helpers, zmq). */
  serverMain: number;
  serverOther: number;
  backendTicks: number;
  load: string;
}

interface CaseResult {
  c: Case;
  /** Why the case was skipped, per front. */
  broken: Map<FrontKey, string>;
  heads: Map<FrontKey, string>;
  runs: Map<FrontKey, Run[]>;
}

async function measure(front: Front, c: Case, secs: number, backendPid: number): Promise<Run> {
  const t0 = { s: ticksOf([front.pid]), sys: userSys(front.pid).sys, b: ticksOf([backendPid]), th: threadTicks(front.pid) };
  const load = loadavg();
  const out = await runWrk([`-t${THREADS}`, `-c${CONNS}`, `-d${secs}s`, '--latency', `http://127.0.0.1:${front.port}${c.path}`], (secs + 30) * 1000);
  const wrk = parseWrk(out);
  const th = threadTicks(front.pid);
  return {
    wrk,
    serverTicks: ticksOf([front.pid]) - t0.s,
    serverSys: userSys(front.pid).sys - t0.sys,
    serverMain: th.main - t0.th.main,
    serverOther: th.zmq + th.other - t0.th.zmq - t0.th.other,
    backendTicks: ticksOf([backendPid]) - t0.b,
    load,
  };
}

async function runCase(c: Case, fronts: Front[], backendPid: number): Promise<CaseResult> {
  const r: CaseResult = { c, broken: new Map(), heads: new Map(), runs: new Map() };
  for (const f of fronts) {
    const got = await rawGet(f.port, c.path);
    if ('error' in got) r.broken.set(f.key, got.error);
    else if (!got.head.startsWith('200 ') || !got.body.equals(c.body)) r.broken.set(f.key, `expected 200 with the ${c.body.length}-byte body, got ${got.head} and ${got.body.length} bytes`);
    else r.heads.set(f.key, got.head);
  }
  const ok = fronts.filter((f) => !r.broken.has(f.key));
  for (const [k, why] of r.broken) log(`${c.key} ${k}: SKIPPED: ${why}`);
  for (const f of ok) await measure(f, c, WARM, backendPid);
  for (let i = 0; i < RUNS; i++) {
    for (const f of ok) {
      const run = await measure(f, c, DUR, backendPid);
      r.runs.set(f.key, [...(r.runs.get(f.key) ?? []), run]);
      const w = run.wrk;
      log(`${c.key} ${f.key}${i + 1}: ${fmt(w.rps)} req/s p50 ${fmt(w.p50Ms, 2)} ms p99 ${fmt(w.p99Ms, 2)} ms ${w.transfer}/s non2xx ${w.non2xx} errors ${w.socketErrors} (load ${run.load})`);
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// upload

interface UploadOutcome {
  key: FrontKey;
  result?: UploadResult;
  rss?: RssPeak;
  cpuTicks?: number;
  handlerSaw?: string;
  error?: string;
  load: string;
}

async function uploadTest(key: FrontKey, p: Processes, backendPort: number): Promise<UploadOutcome> {
  const load = loadavg();
  const { front, site, stop } = await p.front(key, backendPort);
  const handler = await p.child(`upload-handler-${key}`, [...NODE_TS, 'bench/lib/upload-handler.ts', site.sendSpec, site.recvSpec, site.home]);
  try {
    const bytes = Math.round(UPLOAD_MB * 1024 * 1024);
    const t0 = ticksOf([front.pid]);
    const sampler = sampleRss(front.pid, 50);
    const result = await streamUpload(front.port, '/upload', bytes, 600_000);
    const rss = sampler.stop();
    const out: UploadOutcome = { key, result, rss, cpuTicks: ticksOf([front.pid]) - t0, handlerSaw: /^upload .*$/m.exec(handler.output())?.[0], load };
    log(`upload ${key}: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await handler.stop();
    await stop();
  }
}

// ---------------------------------------------------------------------------
// report

function report(results: CaseResult[], uploads: UploadOutcome[], hot: ProfileSummary | undefined, meta: { versions: string; loadStart: string; loadEnd: string; started: string; secs: number }): string {
  const L: string[] = [];
  L.push(`Date: ${meta.started} UTC, ${meta.secs} s. \`DUR=${DUR} CONNS=${CONNS} RUNS=${RUNS} THREADS=${THREADS} WARM=${WARM} FRONTS=${FRONTS.join(',')} CORE_RUN=${CORE_RUN} CASES=${CASES.join(',')} UPLOAD_MB=${UPLOAD_MB} CACHE_TTL=${CACHE_TTL}${CORE_FLAGS.length ? ` CORE_FLAGS='${CORE_FLAGS.join(' ')}'` : ''}${PROFILE ? ` PROFILE=${PROFILE}` : ''} node --import tsx bench/core-static-proxy.ts\``);
  L.push(`Versions: ${meta.versions}.`);
  L.push(`Machine: nproc = ${os.cpus().length} (shared by wrk, the servers and the backend; nothing pinned), load average at start ${meta.loadStart}, at end ${meta.loadEnd}.`);
  for (const r of results) {
    const { c } = r;
    L.push('');
    L.push(`### ${c.key}: ${c.label} (GET ${c.path}, ${c.body.length} body bytes)`);
    L.push('');
    for (const [k, why] of r.broken) L.push(`- **${k} skipped**: ${why}`);
    if (r.broken.size) L.push('');
    L.push(`| front | median req/s | median p50 ms | median p99 ms | body MB/s (wrk transfer/s) | server CPU µs/req (of it kernel) | main thread / other threads µs/req |${c.key === 'proxy' ? ' backend CPU µs/req |' : ''} non-2xx / socket errors |`);
    L.push(`|---|---:|---:|---:|---:|---:|---:|${c.key === 'proxy' ? '---:|' : ''}---|`);
    const med = (k: FrontKey, pick: (w: WrkResult) => number | null): number | null => median((r.runs.get(k) ?? []).map((x) => pick(x.wrk)));
    for (const [k, runs] of r.runs) {
      const reqs = runs.reduce((a, x) => a + (x.wrk.requests ?? 0), 0);
      const us = (t: number): string => (reqs ? fmt(((t / CLK_TCK) * 1e6) / reqs) : '-');
      const rps = med(k, (w) => w.rps);
      const mbs = rps === null ? null : (rps * c.body.length) / 1e6;
      const backend = c.key === 'proxy' ? ` ${us(runs.reduce((a, x) => a + x.backendTicks, 0))} |` : '';
      L.push(
        `| ${k}: ${FRONT_LABEL[k]} | ${fmt(rps)} | ${fmt(med(k, (w) => w.p50Ms), 2)} | ${fmt(med(k, (w) => w.p99Ms), 2)} | ${fmt(mbs, 1)} (${runs.map((x) => x.wrk.transfer).join(', ')}) | ${us(runs.reduce((a, x) => a + x.serverTicks, 0))} (${us(runs.reduce((a, x) => a + x.serverSys, 0))}) | ${us(runs.reduce((a, x) => a + x.serverMain, 0))} / ${us(runs.reduce((a, x) => a + x.serverOther, 0))} |${backend} ${runs.map((x) => `${x.wrk.non2xx}/${x.wrk.socketErrors}`).join(', ')} |`,
      );
    }
    const R = r.runs.get('R');
    const C = r.runs.get('C');
    if (R && C) {
      const rr = ratio(med('C', (w) => w.rps), med('R', (w) => w.rps));
      L.push('');
      L.push(`**Ours / real (C / R):** ${fmt(rr, 2)}× req/s (goal ≥ 1.0×: ${rr !== null && rr >= 1 ? 'met' : '**not met**'}), p50 ${fmt(ratio(med('C', (w) => w.p50Ms), med('R', (w) => w.p50Ms)), 2)}×, p99 ${fmt(ratio(med('C', (w) => w.p99Ms), med('R', (w) => w.p99Ms)), 2)}×. Per round: ${C.map((x, i) => fmt(ratio(x.wrk.rps, R[i]?.wrk.rps ?? null), 2)).join(', ')}. Load average before each round: ${R.map((x, i) => `R ${x.load} / C ${C[i]?.load ?? '-'}`).join('; ')}.`);
    }
    L.push('');
    for (const [k, head] of r.heads) L.push(`- ${k} first answer: \`${head}\``);
  }
  if (uploads.length) {
    L.push('');
    L.push(`### upload: ${UPLOAD_MB} MiB Content-Length POST to a handler route (upload.temp_store, limits.content_length 2048)`);
    L.push('');
    L.push('Each server is a fresh process; RSS sampled every 50 ms during the upload; VmHWM = the kernel\'s peak since the process started.');
    L.push('');
    L.push('| server | status / answer | seconds | MB/s | RSS before MiB | max RSS sampled MiB | VmHWM MiB | RSS after MiB | server CPU s | goal peak < 100 MB | load before |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
    for (const u of uploads) {
      const res = u.result;
      const answer = u.error ?? (res ? `${res.status ?? '-'} ${JSON.stringify(res.body.slice(0, 120))}${res.error ? ` (${res.error})` : ''}` : '-');
      const peak = u.rss?.hwmKiB ?? u.rss?.maxKiB ?? null;
      const goal = u.key !== 'R' && peak !== null && res?.status === 200 ? (peak * 1024 < UPLOAD_RSS_GOAL ? 'met' : '**not met**') : '-';
      const secs = res ? res.ms / 1000 : null;
      L.push(`| ${u.key}: ${FRONT_LABEL[u.key]} | ${answer} | ${fmt(secs, 1)} | ${fmt(res && secs ? res.sent / 1e6 / secs : null, 0)} | ${mib(u.rss?.startKiB)} | ${mib(u.rss?.maxKiB)} | ${mib(u.rss?.hwmKiB)} | ${mib(u.rss?.endKiB)} | ${fmt(u.cpuTicks === undefined ? null : u.cpuTicks / CLK_TCK, 1)} | ${goal} | ${u.load} |`);
    }
    for (const u of uploads) if (u.handlerSaw) L.push(`\n- ${u.key} handler: \`${u.handlerSaw}\``);
  }
  if (hot) {
    L.push('');
    L.push(`Core CPU profile (${PROFILE}; \`node --cpu-prof --cpu-prof-interval 200\`, main thread, the whole wrk phase incl. warm-ups), top self time:`);
    L.push('');
    L.push(...profileTables(hot));
  }
  return L.join('\n');
}

function versions(): string {
  const run = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '?';
    }
  };
  return [`node ${process.version}`, ...run('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'mongrel2-core', 'wrk']).split('\n')].join('; ');
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const logDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2bench-static-'));
  const p = new Processes(logDir);
  const started = new Date();
  const loadStart = loadavg();
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) return;
    stopping = true;
    void p.stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: CaseResult[] = [];
  const uploads: UploadOutcome[] = [];
  let hot: ProfileSummary | undefined;
  let corePid: number | undefined;
  try {
    log(`load average ${loadStart}; logs in ${logDir}`);
    const backend = await p.child('backend', [...NODE_TS, 'bench/servers/node-http.ts']);
    const backendPort = Number(backend.ready.split(' ')[1]);
    if (WRK_CASES.length) {
      const fronts: Front[] = [];
      const stops: Array<() => Promise<unknown>> = [];
      if (PROFILE) await fsp.mkdir(PROFILE, { recursive: true });
      for (const key of ['R', 'C'] as const) {
        if (!FRONTS.includes(key)) continue;
        const prof = key === 'C' && PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE, '--cpu-prof-interval', '200'] : [];
        const s = await p.front(key, backendPort, prof);
        fronts.push(s.front);
        stops.push(s.stop);
        if (key === 'C') corePid = s.front.pid;
        log(`${key} ${s.front.label}: port ${s.front.port}, pid ${s.front.pid}, home ${s.site.home}`);
      }
      for (const c of WRK_CASES) results.push(await runCase(c, fronts, backend.pid));
      // Stop the wrk-phase servers now: the upload gets fresh ones, and the profile is written on exit.
      for (const stop of stops) await stop();
    }
    if (CASES.includes('upload')) {
      for (const key of ['R', 'C', 'Cb'] as const) {
        if (!FRONTS.includes(key === 'Cb' ? 'C' : key) || (key === 'Cb' && CORE_RUN === 'bundled')) continue;
        try {
          uploads.push(await uploadTest(key, p, backendPort));
        } catch (err) {
          uploads.push({ key, error: (err as Error).message, load: loadavg() });
        }
      }
    }
  } finally {
    await p.stopAll();
  }
  if (PROFILE && corePid !== undefined) {
    const name = fs.readdirSync(PROFILE).sort().find((n) => n.includes(`.${corePid}.0.`));
    if (name) hot = await topSelf(path.join(PROFILE, name), 12, ROOT);
    else log(`no CPU profile of the core (pid ${corePid}) in ${PROFILE}`);
  }
  const md = report(results, uploads, hot, { versions: versions(), loadStart, loadEnd: loadavg(), started: started.toISOString().slice(0, 19).replace('T', ' '), secs: Math.round((Date.now() - started.getTime()) / 1000) });
  process.stdout.write(`${md}\n`);
  if (process.env.OUT) fs.writeFileSync(process.env.OUT, `${md}\n`);
  if (!process.env.KEEP_LOGS) await fsp.rm(logDir, { recursive: true, force: true });
}

await main();
