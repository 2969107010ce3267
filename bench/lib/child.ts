/**
 * Bench child processes that announce readiness with a line on stdout
 * ("ready ..."): spawned through `setpriv --pdeathsig KILL` (they die with the
 * bench) and `prlimit --nofile` (room for many sockets), both of which exec,
 * so the PID is the program's own. Output goes to a log file as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const PRLIMIT_BIN = '/usr/bin/prlimit';
const SETPRIV_BIN = '/usr/bin/setpriv';

export interface BenchChild {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** The ready line, e.g. "ready 43255". */
  readonly ready: string;
  readonly logFile: string;
  /** Everything it printed on stdout so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** RLIMIT_NOFILE soft and hard (default 65536, at most our own hard limit). */
  nofile?: number;
  timeoutMs?: number;
  /** Give it a stdin pipe (default: /dev/null). */
  stdin?: boolean;
}

/** This process's hard RLIMIT_NOFILE (/proc/self/limits); children cannot go above it without CAP_SYS_RESOURCE. */
export function hardNofile(): number | undefined {
  const m = /^Max open files\s+\d+\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] ? Number(m[1]) : undefined;
}

export async function spawnReady(name: string, cmd: string, args: readonly string[], opts: SpawnOptions): Promise<BenchChild> {
  const nofile = Math.min(opts.nofile ?? 65536, hardNofile() ?? 65536);
  const wrap: string[] = [];
  if (fs.existsSync(SETPRIV_BIN)) wrap.push(SETPRIV_BIN, '--pdeathsig', 'KILL');
  if (fs.existsSync(PRLIMIT_BIN)) wrap.push(PRLIMIT_BIN, `--nofile=${nofile}:${nofile}`, '--');
  const argv = [...wrap, cmd, ...args];
  const log = fs.createWriteStream(opts.logFile, { flags: 'a' });
  log.write(`# ${argv.join(' ')}\n`);
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  proc.stderr!.pipe(log, { end: false });
  let out = '';
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name}: no "ready" line within ${opts.timeoutMs ?? 20_000} ms`)), opts.timeoutMs ?? 20_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${err.message}; ${opts.logFile}:\n${fs.existsSync(opts.logFile) ? fs.readFileSync(opts.logFile, 'utf8').slice(-2000) : ''}`));
    };
    proc.once('error', fail);
    proc.once('exit', (code, sig) => fail(new Error(`${name} exited during startup (code ${code}, signal ${sig})`)));
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      log.write(s);
      out += s;
      const line = /^ready\b.*$/m.exec(out)?.[0];
      if (line !== undefined) {
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        resolve(line);
      }
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    name,
    proc,
    pid: proc.pid!,
    ready,
    logFile: opts.logFile,
    output: () => out,
    stop: (graceMs = 5000) =>
      (stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.stdin?.end();
          proc.kill('SIGTERM');
          const r = await Promise.race([exited.then(() => 'exited' as const), sleep(graceMs, 'timeout' as const)]);
          if (r === 'timeout') {
            proc.kill('SIGKILL');
            await exited;
          }
        }
        log.end();
      })()),
  };
}
