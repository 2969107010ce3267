/**
 * Test support: run the REAL php-fpm (Debian php8.2-fpm, /usr/sbin/php-fpm8.2)
 * as a FastCGI peer, one private instance per call.
 *
 *   import { test, after } from 'node:test';
 *   import { startPhpFpm, type PhpFpm } from '../support/php-fpm.js';
 *
 *   let fpm: PhpFpm | undefined;
 *   after(() => fpm?.stop());                 // ALWAYS: stop() in an after() hook
 *   test('...', async () => {
 *     fpm = await startPhpFpm({ listen: 'unix', workers: 2 });
 *     // connect to fpm.address ({host, port} or {path}); scripts are in fpm.docRoot
 *   });
 *
 * What startPhpFpm() does:
 *  - creates a fresh folder `${os.tmpdir()}/m2fpm-XXXXXX` (HOME, mode 0711 so
 *    the pool user and nginx's workers can reach the socket) with
 *      php.ini          a minimal, explicit ini (see PHP_INI_DEFAULTS), loaded with
 *                       `-c`; PHP_INI_SCAN_DIR='' so Debian's conf.d (opcache,
 *                       ctype, ...) is NOT loaded: only the modules compiled into
 *                       the binary (Core, standard, json, hash, pcre, session, ...)
 *      php-fpm.conf     [global] + one pool, pm = static
 *      php-fpm.log      FPM's error_log; workers' stderr (PHP errors, since
 *                       log_errors=On and no error_log ini) lands here too
 *                       (catch_workers_output = yes, decorate_workers_output = no)
 *      php-fpm.out      stdout/stderr of the master (startup errors before the log)
 *      tmp/             mode 1777: PHP's sys_temp_dir AND upload_tmp_dir
 *                       (PhpFpm.tmpDir). stream.php only accepts marker files in it.
 *      php-fpm.sock     the unix socket (listen: 'unix')
 *  - spawns `setpriv --pdeathsig TERM php-fpm8.2 -F -c HOME/php.ini -y HOME/php-fpm.conf`
 *    (no setpriv → plain spawn). SIGTERM, not KILL: on SIGTERM the FPM master
 *    kills and reaps its workers; a SIGKILLed master would orphan its workers,
 *    which then keep sitting in accept() forever.
 *  - as root the pool runs as www-data (php-fpm refuses root pools) and the unix
 *    socket is www-data:www-data 0660 (root - the bridge - connects anyway, nginx
 *    workers run as www-data). Not root: no user/owner lines, everything runs as us.
 *  - readiness: bounded poll (default 10 s) until the TCP port accepts and is a
 *    LISTEN socket of this very master (via /proc) - or the unix socket accepts -
 *    AND `workers` children exist. If the master exits first, the error carries
 *    the log tail. A TCP port taken between choosing and binding is retried with
 *    a fresh port (up to 3 attempts).
 *
 * Lifetime / cleanup:
 *  - stop(): SIGTERM to the master (fast shutdown: it terminates and reaps its
 *    workers), SIGKILL after 5 s; only ever the child we spawned (checked via the
 *    unreaped ChildProcess handle and /proc/PID/comm). Only if the master had to
 *    be SIGKILLed, the workers it leaves behind are SIGKILLed too, identified by
 *    PID + start time recorded while they were our master's children. Then HOME
 *    is removed. Idempotent; errorLog() keeps working on a snapshot.
 *  - restart(): the same stop (or SIGQUIT = graceful with `{ graceful: true }`,
 *    in-flight requests finish, bounded by process_control_timeout) but HOME is
 *    kept, then a new master on the same address. `pid` changes.
 *  - The child is unref()'d in pdeathsig mode (a forgotten stop() cannot keep the
 *    test process alive; FPM then dies with it, only HOME is left behind).
 *
 * Settings that matter for the bridge (asserted by the parity tests):
 *  cgi.fix_pathinfo = 1 (PHP's default: the bridge must block `/x.jpg/y.php`
 *  itself), output_buffering = 0 (flush() streams), security.limit_extensions =
 *  .php, clear_env = yes (the default: $_SERVER holds only FastCGI params + PHP's
 *  own keys, + USER/HOME set by FPM), expose_php = On (X-Powered-By header).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import {
  PortConflictError,
  readIf,
  tail,
  isRoot,
  lookupUser,
  isProcessAlive,
  childProcesses,
  listenOwner,
  tryConnect,
  statusOf,
  spawnDaemon,
  terminateDaemon,
  type Daemon,
  type DaemonExitStatus,
  type PortOwner,
  SETPRIV_BIN,
  freePorts,
} from './process.js';


export const PHP_FPM_BIN = '/usr/sbin/php-fpm8.2';

/** Absolute path of test/php (the fixture docroot), no trailing slash. */
export const PHP_DOCROOT = path.resolve(fileURLToPath(new URL('../php/', import.meta.url)));

