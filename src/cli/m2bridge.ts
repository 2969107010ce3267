/**
 * `m2bridge`: PHP-FPM (FastCGI) or an in-process Node app behind Mongrel2. With --workers N the primary
 * forks N workers, each with its own PULL socket (Mongrel2 deals requests
 * round-robin), and forwards SIGTERM/SIGINT so they drain and exit.
 */
import cluster from 'node:cluster';
import { Connection } from '../handler/connection.js';
import { createLogger } from '../handler/logger.js';
import { Bridge } from '../bridge/bridge.js';
import { FastCgiBackend } from '../../adapters/fastcgi.js';
import { AppBackend, AppLoadError, loadApp } from '../../adapters/app.js';
import type { Backend } from '../bridge/backend.js';
import { FastCgiClient, parseFastCgiAddress } from '../fastcgi/client.js';
import { parseBridgeArgs, type BridgeCliOptions } from './m2bridge-options.js';

const parsed = parseBridgeArgs(process.argv.slice(2));
if (!parsed.ok) {
  (parsed.exitCode === 0 ? process.stdout : process.stderr).write(parsed.output);
  process.exit(parsed.exitCode);
}
const options = parsed.options;
const log = createLogger({ level: options.logLevel });

if (options.workers > 1 && cluster.isPrimary) runPrimary(options);
else await runWorker(options);

function runPrimary(opts: BridgeCliOptions): void {
  let stopping = false;
  const fork = (): void => {
    cluster.fork().on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ code, signal }, 'worker died; starting another');
      fork();
    });
  };
  for (let i = 0; i < opts.workers; i++) fork();
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  cluster.on('exit', () => {
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  log.info({ workers: opts.workers, fcgi: opts.fcgi, app: opts.app, sendSpec: opts.sendSpec, recvSpec: opts.recvSpec }, 'm2bridge started');
}

/** The backend the flags ask for: FastCGI (--fcgi) or an in-process app (--app). */
async function createBackend(opts: BridgeCliOptions): Promise<Backend> {
  if (opts.app !== undefined) {
    let handler;
    try {
      handler = await loadApp(opts.app);
    } catch (err) {
      if (!(err instanceof AppLoadError)) throw err;
      process.stderr.write(`m2bridge: ${err.message}\n`);
      process.exit(2);
    }
    return new AppBackend({ handler, logger: log, headTimeoutMs: opts.timeout * 1000 });
  }
  const client = new FastCgiClient({
    address: parseFastCgiAddress(opts.fcgi!),
    maxConnections: opts.maxConnections,
    keepAlive: opts.fcgiIdle > 0,
    ...(opts.fcgiIdle > 0 ? { idleTimeoutMs: opts.fcgiIdle * 1000 } : {}),
    connectTimeoutMs: Math.min(opts.timeout, 10) * 1000,
    readTimeoutMs: opts.timeout * 1000,
    logger: log,
  });
  return new FastCgiBackend({ client, root: opts.root!, index: opts.index, sendfile: opts.sendfile, chroot: opts.chroot, logger: log });
}

async function runWorker(opts: BridgeCliOptions): Promise<void> {
  const backend = await createBackend(opts);
  const connection = new Connection({
    sendSpec: opts.sendSpec,
    recvSpec: opts.recvSpec,
    senderId: opts.senderId,
    uploads: opts.uploadDir ? { dir: opts.uploadDir, root: opts.chroot } : undefined,
    logger: log,
  });
  const bridge = new Bridge({ connection, backend, maxInflight: opts.maxInflight, logger: log });
  let draining = false;
  const drain = (signal: NodeJS.Signals): void => {
    if (draining) return;
    draining = true;
    log.info({ signal, inflight: bridge.inflight }, 'draining in-flight requests');
    void bridge.drain(opts.timeout * 1000).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
  void connection.ready().then(() => log.info({ sendSpec: opts.sendSpec }, 'worker ready'));
  if (!cluster.isWorker) log.info({ fcgi: opts.fcgi, app: opts.app, root: opts.root, sendSpec: opts.sendSpec, recvSpec: opts.recvSpec }, 'm2bridge started');
  await bridge.run();
}
