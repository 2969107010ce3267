/**
 * Test support: run the REAL Mongrel2 (Debian mongrel2-core 1.12, /usr/bin/mongrel2)
 * as an interop peer, one private instance per call.
 *
 *   import { test, after } from 'node:test';
 *   import { startMongrel2, type Mongrel2Peer } from '../support/mongrel2.js';
 *
 *   let peer: Mongrel2Peer | undefined;
 *   after(() => peer?.stop());              // ALWAYS: stop() in an after() hook
 *   test('...', async () => {
 *     peer = await startMongrel2();
 *     // http://127.0.0.1:${peer.httpPort}/static/hello.txt, peer.handler.sendSpec, ...
 *   });
 *
 * What startMongrel2() does:
 *  - picks 5 free loopback ports at runtime (HTTP + PUSH/SUB for two handlers),
 *  - creates a fresh runtime folder `${os.tmpdir()}/m2-XXXXXX` with run/ logs/ tmp/
 *    static/ (mongrel2 aborts if they are missing) and a few static files,
 *  - renders test/mongrel2/interop.conf.in into HOME/mongrel2.conf and runs
 *    `m2sh load -config mongrel2.conf -db config.sqlite` (cwd=HOME, LOGNAME set;
 *    m2sh exits 0 even on parse errors, so its output is checked for [ERROR] too),
 *  - spawns `mongrel2 config.sqlite UUID` with cwd=HOME (as root it chroots into
 *    HOME, so every path in the conf is HOME-relative), stdout+stderr going to
 *    HOME/logs/mongrel2.out,
 *  - waits (bounded, ~10 s) until the HTTP port accepts connections and - where
 *    /proc is readable - all 5 ports are LISTEN sockets owned by that very PID
 *    (mongrel2 keeps running and retries forever when a 0MQ port is taken, so an
 *    HTTP-only check is not enough). A port conflict (the ports were grabbed by
 *    someone else between choosing and binding) is retried with fresh ports.
 *
 * Lifetime / cleanup:
 *  - Tests MUST call `peer.stop()` in an `after()` hook (it is idempotent, so also
 *    calling it inside the test is fine). stop() sends SIGINT (graceful, ~1 s),
 *    then SIGTERM, then SIGKILL after bounded waits, only ever to the child it
 *    spawned (checked through the ChildProcess object, which cannot signal a
 *    reaped PID, and /proc/PID/comm), then removes HOME.
 *  - Nothing global is registered (no process.on handlers). As a safety net for
 *    a test process that dies without running its after() hooks (crash, test
 *    runner timeout kill), mongrel2 is launched through `setpriv --pdeathsig KILL`
 *    (util-linux) when available: the kernel SIGKILLs mongrel2 when the test
 *    process goes away. In that mode the child handle is unref()'d so a
 *    forgotten stop() cannot keep the test process alive forever (mongrel2 then
 *    dies with the process; only the temp folder is left behind). Do not call
 *    startMongrel2() from a worker thread that exits before the test ends: the
 *    parent-death signal follows the thread that spawned it.
 */
import { loginName } from '../../src/cli/login-name.js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SETPRIV_BIN, listenOwner, readIf, statusOf, tail, tryConnect, type PortOwner } from './process.js';

export const MONGREL2_BIN = '/usr/bin/mongrel2';
export const M2SH_BIN = '/usr/bin/m2sh';

/** The m2sh config template (placeholders `@NAME@`). */
export const MONGREL2_CONF_TEMPLATE = fileURLToPath(
  new URL('../mongrel2/interop.conf.in', import.meta.url),
);

/** Files written into HOME/static/ (served under /static/). */
export const STATIC_FILES: Readonly<Record<string, string>> = Object.freeze({
  'index.html': '<html><body>m2interop static index</body></html>\n',
  'hello.txt': 'hello static\n',
});

