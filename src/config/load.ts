/**
 * `m2sh load`: a parsed `.conf` → config.sqlite rows, the same rows in the
 * same order as Mongrel2's m2sh (tools/m2sh/src/config_file.c):
 *
 *   schema (drop + recreate all but `log`) → per server: server row, then per
 *   host: host row and its routes in TST walk order (a target class is
 *   inserted the first time it is used and reused by id after that, so
 *   targets shared through variables or a shared routes hash are one row) →
 *   filters → xrequests; then settings (walk order, numbers as text), the 857
 *   built-in mimetypes, then the user's mimetypes (delete + insert).
 *
 * Unlike m2sh, which commits whatever it managed to insert and exits 0, any
 * problem (missing or mistyped field, bad reference, unknown class or
 * parameter, a target value or route/host pattern the server would refuse:
 * target-rules.ts) throws a ConfigLoadError naming the
 * file:line:column, and the transaction is rolled back: nothing changes.
 * Unlike Debian's m2sh 1.12.2, mimetype overrides are really inserted.
 */
import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigLoadError, type SourcePos } from './errors.js';
import { BUILTIN_MIMETYPES } from './mimetypes.js';
import { tnsDictRenderOrder, tstOrder } from './order.js';
import { MAX_DEPTH, parseConfig, type Assignment, type ClassNode, type ConfigAst, type HashEntry, type HashNode, type ValueNode } from './parser.js';
import { CONFIG_SCHEMA, SQL } from './schema.js';
import { describeProblem, dirProblems, hostMatchingProblem, proxyProblems, routePathProblem, type FieldProblem } from './target-rules.js';

export interface LoadSummary {
  servers: number;
  hosts: number;
  routes: number;
  /** Distinct directory/proxy/handler rows. */
  targets: number;
  filters: number;
  xrequests: number;
  settings: number;
  /** User mimetypes (overrides and additions), not counting the built-ins. */
  mimetypes: number;
  /** Legal but suspicious things m2sh accepts silently (duplicate names: last wins). */
  warnings: string[];
}

type Kind = ValueNode['kind'];
const KIND_NAMES: Record<Kind, string> = {
  string: 'a quoted string',
  number: 'a number',
  ref: 'a reference',
  list: 'a [list]',
  hash: 'a {hash}',
  class: 'a Class(...)',
};

interface FieldSpec {
  readonly kind: 'string' | 'number' | 'list' | 'hash';
  readonly required: boolean;
}

const field = (kind: FieldSpec['kind'], required: boolean): FieldSpec => ({ kind, required });
const [STR, STR_OPT, NUM, NUM_OPT] = [field('string', true), field('string', false), field('number', true), field('number', false)];
const [LIST, LIST_OPT, HASH] = [field('list', true), field('list', false), field('hash', true)];

/** The parameters each class takes (config_file.c). Anything else is refused. */
const CLASS_FIELDS: Record<string, Record<string, FieldSpec>> = {
  Server: {
    ...{ uuid: STR, access_log: STR, error_log: STR, pid_file: STR, default_host: STR, name: STR, port: NUM, hosts: LIST },
    ...{ chroot: STR_OPT, bind_addr: STR_OPT, control_port: STR_OPT, use_ssl: NUM_OPT, error_log_level: NUM_OPT },
    ...{ filters: LIST_OPT, xrequests: LIST_OPT },
  },
  Host: { name: STR, matching: STR_OPT, routes: HASH },
  dir: { base: STR, index_file: STR, default_ctype: STR, cache_ttl: NUM_OPT },
  handler: { send_spec: STR, send_ident: STR, recv_spec: STR, recv_ident: STR, raw_payload: NUM_OPT, protocol: STR_OPT },
  proxy: { addr: STR, port: NUM },
  Filter: { name: STR, settings: HASH },
};
CLASS_FIELDS.Xrequest = CLASS_FIELDS.Filter!;

const TARGET_TYPES = ['dir', 'proxy', 'handler'];

/** strtol() on a 64-bit long saturates; filter settings numbers go through it. */
const LONG_MAX = 9223372036854775807n;

