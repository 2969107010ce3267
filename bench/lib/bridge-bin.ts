/**
 * Starts a given m2bridge entry point (this checkout's or another build's),
 * optionally with the CPU profiler preloaded (bench/lib/cpu-profile.mjs),
 * and waits for its "m2bridge started" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const PRELOAD = fileURLToPath(new URL('./cpu-profile.mjs', import.meta.url));

export interface BridgeBin {
  readonly child: ChildProcess;
  log(): string;
  /** SIGTERM (graceful: a profile is written on exit), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export async function startBridgeBin(bin: string, args: readonly string[], profileDir?: string): Promise<BridgeBin> {
  const env = { ...process.env };
  if (profileDir) {
    fs.mkdirSync(profileDir, { recursive: true });
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${PRELOAD}`.trim();
    env.M2B_CPU_PROFILE_DIR = profileDir;
  }
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 15_000;
  while (!stderr.includes('m2bridge started')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${bin} did not start:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let stopping: Promise<void> | undefined;
  return {
    child,
    log: () => stderr,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
