/**
 * User and system CPU ticks of a process (all its threads) from
 * /proc/PID/stat: how much of a server's time is its own code and how much is
 * the kernel working for it (syscalls, loopback TCP).
 */
import * as fs from 'node:fs';

export function userSys(pid: number): { user: number; sys: number } {
  let raw = '';
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { user: 0, sys: 0 };
  }
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
  // after comm: state(0) ppid(1) ... utime(11) stime(12)
  return { user: Number(f[11]) || 0, sys: Number(f[12]) || 0 };
}
