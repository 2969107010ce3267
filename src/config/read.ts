/**
 * config.sqlite → Config for one server uuid: what mongrel2 reads at startup
 * (src/mongrel2.c, src/config/config.c, src/config/module.c, src/mime.c), with
 * the same refusals, but each refusal names the table, row id and column.
 *
 * Order: settings (last row wins), mimetypes, the server row by uuid, its
 * hosts in row order, each host's routes in row order with their target rows,
 * filters, xrequests. A missing `xrequest` table or `error_log_level` column
 * (Debian's 1.12 schema) is tolerated: no xrequests, level 2.
 */
import Database from 'better-sqlite3';
import { ConfigDbError } from './errors.js';
import { parse } from '../protocol/tnetstring.js';
import type {
  Config,
  DirTarget,
  FilterConfig,
  HandlerTarget,
  HostConfig,
  ProxyTarget,
  RouteConfig,
  ServerConfig,
  Target,
} from './types.js';

type CellType = 'integer' | 'text';
type Row = Record<string, unknown>;

function tableExists(db: Database.Database, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
}

function columnExists(db: Database.Database, table: string, column: string): boolean {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).some((c) => c.name === column);
}

/**
 * Runs `SELECT cols FROM table WHERE …` and checks every cell has the type
 * mongrel2's DB_check demands (integer or text; NULL never passes).
 */
function typedRows(
  db: Database.Database,
  table: string,
  cols: Readonly<Record<string, CellType>>,
  where = '',
  params: unknown[] = [],
): Row[] {
  if (!tableExists(db, table)) throw new ConfigDbError(`config database has no ${table} table (was it written by m2sh load?)`);
  const names = Object.keys(cols);
  const select = names.map((c) => `${c}, typeof(${c}) AS "t:${c}"`).join(', ');
  let rows: Row[];
  try {
    rows = db.prepare(`SELECT ${select} FROM ${table} ${where} ORDER BY id`).all(...params) as Row[];
  } catch (err) {
    throw new ConfigDbError(`cannot read table ${table}: ${(err as Error).message}`);
  }
  for (const row of rows) {
    for (const name of names) {
      const actual = row[`t:${name}`];
      if (actual !== cols[name]) {
        const value = Buffer.isBuffer(row[name]) ? `${(row[name] as Buffer).length} bytes` : JSON.stringify(row[name]);
        const shown = actual === 'null' ? 'NULL' : `${String(actual)} ${value.length > 60 ? value.slice(0, 60) + '…' : value}`;
        throw new ConfigDbError(`${table} row id=${String(row.id)}: column ${name} is ${shown}, expected ${cols[name]}`);
      }
    }
  }
  return rows;
}

const text = (row: Row, col: string): string => row[col] as string;
const int = (row: Row, col: string): number => Number(row[col]);

function readSettings(db: Database.Database): Map<string, string> {
  const settings = new Map<string, string>();
  for (const row of typedRows(db, 'setting', { id: 'integer', key: 'text', value: 'text' })) {
    settings.set(text(row, 'key'), text(row, 'value'));
  }
  return settings;
}

function readMimetypes(db: Database.Database, settings: ReadonlyMap<string, string>): Map<string, string> {
  const maxLen = atoi(settings.get('limits.mime_ext_len'), 128);
  const mimetypes = new Map<string, string>();
  const rows = typedRows(db, 'mimetype', { id: 'integer', extension: 'text', mimetype: 'text' });
  for (const row of rows) {
    const ext = text(row, 'extension');
    const type = text(row, 'mimetype');
    const at = `mimetype row id=${String(row.id)}`;
    if (ext === '') throw new ConfigDbError(`${at}: column extension is empty`);
    if (type === '') throw new ConfigDbError(`${at}: column mimetype is empty for ${JSON.stringify(ext)}`);
    if (!ext.startsWith('.')) throw new ConfigDbError(`${at}: column extension ${JSON.stringify(ext)} does not start with '.'`);
    if (Buffer.byteLength(ext) >= maxLen) {
      throw new ConfigDbError(`${at}: column extension ${JSON.stringify(ext)} is not shorter than limits.mime_ext_len=${maxLen}`);
    }
    if (mimetypes.has(ext)) throw new ConfigDbError(`${at}: column extension ${JSON.stringify(ext)} is a duplicate; mongrel2 refuses to start`);
    mimetypes.set(ext, type);
  }
  return mimetypes;
}

