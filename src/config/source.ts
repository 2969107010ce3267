/**
 * A ConfigSource's rows → Config: the server's startup reads and refusals
 * (reference/server-core.md §2, §10; Mongrel2 src/config/config.c), over
 * any source whose functions mirror Mongrel2's config-module functions.
 *
 * Every function returns a table: a list of rows, each a list of cells. Cells
 * are checked exactly like Mongrel2's DB_check: a number (an integer) or a
 * string where the column wants one; null never passes. The row shapes are
 * the column lists in TABLES below. A source may return a table as arrays or
 * as the tnetstring bytes of one (the form Mongrel2's modules return).
 *
 * The build is written once as a generator that yields calls; a synchronous
 * driver runs it over the SQLite source (`mongrel2 db uuid` stays sync) and an
 * async one over config modules, whose functions may return promises.
 */
import { ConfigDbError } from './errors.js';
import { decodeTable, isTnetCell } from './modules/tnetstring-table.js';
import { parse } from '../protocol/tnetstring.js';
import { dirProblems, hostMatchingProblem, proxyProblems, routePathProblem, type FieldProblem } from './target-rules.js';
import type { Config, DirTarget, FilterConfig, HandlerTarget, HostConfig, ProxyTarget, RouteConfig, ServerConfig, Target } from './types.js';

export type Cell = number | string;
export type Row = ReadonlyArray<Cell>;
export type Table = ReadonlyArray<Row>;
/** What a load function may return: rows, or the tnetstring bytes of rows. */
export type TableResult = Table | Buffer;
type Maybe<T> = T | Promise<T>;

/** The load functions, named as in Mongrel2's ConfigModule (camelCase). */
export interface ConfigSource {
  /** 1 row of 12 cells: id, uuid, default_host, bind_addr, port, chroot, access_log, error_log, error_log_level, pid_file, control_port, use_ssl. */
  loadServer(uuid: string): Maybe<TableResult>;
  /** Rows (id, name, matching, server_id). */
  loadHosts(serverId: number): Maybe<TableResult>;
  /** Rows (id, path, target_id, target_type). */
  loadRoutes(hostId: number, serverId: number): Maybe<TableResult>;
  /** 1 row (id, send_spec, send_ident, recv_spec, recv_ident, raw_payload, protocol). */
  loadHandler(id: number): Maybe<TableResult>;
  /** 1 row (id, addr, port). */
  loadProxy(id: number): Maybe<TableResult>;
  /** 1 row (id, base, index_file, default_ctype, cache_ttl). */
  loadDir(id: number): Maybe<TableResult>;
  /** Rows (id, extension, mimetype). */
  loadMimetypes(): Maybe<TableResult>;
  /** Rows (id, key, value). */
  loadSettings(): Maybe<TableResult>;
  /** Rows (id, name, settings) where settings is a tnetstring dict. */
  loadFilters(serverId: number): Maybe<TableResult>;
  /** Rows (id, name, settings). Absent: no xrequests (Mongrel2 never asks a module for them). */
  loadXrequests?(serverId: number): Maybe<TableResult>;
  /** m2bridge extension: the server's `name` (Mongrel2 never reads it, m2sh does). Absent: ''. */
  serverName?(serverId: number): Maybe<string>;
}

export type LoadFunction = Exclude<keyof ConfigSource, 'serverName'>;

