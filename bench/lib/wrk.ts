/**
 * Runs wrk (bounded) and parses its `--latency` output, the same fields as
 * ../shared/peers/bench/parse_wrk.py: req/s, p50/p75/p90/p99, requests,
 * socket errors, non-2xx/3xx responses.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export const WRK_BIN = '/usr/bin/wrk';

export interface WrkResult {
  rps: number | null;
  p50Ms: number | null;
  p75Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  requests: number | null;
  /** connect + read + write + timeout */
  socketErrors: number;
  socketErrorDetail: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  transfer: string | null;
}

const UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** '12.34ms' → 12.34 (milliseconds); null when it does not parse. */
export function toMs(v: string): number | null {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v);
  if (!m?.[1] || !m[2]) return null;
  const unit = UNIT[m[2]];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit * 1000) / 1000;
}

export function parseWrk(text: string): WrkResult {
  const num = (re: RegExp): number | null => {
    const m = re.exec(text);
    return m?.[1] !== undefined ? Number(m[1]) : null;
  };
  const pct = (p: string): number | null => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m?.[1] ? toMs(m[1]) : null;
  };
  const lat = /^\s+Latency\s+\S+\s+\S+\s+(\S+)/m.exec(text);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const detail = {
    connect: Number(se?.[1] ?? 0),
    read: Number(se?.[2] ?? 0),
    write: Number(se?.[3] ?? 0),
    timeout: Number(se?.[4] ?? 0),
  };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: pct('50'),
    p75Ms: pct('75'),
    p90Ms: pct('90'),
    p99Ms: pct('99'),
    maxMs: lat?.[1] ? toMs(lat[1]) : null,
    requests: num(/(\d+) requests in/),
    socketErrors: detail.connect + detail.read + detail.write + detail.timeout,
    socketErrorDetail: detail,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    transfer: /Transfer\/sec:\s+(\S+)/.exec(text)?.[1] ?? null,
  };
}

/** Live wrk processes, so that a signal handler can stop them. */
export const runningWrk = new Set<ChildProcess>();

/**
 * Runs `wrk args...` asynchronously (the event loop keeps draining the
 * bridge's stderr pipe meanwhile) and returns its output. SIGKILLed after
 * `timeoutMs`; rejects on a non-zero exit.
 */
export function runWrk(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRK_BIN, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    runningWrk.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      runningWrk.delete(child);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      runningWrk.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`wrk ${args.join(' ')} failed (code ${code}, signal ${signal}):\n${out}`));
    });
  });
}

/**
 * SIGINT/SIGTERM stop the running wrk processes at once (the bench then
 * cleans up in its finally blocks). Returns whether a signal has come.
 */
export function stopWrkOnSignal(log: (msg: string) => void): () => boolean {
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping wrk and cleaning up`);
    for (const c of runningWrk) c.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => interrupted;
}