/** C atoi() as Setting_get_int uses it: leading digits, else the default when unset. */
function atoi(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^\s*([-+]?\d+)/.exec(value);
  return m ? parseInt(m[1]!, 10) : 0;
}

function readTarget(db: Database.Database, routeId: number, type: string, id: number): Target {
  const one = (table: string, cols: Record<string, CellType>): Row => {
    const rows = typedRows(db, table, cols, 'WHERE id = ?', [id]);
    if (rows.length === 0) throw new ConfigDbError(`route row id=${routeId}: column target_id=${id} names no ${table} row`);
    return rows[0]!;
  };
  if (type === 'dir') {
    const r = one('directory', { id: 'integer', base: 'text', index_file: 'text', default_ctype: 'text', cache_ttl: 'integer' });
    const dir: DirTarget = {
      type: 'dir',
      id,
      base: text(r, 'base'),
      indexFile: text(r, 'index_file'),
      defaultCtype: text(r, 'default_ctype'),
      cacheTtl: int(r, 'cache_ttl'),
    };
    return dir;
  }
  if (type === 'proxy') {
    const r = one('proxy', { id: 'integer', addr: 'text', port: 'integer' });
    const proxy: ProxyTarget = { type: 'proxy', id, addr: text(r, 'addr'), port: int(r, 'port') };
    return proxy;
  }
  if (type === 'handler') {
    const r = one('handler', {
      id: 'integer',
      send_spec: 'text',
      send_ident: 'text',
      recv_spec: 'text',
      recv_ident: 'text',
      raw_payload: 'integer',
      protocol: 'text',
    });
    const handler: HandlerTarget = {
      type: 'handler',
      id,
      sendSpec: text(r, 'send_spec'),
      sendIdent: text(r, 'send_ident'),
      recvSpec: text(r, 'recv_spec'),
      recvIdent: text(r, 'recv_ident'),
      rawPayload: int(r, 'raw_payload') === 1,
      // Anything but 'tnetstring' means JSON (config.c).
      protocol: text(r, 'protocol') === 'tnetstring' ? 'tnetstring' : 'json',
    };
    return handler;
  }
  throw new ConfigDbError(`route row id=${routeId}: column target_type ${JSON.stringify(type)} is not dir, proxy or handler`);
}

/**
 * Handlers with the same send_spec and recv_spec are one handler (the first
 * one loaded); sharing only one of the two is allowed (mongrel2 just warns).
 */
function mergeHandler(handlers: HandlerTarget[], h: HandlerTarget): HandlerTarget {
  const same = handlers.find((o) => o.sendSpec === h.sendSpec && o.recvSpec === h.recvSpec);
  if (same) return same;
  handlers.push(h);
  return h;
}

function readPlugins(db: Database.Database, table: 'filter' | 'xrequest', serverId: number): FilterConfig[] {
  const rows = typedRows(db, table, { id: 'integer', name: 'text', settings: 'text' }, 'WHERE server_id = ?', [serverId]);
  return rows.map((row) => {
    const at = `${table} row id=${String(row.id)}: column settings`;
    let settings: unknown;
    try {
      // Like mongrel2's tns_parse, bytes after the first value are ignored.
      settings = parse(Buffer.from(text(row, 'settings'), 'utf8')).value;
    } catch (err) {
      throw new ConfigDbError(`${at} is not a tnetstring: ${(err as Error).message}`);
    }
    if (settings === null || typeof settings !== 'object' || Array.isArray(settings) || Buffer.isBuffer(settings)) {
      throw new ConfigDbError(`${at} must be a tnetstring dict`);
    }
    return { id: int(row, 'id'), name: text(row, 'name'), settings: settings as Record<string, unknown> };
  });
}