class Loader {
  private readonly vars = new Map<string, Assignment>();
  private readonly targetIds = new Map<ClassNode, { id: number; type: string }>();
  readonly summary: LoadSummary = {
    servers: 0,
    hosts: 0,
    routes: 0,
    targets: 0,
    filters: 0,
    xrequests: 0,
    settings: 0,
    mimetypes: 0,
    warnings: [],
  };

  constructor(
    private readonly db: Database.Database,
    private readonly ast: ConfigAst,
  ) {
    for (const a of ast.assignments) {
      this.noteDuplicate(this.vars, a.name, a.namePos, `variable ${a.name}`);
      this.vars.set(a.name, a);
    }
  }

  private fail(pos: SourcePos | undefined, message: string): never {
    throw new ConfigLoadError(this.ast.file, pos, message);
  }

  private noteDuplicate(seen: ReadonlyMap<string, unknown>, name: string, pos: SourcePos, what: string): void {
    if (seen.has(name)) {
      this.summary.warnings.push(`${this.ast.file}:${pos.line}:${pos.column}: ${what} given again; the last one wins (as in m2sh)`);
    }
  }

  /** A reference resolves to a top-level variable, one level deep (ast.c Value_resolve). */
  private resolve(v: ValueNode): ValueNode {
    if (v.kind !== 'ref') return v;
    const target = this.vars.get(v.name);
    if (!target) this.fail(v.pos, `unknown variable ${v.name}`);
    if (target.value.kind === 'ref') {
      this.fail(v.pos, `${v.name} is a reference to ${target.value.name}; references resolve one level only (as in m2sh), so refer to ${target.value.name} directly`);
    }
    return target.value;
  }

  /** Class parameters as a last-wins map, every name checked against the class. */
  private params(cls: ClassNode, fieldsKey: string): Map<string, Assignment> {
    const fields = CLASS_FIELDS[fieldsKey]!;
    const map = new Map<string, Assignment>();
    for (const p of cls.params) {
      if (!Object.hasOwn(fields, p.name)) {
        this.fail(p.namePos, `unknown parameter ${p.name} for ${cls.name}; expected one of ${Object.keys(fields).join(', ')}`);
      }
      this.noteDuplicate(map, p.name, p.namePos, `parameter ${cls.name}.${p.name}`);
      map.set(p.name, p);
    }
    for (const [name, spec] of Object.entries(fields)) {
      if (spec.required && !map.has(name)) this.fail(cls.pos, `${cls.name}(...) is missing the required parameter ${name}`);
    }
    return map;
  }

  private field<K extends FieldSpec['kind']>(
    cls: ClassNode,
    params: ReadonlyMap<string, Assignment>,
    name: string,
    kind: K,
  ): Extract<ValueNode, { kind: K }> | undefined {
    const p = params.get(name);
    if (!p) return undefined;
    const v = this.resolve(p.value);
    if (v.kind !== kind) {
      const via = p.value.kind === 'ref' ? ` (through ${p.value.name})` : '';
      this.fail(p.value.pos, `${cls.name}.${name} must be ${KIND_NAMES[kind]}, got ${KIND_NAMES[v.kind]}${via}`);
    }
    return v as Extract<ValueNode, { kind: K }>;
  }

  private text(cls: ClassNode, params: ReadonlyMap<string, Assignment>, name: string, fallback?: string): string {
    const kind = CLASS_FIELDS[this.fieldsKeyOf(cls)]![name]!.kind;
    if (kind === 'number') return this.field(cls, params, name, 'number')?.text ?? fallback!;
    return this.field(cls, params, name, 'string')?.value ?? fallback!;
  }

  private fieldsKeyOf(cls: ClassNode): string {
    return Object.hasOwn(CLASS_FIELDS, cls.name) ? cls.name : cls.name.toLowerCase();
  }

  /** `names` empty means a route target (Dir, Proxy or Handler in any letter case). */
  private expectClass(v: ValueNode, original: ValueNode, names: readonly string[], what: string): ClassNode {
    if (v.kind !== 'class' || !names.includes(v.name)) {
      const got = v.kind === 'class' ? `${v.name}(...)` : KIND_NAMES[v.kind];
      const via = original.kind === 'ref' ? ` (through ${original.name})` : '';
      const wanted = names.length ? names.map((n) => `${n}(...)`).join(' or ') : 'Dir(...), Proxy(...) or Handler(...)';
      this.fail(original.pos, `${what} must be ${wanted}, got ${got}${via}`);
    }
    return v;
  }