/** Each function's table and columns, in cell order, with the type each cell must have. */
export const TABLES: Readonly<Record<LoadFunction, { table: string; columns: ReadonlyArray<readonly [string, 'number' | 'string']> }>> = {
  loadServer: {
    table: 'server',
    columns: [['id', 'number'], ['uuid', 'string'], ['default_host', 'string'], ['bind_addr', 'string'], ['port', 'number'], ['chroot', 'string'], ['access_log', 'string'], ['error_log', 'string'], ['error_log_level', 'number'], ['pid_file', 'string'], ['control_port', 'string'], ['use_ssl', 'number']],
  },
  loadHosts: { table: 'host', columns: [['id', 'number'], ['name', 'string'], ['matching', 'string'], ['server_id', 'number']] },
  loadRoutes: { table: 'route', columns: [['id', 'number'], ['path', 'string'], ['target_id', 'number'], ['target_type', 'string']] },
  loadHandler: {
    table: 'handler',
    columns: [['id', 'number'], ['send_spec', 'string'], ['send_ident', 'string'], ['recv_spec', 'string'], ['recv_ident', 'string'], ['raw_payload', 'number'], ['protocol', 'string']],
  },
  loadProxy: { table: 'proxy', columns: [['id', 'number'], ['addr', 'string'], ['port', 'number']] },
  loadDir: { table: 'directory', columns: [['id', 'number'], ['base', 'string'], ['index_file', 'string'], ['default_ctype', 'string'], ['cache_ttl', 'number']] },
  loadMimetypes: { table: 'mimetype', columns: [['id', 'number'], ['extension', 'string'], ['mimetype', 'string']] },
  loadSettings: { table: 'setting', columns: [['id', 'number'], ['key', 'string'], ['value', 'string']] },
  loadFilters: { table: 'filter', columns: [['id', 'number'], ['name', 'string'], ['settings', 'string']] },
  loadXrequests: { table: 'xrequest', columns: [['id', 'number'], ['name', 'string'], ['settings', 'string']] },
};

/** One call the build needs answered. */
export type Call = { fn: LoadFunction; args: ReadonlyArray<string | number> } | { fn: 'serverName'; args: readonly [number] };

function callText(call: Call): string {
  return `${call.fn}(${call.args.map((a) => JSON.stringify(a)).join(', ')})`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (isTnetCell(value)) return value.describe;
  if (typeof value === 'number') return Number.isInteger(value) ? `the number ${value}` : `the non-integer ${value}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return `a list of ${value.length}`;
  return `a ${typeof value}`;
}

/**
 * A load function's result, checked: a table whose first `check` rows (all
 * when undefined) have exactly the function's cells with exactly their types.
 */
export function checkedTable(call: Call & { fn: LoadFunction }, result: unknown, check?: number): Table {
  const where = callText(call);
  let rows: unknown = result;
  if (Buffer.isBuffer(result)) {
    try {
      rows = decodeTable(result);
    } catch (err) {
      throw new ConfigDbError(`${where} returned bytes that are not a tnetstring table: ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(rows)) throw new ConfigDbError(`${where} returned ${describe(rows)}, expected a table (a list of rows)`);
  const { columns } = TABLES[call.fn];
  const upTo = Math.min(rows.length, check ?? rows.length);
  for (let i = 0; i < upTo; i++) {
    const row: unknown = rows[i];
    if (!Array.isArray(row)) throw new ConfigDbError(`${where} row ${i} is ${describe(row)}, expected a list of ${columns.length} cells`);
    if (row.length !== columns.length) {
      throw new ConfigDbError(`${where} row ${i} has ${row.length} cells, expected ${columns.length} (${columns.map(([c]) => c).join(', ')})`);
    }
    columns.forEach(([name, type], j) => {
      const cell: unknown = row[j];
      const ok = type === 'string' ? typeof cell === 'string' : typeof cell === 'number' && Number.isSafeInteger(cell);
      if (!ok) throw new ConfigDbError(`${where} row ${i} cell ${j} (${name}) is ${describe(cell)}, expected ${type === 'string' ? 'a string' : 'an integer'}`);
    });
  }
  return rows as Table;
}

/** C atoi() as Setting_get_int uses it: leading digits, else the default when unset. */
function atoi(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^\s*([-+]?\d+)/.exec(value);
  return m ? parseInt(m[1]!, 10) : 0;
}

// The generator's steps: `yield call` answers with the call's raw result.
type Steps<T> = Generator<Call, T, unknown>;

function* table(fn: LoadFunction, args: ReadonlyArray<string | number>, check?: number): Steps<Table> {
  const call = { fn, args } as Call & { fn: LoadFunction };
  return checkedTable(call, yield call, check);
}

function* readSettings(): Steps<Map<string, string>> {
  const settings = new Map<string, string>();
  for (const row of yield* table('loadSettings', [])) settings.set(row[1] as string, row[2] as string);
  return settings;
}

