/**
 * The config.sqlite schema exactly as `m2sh load` (1.13) creates it: the text
 * of tools/m2sh/src/constants.c CONFIG_SCHEMA, which is what `sqlite3 .dump`
 * shows, so a dump of our DB diffs cleanly against one written by m2sh.
 * m2sh's copy differs from src/config/config.sql: it also has the `xrequest`
 * table and `error_log_level` has no DEFAULT (m2sh always supplies one).
 * Debian's 1.12.2 m2sh writes the same text minus the error_log_level line.
 * Every table but `log` is dropped and recreated on each load, so the commit
 * log survives reloads.
 */

export const CONFIG_SCHEMA =
  'DROP TABLE IF EXISTS server;\n' +
  'DROP TABLE IF EXISTS host;\n' +
  'DROP TABLE IF EXISTS handler;\n' +
  'DROP TABLE IF EXISTS proxy;\n' +
  'DROP TABLE IF EXISTS route;\n' +
  'DROP TABLE IF EXISTS statistic;\n' +
  'DROP TABLE IF EXISTS mimetype;\n' +
  'DROP TABLE IF EXISTS setting;\n' +
  'DROP TABLE IF EXISTS directory;\n' +
  'DROP TABLE IF EXISTS filter;\n' +
  'DROP TABLE IF EXISTS xrequest;\n' +
  '\n' +
  'CREATE TABLE server (id INTEGER PRIMARY KEY,\n' +
  '    uuid TEXT,\n' +
  '    access_log TEXT,\n' +
  '    error_log TEXT,\n' +
  '    error_log_level INTEGER,\n' +
  "    chroot TEXT DEFAULT '/var/www',\n" +
  '    pid_file TEXT,\n' +
  "    control_port TEXT DEFAULT '',\n" +
  '    default_host TEXT,\n' +
  "    name TEXT DEFAULT '',\n" +
  '    bind_addr TEXT DEFAULT "0.0.0.0",\n' +
  '    port INTEGER,\n' +
  '    use_ssl INTEGER default 0);\n' +
  '\n' +
  'CREATE TABLE host (id INTEGER PRIMARY KEY, \n' +
  '    server_id INTEGER,\n' +
  '    maintenance BOOLEAN DEFAULT 0,\n' +
  '    name TEXT,\n' +
  '    matching TEXT);\n' +
  '\n' +
  'CREATE TABLE handler (id INTEGER PRIMARY KEY,\n' +
  '    send_spec TEXT, \n' +
  '    send_ident TEXT,\n' +
  '    recv_spec TEXT,\n' +
  '    recv_ident TEXT,\n' +
  '   raw_payload INTEGER DEFAULT 0,\n' +
  "   protocol TEXT DEFAULT 'json');\n" +
  '\n' +
  'CREATE TABLE proxy (id INTEGER PRIMARY KEY,\n' +
  '    addr TEXT,\n' +
  '    port INTEGER);\n' +
  '\n' +
  'CREATE TABLE directory (id INTEGER PRIMARY KEY,' +
  '   base TEXT,' +
  '   index_file TEXT,' +
  '   default_ctype TEXT,' +
  '   cache_ttl INTEGER DEFAULT 0);' +
  '\n' +
  'CREATE TABLE route (id INTEGER PRIMARY KEY,\n' +
  '    path TEXT,\n' +
  '    reversed BOOLEAN DEFAULT 0,\n' +
  '    host_id INTEGER,\n' +
  '    target_id INTEGER,\n' +
  '    target_type TEXT);\n' +
  '\n' +
  'CREATE TABLE setting (id INTEGER PRIMARY KEY, key TEXT, value TEXT);\n' +
  '\n' +
  'CREATE TABLE statistic (id SERIAL, \n' +
  '    other_type TEXT,\n' +
  '    other_id INTEGER,\n' +
  '    name TEXT,\n' +
  '    sum REAL,\n' +
  '    sumsq REAL,\n' +
  '    n INTEGER,\n' +
  '    min REAL,\n' +
  '    max REAL,\n' +
  '    mean REAL,\n' +
  '    sd REAL,\n' +
  '    primary key (other_type, other_id, name));\n' +
  '\n' +
  'CREATE TABLE mimetype (id INTEGER PRIMARY KEY, mimetype TEXT, extension TEXT);\n' +
  '\n' +
  'CREATE TABLE filter (id INTEGER PRIMARY KEY, \n' +
  '    server_id INTEGER, \n' +
  '    name TEXT, \n' +
  '    settings TEXT);\n' +
  '\n' +
  'CREATE TABLE xrequest (id INTEGER PRIMARY KEY, \n' +
  '    server_id INTEGER, \n' +
  '    name TEXT, \n' +
  '    settings TEXT);\n' +
  '\n' +
  'CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY,\n' +
  '    who TEXT,\n' +
  '    what TEXT,\n' +
  '    location TEXT,\n' +
  '    happened_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,\n' +
  '    how TEXT,\n' +
  '    why TEXT);';

/** The `log` table alone, for `m2sh commit` on a DB that has none yet. */
export const LOG_TABLE_SQL = CONFIG_SCHEMA.slice(CONFIG_SCHEMA.indexOf('CREATE TABLE IF NOT EXISTS log'));

/** The statements m2sh runs to fill the tables (constants.c), as prepared statements. */
export const SQL = {
  server:
    'INSERT INTO server (uuid, access_log, error_log, error_log_level, pid_file, control_port, chroot, default_host, name, bind_addr, port, use_ssl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  host: 'INSERT INTO host (server_id, name, matching) VALUES (?, ?, ?)',
  filter: 'INSERT INTO filter (server_id, name, settings) VALUES (?, ?, ?)',
  xrequest: 'INSERT INTO xrequest (server_id, name, settings) VALUES (?, ?, ?)',
  setting: 'INSERT INTO setting (key, value) VALUES (?, ?)',
  mimetypeDelete: 'DELETE FROM mimetype WHERE extension = ?',
  mimetype: 'INSERT INTO mimetype (extension, mimetype) VALUES (?, ?)',
  directory: 'INSERT INTO directory (base, index_file, default_ctype) VALUES (?, ?, ?)',
  directoryTtl: 'UPDATE directory SET cache_ttl = ? WHERE id = ?',
  proxy: 'INSERT INTO proxy (addr, port) VALUES (?, ?)',
  handler: 'INSERT INTO handler (send_spec, send_ident, recv_spec, recv_ident) VALUES (?, ?, ?, ?)',
  handlerRaw: 'UPDATE handler SET raw_payload = 1 WHERE id = ?',
  handlerProtocol: 'UPDATE handler SET protocol = ? WHERE id = ?',
  route: 'INSERT INTO route (path, host_id, target_id, target_type) VALUES (?, ?, ?, ?)',
  log: 'INSERT INTO log (who, what, location, how, why) VALUES (?, ?, ?, ?, ?)',
} as const;