  private listItems(list: ValueNode & { kind: 'list' }, names: readonly string[], what: string): ClassNode[] {
    return list.items.map((item) => this.expectClass(this.resolve(item), item, names, what));
  }

  /** Hash entries in m2sh's walk order, last duplicate winning. */
  private walkHash(hash: HashNode, what: string): HashEntry[] {
    const seen = new Map<string, true>();
    for (const e of hash.entries) {
      this.noteDuplicate(seen, e.key, e.keyPos, `${what} key ${JSON.stringify(e.key)}`);
      seen.set(e.key, true);
    }
    return tstOrder(hash.entries.map((e) => [e.key, e] as const)).map(([, e]) => e);
  }

  load(): LoadSummary {
    const top = this.vars.get('servers');
    if (!top) this.fail(undefined, 'no servers = [...] assignment: say which servers to load');
    const servers = this.resolve(top.value);
    if (servers.kind !== 'list') this.fail(top.value.pos, `servers must be a [list] of Server(...), got ${KIND_NAMES[servers.kind]}`);
    this.db.exec(CONFIG_SCHEMA);
    for (const server of this.listItems(servers, ['Server'], 'each element of servers')) this.server(server);
    this.settings();
    this.mimetypes();
    return this.summary;
  }

  private server(cls: ClassNode): void {
    const p = this.params(cls, 'Server');
    const t = (name: string, fallback?: string): string => this.text(cls, p, name, fallback);
    const row = [
      t('uuid'),
      t('access_log'),
      t('error_log'),
      t('error_log_level', '2'),
      t('pid_file'),
      t('control_port', ''),
      t('chroot', ''),
      t('default_host'),
      t('name'),
      t('bind_addr', '0.0.0.0'),
      t('port'),
      t('use_ssl', '0'),
    ];
    const serverId = Number(this.db.prepare(SQL.server).run(...row).lastInsertRowid);
    this.summary.servers++;
    for (const host of this.listItems(this.field(cls, p, 'hosts', 'list')!, ['Host'], 'each element of Server.hosts')) {
      this.host(host, serverId);
    }
    for (const [key, sql] of [
      ['filters', SQL.filter],
      ['xrequests', SQL.xrequest],
    ] as const) {
      const list = this.field(cls, p, key, 'list');
      if (!list) continue;
      const className = key === 'filters' ? 'Filter' : 'Xrequest';
      for (const plugin of this.listItems(list, [className], `each element of Server.${key}`)) {
        const pp = this.params(plugin, className);
        // Stored as TEXT like m2sh's %Q (a Buffer would bind as a BLOB).
        const settings = this.tns(this.field(plugin, pp, 'settings', 'hash')!).toString('utf8');
        this.db.prepare(sql).run(serverId, this.text(plugin, pp, 'name'), settings);
        this.summary[key]++;
      }
    }
  }

  private host(cls: ClassNode, serverId: number): void {
    const p = this.params(cls, 'Host');
    const name = this.text(cls, p, 'name');
    const matching = this.text(cls, p, 'matching', name);
    const badMatching = hostMatchingProblem(matching);
    if (badMatching) {
      const from = p.has('matching') ? 'matching' : 'name';
      this.fail(p.get(from)!.value.pos, `Host.${from} ${JSON.stringify(matching)}: ${badMatching}`);
    }
    const hostId = Number(this.db.prepare(SQL.host).run(serverId, name, matching).lastInsertRowid);
    this.summary.hosts++;
    const routes = this.field(cls, p, 'routes', 'hash')!;
    for (const entry of this.walkHash(routes, 'route')) {
      const badPath = routePathProblem(entry.key);
      if (badPath) this.fail(entry.keyPos, `route ${JSON.stringify(entry.key)}: ${badPath}`);
      const target = this.resolve(entry.value);
      // m2sh lowercases the class name, so DIR(...) or proxy-like spellings work too.
      const type = target.kind === 'class' ? target.name.toLowerCase() : '';
      if (target.kind !== 'class' || !TARGET_TYPES.includes(type)) {
        this.expectClass(target, entry.value, [], `the target of route ${JSON.stringify(entry.key)}`);
      }
      const id = this.target(target as ClassNode, type);
      this.db.prepare(SQL.route).run(entry.key, hostId, id, type);
      this.summary.routes++;
    }
  }