export interface StartMongrel2Options {
  /** Render `"download.flow_control": 1` (default false → 0, mongrel2's default). */
  flowControl?: boolean;
  /** Overall readiness deadline per attempt, ms (default 10000). */
  startupTimeoutMs?: number;
  /** A fixed HTTP port (npm start uses 6767); default: a free one. */
  httpPort?: number;
  /** Also route '/' to the JSON handler (a bridge serving a whole site). */
  rootRoute?: boolean;
  /** `upload.stream=1`: big bodies arrive as credit-paced chunks instead of temp files. */
  uploadStream?: boolean;
  /** More route paths to the JSON handler, e.g. JSSocket's '@handler' and '<handler' (like startCore's). */
  handlerPaths?: readonly string[];
  /** The server binary, run as `BIN config.sqlite UUID` (default the real /usr/bin/mongrel2; benches pass our bin/mongrel2.js). */
  bin?: string;
}

export interface Mongrel2HandlerInfo {
  /** Where mongrel2 PUSHes requests (it binds; a handler connects a PULL socket). */
  sendSpec: string;
  /** Where mongrel2 SUBscribes to replies (it binds; a handler connects a PUB socket). */
  recvSpec: string;
  /** The handler's send_ident (sender UUID mongrel2 puts on request frames). */
  sendIdent: string;
  sendPort: number;
  recvPort: number;
  protocol: 'json' | 'tnetstring';
  /** Route prefix in the conf. */
  route: string;
}

export interface Mongrel2ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all. */
  error?: Error;
}

export interface Mongrel2Peer {
  /** PID of the spawned mongrel2 (the server itself: server.daemonize = 0). */
  readonly pid: number;
  readonly serverUuid: string;
  readonly httpPort: number;
  /** `http://127.0.0.1:${httpPort}` */
  readonly baseUrl: string;
  /** JSON-protocol handler, route '/handler'. */
  readonly handler: Mongrel2HandlerInfo;
  /** tnetstring-protocol handler, route '/tnet'. */
  readonly tnetHandler: Mongrel2HandlerInfo;
  /** Runtime folder = chroot (absolute path on disk). Removed by stop(). */
  readonly home: string;
  /** HOME/tmp on disk: where chroot-relative upload paths `/tmp/upload.*` live. */
  readonly uploadDir: string;
  /** HOME/static on disk (Dir route '/static/'). */
  readonly staticDir: string;
  /** HOME/mongrel2.conf (the rendered template). */
  readonly confPath: string;
  readonly flowControl: boolean;
  /** Map a chroot-relative path from mongrel2 (e.g. '/tmp/upload.AbC123') to the disk path. */
  hostPath(chrootPath: string): string;
  /**
   * stdout/stderr capture (pre-chroot startup messages) followed by
   * logs/error.log (everything after the chroot). After stop(), the final
   * snapshot taken before HOME was removed.
   */
  errorLog(): string;
  /** logs/access.log (snapshot after stop()). */
  accessLog(): string;
  /** null while running. */
  exitStatus(): Mongrel2ExitStatus | null;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<Mongrel2ExitStatus>;
  /** SIGINT → SIGTERM → SIGKILL (bounded waits), then remove HOME. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// ports

import { freePorts } from './process.js';

export { freePorts };

// ---------------------------------------------------------------------------
// raw HTTP probe

export interface RawHttpOptions {
  /** Resolve as soon as this returns true for everything received so far. */
  until?: (received: Buffer) => boolean;
  /** Overall deadline; rejects with RawHttpTimeoutError (default 5000 ms). */
  timeoutMs?: number;
  /**
   * Half-close (FIN) our side after writing. Default false: mongrel2 drops a
   * connection on read-side EOF, so handler routes would never answer.
   */
  endAfterWrite?: boolean;
  host?: string;
}

export class RawHttpTimeoutError extends Error {
  constructor(
    message: string,
    /** Bytes received before the deadline. */
    readonly received: Buffer,
  ) {
    super(message);
    this.name = 'RawHttpTimeoutError';
  }
}

