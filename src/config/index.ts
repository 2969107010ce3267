/**
 * The config API: m2sh's `.conf` language, config.sqlite, config modules,
 * and the typed Config the core runs.
 */
import Database from 'better-sqlite3';
import { loadConfigText } from './load.js';
import { readConfig } from './read.js';
import type { Config } from './types.js';

export type * from './types.js';
export { parseConfig } from './parser.js';
export { loadConfigFile, loadConfigText } from './load.js';
export { loadConfig, readConfig } from './read.js';
export { loadConfigFromModule } from './modules/module-source.js';
export { ConfigSyntaxError, ConfigLoadError, ConfigDbError } from './errors.js';

/**
 * One server's Config straight from `.conf` text, through the same loader
 * and reader as `m2sh load` + `mongrel2` (an in-memory config database).
 */
export function configFromConf(text: string, uuid: string, file = '<config>'): Config {
  const db = new Database(':memory:');
  try {
    loadConfigText(db, text, file);
    return readConfig(db, uuid);
  } finally {
    db.close();
  }
}
