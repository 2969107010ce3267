/**
 * Runs the real `m2bridge` command (bin/m2bridge.js) as a child process for
 * end-to-end tests, and stops it with SIGTERM (its graceful drain).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const M2BRIDGE_BIN = fileURLToPath(new URL('../../bin/m2bridge.js', import.meta.url));

export interface BridgeProcess {
  readonly child: ChildProcess;
  /** Everything the process wrote to stderr so far (JSON log lines). */
  log(): string;
  /** SIGTERM, then wait for exit (SIGKILL after `graceMs`). Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

/**
 * Starts m2bridge and waits for its "m2bridge started" log line (bounded).
 * M2BRIDGE_NODE_FLAGS (space-separated) go to node first: benches use it for
 * `--cpu-prof`, which NODE_OPTIONS refuses.
 */
export async function startBridge(args: readonly string[], timeoutMs = 10_000): Promise<BridgeProcess> {
  const flags = (process.env.M2BRIDGE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...flags, M2BRIDGE_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (s: string) => {
      stderr += s;
      if (stderr.includes('m2bridge started')) resolve();
    });
    void exited.then((code) => reject(new Error(`m2bridge exited (code ${code}) before starting:\n${stderr}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([started, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`m2bridge not started within ${timeoutMs} ms:\n${stderr}`)), timeoutMs)))]);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  let stopping: Promise<number | null> | undefined;
  return {
    child,
    exited,
    log: () => stderr,
    stop: (graceMs = 10_000) =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        child.kill('SIGTERM');
        const timer2 = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const [code] = (await once(child, 'exit')) as [number | null];
        clearTimeout(timer2);
        return code;
      })()),
  };
}