  /** Inserts a Dir/Proxy/Handler the first time this very class node is used. */
  private target(cls: ClassNode, type: string): number {
    const known = this.targetIds.get(cls);
    if (known) return known.id;
    const p = this.params(cls, type);
    const t = (name: string): string => this.text(cls, p, name);
    // The server's own rules (target-rules.ts), reported at the parameter.
    const refuse = (className: string, problems: FieldProblem[]): void => {
      const [first] = problems;
      if (first) this.fail((p.get(first.column)?.value ?? cls).pos, `${className}.${describeProblem(first)}`);
    };
    let id: number;
    if (type === 'dir') {
      const base = t('base');
      const ttl = this.field(cls, p, 'cache_ttl', 'number');
      refuse('Dir', dirProblems({ base, defaultCtype: t('default_ctype'), cacheTtl: ttl ? Number(ttl.text) : 0 }));
      id = Number(this.db.prepare(SQL.directory).run(base, t('index_file'), t('default_ctype')).lastInsertRowid);
      // m2sh applies cache_ttl only when its text does not start with '0'.
      if (ttl && !ttl.text.startsWith('0')) this.db.prepare(SQL.directoryTtl).run(ttl.text, id);
    } else if (type === 'proxy') {
      refuse('Proxy', proxyProblems({ addr: t('addr'), port: Number(t('port')) }));
      id = Number(this.db.prepare(SQL.proxy).run(t('addr'), t('port')).lastInsertRowid);
    } else {
      id = Number(this.db.prepare(SQL.handler).run(t('send_spec'), t('send_ident'), t('recv_spec'), t('recv_ident')).lastInsertRowid);
      // m2sh: raw_payload is on when its text starts with '1'.
      if (this.field(cls, p, 'raw_payload', 'number')?.text.startsWith('1')) this.db.prepare(SQL.handlerRaw).run(id);
      const protocol = this.field(cls, p, 'protocol', 'string');
      if (protocol) {
        if (protocol.value !== 'json' && protocol.value !== 'tnetstring') {
          this.fail(protocol.pos, `Handler.protocol must be 'json' or 'tnetstring', got ${JSON.stringify(protocol.value)}`);
        }
        this.db.prepare(SQL.handlerProtocol).run(protocol.value, id);
      }
    }
    this.targetIds.set(cls, { id, type });
    this.summary.targets++;
    return id;
  }

  /**
   * Filter/Xrequest settings → tnetstring bytes, dict keys in mongrel2's
   * render order. References make it a graph: `within` holds the values being
   * rendered around this one, so a value that contains itself is an error, not
   * endless recursion; nesting through references is bounded like nesting
   * as written (the parser's MAX_DEPTH).
   */
  private tns(v: ValueNode, within: ReadonlySet<ValueNode> = new Set()): Buffer {
    const frame = (payload: Buffer, tag: string): Buffer =>
      Buffer.concat([Buffer.from(`${payload.length}:`, 'latin1'), payload, Buffer.from(tag, 'latin1')]);
    const value = this.resolve(v);
    if (within.has(value)) this.fail(v.pos, `filter settings refer to themselves${v.kind === 'ref' ? ` through ${v.name}` : ''}`);
    if (within.size >= MAX_DEPTH) this.fail(v.pos, `filter settings nested deeper than ${MAX_DEPTH} levels`);
    const inner = (item: ValueNode): Buffer => this.tns(item, new Set(within).add(value));
    switch (value.kind) {
      case 'string':
        return frame(Buffer.from(value.value, 'utf8'), ',');
      case 'number': {
        const n = BigInt(value.text);
        return frame(Buffer.from((n > LONG_MAX ? LONG_MAX : n).toString(), 'latin1'), '#');
      }
      case 'list':
        return frame(Buffer.concat(value.items.map(inner)), ']');
      case 'hash': {
        const entries = new Map(this.walkHash(value, 'settings').map((e) => [e.key, e] as const));
        const parts: Buffer[] = [];
        for (const key of tnsDictRenderOrder([...entries.keys()])) {
          parts.push(frame(Buffer.from(key, 'utf8'), ','), inner(entries.get(key)!.value));
        }
        return frame(Buffer.concat(parts), '}');
      }
      default: {
        const via = v.kind === 'ref' ? ` (through ${v.name})` : '';
        return this.fail(v.pos, `filter settings can hold strings, numbers, lists and hashes, not ${KIND_NAMES[value.kind]}${via}`);
      }
    }
  }

