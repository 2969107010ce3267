/**
 * `m2bridge`: PHP-FPM (FastCGI), an HTTP server or an in-process Node app
 * behind Mongrel2, or several of them routed by a --config file (each
 * backend created once and shared by its routes). With --workers N the primary
 * forks N workers, each with its own PULL socket (Mongrel2 deals requests
 * round-robin), and forwards SIGTERM/SIGINT so they drain and exit.
 */
import cluster from 'node:cluster';
import { Connection } from '../handler/connection.js';
import { createLogger } from '../handler/logger.js';
import { Bridge } from '../bridge/bridge.js';
import { FastCgiBackend } from '../../adapters/fastcgi.js';
import { AppBackend, AppLoadError, loadApp } from '../../adapters/app.js';
import { HttpBackend } from '../../adapters/http.js';
import type { Backend } from '../bridge/backend.js';
import { createRouter, type BackendSpec } from '../bridge/route-map.js';
import type { HttpRequest } from '../protocol/request.js';
import { FastCgiClient, parseFastCgiAddress } from '../fastcgi/client.js';
import { parseBridgeArgs, type BridgeCliOptions, type ServePlan } from './m2bridge-options.js';

const parsed = parseBridgeArgs(process.argv.slice(2));
if (!parsed.ok) {
  (parsed.exitCode === 0 ? process.stdout : process.stderr).write(parsed.output);
  process.exit(parsed.exitCode);
}
const options = parsed.options;
const plan = parsed.plan;
const log = createLogger({ level: options.logLevel });
if (plan.kind === 'routes' && cluster.isPrimary) for (const w of plan.warnings) log.warn(w);

if (options.workers > 1 && cluster.isPrimary) runPrimary(options);
else await runWorker(options);

function runPrimary(opts: BridgeCliOptions): void {
  let stopping = false;
  let exitCode = 0;
  /** Until one worker has been ready, a worker death is a startup failure (bad app, bad config): final. */
  let everReady = false;
  /** Consecutive deaths of workers that never got ready: restarts back off. */
  let quickDeaths = 0;
  const fork = (): void => {
    let ready = false;
    const worker = cluster.fork();
    worker.on('message', (msg: unknown) => {
      if (msg === 'ready') {
        ready = true;
        everReady = true;
        quickDeaths = 0;
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      if (!everReady || (!ready && code === 2)) {
        // A worker that cannot even start will not start next time either.
        log.error({ code, signal }, 'a worker failed to start; stopping');
        exitCode = code === 2 ? 2 : 1;
        stop('SIGTERM');
        return;
      }
      const delayMs = Math.min(5000, 100 * 2 ** quickDeaths);
      if (!ready) quickDeaths++;
      log.error({ code, signal, restartInMs: delayMs }, 'worker died; starting another');
      setTimeout(fork, delayMs).unref();
    });
  };
  for (let i = 0; i < opts.workers; i++) fork();
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    const workers = Object.values(cluster.workers ?? {});
    for (const worker of workers) worker?.process.kill('SIGTERM');
    if (workers.length === 0) process.exit(exitCode);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  cluster.on('exit', () => {
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
  });
  log.info({ workers: opts.workers, ...describe(opts), sendSpec: opts.sendSpec, recvSpec: opts.recvSpec }, 'm2bridge started');
}

/** What is served, for the start log line. */
function describe(opts: BridgeCliOptions): Record<string, unknown> {
  if (plan.kind === 'routes') return { config: plan.file, backends: [...plan.config.backends].map(([name, spec]) => `${name}:${spec.type}`), routes: plan.config.routes.length };
  return { fcgi: opts.fcgi, http: opts.http, app: opts.app, root: opts.root };
}

/** One backend from its spec; `name` labels its log lines and errors. */
async function createBackend(name: string, spec: BackendSpec): Promise<Backend> {
  const logger = plan.kind === 'routes' ? log.child({ backend: name }) : log;
  const timeoutMs = (spec.timeout ?? 60) * 1000;
  switch (spec.type) {
    case 'app': {
      let handler;
      try {
        handler = await loadApp(spec.file);
      } catch (err) {
        if (!(err instanceof AppLoadError)) throw err;
        process.stderr.write(`m2bridge: ${plan.kind === 'routes' ? `backends.${name}: ` : ''}${err.message}\n`);
        process.exit(2);
      }
      return new AppBackend({ handler, logger, headTimeoutMs: timeoutMs });
    }
    case 'http':
      return new HttpBackend({
        url: spec.url,
        logger,
        connections: spec.maxConnections,
        headersTimeoutMs: timeoutMs,
        bodyTimeoutMs: timeoutMs,
        connectTimeoutMs: Math.min(timeoutMs, 10_000),
        trustForwarded: spec.trustForwarded,
      });
    case 'fcgi': {
      const idle = spec.idle ?? 30;
      const client = new FastCgiClient({
        address: parseFastCgiAddress(spec.address),
        maxConnections: spec.maxConnections ?? 4,
        keepAlive: idle > 0,
        ...(idle > 0 ? { idleTimeoutMs: idle * 1000 } : {}),
        connectTimeoutMs: Math.min(timeoutMs, 10_000),
        readTimeoutMs: timeoutMs,
        logger,
      });
      return new FastCgiBackend({ client, root: spec.root, index: spec.index, sendfile: spec.sendfile, chroot: options.chroot, logger });
    }
  }
}

/** The backend (or the router over the config's backends), and every backend to close on drain. */
async function createBackends(p: ServePlan): Promise<{ backend: Backend | ((req: HttpRequest) => Backend | undefined); all: Backend[] }> {
  if (p.kind === 'single') {
    const backend = await createBackend(p.spec.type, p.spec);
    return { backend, all: [backend] };
  }
  const byName = new Map<string, Backend>();
  for (const [name, spec] of p.config.backends) byName.set(name, await createBackend(name, spec));
  const route = createRouter(p.config.routes.map((r) => ({ match: r, target: byName.get(r.backend)! })));
  return { backend: route, all: [...byName.values()] };
}

async function runWorker(opts: BridgeCliOptions): Promise<void> {
  const { backend, all } = await createBackends(plan);
  const connection = new Connection({
    sendSpec: opts.sendSpec,
    recvSpec: opts.recvSpec,
    senderId: opts.senderId,
    uploads: opts.uploadDir ? { dir: opts.uploadDir, root: opts.chroot } : undefined,
    logger: log,
  });
  const bridge = new Bridge({ connection, backend, backends: all, maxInflight: opts.maxInflight, logger: log });
  let draining = false;
  const drain = (signal: NodeJS.Signals): void => {
    if (draining) return;
    draining = true;
    log.info({ signal, inflight: bridge.inflight }, 'draining in-flight requests');
    void bridge.drain(opts.timeout * 1000).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
  void connection.ready().then(() => {
    log.info({ sendSpec: opts.sendSpec }, 'worker ready');
    process.send?.('ready');
  });
  if (!cluster.isWorker) log.info({ ...describe(opts), sendSpec: opts.sendSpec, recvSpec: opts.recvSpec }, 'm2bridge started');
  await bridge.run();
}
