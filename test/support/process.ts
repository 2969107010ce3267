/**
 * Process, port and file helpers shared by the test harnesses (mongrel2.ts,
 * php-fpm.ts, nginx.ts): free loopback ports, /proc lookups, bounded
 * readiness probes, and spawning/stopping daemons we own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const SETPRIV_BIN = '/usr/bin/setpriv';

/**
 * n distinct free TCP ports on 127.0.0.1: binds n servers to port 0 at the same
 * time (so the kernel hands out distinct ports), then closes them. Inherently
 * racy (someone may take a port before it is used); startMongrel2 retries.
 */
export async function freePorts(n: number): Promise<number[]> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`freePorts: bad count ${n}`);
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
      });
    }
    return servers.map((srv) => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('freePorts: no address');
      return addr.port;
    });
  } finally {
    await Promise.all(
      servers.map((srv) => new Promise<void>((resolve) => (srv.listening ? srv.close(() => resolve()) : resolve()))),
    );
  }
}

// ---------------------------------------------------------------------------
// process / file helpers

export interface DaemonExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all. */
  error?: Error;
}

export class PortConflictError extends Error {
  override name = 'PortConflictError';
}

export function readIf(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** uid/gid of a user from /etc/passwd, or null. */
export function lookupUser(name: string): { uid: number; gid: number } | null {
  for (const line of readIf('/etc/passwd').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && f[3] !== undefined) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  starttime: string;
}

function procStat(pid: number): ProcStat | null {
  const raw = readIf(`/proc/${pid}/stat`);
  const close = raw.lastIndexOf(')');
  if (close < 0) return null;
  const f = raw.slice(close + 2).split(' ');
  const state = f[0];
  const ppid = f[1];
  const starttime = f[19];
  if (state === undefined || ppid === undefined || starttime === undefined) return null;
  return { pid, state, ppid: Number(ppid), starttime };
}

/** true if /proc/PID exists and is not a zombie. */
export function isProcessAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Live (non-zombie) children of `pid`, from /proc. */
export function childProcesses(pid: number): Array<{ pid: number; starttime: string }> {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: Array<{ pid: number; starttime: string }> = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.ppid === pid && st.state !== 'Z' && st.state !== 'X') out.push({ pid: st.pid, starttime: st.starttime });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

export type PortOwner = 'ours' | 'other' | 'none';

/** Is there a LISTEN socket on 127.0.0.1/0.0.0.0:port, and is it one of `pid`'s fds? null without /proc. */
export function listenOwner(pid: number, port: number): PortOwner | null {
  let table: string;
  let fds: string[];
  try {
    table = fs.readFileSync('/proc/net/tcp', 'utf8');
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  const own = new Set<string>();
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) own.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  let result: PortOwner = 'none';
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = f[1];
    const inode = f[9];
    if (!local || f[3] !== '0A' || inode === undefined) continue; // 0A = LISTEN
    const [hexAddr, hexPort] = local.split(':');
    if (hexAddr !== '0100007F' && hexAddr !== '00000000') continue;
    if (hexPort === undefined || parseInt(hexPort, 16) !== port) continue;
    if (own.has(inode)) return 'ours';
    result = 'other';
  }
  return result;
}

export function tryConnect(target: { port: number } | { path: string }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: '127.0.0.1', port: target.port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export interface Daemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<DaemonExitStatus>;
  /** comm values accepted before signalling (besides 'setpriv' before its exec). */
  readonly comms: readonly string[];
}

export function statusOf(child: ChildProcess): DaemonExitStatus | null {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode as NodeJS.Signals | null };
  }
  return null;
}

/**
 * Spawn `bin args` (through `setpriv --pdeathsig SIG` when available), stdout and
 * stderr appended to outLog. Resolves once the PID is known.
 */
export async function spawnDaemon(
  bin: string,
  args: readonly string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; outLog: string; pdeathsig: NodeJS.Signals; comms: readonly string[] },
): Promise<Daemon> {
  const pdeathsig = process.platform === 'linux' && fs.existsSync(SETPRIV_BIN);
  const sig = opts.pdeathsig.replace(/^SIG/, '');
  const [cmd, argv] = pdeathsig ? [SETPRIV_BIN, ['--pdeathsig', sig, bin, ...args]] : [bin, [...args]];
  const outFd = fs.openSync(opts.outLog, 'a');
  let proc: ChildProcess;
  try {
    proc = spawn(cmd, argv, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', outFd, outFd] });
  } finally {
    fs.closeSync(outFd);
  }
  const exited = new Promise<DaemonExitStatus>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', (error) => {
      if (proc.pid === undefined) resolve({ code: null, signal: null, error });
    });
  });
  const pid = await new Promise<number>((resolve, reject) => {
    if (proc.pid !== undefined) return resolve(proc.pid);
    void exited.then((s) => reject(new Error(`cannot spawn ${cmd}: ${s.error?.message ?? 'unknown error'}`)));
  });
  if (pdeathsig) proc.unref();
  return { proc, pid, exited, comms: opts.comms };
}

/**
 * Signal the daemon we spawned along `plan` (bounded waits). Never signals
 * anything but our own unreaped child, except: if the master had to be SIGKILLed,
 * its former children (recorded as pid + start time while they were its
 * children) that are still alive are SIGKILLed as well.
 */
export async function terminateDaemon(d: Daemon, plan: ReadonlyArray<readonly [NodeJS.Signals, number]>): Promise<void> {
  const { proc, pid } = d;
  const known = new Map<number, string>();
  const remember = (): void => {
    if (statusOf(proc)) return;
    for (const c of childProcesses(pid)) known.set(c.pid, c.starttime);
  };
  let killed = false;
  for (const [sig, waitMs] of plan) {
    if (statusOf(proc)) break;
    const comm = readIf(`/proc/${pid}/comm`).trim();
    if (comm !== '' && comm !== 'setpriv' && !d.comms.includes(comm)) {
      throw new Error(`refusing to signal pid ${pid}: it is '${comm}', not ${d.comms.join('/')}`);
    }
    remember();
    if (sig === 'SIGKILL') killed = true;
    proc.kill(sig);
    const ac = new AbortController();
    const timer = sleep(waitMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'aborted' as const);
    const r = await Promise.race([d.exited, timer]);
    ac.abort();
    if (r !== 'timeout') break;
  }
  if (!statusOf(proc)) throw new Error(`pid ${pid} (${d.comms.join('/')}) still alive after ${plan.map((p) => p[0]).join(', ')}`);
  if (!killed) return;
  // The master died without reaping its workers: they are orphans now.
  const orphans = [...known].filter(([cpid, start]) => {
    const st = procStat(cpid);
    return st !== null && st.starttime === start && st.state !== 'Z' && st.state !== 'X';
  });
  for (const [cpid] of orphans) {
    try {
      process.kill(cpid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 3000;
  while (orphans.some(([cpid]) => isProcessAlive(cpid)) && Date.now() < deadline) await sleep(20);
}

