/**
 * `mongrel2 <config.sqlite> <uuid>` as a process: load the config, open the
 * logs, bind, take the pid file, start the control port, drop privileges,
 * and handle the signals the way Mongrel2 does (HUP rotates logs; INT/TERM
 * stop; a second one exits at once).
 *
 * Node cannot chroot(2), so a configured chroot is the folder every server
 * path is resolved under (logs, pid file, run/control, relative Dir bases),
 * and the process works from there; docs/differences.md says so.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../handler/logger.js';
import { ControlPort, DEFAULT_CONTROL_SPEC } from '../control/control-port.js';
import type { ControlSignal, ControlTarget } from '../control/commands.js';
import { AccessLog, createErrorLog, type ErrorLog } from '../logs/writers.js';
import { createServer, type CoreServer } from '../server.js';
import { readSettings } from '../settings.js';
import { assertNotRunning, claimPidFile, releasePidFile } from './pid-file.js';

export interface RunningServer {
  readonly server: CoreServer;
  readonly address: { address: string; port: number };
  readonly root: string;
  readonly pidFile: string;
  readonly control: ControlPort;
  /** Resolves when the server has stopped (after a signal or stop()). */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
  reopenLogs(): void;
}

export interface RunOptions {
  /** Install SIGINT/SIGTERM/SIGHUP handlers on this process (the CLI does; embedders may not). */
  handleSignals?: boolean;
  /** Base folder for a server with no chroot (default process.cwd()). */
  cwd?: string;
}

/** Where a server-relative path (`/logs/access.log`) lives on disk. */
export function underRoot(root: string, p: string): string {
  return path.join(root, p);
}

export async function runServer(config: Config, options: RunOptions = {}): Promise<RunningServer> {
  const s = config.server;
  const root = s.chroot ? path.resolve(options.cwd ?? process.cwd(), s.chroot) : path.resolve(options.cwd ?? process.cwd());
  if (s.chroot) {
    const st = statSync(root, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new Error(`server ${s.uuid}: chroot ${s.chroot} is not a directory`);
  }
  const pidFile = underRoot(root, s.pidFile);
  // Before binding, so a second start names the running server rather than a busy port.
  assertNotRunning(pidFile);
  const errorLog: ErrorLog = await createErrorLog(s.errorLog ? underRoot(root, s.errorLog) : 'stderr', s.errorLogLevel);
  const log: Logger = errorLog.logger;
  const accessOff = readSettings(config.settings).disableAccessLogging;
  let access: AccessLog | undefined;
  let server: CoreServer | undefined;
  let address: { address: string; port: number };
  try {
    access = accessOff || !s.accessLog ? undefined : await AccessLog.open(underRoot(root, s.accessLog));
    const sink = access;
    server = createServer(config, { logger: log, cwd: root, accessLog: sink ? (e) => sink.write(e) : undefined });
    address = await server.listen();
    claimPidFile(pidFile);
  } catch (err) {
    // Nothing may stay bound or open when startup fails (an embedder may retry).
    await server?.close().catch(() => undefined);
    await access?.close().catch(() => undefined);
    await errorLog.close().catch(() => undefined);
    throw err;
  }
  const core = server;

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info({ uuid: s.uuid }, 'shutting down');
      for (const [sig, fn] of handlers) process.off(sig, fn);
      await Promise.allSettled([core.close(), control.close()]);
      await access?.close();
      releasePidFile(pidFile);
      log.info('server stopped');
      await errorLog.close();
      resolveStopped();
    })());
  const reopenLogs = (): void => {
    access?.reopen();
    errorLog.reopen();
    log.info('log files reopened');
  };

  const signal = (kind: ControlSignal): boolean => {
    // Mongrel2 raises the signal on itself; we act directly so embedded servers work too.
    // Deferred, so the control port sends its reply before it is closed.
    setImmediate(() => (kind === 'reload' ? reopenLogs() : void stop()));
    return true;
  };
  const target: ControlTarget = {
    info: { port: address.port, bindAddr: s.bindAddr, uuid: s.uuid, chroot: s.chroot, accessLog: s.accessLog, errorLog: s.errorLog, pidFile: s.pidFile, defaultHost: s.defaultHost },
    *clients() {
      for (const c of core.clients()) {
        yield { id: c.id, fd: -1, type: c.type, lastPing: c.lastPing * 1000, lastRead: c.lastRead * 1000, lastWrite: c.lastWrite * 1000, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten };
      }
    },
    tasks: () => [[1, false, 'main', '', 'running']],
    kill: (id) => core.kill(id),
    signal,
    now: () => Date.now(),
  };
  const control = new ControlPort({ spec: s.controlPort || config.settings.get('control_port') || DEFAULT_CONTROL_SPEC, cwd: root, target, logger: log });
  try {
    await control.start();
  } catch (err) {
    log.error({ err }, 'control port failed to start; serving without it');
  }

  const handlers: Array<[NodeJS.Signals, () => void]> = [];
  if (options.handleSignals) {
    let signals = 0;
    const onStop = (sig: NodeJS.Signals): void => {
      // A second INT/TERM while shutting down exits at once, as in Mongrel2.
      if (++signals > 1) {
        releasePidFile(pidFile);
        process.exit(0);
      }
      log.info({ signal: sig }, 'stopping');
      void stop();
    };
    handlers.push(['SIGINT', () => onStop('SIGINT')], ['SIGTERM', () => onStop('SIGTERM')], ['SIGHUP', reopenLogs], ['SIGPIPE', () => undefined]);
    for (const [sig, fn] of handlers) process.on(sig, fn);
  }
  dropPrivileges(root, Boolean(s.chroot), log);
  log.info({ uuid: s.uuid, port: address.port, root, pid: process.pid }, 'server started');
  return { server: core, address, root, pidFile, control, stopped, stop, reopenLogs };
}

/** As root with a chroot: become the owner of the chroot folder, like Mongrel2 (after binding and opening logs). */
function dropPrivileges(root: string, chrooted: boolean, log: Logger): void {
  if (!chrooted || typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const st = statSync(root);
  if (st.uid === 0) {
    log.warn({ root }, 'the chroot folder is owned by root: still running as root');
    return;
  }
  process.setgid!(st.gid);
  process.setuid!(st.uid);
  log.info({ uid: st.uid, gid: st.gid }, 'dropped privileges to the owner of the chroot folder');
}