function* readMimetypes(settings: ReadonlyMap<string, string>): Steps<Map<string, string>> {
  const maxLen = atoi(settings.get('limits.mime_ext_len'), 128);
  const mimetypes = new Map<string, string>();
  for (const [id, ext, type] of (yield* table('loadMimetypes', [])) as ReadonlyArray<readonly [number, string, string]>) {
    const at = `mimetype row id=${id}`;
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

/** `loadDir(7) row 0 cell 1 (base) "static" must end in '/'`: a value the server cannot use, by function, row and cell. */
function cellProblem(call: Call & { fn: LoadFunction }, row: number, p: FieldProblem, context: string): ConfigDbError {
  const cell = TABLES[call.fn].columns.findIndex(([name]) => name === p.column);
  return new ConfigDbError(`${callText(call)} row ${row} cell ${cell} (${p.column}) ${JSON.stringify(p.value)} ${p.problem}${context}`);
}

function* readTarget(routeId: number, type: string, id: number): Steps<Target> {
  const one = function* (fn: 'loadDir' | 'loadProxy' | 'loadHandler'): Steps<Row> {
    const rows = yield* table(fn, [id], 1);
    if (rows.length === 0) throw new ConfigDbError(`route row id=${routeId}: column target_id=${id} names no ${TABLES[fn].table} row`);
    return rows[0]!;
  };
  // The same rules as m2sh load (target-rules.ts), so a bad row stops the start, not the first request.
  const refuse = (fn: LoadFunction, problems: FieldProblem[]): void => {
    if (problems[0]) throw cellProblem({ fn, args: [id] }, 0, problems[0], ` (the target of route row id=${routeId})`);
  };
  if (type === 'dir') {
    const [, base, indexFile, defaultCtype, cacheTtl] = (yield* one('loadDir')) as readonly [number, string, string, string, number];
    const dir: DirTarget = { type: 'dir', id, base, indexFile, defaultCtype, cacheTtl };
    refuse('loadDir', dirProblems(dir));
    return dir;
  }
  if (type === 'proxy') {
    const [, addr, port] = (yield* one('loadProxy')) as readonly [number, string, number];
    const proxy: ProxyTarget = { type: 'proxy', id, addr, port };
    refuse('loadProxy', proxyProblems(proxy));
    return proxy;
  }
  if (type === 'handler') {
    const [, sendSpec, sendIdent, recvSpec, recvIdent, raw, protocol] = (yield* one('loadHandler')) as readonly [number, string, string, string, string, number, string];
    // Only exactly 1 is raw, and anything but 'tnetstring' means JSON (config.c).
    const handler: HandlerTarget = { type: 'handler', id, sendSpec, sendIdent, recvSpec, recvIdent, rawPayload: raw === 1, protocol: protocol === 'tnetstring' ? 'tnetstring' : 'json' };
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

function* readPlugins(fn: 'loadFilters' | 'loadXrequests', serverId: number): Steps<FilterConfig[]> {
  const rows = (yield* table(fn, [serverId])) as ReadonlyArray<readonly [number, string, string]>;
  return rows.map(([id, name, raw]) => {
    const at = `${TABLES[fn].table} row id=${id}: column settings`;
    let settings: unknown;
    try {
      // Like mongrel2's tns_parse, bytes after the first value are ignored.
      settings = parse(Buffer.from(raw, 'utf8')).value;
    } catch (err) {
      throw new ConfigDbError(`${at} is not a tnetstring: ${(err as Error).message}`);
    }
    if (settings === null || typeof settings !== 'object' || Array.isArray(settings) || Buffer.isBuffer(settings)) {
      throw new ConfigDbError(`${at} must be a tnetstring dict`);
    }
    return { id, name, settings: settings as Record<string, unknown> };
  });
}

function* readServer(uuid: string, withXrequests: boolean): Steps<ServerConfig> {
  const rows = yield* table('loadServer', [uuid], 1);
  if (rows.length === 0) throw new ConfigDbError(`${callText({ fn: 'loadServer', args: [uuid] })} returned no rows: no server with that uuid`);
  const [serverId, rowUuid, defaultHost, bindAddr, port, chroot, accessLog, errorLog, errorLogLevel, pidFile, controlPort, useSsl] = rows[0] as readonly [
    number, string, string, string, number, string, string, string, number, string, string, number,
  ];
  const at = `server row id=${serverId}`;
  if (port <= 0) throw new ConfigDbError(`${at}: column port must be > 0, got ${port}`);

  const handlers: HandlerTarget[] = [];
  const hosts: HostConfig[] = [];
  const hostRows = (yield* table('loadHosts', [serverId])) as ReadonlyArray<readonly [number, string, string, number]>;
  for (const [hostRow, [hostId, name, matching]] of hostRows.entries()) {
    const hostBad = hostMatchingProblem(matching);
    if (hostBad) throw cellProblem({ fn: 'loadHosts', args: [serverId] }, hostRow, { column: 'matching', value: matching, problem: `of host id=${hostId}: ${hostBad}` }, '');
    const routes: RouteConfig[] = [];
    const routeRows = (yield* table('loadRoutes', [hostId, serverId])) as ReadonlyArray<readonly [number, string, number, string]>;
    for (const [routeRow, [routeId, path, targetId, targetType]] of routeRows.entries()) {
      const routeBad = routePathProblem(path);
      if (routeBad) throw cellProblem({ fn: 'loadRoutes', args: [hostId, serverId] }, routeRow, { column: 'path', value: path, problem: `of route id=${routeId}: ${routeBad}` }, '');
      let target = yield* readTarget(routeId, targetType, targetId);
      if (target.type === 'handler') target = mergeHandler(handlers, target);
      routes.push({ id: routeId, path, target });
    }
    hosts.push({ id: hostId, name, matching, routes });
  }

  if (!hosts.some((h) => h.name === defaultHost)) {
    const names = hosts.map((h) => JSON.stringify(h.name)).join(', ') || 'none';
    throw new ConfigDbError(`${at}: column default_host ${JSON.stringify(defaultHost)} is not the name of one of its hosts (${names})`);
  }
  const filters = yield* readPlugins('loadFilters', serverId);
  const xrequests = withXrequests ? yield* readPlugins('loadXrequests', serverId) : [];
  const name: unknown = yield { fn: 'serverName', args: [serverId] };

  return {
    id: serverId,
    uuid: rowUuid,
    name: typeof name === 'string' ? name : '',
    bindAddr,
    port,
    chroot,
    accessLog,
    errorLog,
    errorLogLevel,
    pidFile,
    controlPort,
    defaultHost,
    useSsl: useSsl !== 0,
    hosts,
    filters,
    xrequests,
  };
}

/** Order: settings, mimetypes, the server by uuid, its hosts, routes and targets, filters, xrequests. */
function* build(uuid: string, withXrequests: boolean): Steps<Config> {
  const settings = yield* readSettings();
  const mimetypes = yield* readMimetypes(settings);
  return { server: yield* readServer(uuid, withXrequests), settings, mimetypes };
}

function invoke(source: ConfigSource, call: Call): unknown {
  if (call.fn === 'serverName') return source.serverName?.(call.args[0]);
  const fn = source[call.fn] as ((...args: Array<string | number>) => unknown) | undefined;
  return fn?.apply(source, [...call.args]);
}

/** A source's own ConfigDbErrors pass as they are; anything else it throws is named by the call. */
function callFailed(call: Call, err: unknown): ConfigDbError {
  if (err instanceof ConfigDbError) return err;
  return new ConfigDbError(`${callText(call)} threw: ${err instanceof Error ? err.message : String(err)}`);
}

/** Builds a Config from a source whose functions answer synchronously. Throws ConfigDbError. */
export function buildConfigSync(source: ConfigSource, uuid: string): Config {
  const steps = build(uuid, source.loadXrequests !== undefined);
  for (let step = steps.next(); ; ) {
    if (step.done) return step.value;
    let result: unknown;
    try {
      result = invoke(source, step.value);
    } catch (err) {
      throw callFailed(step.value, err);
    }
    if (result instanceof Promise) throw new ConfigDbError(`${callText(step.value)} returned a promise; use buildConfig for async sources`);
    step = steps.next(result);
  }
}

/** Builds a Config from any source; its functions may return promises. Rejects with ConfigDbError. */
export async function buildConfig(source: ConfigSource, uuid: string): Promise<Config> {
  const steps = build(uuid, source.loadXrequests !== undefined);
  for (let step = steps.next(); ; ) {
    if (step.done) return step.value;
    let result: unknown;
    try {
      result = await invoke(source, step.value);
    } catch (err) {
      throw callFailed(step.value, err);
    }
    step = steps.next(result);
  }
}