/** Pool user when running as root. */
export const POOL_USER = 'www-data';

/** php.ini written for every instance (before `opts.phpIni` overrides). */
export const PHP_INI_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  'cgi.fix_pathinfo': '1',
  output_buffering: '0',
  implicit_flush: 'Off',
  'zlib.output_compression': 'Off',
  file_uploads: 'On',
  upload_max_filesize: '50M',
  post_max_size: '64M',
  max_file_uploads: '20',
  memory_limit: '256M',
  display_errors: 'Off',
  log_errors: 'On',
  error_reporting: 'E_ALL',
  'date.timezone': 'UTC',
  expose_php: 'On',
});

export type PhpFpmAddress = { host: string; port: number } | { path: string };

export interface StartPhpFpmOptions {
  /** pm = static, pm.max_children (default 2). */
  workers?: number;
  /** 'tcp' (127.0.0.1:free port, default) or 'unix' (HOME/php-fpm.sock). */
  listen?: 'tcp' | 'unix';
  /** pm.max_requests (default 0 = never recycle a worker). */
  maxRequests?: number;
  /** Default: PHP_DOCROOT (test/php). Only used for the permission check and `docRoot`. */
  docRoot?: string;
  /** request_terminate_timeout in whole seconds (default 0 = off). */
  requestTerminateTimeout?: number;
  /** Extra/overriding php.ini settings, e.g. { post_max_size: '1M' }. */
  phpIni?: Readonly<Record<string, string | number | boolean>>;
  /** Extra pool directives, e.g. { 'pm.status_path': '/fpm-status' }. */
  poolConf?: Readonly<Record<string, string | number>>;
  /** Readiness deadline per attempt, ms (default 10000). */
  startupTimeoutMs?: number;
}