function readServer(db: Database.Database, uuid: string): ServerConfig {
  const hasLevel = columnExists(db, 'server', 'error_log_level');
  const cols: Record<string, CellType> = {
    id: 'integer',
    uuid: 'text',
    default_host: 'text',
    bind_addr: 'text',
    port: 'integer',
    chroot: 'text',
    access_log: 'text',
    error_log: 'text',
    pid_file: 'text',
    control_port: 'text',
    use_ssl: 'integer',
  };
  if (hasLevel) cols.error_log_level = 'integer';
  const rows = typedRows(db, 'server', cols, 'WHERE uuid = ?', [uuid]);
  if (rows.length === 0) throw new ConfigDbError(`no server with uuid ${JSON.stringify(uuid)} in table server`);
  const row = rows[0]!;
  const serverId = int(row, 'id');
  const at = `server row id=${serverId}`;
  // mongrel2 never reads `name` (only m2sh does), so NULL is tolerated there.
  const name = (db.prepare('SELECT name FROM server WHERE id = ?').get(serverId) as { name: unknown }).name;
  if (int(row, 'port') <= 0) throw new ConfigDbError(`${at}: column port must be > 0, got ${int(row, 'port')}`);

  const handlers: HandlerTarget[] = [];
  const hosts: HostConfig[] = typedRows(db, 'host', { id: 'integer', name: 'text', matching: 'text', server_id: 'integer' }, 'WHERE server_id = ?', [serverId]).map((h) => {
    const hostId = int(h, 'id');
    const routes: RouteConfig[] = typedRows(db, 'route', { id: 'integer', path: 'text', target_id: 'integer', target_type: 'text' }, 'WHERE host_id = ?', [hostId]).map((r) => {
      const routeId = int(r, 'id');
      let target = readTarget(db, routeId, text(r, 'target_type'), int(r, 'target_id'));
      if (target.type === 'handler') target = mergeHandler(handlers, target);
      return { id: routeId, path: text(r, 'path'), target };
    });
    return { id: hostId, name: text(h, 'name'), matching: text(h, 'matching'), routes };
  });

  const defaultHost = text(row, 'default_host');
  if (!hosts.some((h) => h.name === defaultHost)) {
    const names = hosts.map((h) => JSON.stringify(h.name)).join(', ') || 'none';
    throw new ConfigDbError(`${at}: column default_host ${JSON.stringify(defaultHost)} is not the name of one of its hosts (${names})`);
  }

  return {
    id: serverId,
    uuid: text(row, 'uuid'),
    name: typeof name === 'string' ? name : '',
    bindAddr: text(row, 'bind_addr'),
    port: int(row, 'port'),
    chroot: text(row, 'chroot'),
    accessLog: text(row, 'access_log'),
    errorLog: text(row, 'error_log'),
    errorLogLevel: hasLevel ? int(row, 'error_log_level') : 2,
    pidFile: text(row, 'pid_file'),
    controlPort: text(row, 'control_port'),
    defaultHost,
    useSsl: int(row, 'use_ssl') !== 0,
    hosts,
    filters: readPlugins(db, 'filter', serverId),
    xrequests: tableExists(db, 'xrequest') ? readPlugins(db, 'xrequest', serverId) : [],
  };
}

/** Reads the config of server `uuid` from an open database. Throws ConfigDbError. */
export function readConfig(db: Database.Database, uuid: string): Config {
  const settings = readSettings(db);
  const mimetypes = readMimetypes(db, settings);
  return { server: readServer(db, uuid), settings, mimetypes };
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