/**
 * Open a TCP connection to 127.0.0.1:port, write `bytes` (strings are UTF-8;
 * pass a Buffer for exact bytes) and resolve with everything received until the
 * peer closes (FIN, or a reset - ECONNRESET counts as a close) or until
 * `opts.until(received)` is true. Rejects on connect errors and on the overall
 * timeout. Note that mongrel2 keeps HTTP/1.1 connections alive: without `until`
 * (see `untilCompleteResponse`) a keep-alive response only resolves on timeout.
 */
export function rawHttp(port: number, bytes: Buffer | string, opts: RawHttpOptions = {}): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const payload = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const received = (): Buffer => Buffer.concat(chunks);
    const sock = net.connect({ host: opts.host ?? '127.0.0.1', port });
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(received());
    };
    const timer = setTimeout(() => {
      const got = received();
      finish(new RawHttpTimeoutError(`rawHttp: no completion within ${timeoutMs} ms (${got.length} bytes received)`, got));
    }, timeoutMs);
    sock.on('connect', () => {
      sock.write(payload);
      if (opts.endAfterWrite) sock.end();
    });
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (opts.until && opts.until(received())) finish();
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish();
      else finish(err);
    });
  });
}

/**
 * `until` predicate for rawHttp: true once `count` complete HTTP responses are
 * in the buffer. Understands Content-Length and bodiless statuses (1xx, 204,
 * 304); with `head: true` no response has a body. Responses without
 * Content-Length (chunked / read-until-close) never count as complete - let
 * the connection close instead.
 */
export function untilCompleteResponse(count = 1, opts: { head?: boolean } = {}): (received: Buffer) => boolean {
  return (buf) => {
    let offset = 0;
    for (let seen = 0; seen < count; seen++) {
      const headerEnd = buf.indexOf('\r\n\r\n', offset, 'latin1');
      if (headerEnd < 0) return false;
      const head = buf.subarray(offset, headerEnd).toString('latin1');
      const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(head)?.[1] ?? NaN);
      let bodyLen = 0;
      if (!(opts.head || (status >= 100 && status < 200) || status === 204 || status === 304)) {
        const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        if (!m?.[1]) return false;
        bodyLen = Number(m[1]);
      }
      offset = headerEnd + 4 + bodyLen;
      if (buf.length < offset) return false;
    }
    return true;
  };
}

// ---------------------------------------------------------------------------
// conf rendering

/**
 * Replace every `@NAME@` placeholder in the template's non-comment lines (whole
 * `#` comment lines are copied verbatim, so they can document placeholders);
 * throws on a placeholder without a value or one left in the output.
 */
export function renderMongrel2Conf(template: string, values: Readonly<Record<string, string | number>>): string {
  return template
    .split('\n')
    .map((line) => {
      if (/^\s*#/.test(line)) return line;
      const out = line.replace(/@([A-Z][A-Z0-9_]*)@/g, (whole, name: string) => {
        const v = values[name];
        if (v === undefined) throw new Error(`renderMongrel2Conf: no value for placeholder ${whole}`);
        return String(v);
      });
      const left = /@[A-Z][A-Z0-9_]*@/.exec(out);
      if (left) throw new Error(`renderMongrel2Conf: placeholder ${left[0]} left in output`);
      return out;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------
// startup

class PortConflictError extends Error {
  override name = 'PortConflictError';
}

const PORT_CONFLICT_RE = /Can't announce on TCP port|Failed to bind/;



function m2shUser(): string {
  return loginName() ?? 'root';
}

function run(
  file: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (!err) return resolve({ code: 0, signal: null, output });
      const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals | null };
      const code = typeof e.code === 'number' ? e.code : null;
      resolve({ code, signal: e.signal ?? null, output: output + (code === null && !e.signal ? `\n${e.message}` : '') });
    });
  });
}

