/**
 * /proc readers for the benchmark: resident memory, CPU time per process
 * tree, system-wide CPU, and the socket fds of a process.
 */
import * as fs from 'node:fs';

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Clock ticks per second for /proc/PID/stat times (USER_HZ; 100 on Linux). */
export const CLK_TCK = 100;

export interface Mem {
  /** VmRSS, KiB */
  rssKiB: number;
  /** VmHWM (peak RSS), KiB */
  hwmKiB: number;
}

/** VmRSS and VmHWM of one process, or null if it is gone. */
export function memOf(pid: number): Mem | null {
  const status = read(`/proc/${pid}/status`);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (rss === undefined) return null;
  return { rssKiB: Number(rss), hwmKiB: Number(hwm ?? rss) };
}

interface Stat {
  comm: string;
  ppid: number;
  ticks: number;
}

function statOf(pid: number): Stat | null {
  const raw = read(`/proc/${pid}/stat`);
  const open = raw.indexOf('(');
  const close = raw.lastIndexOf(')');
  if (open < 0 || close < 0) return null;
  const f = raw.slice(close + 2).split(' ');
  // fields after comm: state(0) ppid(1) ... utime(11) stime(12)
  const ppid = Number(f[1]);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return { comm: raw.slice(open + 1, close), ppid, ticks: utime + stime };
}

/** comm of a process ('' if gone). */
export function commOf(pid: number): string {
  return statOf(pid)?.comm ?? '';
}

/** All live descendants of `pid` (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = statOf(Number(e));
    if (st) parent.set(Number(e), st.ppid);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out.sort((a, b) => a - b);
}

/** utime + stime (ticks) of `pid` and every live descendant. */
export function treeTicks(pid: number): number {
  let sum = 0;
  for (const p of [pid, ...descendants(pid)]) sum += statOf(p)?.ticks ?? 0;
  return sum;
}

/** utime + stime (ticks) of exactly these processes. */
export function ticksOf(pids: readonly number[]): number {
  let sum = 0;
  for (const p of pids) sum += statOf(p)?.ticks ?? 0;
  return sum;
}

/** System-wide CPU from /proc/stat: total and busy (non-idle, non-iowait) ticks over all cores. */
export function systemCpu(): { total: number; busy: number } {
  const line = read('/proc/stat').split('\n').find((l) => l.startsWith('cpu '));
  const f = (line ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { total, busy: total - idle };
}

/** socket:[inode] fds of a process, as a set of inodes. */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) out.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Inodes of all unix-domain sockets on the machine (/proc/net/unix). */
export function unixSocketInodes(): Set<string> {
  const out = new Set<string>();
  for (const line of read('/proc/net/unix').split('\n').slice(1)) {
    const inode = line.trim().split(/\s+/)[6];
    if (inode) out.add(inode);
  }
  return out;
}

/**
 * CPU ticks of one process split by thread: the main thread (tid = pid, where
 * all JavaScript runs in Node), libzmq's background threads (comm ZMQbg/...),
 * and every other thread (V8 GC/compiler helpers, the libuv thread pool that
 * runs fs calls).
 */
export function threadTicks(pid: number): { main: number; zmq: number; other: number } {
  const out = { main: 0, zmq: 0, other: 0 };
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const raw = read(`/proc/${pid}/task/${tid}/stat`);
    const open = raw.indexOf('(');
    const close = raw.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    const comm = raw.slice(open + 1, close);
    const f = raw.slice(close + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    if (!Number.isFinite(ticks)) continue;
    if (Number(tid) === pid) out.main += ticks;
    else if (comm.startsWith('ZMQbg')) out.zmq += ticks;
    else out.other += ticks;
  }
  return out;
}

/**
 * utime + stime of `pid` itself (own) and of its children that it has already
 * waited for (reaped: cutime + cstime). For the bench process, `reaped` grows
 * by exactly the CPU time of each wrk run once wrk has exited.
 */
export function ownAndReapedTicks(pid: number): { own: number; reaped: number } {
  const raw = read(`/proc/${pid}/stat`);
  const close = raw.lastIndexOf(')');
  if (close < 0) return { own: 0, reaped: 0 };
  const f = raw.slice(close + 2).split(' ').map(Number);
  return { own: (f[11] ?? 0) + (f[12] ?? 0), reaped: (f[13] ?? 0) + (f[14] ?? 0) };
}
