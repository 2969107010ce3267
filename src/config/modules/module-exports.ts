/**
 * Importing a plugin module by path and finding its functions: shared by
 * config modules and filters, which both stand in for Mongrel2's dlopen()ed
 * .so files and so accept either a named export or a method of the default
 * export, under any of a few names (camelCase or Mongrel2's C name).
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export type ModuleNamespace = Record<string, unknown>;
export type ModuleFunction = (...args: unknown[]) => unknown;

/** Imports `file` (relative paths against `baseDir`); rejects with an Error that says what and where. */
export async function importModule(file: string, what: string, baseDir = process.cwd()): Promise<ModuleNamespace> {
  try {
    // The commands may run compiled: TypeScript plugins need tsx, registered on first use.
    if (/\.[cm]?ts$/.test(file)) await registerTsx();
    return (await import(pathToFileURL(path.resolve(baseDir, file)).href)) as ModuleNamespace;
  } catch (err) {
    const hint = file.endsWith('.so') ? ' (Mongrel2 .so plugins cannot be loaded; m2bridge plugins are JS/TS modules)' : '';
    throw new Error(`cannot import ${what} ${file}${hint}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

let tsx: Promise<void> | undefined;
function registerTsx(): Promise<void> {
  return (tsx ??= import('tsx/esm/api').then((api) => void api.register()));
}

/**
 * The first of `names` that is a named export, else a method of the default
 * export (called on it, so a class instance keeps its `this`).
 */
export function moduleFunction(ns: ModuleNamespace, names: readonly string[]): ModuleFunction | undefined {
  const def = ns.default;
  const holders = def !== null && (typeof def === 'object' || typeof def === 'function') ? [ns, def as ModuleNamespace] : [ns];
  for (const holder of holders) {
    for (const key of names) {
      const v = holder[key];
      if (typeof v === 'function') return (...args: unknown[]) => (v as ModuleFunction).apply(holder === ns ? undefined : holder, args);
    }
  }
  return undefined;
}