/**
 * For each port: is there a LISTEN socket on 127.0.0.1:port, and does it belong
 * to `pid`? Returns null when /proc is not usable (non-Linux): callers then rely
 * on the HTTP connect probe alone.
 */
function listenOwnership(pid: number, ports: readonly number[]): Map<number, PortOwner> | null {
  const result = new Map<number, PortOwner>();
  for (const port of ports) {
    const owner = listenOwner(pid, port);
    if (owner === null) return null;
    result.set(port, owner);
  }
  return result;
}



/**
 * Signal the child we spawned, SIGINT → SIGTERM → SIGKILL with bounded waits.
 * Safe against PID reuse: as long as Node has not reaped the child (exitCode and
 * signalCode both null) its PID cannot have been recycled, and
 * ChildProcess.kill() is a no-op once the handle is gone. /proc/PID/comm is
 * checked as well before each signal.
 */
async function terminate(child: ChildProcess, exited: Promise<Mongrel2ExitStatus>, ourBin = false): Promise<void> {
  const plan: Array<[NodeJS.Signals, number]> = [
    ['SIGINT', 5000],
    ['SIGTERM', 3000],
    ['SIGKILL', 3000],
  ];
  const pid = child.pid;
  if (pid === undefined) return; // never spawned
  for (const [sig, waitMs] of plan) {
    if (statusOf(child)) return;
    const comm = readIf(`/proc/${pid}/comm`).trim();
    if (comm !== '' && comm !== 'mongrel2' && comm !== 'setpriv' && !(ourBin && comm === 'node')) {
      throw new Error(`refusing to signal pid ${pid}: it is '${comm}', not mongrel2`);
    }
    child.kill(sig);
    // Cancel the wait timer once the child is gone: a pending timer would keep
    // the test process alive for up to waitMs.
    const ac = new AbortController();
    const timer = sleep(waitMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'aborted' as const);
    const r = await Promise.race([exited, timer]);
    ac.abort();
    if (r !== 'timeout') return;
  }
  if (!statusOf(child)) throw new Error(`mongrel2 pid ${pid} still alive after SIGKILL`);
}

interface Ports {
  http: number;
  jsonSend: number;
  jsonRecv: number;
  tnetSend: number;
  tnetRecv: number;
}

async function pickPorts(fixedHttp?: number): Promise<Ports> {
  const [free, jsonSend, jsonRecv, tnetSend, tnetRecv] = await freePorts(5);
  const http = fixedHttp ?? free;
  if (http === undefined || jsonSend === undefined || jsonRecv === undefined || tnetSend === undefined || tnetRecv === undefined) {
    throw new Error('freePorts(5) returned too few ports');
  }
  return { http, jsonSend, jsonRecv, tnetSend, tnetRecv };
}

function canUsePdeathsig(): boolean {
  return process.platform === 'linux' && fs.existsSync(SETPRIV_BIN);
}