  /** A top-level hash that may be absent. */
  private topHash(name: string): HashEntry[] {
    const a = this.vars.get(name);
    if (!a) return [];
    const v = this.resolve(a.value);
    if (v.kind !== 'hash') this.fail(a.value.pos, `${name} must be a {hash}, got ${KIND_NAMES[v.kind]}`);
    return this.walkHash(v, name);
  }

  /** A settings or mimetypes value: text, numbers as their digits. */
  private scalar(e: HashEntry, what: string, allowNumber: boolean): string {
    const v = this.resolve(e.value);
    if (v.kind === 'string') return v.value;
    if (v.kind === 'number' && allowNumber) return v.text;
    const via = e.value.kind === 'ref' ? ` (through ${e.value.name})` : '';
    return this.fail(e.value.pos, `${what} ${JSON.stringify(e.key)} must be ${allowNumber ? 'a quoted string or a number' : 'a quoted string'}, got ${KIND_NAMES[v.kind]}${via}`);
  }

  private settings(): void {
    const insert = this.db.prepare(SQL.setting);
    for (const e of this.topHash('settings')) {
      insert.run(e.key, this.scalar(e, 'setting', true));
      this.summary.settings++;
    }
  }

  private mimetypes(): void {
    const builtin = this.db.prepare('INSERT INTO mimetype (mimetype, extension) VALUES (?, ?)');
    for (const [ext, type] of BUILTIN_MIMETYPES) builtin.run(type, ext);
    const del = this.db.prepare(SQL.mimetypeDelete);
    const insert = this.db.prepare(SQL.mimetype);
    for (const e of this.topHash('mimetypes')) {
      const type = this.scalar(e, 'mimetype for', false);
      if (!e.key.startsWith('.') || e.key.length < 2) {
        this.fail(e.keyPos, `mimetype extension ${JSON.stringify(e.key)} must start with '.' (mongrel2 refuses to start otherwise)`);
      }
      if (type === '') this.fail(e.value.pos, `mimetype for ${JSON.stringify(e.key)} is empty (mongrel2 refuses to start with an empty type)`);
      del.run(e.key);
      insert.run(e.key, type);
      this.summary.mimetypes++;
    }
  }
}

/** Loads a parsed config into `db` in one transaction; on any error nothing is changed. */
export function loadAst(db: Database.Database, ast: ConfigAst): LoadSummary {
  return db.transaction(() => new Loader(db, ast).load())();
}

/** Parses `.conf` text and loads it into `db` (one transaction). */
export function loadConfigText(db: Database.Database, text: string, file = '<config>'): LoadSummary {
  return loadAst(db, parseConfig(text, file));
}

/** Reads a `.conf` file as UTF-8; invalid UTF-8 is an error with its byte offset. */
export function readConfFile(confPath: string): string {
  const bytes = fs.readFileSync(confPath);
  const text = bytes.toString('utf8');
  const back = Buffer.from(text, 'utf8');
  if (back.equals(bytes)) return text;
  // Bytes match up to the first invalid sequence (decoded as U+FFFD).
  let bad = 0;
  while (bad < bytes.length && bytes[bad] === back[bad]) bad++;
  throw new ConfigLoadError(confPath, undefined, `not valid UTF-8 (at byte ${bad})`);
}

/**
 * `m2sh load -config confPath -db dbPath`: parse, then write everything in one
 * transaction. A DB file this call created is removed again if loading fails.
 */
export function loadConfigFile(confPath: string, dbPath: string): LoadSummary {
  const text = readConfFile(confPath);
  const ast = parseConfig(text, confPath);
  const existed = fs.existsSync(dbPath);
  const db = new Database(dbPath);
  try {
    return loadAst(db, ast);
  } catch (err) {
    db.close();
    if (!existed) fs.rmSync(dbPath, { force: true });
    throw err;
  } finally {
    if (db.open) db.close();
  }
}
