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
import { ConfigDbError } from '../errors.js';
import { buildConfig, type ConfigSource } from '../source.js';
import type { Config } from '../types.js';
import { importModule, moduleFunction, type ModuleFunction, type ModuleNamespace } from './module-exports.js';

const REQUIRED = ['loadServer', 'loadHosts', 'loadRoutes', 'loadHandler', 'loadProxy', 'loadDir', 'loadMimetypes', 'loadSettings', 'loadFilters'] as const;
const OPTIONAL = ['loadXrequests', 'serverName'] as const;

type Fn = ModuleFunction;
const lookup = (ns: ModuleNamespace, name: string): Fn | undefined => moduleFunction(ns, [name, snakeName(name)]);

/** `loadServer` → `config_load_server`. */
function snakeName(name: string): string {
  return `config_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

export interface ConfigModule {
  readonly source: ConfigSource;
  init(arg: string): Promise<void>;
  close(): Promise<void>;
}

/** Checks a module namespace and wraps it. `where` names the module in errors. */
export function configModule(ns: ModuleNamespace, where: string): ConfigModule {
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
  let ns: ModuleNamespace;
  try {
    ns = await importModule(modulePath, 'config module');
  } catch (err) {
    throw new ConfigDbError((err as Error).message);
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