export interface PhpFpm {
  readonly address: PhpFpmAddress;
  /** '127.0.0.1:PORT' or 'unix:/abs/path.sock' (nginx fastcgi_pass syntax). */
  readonly addressText: string;
  readonly docRoot: string;
  /** PID of the current master (changes on restart()). */
  readonly pid: number;
  /** The private folder (removed by stop()). */
  readonly home: string;
  /** HOME/tmp: PHP's sys_temp_dir and upload_tmp_dir (mode 1777). Marker files for stream.php go here. */
  readonly tmpDir: string;
  readonly confPath: string;
  readonly iniPath: string;
  /** Master output + php-fpm.log (snapshot after stop()). */
  errorLog(): string;
  /** Live children of the current master, from /proc (zombies excluded). */
  workerPids(): number[];
  /** null while running. */
  exitStatus(): DaemonExitStatus | null;
  /** Stop + start on the same address (HOME and logs kept). */
  restart(opts?: { graceful?: boolean }): Promise<void>;
  /** SIGTERM → SIGKILL (bounded), then remove HOME. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The body big.php sends for ?n=N: 16-byte records sprintf('%015d', k) + "\n",
 * k = 0, 1, 2, ..., cut at n bytes.
 */
export function bigBody(n = 10 * 1024 * 1024): Buffer {
  const buf = Buffer.alloc(n);
  let off = 0;
  for (let k = 0; off < n; k++) {
    const rec = String(k).padStart(15, '0') + '\n';
    off += buf.write(rec, off, 'latin1');
  }
  return buf;
}

// ---------------------------------------------------------------------------
// config rendering

function iniValue(v: string | number | boolean): string {
  if (typeof v === 'boolean') return v ? 'On' : 'Off';
  const s = String(v);
  return /^[A-Za-z0-9_.+\-|&~ ]*$/.test(s) && !/^\s|\s$/.test(s) ? s : `"${s.replace(/"/g, '')}"`;
}

function quote(p: string): string {
  if (/["\n]/.test(p)) throw new Error(`unsupported character in path ${JSON.stringify(p)}`);
  return `"${p}"`;
}

/** Throws a readable error when `user` cannot traverse to / read `dir`. */
function assertReadableBy(dir: string, user: { uid: number; gid: number }, userName: string): void {
  const can = (st: fs.Stats, bit: number): boolean =>
    st.uid === user.uid ? (st.mode & (bit << 6)) !== 0 : st.gid === user.gid ? (st.mode & (bit << 3)) !== 0 : (st.mode & bit) !== 0;
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let cur = '/';
  for (const part of parts) {
    cur = path.join(cur, part);
    const st = fs.statSync(cur);
    if (!can(st, 1)) throw new Error(`${userName} cannot traverse ${cur} (mode ${(st.mode & 0o7777).toString(8)}): php-fpm workers could not read ${dir}`);
  }
  const st = fs.statSync(dir);
  if (!can(st, 4)) throw new Error(`${userName} cannot read ${dir} (mode ${(st.mode & 0o7777).toString(8)})`);
}

// ---------------------------------------------------------------------------
// startup

const FPM_PORT_CONFLICT_RE = /unable to bind listening socket for address '127\.0\.0\.1:\d+': Address already in use/;

interface FpmLayout {
  home: string;
  confPath: string;
  iniPath: string;
  logPath: string;
  outPath: string;
  tmpDir: string;
}

function fpmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PHP_INI_SCAN_DIR: '' };
  delete env.PHPRC;
  delete env.NOTIFY_SOCKET; // no sd_notify to a real systemd
  delete env.FPM_SOCKETS; // inherited listening sockets (FPM's own reload mechanism)
  return env;
}

/** Spawn a master and wait until it is ready; on failure it is stopped again and the error thrown. */
async function launch(
  layout: FpmLayout,
  address: PhpFpmAddress,
  workers: number,
  startupTimeoutMs: number,
): Promise<Daemon> {
  // Only this launch's lines count for the port-conflict check (restart() appends to the same files).
  const outStart = readIf(layout.outPath).length;
  const logStart = readIf(layout.logPath).length;
  const newLogs = (): string => readIf(layout.outPath).slice(outStart) + readIf(layout.logPath).slice(logStart);
  const d = await spawnDaemon(PHP_FPM_BIN, ['-F', '-c', layout.iniPath, '-y', layout.confPath], {
    cwd: layout.home,
    env: fpmEnv(),
    outLog: layout.outPath,
    pdeathsig: 'SIGTERM',
    comms: ['php-fpm8.2', 'php-fpm'],
  });
  try {
    const deadline = Date.now() + startupTimeoutMs;
    let delay = 25;
    let last = 'no connection yet';
    for (;;) {
      const st = statusOf(d.proc);
      const logs = newLogs();
      if (st) {
        const msg = `php-fpm exited during startup (code ${st.code}, signal ${st.signal}); log tail:\n${tail(logs)}`;
        throw FPM_PORT_CONFLICT_RE.test(logs) ? new PortConflictError(msg) : new Error(msg);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const target = 'path' in address ? { path: address.path } : { port: address.port };
      if (await tryConnect(target, Math.min(500, remaining))) {
        const owner = 'port' in address ? listenOwner(d.pid, address.port) : null;
        if (owner === 'other') {
          throw new PortConflictError(`port ${'port' in address ? address.port : ''} is held by another process`);
        }
        const n = childProcesses(d.pid).length;
        if (owner !== 'none' && n >= workers) return d;
        last = `accepts, listen socket ${owner ?? 'unknown'}, ${n}/${workers} workers`;
      }
      await Promise.race([sleep(delay), d.exited]);
      delay = Math.min(delay * 2, 200);
    }
    throw new Error(`php-fpm (pid ${d.pid}) not ready within ${startupTimeoutMs} ms (${last}); log tail:\n${tail(newLogs())}`);
  } catch (err) {
    await terminateDaemon(d, STOP_PLAN).catch(() => undefined);
    throw err;
  }
}

const STOP_PLAN = [
  ['SIGTERM', 5000],
  ['SIGKILL', 3000],
] as const;

/** process_control_timeout (s): bound for a graceful (SIGQUIT) stop. */
const PROCESS_CONTROL_TIMEOUT_S = 10;

async function startOnce(opts: StartPhpFpmOptions): Promise<PhpFpm> {
  const workers = opts.workers ?? 2;
  const listen = opts.listen ?? 'tcp';
  const maxRequests = opts.maxRequests ?? 0;
  const terminateTimeout = opts.requestTerminateTimeout ?? 0;
  const docRoot = path.resolve(opts.docRoot ?? PHP_DOCROOT);
  const startupTimeoutMs = opts.startupTimeoutMs ?? 10_000;
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(maxRequests) || maxRequests < 0) throw new RangeError(`bad maxRequests ${maxRequests}`);
  if (!Number.isInteger(terminateTimeout) || terminateTimeout < 0) {
    throw new RangeError(`requestTerminateTimeout is whole seconds, got ${terminateTimeout}`);
  }
  if (!fs.statSync(docRoot).isDirectory()) throw new Error(`docRoot ${docRoot} is not a directory`);

  const root = isRoot();
  const poolUser = root ? lookupUser(POOL_USER) : null;
  if (root && !poolUser) throw new Error(`running as root but user ${POOL_USER} does not exist (php-fpm refuses root pools)`);
  if (poolUser) assertReadableBy(docRoot, poolUser, POOL_USER);

  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2fpm-'));
  let daemon: Daemon | undefined;
  try {
    await fsp.chmod(home, 0o711); // pool user / nginx workers must reach tmp/ and the socket
    const layout: FpmLayout = {
      home,
      confPath: path.join(home, 'php-fpm.conf'),
      iniPath: path.join(home, 'php.ini'),
      logPath: path.join(home, 'php-fpm.log'),
      outPath: path.join(home, 'php-fpm.out'),
      tmpDir: path.join(home, 'tmp'),
    };
    await fsp.mkdir(layout.tmpDir);
    await fsp.chmod(layout.tmpDir, 0o1777);

    let address: PhpFpmAddress;
    let addressText: string;
    if (listen === 'unix') {
      const sock = path.join(home, 'php-fpm.sock');
      if (Buffer.byteLength(sock) > 107) throw new Error(`unix socket path too long: ${sock}`);
      address = { path: sock };
      addressText = `unix:${sock}`;
    } else {
      const [port] = await freePorts(1);
      if (port === undefined) throw new Error('freePorts(1) returned nothing');
      address = { host: '127.0.0.1', port };
      addressText = `127.0.0.1:${port}`;
    }

    const ini: Record<string, string> = {
      ...PHP_INI_DEFAULTS,
      sys_temp_dir: layout.tmpDir,
      upload_tmp_dir: layout.tmpDir,
    };
    for (const [k, v] of Object.entries(opts.phpIni ?? {})) ini[k] = iniValue(v);
    await fsp.writeFile(
      layout.iniPath,
      '; generated by test/support/php-fpm.ts\n' +
        Object.entries(ini)
          .map(([k, v]) => `${k} = ${k.endsWith('_dir') ? quote(v) : v}`)
          .join('\n') +
        '\n',
    );

    const pool: Array<[string, string | number]> = [];
    if (poolUser) pool.push(['user', POOL_USER], ['group', POOL_USER]);
    pool.push(['listen', quote('path' in address ? address.path : addressText)]);
    if ('path' in address) {
      if (poolUser) pool.push(['listen.owner', POOL_USER], ['listen.group', POOL_USER]);
      pool.push(['listen.mode', '0660']);
    }
    pool.push(
      ['pm', 'static'],
      ['pm.max_children', workers],
      ['pm.max_requests', maxRequests],
      ['request_terminate_timeout', `${terminateTimeout}s`],
      ['catch_workers_output', 'yes'],
      ['decorate_workers_output', 'no'],
      ['clear_env', 'yes'],
      ['security.limit_extensions', '.php'],
    );
    for (const [k, v] of Object.entries(opts.poolConf ?? {})) pool.push([k, v]);
    await fsp.writeFile(
      layout.confPath,
      [
        '; generated by test/support/php-fpm.ts',
        '[global]',
        `pid = ${quote(path.join(home, 'php-fpm.pid'))}`,
        `error_log = ${quote(layout.logPath)}`,
        'log_level = notice',
        'daemonize = no',
        `process_control_timeout = ${PROCESS_CONTROL_TIMEOUT_S}s`,
        '',
        '[m2test]',
        ...pool.map(([k, v]) => `${k} = ${v}`),
        '',
      ].join('\n'),
    );
    fs.writeFileSync(layout.outPath, '');

    daemon = await launch(layout, address, workers, startupTimeoutMs);

    let current: Daemon = daemon;
    let finalLog: string | undefined;
    let stopping: Promise<void> | undefined;
    let restarting: Promise<void> | undefined;
    const readLogs = (): string => readIf(layout.outPath) + readIf(layout.logPath);

    const fpm: PhpFpm = {
      address,
      addressText,
      docRoot,
      get pid() {
        return current.pid;
      },
      home,
      tmpDir: layout.tmpDir,
      confPath: layout.confPath,
      iniPath: layout.iniPath,
      errorLog: () => finalLog ?? readLogs(),
      workerPids: () => (statusOf(current.proc) ? [] : childProcesses(current.pid).map((c) => c.pid)),
      exitStatus: () => statusOf(current.proc),
      restart: (ropts = {}) => {
        if (stopping) return Promise.reject(new Error('php-fpm: restart() after stop()'));
        if (restarting) return Promise.reject(new Error('php-fpm: restart() already in progress'));
        restarting = (async () => {
          try {
            const plan: ReadonlyArray<readonly [NodeJS.Signals, number]> = ropts.graceful
              ? [['SIGQUIT', (PROCESS_CONTROL_TIMEOUT_S + 5) * 1000], ...STOP_PLAN]
              : STOP_PLAN;
            await terminateDaemon(current, plan);
            current = await launch(layout, address, workers, startupTimeoutMs);
          } finally {
            restarting = undefined;
          }
        })();
        return restarting;
      },
      stop: () =>
        (stopping ??= (async () => {
          try {
            await restarting?.catch(() => undefined);
            await terminateDaemon(current, STOP_PLAN);
          } finally {
            finalLog = readLogs();
            await fsp.rm(home, { recursive: true, force: true });
          }
        })()),
    };
    return fpm;
  } catch (err) {
    if (daemon) await terminateDaemon(daemon, STOP_PLAN).catch(() => undefined);
    await fsp.rm(home, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Start a private php-fpm. See the module comment; call `stop()` in `after()`.
 * Retries up to 3 times with a fresh port/folder when the TCP port was taken.
 */
export async function startPhpFpm(opts: StartPhpFpmOptions = {}): Promise<PhpFpm> {
  if (!fs.existsSync(PHP_FPM_BIN)) throw new Error(`${PHP_FPM_BIN} not found: install the Debian package php8.2-fpm`);
  for (let i = 1; ; i++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortConflictError) || i >= 3) throw err;
    }
  }
}
