/**
 * config.sqlite → Config for one server uuid: what mongrel2 reads at startup
 * (src/mongrel2.c, src/config/config.c, src/config/module.c, src/mime.c), with
 * the same refusals, but each refusal names the table, row id and column.
 *
 * This is Mongrel2's default config module (module.c) as a ConfigSource: the
 * queries give the rows source.ts builds the Config from. A missing `xrequest`
 * table or `error_log_level` column (Debian's 1.12 schema) is tolerated: no
 * xrequests, level 2 (module.c fetches both separately with those defaults).
 */
import Database from 'better-sqlite3';
import { ConfigDbError } from './errors.js';
import { buildConfigSync, TABLES, type ConfigSource, type LoadFunction, type Table } from './source.js';
import type { Config } from './types.js';

type SqlRow = Record<string, unknown>;

function tableExists(db: Database.Database, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

function columnExists(db: Database.Database, table: string, column: string): boolean {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).some((c) => c.name === column);
}

const SQL_TYPE = { number: 'integer', string: 'text' } as const;

/**
 * Runs `SELECT <fn's columns> FROM table WHERE …` and checks every cell has
 * the type mongrel2's DB_check demands (integer or text; NULL never passes),
 * naming the row id and column. `fixed` columns are not in the table: their
 * value is spliced in.
 */
function typedRows(db: Database.Database, fn: LoadFunction, where = '', params: unknown[] = [], fixed: Readonly<Record<string, number | string>> = {}): Table {
  const { table, columns } = TABLES[fn];
  if (!tableExists(db, table)) throw new ConfigDbError(`config database has no ${table} table (was it written by m2sh load?)`);
  const read = columns.filter(([c]) => !(c in fixed));
  const select = read.map(([c]) => `${c}, typeof(${c}) AS "t:${c}"`).join(', ');
  let rows: SqlRow[];
  try {
    rows = db.prepare(`SELECT ${select} FROM ${table} ${where} ORDER BY id`).all(...params) as SqlRow[];
  } catch (err) {
    throw new ConfigDbError(`cannot read table ${table}: ${(err as Error).message}`);
  }
  return rows.map((row) => {
    for (const [name, type] of read) {
      const actual = row[`t:${name}`];
      if (actual !== SQL_TYPE[type]) {
        const value = Buffer.isBuffer(row[name]) ? `${(row[name] as Buffer).length} bytes` : JSON.stringify(row[name]);
        const shown = actual === 'null' ? 'NULL' : `${String(actual)} ${value.length > 60 ? value.slice(0, 60) + '…' : value}`;
        throw new ConfigDbError(`${table} row id=${String(row.id)}: column ${name} is ${shown}, expected ${SQL_TYPE[type]}`);
      }
    }
    // SQLite integers beyond 2^53 would not be exact; the cell check refuses them.
    return columns.map(([c, type]) => (c in fixed ? fixed[c]! : type === 'number' ? Number(row[c]) : (row[c] as string)));
  });
}

/** Mongrel2's default config module over an open config.sqlite. */
export function sqliteSource(db: Database.Database): ConfigSource {
  const byId = (fn: LoadFunction) => (id: number) => typedRows(db, fn, 'WHERE id = ?', [id]);
  const plugins = (fn: LoadFunction) => (serverId: number) => typedRows(db, fn, 'WHERE server_id = ?', [serverId]);
  const source: ConfigSource = {
    loadServer(uuid) {
      const fixed: Record<string, number> = columnExists(db, 'server', 'error_log_level') ? {} : { error_log_level: 2 };
      const rows = typedRows(db, 'loadServer', 'WHERE uuid = ?', [uuid], fixed);
      if (rows.length === 0) throw new ConfigDbError(`no server with uuid ${JSON.stringify(uuid)} in table server`);
      return rows;
    },
    loadHosts: (serverId) => typedRows(db, 'loadHosts', 'WHERE server_id = ?', [serverId]),
    loadRoutes: (hostId) => typedRows(db, 'loadRoutes', 'WHERE host_id = ?', [hostId]),
    loadHandler: byId('loadHandler'),
    loadProxy: byId('loadProxy'),
    loadDir: byId('loadDir'),
    loadMimetypes: () => typedRows(db, 'loadMimetypes'),
    loadSettings: () => typedRows(db, 'loadSettings'),
    loadFilters: plugins('loadFilters'),
    serverName(serverId) {
      // mongrel2 never reads `name` (only m2sh does), so NULL is tolerated there.
      const row = db.prepare('SELECT name FROM server WHERE id = ?').get(serverId) as { name: unknown } | undefined;
      return typeof row?.name === 'string' ? row.name : '';
    },
  };
  if (tableExists(db, 'xrequest')) source.loadXrequests = plugins('loadXrequests');
  return source;
}

/** Reads the config of server `uuid` from an open database. Throws ConfigDbError. */
export function readConfig(db: Database.Database, uuid: string): Config {
  return buildConfigSync(sqliteSource(db), uuid);
}

/** `mongrel2 <db> <uuid>`'s config read: opens `dbPath` read-only. */
export function loadConfig(dbPath: string, uuid: string): Config {
  let db: Database.Database;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new ConfigDbError(`cannot open config database ${dbPath}: ${(err as Error).message}`);
  }
  try {
    return readConfig(db, uuid);
  } finally {
    db.close();
  }
}
