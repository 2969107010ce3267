/**
 * A config module that reads one server's config from a JSON file (the
 * module argument): `mongrel2 config.json <uuid> src/config/modules/json-file.ts`.
 * It returns the same rows `m2sh load` would have written for the same
 * config, so the server checks and refuses exactly what it would from
 * config.sqlite. Shape (fields as in the m2sh classes; ? = optional, default):
 *
 *   {
 *     "server": { "uuid", "name"?: "", "default_host", "bind_addr"?: "0.0.0.0", "port",
 *                 "chroot"?: "", "access_log", "error_log", "error_log_level"?: 2,
 *                 "pid_file", "control_port"?: "", "use_ssl"?: 0 },
 *     "hosts": [ { "name", "matching"?: name,
 *                  "routes": { "/path": { "dir": { "base", "index_file", "default_ctype", "cache_ttl"?: 0 } },
 *                              "/app/": { "handler": { "send_spec", "send_ident", "recv_spec", "recv_ident",
 *                                                      "raw_payload"?: 0, "protocol"?: "json" } },
 *                              "/up/":  { "proxy": { "addr", "port" } } } } ],
 *     "settings"?: { "limits.buffer_size": "8192" },            (numbers become their digits)
 *     "mimetypes"?: { ".woff2": "font/woff2" },                  (added to / replacing m2sh's 857 built-ins)
 *     "builtin_mimetypes"?: true,                                (false: only the file's mimetypes)
 *     "filters"?: [ { "name": "examples/filters/header-access.ts", "settings": { ... } } ],
 *     "xrequests"?: [ { "name", "settings" } ]
 *   }
 *
 * Routes are in the order written. Row ids are assigned in file order; two
 * identical target objects are one row (like a target shared by variable).
 * Shape errors name the file and the key path.
 */
import * as fs from 'node:fs';
import { encode, type TValue } from '../../protocol/tnetstring.js';
import { BUILTIN_MIMETYPES } from '../mimetypes.js';
import type { Cell, Row, Table } from '../source.js';

type Json = Record<string, unknown>;