async function startOnce(opts: StartMongrel2Options): Promise<Mongrel2Peer> {
  const flowControl = opts.flowControl ?? false;
  const startupTimeoutMs = opts.startupTimeoutMs ?? 10_000;
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2-'));
  const logsDir = path.join(home, 'logs');
  const outLog = path.join(logsDir, 'mongrel2.out');
  const errLog = path.join(logsDir, 'error.log');
  const readLogs = (): string => readIf(outLog) + readIf(errLog);

  let child: ChildProcess | undefined;
  let exited: Promise<Mongrel2ExitStatus> | undefined;
  try {
    // mongrel2 aborts ("Major failure in chroot/droppriv") without these.
    for (const dir of ['run', 'logs', 'tmp', 'static']) await fsp.mkdir(path.join(home, dir));
    for (const [name, body] of Object.entries(STATIC_FILES)) {
      await fsp.writeFile(path.join(home, 'static', name), body);
    }

    const ports = await pickPorts(opts.httpPort);
    const serverUuid = randomUUID();
    const handler: Mongrel2HandlerInfo = {
      sendSpec: `tcp://127.0.0.1:${ports.jsonSend}`,
      recvSpec: `tcp://127.0.0.1:${ports.jsonRecv}`,
      sendIdent: randomUUID(),
      sendPort: ports.jsonSend,
      recvPort: ports.jsonRecv,
      protocol: 'json',
      route: '/handler',
    };
    const tnetHandler: Mongrel2HandlerInfo = {
      sendSpec: `tcp://127.0.0.1:${ports.tnetSend}`,
      recvSpec: `tcp://127.0.0.1:${ports.tnetRecv}`,
      sendIdent: randomUUID(),
      sendPort: ports.tnetSend,
      recvPort: ports.tnetRecv,
      protocol: 'tnetstring',
      route: '/tnet',
    };

    const conf = renderMongrel2Conf(await fsp.readFile(MONGREL2_CONF_TEMPLATE, 'utf8'), {
      SERVER_UUID: serverUuid,
      HTTP_PORT: ports.http,
      JSON_SEND_PORT: ports.jsonSend,
      JSON_RECV_PORT: ports.jsonRecv,
      JSON_SEND_IDENT: handler.sendIdent,
      TNET_SEND_PORT: ports.tnetSend,
      TNET_RECV_PORT: ports.tnetRecv,
      TNET_SEND_IDENT: tnetHandler.sendIdent,
      FLOW_CONTROL: flowControl ? 1 : 0,
      ROOT_ROUTE: [...(opts.rootRoute ? ['/'] : []), ...(opts.handlerPaths ?? [])].map((p) => `'${p}': handler_json,`).join(' '),
      UPLOAD_STREAM: opts.uploadStream ? 1 : 0,
    });
    const confPath = path.join(home, 'mongrel2.conf');
    await fsp.writeFile(confPath, conf);

    // m2sh needs a login name ("getlogin failed and no LOGNAME env variable").
    const env: NodeJS.ProcessEnv = { ...process.env, LOGNAME: m2shUser() };
    const load = await run(M2SH_BIN, ['load', '-config', 'mongrel2.conf', '-db', 'config.sqlite'], {
      cwd: home,
      env,
      timeoutMs: 15_000,
    });
    await fsp.writeFile(path.join(logsDir, 'm2sh-load.log'), load.output);
    // m2sh exits 0 even when the config does not parse: check the output too.
    if (load.code !== 0 || /\[ERROR\]/.test(load.output) || !fs.existsSync(path.join(home, 'config.sqlite'))) {
      throw new Error(
        `m2sh load failed (exit ${load.code ?? load.signal}) for ${confPath}:\n${tail(load.output, 40)}`,
      );
    }

    const pdeathsig = canUsePdeathsig();
    const [cmd, args] = pdeathsig
      ? [SETPRIV_BIN, ['--pdeathsig', 'KILL', opts.bin ?? MONGREL2_BIN, 'config.sqlite', serverUuid]]
      : [opts.bin ?? MONGREL2_BIN, ['config.sqlite', serverUuid]];
    const outFd = fs.openSync(outLog, 'w');
    try {
      child = spawn(cmd, args, { cwd: home, env, stdio: ['ignore', outFd, outFd] });
    } finally {
      fs.closeSync(outFd);
    }
    const proc = child;
    exited = new Promise<Mongrel2ExitStatus>((resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal }));
      proc.once('error', (error) => {
        if (proc.pid === undefined) resolve({ code: null, signal: null, error });
      });
    });
    const exitedP = exited;
    const pid = await new Promise<number>((resolve, reject) => {
      if (proc.pid !== undefined) return resolve(proc.pid);
      void exitedP.then((s) => reject(new Error(`cannot spawn ${cmd}: ${s.error?.message ?? 'unknown error'}`)));
    });
    if (pdeathsig) proc.unref();

    // Readiness: bounded poll, no fixed sleeps. Backoff 25 ms → 200 ms.
    const deadline = Date.now() + startupTimeoutMs;
    const allPorts = [ports.http, ports.jsonSend, ports.jsonRecv, ports.tnetSend, ports.tnetRecv];
    const maxAttempts = Math.ceil(startupTimeoutMs / 25) + 1;
    let delay = 25;
    let ready = false;
    let lastState = 'no connection yet';
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const st = statusOf(proc);
      if (st) {
        const logs = readLogs();
        const msg = `mongrel2 exited during startup (code ${st.code}, signal ${st.signal}); log tail:\n${tail(logs)}`;
        throw PORT_CONFLICT_RE.test(logs) ? new PortConflictError(msg) : new Error(msg);
      }
      const logs = readLogs();
      if (PORT_CONFLICT_RE.test(logs)) {
        throw new PortConflictError(`mongrel2 could not bind a port; log tail:\n${tail(logs)}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      if (await tryConnect({ port: ports.http }, Math.min(500, remaining))) {
        const own = listenOwnership(pid, allPorts);
        if (own === null) {
          ready = true;
          break;
        }
        const states = allPorts.map((p) => `${p}:${own.get(p)}`).join(' ');
        if (allPorts.every((p) => own.get(p) === 'ours')) {
          ready = true;
          break;
        }
        if (allPorts.some((p) => own.get(p) === 'other')) {
          throw new PortConflictError(`a port chosen for mongrel2 is held by another process (${states})`);
        }
        lastState = `HTTP accepts, listen sockets: ${states}`;
      }
      await Promise.race([sleep(delay), exitedP]);
      delay = Math.min(delay * 2, 200);
    }
    if (!ready) {
      throw new Error(
        `mongrel2 (pid ${pid}) not ready within ${startupTimeoutMs} ms (${lastState}); log tail:\n${tail(readLogs())}`,
      );
    }

    let finalLogs: { error: string; access: string } | undefined;
    let stopping: Promise<void> | undefined;
    const accessLogPath = path.join(logsDir, 'access.log');
    const peer: Mongrel2Peer = {
      pid,
      serverUuid,
      httpPort: ports.http,
      baseUrl: `http://127.0.0.1:${ports.http}`,
      handler,
      tnetHandler,
      home,
      uploadDir: path.join(home, 'tmp'),
      staticDir: path.join(home, 'static'),
      confPath,
      flowControl,
      hostPath: (chrootPath) => path.join(home, path.posix.normalize('/' + chrootPath)),
      errorLog: () => finalLogs?.error ?? readLogs(),
      accessLog: () => finalLogs?.access ?? readIf(accessLogPath),
      exitStatus: () => statusOf(proc),
      exited: exitedP,
      stop: () =>
        (stopping ??= (async () => {
          try {
            await terminate(proc, exitedP, opts.bin !== undefined);
          } finally {
            finalLogs = { error: readLogs(), access: readIf(accessLogPath) };
            await fsp.rm(home, { recursive: true, force: true });
          }
        })()),
    };
    return peer;
  } catch (err) {
    if (child && exited) {
      try {
        await terminate(child, exited, opts.bin !== undefined);
      } catch {
        // reported below via the original error
      }
    }
    await fsp.rm(home, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Start a private mongrel2. See the module comment; call `stop()` in `after()`.
 * Retries up to 3 times with fresh ports/folder when a chosen port turned out
 * to be taken.
 */
export async function startMongrel2(opts: StartMongrel2Options = {}): Promise<Mongrel2Peer> {
  for (const bin of [MONGREL2_BIN, M2SH_BIN]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: install the Debian package mongrel2-core`);
  }
  const attempts = 3;
  for (let i = 1; ; i++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortConflictError) || i >= attempts || opts.httpPort !== undefined) throw err;
    }
  }
}
