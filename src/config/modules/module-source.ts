/**
 * `mongrel2 <arg> <uuid> <module>`: a config module is a JS/TS ES module that
 * does what Mongrel2's dlopen()ed config modules do (src/config/config.c
 * Config_module_load, reference/server-core.md §10): `init(arg)`, `close()`
 * and the load functions of ConfigSource, each returning a table (rows of
 * number/string cells, or the tnetstring bytes of one), sync or async.
 *
 * Names: camelCase (`loadServer`) or Mongrel2's (`config_load_server`,
 * `config_init`), as named exports or as properties of the default export.
 * Like Config_module_load, every required function must exist before init()
 * runs. Optional: `loadXrequests` (Mongrel2 never asks a module for them),
 * `serverName` (m2bridge: the server's name, which Mongrel2 never reads).
 * init() fails by throwing or by returning anything but undefined, 0 or true
 * (Mongrel2: non-zero). close() runs after a successful init() whatever happens.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigDbError } from '../errors.js';
import { buildConfig, type ConfigSource } from '../source.js';
import type { Config } from '../types.js';

const REQUIRED = ['loadServer', 'loadHosts', 'loadRoutes', 'loadHandler', 'loadProxy', 'loadDir', 'loadMimetypes', 'loadSettings', 'loadFilters'] as const;
const OPTIONAL = ['loadXrequests', 'serverName'] as const;

type Fn = (...args: unknown[]) => unknown;

/** `loadServer` → `config_load_server`. */
function snakeName(name: string): string {
  return `config_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

/**
 * A function by either name: a named export first, else a method of the
 * default export (called on it, so a class instance keeps its `this`).
 */
function lookup(ns: Record<string, unknown>, name: string): Fn | undefined {
  const def = ns.default;
  const holders = def !== null && (typeof def === 'object' || typeof def === 'function') ? [ns, def as Record<string, unknown>] : [ns];
  for (const holder of holders) {
    for (const key of [name, snakeName(name)]) {
      const v = holder[key];
      if (typeof v === 'function') return (...args: unknown[]) => (v as Fn).apply(holder === ns ? undefined : holder, args);
    }
  }
  return undefined;
}

export interface ConfigModule {
  readonly source: ConfigSource;
  init(arg: string): Promise<void>;
  close(): Promise<void>;
}

/** Checks a module namespace and wraps it. `where` names the module in errors. */
export function configModule(ns: Record<string, unknown>, where: string): ConfigModule {
  const missing = (['init', 'close', ...REQUIRED] as const).filter((n) => lookup(ns, n) === undefined);
  if (missing.length > 0) {
    const names = missing.map((n) => `${n} (or ${snakeName(n)})`).join(', ');
    throw new ConfigDbError(`config module ${where} does not export ${missing.length === 1 ? 'the function' : 'the functions'} ${names}`);
  }
  const source: Record<string, Fn> = {};
  for (const name of [...REQUIRED, ...OPTIONAL]) {
    const fn = lookup(ns, name);
    if (fn) source[name] = fn;
  }
  const init = lookup(ns, 'init')!;
  const close = lookup(ns, 'close')!;
  return {
    source: source as unknown as ConfigSource,
    async init(arg) {
      let rc: unknown;
      try {
        rc = await init(arg);
      } catch (err) {
        throw new ConfigDbError(`init(${JSON.stringify(arg)}) threw: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (rc !== undefined && rc !== 0 && rc !== true) {
        throw new ConfigDbError(`init(${JSON.stringify(arg)}) returned ${JSON.stringify(rc) ?? String(rc)}: the module refused to start`);
      }
    },
    async close() {
      try {
        await close();
      } catch (err) {
        throw new ConfigDbError(`close() threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

/**
 * Imports the module at `modulePath` (relative to the cwd), runs init(arg),
 * builds the Config of server `uuid` with the same checks and refusals as
 * config.sqlite, then close(). Rejects with a ConfigDbError naming the module,
 * the function, row and cell.
 */
export async function loadConfigFromModule(modulePath: string, arg: string, uuid: string): Promise<Config> {
  const prefix = (err: unknown): ConfigDbError =>
    new ConfigDbError(`config module ${modulePath}: ${err instanceof Error ? err.message : String(err)}`);
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(path.resolve(modulePath)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigDbError(`cannot import config module ${modulePath}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const mod = configModule(ns, modulePath);
  try {
    await mod.init(arg);
  } catch (err) {
    throw prefix(err);
  }
  let config: Config;
  try {
    config = await buildConfig(mod.source, uuid);
  } catch (err) {
    await mod.close().catch(() => undefined);
    throw prefix(err);
  }
  try {
    await mod.close();
  } catch (err) {
    throw prefix(err);
  }
  return config;
}
