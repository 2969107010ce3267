/**
 * The server's pid file, as Mongrel2 keeps it: refuse to start when the pid
 * it names is alive, replace it when stale, remove it on a clean exit.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';

export class PidFileError extends Error {
  override readonly name = 'PidFileError';
}

/** Whether a process with this pid exists (EPERM means it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads a pid file; undefined when it is missing or holds no pid. */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Throws when `file` names a live process other than `pid`. */
export function assertNotRunning(file: string, pid = process.pid): void {
  const old = readPidFile(file);
  if (old !== undefined && old !== pid && isAlive(old)) {
    throw new PidFileError(`${file}: a server is already running as pid ${old}; stop it first or remove the pid file`);
  }
}

/** Writes `pid` to `file`, first removing a stale file; throws when the owner is alive. */
export function claimPidFile(file: string, pid = process.pid): void {
  assertNotRunning(file, pid);
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // 'wx': two servers racing for the same file cannot both win.
  writeFileSync(file, `${pid}`, { flag: 'wx' });
}

/** Removes the pid file if it still names `pid`. */
export function releasePidFile(file: string, pid = process.pid): void {
  if (readPidFile(file) !== pid) return;
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