class ShapeError extends Error {}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Field readers that name the key path of what is wrong. */
function fields(obj: unknown, at: string) {
  if (!isObject(obj)) throw new ShapeError(`${at} must be an object`);
  const get = <T>(key: string, kind: 'string' | 'number', fallback: T | undefined): T => {
    const v = obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ShapeError(`${at}.${key} is missing`);
      return fallback;
    }
    if (kind === 'number' ? !Number.isSafeInteger(v) : typeof v !== 'string') {
      throw new ShapeError(`${at}.${key} must be ${kind === 'number' ? 'an integer' : 'a string'}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  };
  return {
    obj,
    str: (key: string, fallback?: string): string => get<string>(key, 'string', fallback),
    num: (key: string, fallback?: number): number => get<number>(key, 'number', fallback),
    list(key: string): unknown[] {
      const v = obj[key];
      if (v === undefined) return [];
      if (!Array.isArray(v)) throw new ShapeError(`${at}.${key} must be a list`);
      return v;
    },
    dict(key: string, required = false): Json {
      const v = obj[key];
      if (v === undefined && !required) return {};
      if (!isObject(v)) throw new ShapeError(`${at}.${key} must be an object`);
      return v;
    },
  };
}

const TARGET_FIELDS = {
  dir: (f: ReturnType<typeof fields>): Cell[] => [f.str('base'), f.str('index_file'), f.str('default_ctype'), f.num('cache_ttl', 0)],
  proxy: (f: ReturnType<typeof fields>): Cell[] => [f.str('addr'), f.num('port')],
  handler: (f: ReturnType<typeof fields>): Cell[] => [f.str('send_spec'), f.str('send_ident'), f.str('recv_spec'), f.str('recv_ident'), f.num('raw_payload', 0), f.str('protocol', 'json')],
};
type TargetType = keyof typeof TARGET_FIELDS;

/** The file's config as the rows of each config.sqlite table. */
interface Rows {
  serverName: string;
  server: Row;
  hosts: Row[];
  routes: Map<number, Row[]>;
  targets: Record<TargetType, Row[]>;
  settings: Row[];
  mimetypes: Row[];
  filters: Row[];
  xrequests: Row[];
}

function toRows(doc: unknown): Rows {
  const top = fields(doc, '$');
  const s = fields(top.dict('server', true), 'server');
  const serverRow: Row = [
    1, s.str('uuid'), s.str('default_host'), s.str('bind_addr', '0.0.0.0'), s.num('port'), s.str('chroot', ''), s.str('access_log'),
    s.str('error_log'), s.num('error_log_level', 2), s.str('pid_file'), s.str('control_port', ''), s.num('use_ssl', 0),
  ];
  const targets: Rows['targets'] = { dir: [], proxy: [], handler: [] };
  const targetIds = new Map<string, number>();
  const hosts: Row[] = [];
  const routes = new Map<number, Row[]>();
  let routeId = 0;
  top.list('hosts').forEach((h, i) => {
    const at = `hosts[${i}]`;
    const host = fields(h, at);
    const name = host.str('name');
    const hostId = i + 1;
    hosts.push([hostId, name, host.str('matching', name), 1]);
    const hostRoutes: Row[] = [];
    for (const [path, target] of Object.entries(host.dict('routes', true))) {
      const rat = `${at}.routes[${JSON.stringify(path)}]`;
      const keys = isObject(target) ? Object.keys(target) : [];
      const type = keys[0] as TargetType;
      if (keys.length !== 1 || !(type in TARGET_FIELDS)) throw new ShapeError(`${rat} must be an object with one key: dir, proxy or handler`);
      const cells = TARGET_FIELDS[type](fields((target as Json)[type], `${rat}.${type}`));
      const key = `${type}:${JSON.stringify(cells)}`;
      let id = targetIds.get(key);
      if (id === undefined) {
        id = targets[type].length + 1;
        targetIds.set(key, id);
        targets[type].push([id, ...cells]);
      }
      hostRoutes.push([++routeId, path, id, type]);
    }
    routes.set(hostId, hostRoutes);
  });

  const text = (v: unknown, at: string): string => {
    if (typeof v === 'string') return v;
    if (Number.isSafeInteger(v)) return String(v);
    throw new ShapeError(`${at} must be a string or an integer, got ${JSON.stringify(v)}`);
  };
  const settings = Object.entries(top.dict('settings')).map(([k, v], i): Row => [i + 1, k, text(v, `settings[${JSON.stringify(k)}]`)]);
  const mimes = new Map<string, string>(top.obj.builtin_mimetypes === false ? [] : BUILTIN_MIMETYPES);
  for (const [ext, type] of Object.entries(top.dict('mimetypes'))) {
    // Like m2sh load: the built-in row goes, the user's row is added at the end.
    mimes.delete(ext);
    mimes.set(ext, text(type, `mimetypes[${JSON.stringify(ext)}]`));
  }
  const mimetypes = [...mimes].map(([ext, type], i): Row => [i + 1, ext, type]);
  const plugins = (key: 'filters' | 'xrequests'): Row[] =>
    top.list(key).map((p, i) => {
      const f = fields(p, `${key}[${i}]`);
      let settings: Buffer;
      try {
        settings = encode(f.dict('settings', true) as TValue);
      } catch (err) {
        throw new ShapeError(`${key}[${i}].settings: ${(err as Error).message}`);
      }
      return [i + 1, f.str('name'), settings.toString('utf8')];
    });
  return { serverName: s.str('name', ''), server: serverRow, hosts, routes, targets, settings, mimetypes, filters: plugins('filters'), xrequests: plugins('xrequests') };
}

/** The module: one instance per process, like Mongrel2's modules. */
export class JsonFileConfig {
  private rows: Rows | undefined;

  init(file: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      this.rows = toRows(doc);
    } catch (err) {
      throw err instanceof ShapeError ? new Error(`${file}: ${err.message}`) : err;
    }
  }

  close(): void {
    this.rows = undefined;
  }

  private get loaded(): Rows {
    if (!this.rows) throw new Error('json-file config module: init() was not called');
    return this.rows;
  }

  private byId(rows: Row[], id: number): Table {
    return rows.filter((r) => r[0] === id);
  }

  loadServer(uuid: string): Table {
    return this.loaded.server[1] === uuid ? [this.loaded.server] : [];
  }
  loadHosts(serverId: number): Table {
    return serverId === 1 ? this.loaded.hosts : [];
  }
  loadRoutes(hostId: number): Table {
    return this.loaded.routes.get(hostId) ?? [];
  }
  loadHandler(id: number): Table {
    return this.byId(this.loaded.targets.handler, id);
  }
  loadProxy(id: number): Table {
    return this.byId(this.loaded.targets.proxy, id);
  }
  loadDir(id: number): Table {
    return this.byId(this.loaded.targets.dir, id);
  }
  loadMimetypes(): Table {
    return this.loaded.mimetypes;
  }
  loadSettings(): Table {
    return this.loaded.settings;
  }
  loadFilters(serverId: number): Table {
    return serverId === 1 ? this.loaded.filters : [];
  }
  loadXrequests(serverId: number): Table {
    return serverId === 1 ? this.loaded.xrequests : [];
  }
  serverName(): string {
    return this.loaded.serverName;
  }
}

export default new JsonFileConfig();
