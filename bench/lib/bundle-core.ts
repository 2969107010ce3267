/**
 * bench/servers/core.ts as one plain ESM file (esbuild, the one tsx already
 * brings), so the core can run under bare `node` without tsx's loader, which
 * by itself adds ~38 MB of RSS to a Node process. Written under
 * node_modules/.cache/ so the external packages (zeromq, better-sqlite3,
 * pino, ...) still resolve from the project's node_modules.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function bundleCore(root: string): string {
  const out = path.join(root, 'node_modules', '.cache', 'm2bench', `core-${process.pid}.mjs`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const esbuild = path.join(root, 'node_modules', '.bin', 'esbuild');
  execFileSync(esbuild, ['bench/servers/core.ts', '--bundle', '--platform=node', '--format=esm', '--packages=external', '--target=node20', `--outfile=${out}`, '--log-level=warning'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  return out;
}

/** How a bench runs our core: `bundled` (the default: compiled, as the bins run it) or `tsx` (CORE_RUN=tsx: the sources). */
export const CORE_RUN: 'bundled' | 'tsx' = process.env.CORE_RUN === 'tsx' ? 'tsx' : 'bundled';
