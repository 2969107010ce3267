// Shared by the bin shims. They run the compiled JS in dist/ (built by `npm
// run build`, which `npm ci` runs through `prepare`) when it is at least as
// new as every source file; otherwise, or with M2BRIDGE_TSX=1, the
// TypeScript sources through tsx. Compiled, a process needs ~30 MiB less and
// skips tsx's per-function helpers; the fallback keeps a stale build from
// ever running after an edit.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const STAMP = fileURLToPath(new URL('dist/.stamp', root));

/** The newest mtime of the .ts files below `dir`. */
function newest(dir) {
  let max = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${entry.name}`;
    if (entry.isDirectory()) max = Math.max(max, newest(p));
    else if (entry.name.endsWith('.ts')) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}

function distIsFresh() {
  if (process.env.M2BRIDGE_TSX === '1' || !existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  return ['src', 'adapters'].every((d) => newest(fileURLToPath(new URL(d, root))) <= built);
}

/** Registers tsx so TypeScript modules can be imported (idempotent). */
export async function useTsx() {
  const { register } = await import('tsx/esm/api');
  register();
}

/**
 * Runs a command module given by its source path relative to the package
 * root. `tsx: true` also registers tsx in compiled mode, for commands that
 * import the user's own .ts modules (m2bridge --app, --config).
 */
export async function runTs(relPath, options = {}) {
  if (distIsFresh()) {
    if (options.tsx) await useTsx();
    return import(new URL(`dist/${relPath.replace(/\.ts$/, '.js')}`, root).href);
  }
  await useTsx();
  return import(new URL(relPath, root).href);
}
