/**
 * The bridge's route map: `bridge.json` parsed and checked (pure, no I/O),
 * and the per-request router the Bridge calls to pick a backend.
 *
 *     {
 *       "backends": {
 *         "legacy": { "type": "fcgi", "address": "127.0.0.1:9000", "root": "/srv/app", "index": "index.php" },
 *         "api":    { "type": "http", "url": "http://127.0.0.1:3000" },
 *         "web":    { "type": "app",  "file": "./app.mjs" }
 *       },
 *       "routes": [
 *         { "pattern": "/api/(.*)", "backend": "api" },
 *         { "prefix": "/new/", "backend": "web" },
 *         { "prefix": "/", "backend": "legacy" }
 *       ]
 *     }
 *
 * A route matches either Mongrel2's PATTERN header exactly (the route string
 * of the Mongrel2 config that sent the request, so one bridge can serve
 * several Mongrel2 routes pointed at one handler) or a prefix of the request
 * PATH. Routes are tried in order; the first match wins; no match is a 404.
 * JSON is parsed here rather than with JSON.parse so that duplicate keys
 * (which JSON.parse silently drops) are errors and every error has a line:column.
 */
import path from 'node:path';
import type { Headers } from '../protocol/request.js';

/** Value ranges shared with the command-line flags of the same meaning. */
export const LIMITS = {
  maxConnections: { min: 1, max: 10_000 },
  idle: { min: 0, max: 3600 },
  timeout: { min: 1, max: 86_400 },
} as const;

export interface FcgiBackendSpec {
  readonly type: 'fcgi';
  /** HOST:PORT, [IPv6]:PORT or unix:/absolute/path (= --fcgi). */
  readonly address: string;
  /** Absolute document root (= --root). */
  readonly root: string;
  readonly index?: string;
  readonly sendfile?: boolean;
  readonly maxConnections?: number;
  /** Seconds idle FastCGI connections are kept (= --fcgi-idle). */
  readonly idle?: number;
  readonly timeout?: number;
}

export interface HttpBackendSpec {
  readonly type: 'http';
  /** http: or https: URL without credentials (= --http). */
  readonly url: string;
  readonly maxConnections?: number;
  readonly timeout?: number;
  readonly trustForwarded?: boolean;
}

export interface AppBackendSpec {
  readonly type: 'app';
  /** Absolute path of the app module (= --app). */
  readonly file: string;
  readonly timeout?: number;
}

export type BackendSpec = FcgiBackendSpec | HttpBackendSpec | AppBackendSpec;
export type RouteMatch = { readonly pattern: string } | { readonly prefix: string };
export type RouteSpec = RouteMatch & { readonly backend: string };

export interface BridgeConfig {
  /** Backends by name, in file order. */
  readonly backends: ReadonlyMap<string, BackendSpec>;
  readonly routes: readonly RouteSpec[];
}

export type BridgeConfigResult =
  | { readonly ok: true; readonly config: BridgeConfig; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[]; readonly warnings: readonly string[] };

// ---------------------------------------------------------------------------
// validators shared with the command line (they return what is wrong, or undefined)

/** A FastCGI address: HOST:PORT, [IPv6]:PORT or unix:/absolute/path. */
export function fcgiAddressProblem(value: string): string | undefined {
  if (!/^(unix:\/.+|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}|[A-Za-z0-9.-]+:[0-9]{1,5})$/.test(value)) return 'expected host:port or unix:/path';
  const port = /:([0-9]+)$/.exec(value);
  if (!value.startsWith('unix:') && port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) return 'port must be 1-65535';
  return undefined;
}

/** An upstream HTTP URL: http: or https:, a host, no user:password (they would leak into logs). */
export function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'expected an http:// or https:// URL such as http://127.0.0.1:3000';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected an http:// or https:// URL, not ${url.protocol}`;
  if (url.username !== '' || url.password !== '') return 'must not contain credentials (user:password@)';
  if (url.hostname === '') return 'has no host';
  if (url.search !== '' || url.hash !== '') return 'must not have a query or fragment';
  return undefined;
}

// ---------------------------------------------------------------------------
// a JSON reader that keeps positions and sees duplicate keys

type JNode =
  | { readonly kind: 'object'; readonly at: number; readonly entries: ReadonlyArray<{ key: string; at: number; value: JNode }> }
  | { readonly kind: 'array'; readonly at: number; readonly items: readonly JNode[] }
  | { readonly kind: 'string'; readonly at: number; readonly value: string }
  | { readonly kind: 'number'; readonly at: number; readonly value: number }
  | { readonly kind: 'boolean'; readonly at: number; readonly value: boolean }
  | { readonly kind: 'null'; readonly at: number };

class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING_END = /(?:[^"\\]|\\.)*"/sy;

function readJson(text: string, duplicates: Array<{ key: string; at: number; first: number }>): JNode {
  let i = 0;
  const space = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const value = (): JNode => {
    space();
    const at = i;
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: Array<{ key: string; at: number; value: JNode }> = [];
      const seen = new Map<string, number>();
      space();
      if (text[i] === '}') return i++, { kind: 'object', at, entries };
      for (;;) {
        space();
        if (text[i] !== '"') throw new JsonSyntaxError(i, 'expected a "quoted" key');
        const keyAt = i;
        const key = string();
        const first = seen.get(key);
        if (first !== undefined) duplicates.push({ key, at: keyAt, first });
        else seen.set(key, keyAt);
        space();
        if (text[i] !== ':') throw new JsonSyntaxError(i, 'expected ":" after the key');
        i++;
        entries.push({ key, at: keyAt, value: value() });
        space();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return i++, { kind: 'object', at, entries };
        else throw new JsonSyntaxError(i, 'expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: JNode[] = [];
      space();
      if (text[i] === ']') return i++, { kind: 'array', at, items };
      for (;;) {
        items.push(value());
        space();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return i++, { kind: 'array', at, items };
        else throw new JsonSyntaxError(i, 'expected "," or "]"');
      }
    }
    if (c === '"') return { kind: 'string', at, value: string() };
    for (const [word, node] of [['true', { kind: 'boolean', at, value: true }], ['false', { kind: 'boolean', at, value: false }], ['null', { kind: 'null', at }]] as const) {
      if (text.startsWith(word, i)) return (i += word.length), node;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) return (i += m[0].length), { kind: 'number', at, value: Number(m[0]) };
    throw new JsonSyntaxError(i, i >= text.length ? 'unexpected end of the file' : `unexpected ${JSON.stringify(text[i])}`);
  };
  const string = (): string => {
    STRING_END.lastIndex = i + 1;
    const m = STRING_END.exec(text);
    if (!m) throw new JsonSyntaxError(i, 'unterminated string');
    try {
      const s = JSON.parse(text.slice(i, i + 1 + m[0].length)) as string;
      i += 1 + m[0].length;
      return s;
    } catch {
      throw new JsonSyntaxError(i, 'invalid string (a control character or a bad \\ escape)');
    }
  };
  const root = value();
  space();
  if (i < text.length) throw new JsonSyntaxError(i, 'unexpected text after the JSON value');
  return root;
}

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let j = 0; j < offset && j < text.length; j++) {
    if (text[j] === '\n') {
      line++;
      lineStart = j + 1;
    }
  }
  return `${line}:${offset - lineStart + 1}`;
}

// ---------------------------------------------------------------------------
// the schema

const BACKEND_KEYS = {
  fcgi: ['type', 'address', 'root', 'index', 'sendfile', 'maxConnections', 'idle', 'timeout'],
  http: ['type', 'url', 'maxConnections', 'timeout', 'trustForwarded'],
  app: ['type', 'file', 'timeout'],
} as const;
type BackendType = keyof typeof BACKEND_KEYS;

const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses and checks a bridge config. `file` is where the text came from: it
 * names the errors, and relative `root`/`file` paths are resolved against its
 * directory. Errors read `FILE:LINE:COL: key.path: what is wrong`.
 */
export function parseBridgeConfig(text: string, file: string): BridgeConfigResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const dir = path.dirname(path.resolve(file));
  const where = (at: number): string => `${file}:${lineColumn(text, at)}`;
  const fail = (at: number, key: string, what: string): void => void errors.push(`${where(at)}: ${key}: ${what}`);

  const duplicates: Array<{ key: string; at: number; first: number }> = [];
  let root: JNode;
  try {
    root = readJson(text.replace(/^\uFEFF/, ''), duplicates);
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    return { ok: false, errors: [`${where(err.offset)}: not valid JSON: ${err.message}`], warnings };
  }
  for (const d of duplicates) errors.push(`${where(d.at)}: duplicate key "${d.key}" (first at ${lineColumn(text, d.first)})`);
  if (root.kind !== 'object') return { ok: false, errors: [`${where(root.at)}: expected an object with "backends" and "routes"`], warnings };

  const fields = (node: Extract<JNode, { kind: 'object' }>, keyPath: string, allowed: readonly string[], what: string): Map<string, { at: number; value: JNode }> => {
    const out = new Map<string, { at: number; value: JNode }>();
    for (const e of node.entries) {
      if (!allowed.includes(e.key)) fail(e.at, `${keyPath}${e.key}`, `unknown key${what} (allowed: ${allowed.join(', ')})`);
      else if (!out.has(e.key)) out.set(e.key, { at: e.at, value: e.value });
    }
    return out;
  };
  const top = fields(root, '', ['backends', 'routes'], '');

  // backends
  const backends = new Map<string, BackendSpec>();
  const names: string[] = [];
  const backendsNode = top.get('backends');
  if (!backendsNode) fail(root.at, 'backends', 'missing (an object of named backends)');
  else if (backendsNode.value.kind !== 'object' || backendsNode.value.entries.length === 0) fail(backendsNode.value.at, 'backends', 'expected an object with at least one named backend');
  else {
    for (const entry of backendsNode.value.entries) {
      if (names.includes(entry.key)) continue; // reported as a duplicate key
      names.push(entry.key);
      const keyPath = `backends.${entry.key}`;
      if (!NAME.test(entry.key)) fail(entry.at, keyPath, 'a backend name may only contain letters, digits, ".", "_" and "-"');
      const spec = checkBackend(entry.value, keyPath);
      if (spec) backends.set(entry.key, spec);
    }
  }

  function checkBackend(node: JNode, keyPath: string): BackendSpec | undefined {
    if (node.kind !== 'object') return void fail(node.at, keyPath, 'expected an object with a "type"');
    const typeEntry = node.entries.find((e) => e.key === 'type');
    const type = typeEntry?.value.kind === 'string' ? typeEntry.value.value : undefined;
    if (!typeEntry) return void fail(node.at, `${keyPath}.type`, 'missing (one of "fcgi", "http", "app")');
    if (type === undefined || !Object.hasOwn(BACKEND_KEYS, type)) return void fail(typeEntry.value.at, `${keyPath}.type`, 'expected one of "fcgi", "http", "app"');
    const t = type as BackendType;
    const f = fields(node, `${keyPath}.`, BACKEND_KEYS[t], ` for a "${t}" backend`);
    const before = errors.length;
    const str = (key: string, required: boolean, check?: (v: string) => string | undefined): string | undefined => {
      const e = f.get(key);
      if (!e) return required ? void fail(node.at, `${keyPath}.${key}`, `missing (required for a "${t}" backend)`) : undefined;
      if (e.value.kind !== 'string' || e.value.value === '') return void fail(e.value.at, `${keyPath}.${key}`, 'expected a non-empty string');
      const problem = check?.(e.value.value);
      if (problem) return void fail(e.value.at, `${keyPath}.${key}`, problem);
      return e.value.value;
    };
    const int = (key: keyof typeof LIMITS): number | undefined => {
      const e = f.get(key);
      if (!e) return undefined;
      const { min, max } = LIMITS[key];
      if (e.value.kind !== 'number' || !Number.isInteger(e.value.value) || e.value.value < min || e.value.value > max) return void fail(e.value.at, `${keyPath}.${key}`, `expected a whole number from ${min} to ${max}`);
      return e.value.value;
    };
    const bool = (key: string): boolean | undefined => {
      const e = f.get(key);
      if (!e) return undefined;
      if (e.value.kind !== 'boolean') return void fail(e.value.at, `${keyPath}.${key}`, 'expected true or false');
      return e.value.value;
    };
    const resolve = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(dir, p));
    let spec: BackendSpec;
    if (t === 'fcgi') {
      const index = str('index', false, (v) => (v.includes('/') ? 'expected a file name without "/"' : undefined));
      spec = {
        type: t,
        address: str('address', true, fcgiAddressProblem)!,
        root: resolve(str('root', true))!,
        ...optional({ index, sendfile: bool('sendfile'), maxConnections: int('maxConnections'), idle: int('idle'), timeout: int('timeout') }),
      };
    } else if (t === 'http') {
      spec = { type: t, url: str('url', true, httpUrlProblem)!, ...optional({ maxConnections: int('maxConnections'), timeout: int('timeout'), trustForwarded: bool('trustForwarded') }) };
    } else {
      spec = { type: t, file: resolve(str('file', true))!, ...optional({ timeout: int('timeout') }) };
    }
    return errors.length === before ? spec : undefined;
  }

  // routes
  const routes: RouteSpec[] = [];
  const used = new Set<string>();
  const routesNode = top.get('routes');
  if (!routesNode) fail(root.at, 'routes', 'missing (a list of {"pattern"|"prefix", "backend"})');
  else if (routesNode.value.kind !== 'array' || routesNode.value.items.length === 0) fail(routesNode.value.at, 'routes', 'expected a list with at least one route');
  else {
    routesNode.value.items.forEach((node, n) => {
      const keyPath = `routes[${n}]`;
      if (node.kind !== 'object') return fail(node.at, keyPath, 'expected an object such as {"prefix": "/", "backend": "NAME"}');
      const f = fields(node, `${keyPath}.`, ['pattern', 'prefix', 'backend'], ' for a route');
      const before = errors.length;
      const pattern = f.get('pattern');
      const prefix = f.get('prefix');
      let match: RouteMatch | undefined;
      if (pattern && prefix) fail(prefix.at, keyPath, 'has both "pattern" and "prefix"; a route matches one of them');
      else if (!pattern && !prefix) fail(node.at, keyPath, 'needs "pattern" (Mongrel2 route) or "prefix" (request path)');
      else if (pattern) {
        if (pattern.value.kind !== 'string' || pattern.value.value === '') fail(pattern.value.at, `${keyPath}.pattern`, 'expected a non-empty string (a Mongrel2 route exactly as in its config)');
        else match = { pattern: pattern.value.value };
      } else if (prefix) {
        if (prefix.value.kind !== 'string' || !prefix.value.value.startsWith('/')) fail(prefix.value.at, `${keyPath}.prefix`, 'expected a string starting with "/"');
        else match = { prefix: prefix.value.value };
      }
      const backend = f.get('backend');
      if (!backend) fail(node.at, `${keyPath}.backend`, 'missing (the name of a backend)');
      else if (backend.value.kind !== 'string') fail(backend.value.at, `${keyPath}.backend`, 'expected a backend name');
      else if (!names.includes(backend.value.value)) fail(backend.value.at, `${keyPath}.backend`, `unknown backend "${backend.value.value}" (known: ${names.join(', ') || 'none'})`);
      else used.add(backend.value.value);
      if (errors.length === before && match && backend?.value.kind === 'string') {
        const shadow = routes.findIndex((r) => shadows(r, match));
        if (shadow >= 0) warnings.push(`${where(node.at)}: ${keyPath}: never matches: routes[${shadow}] before it matches every request it would`);
        routes.push({ ...match, backend: backend.value.value });
      }
    });
  }
  for (const name of names) if (!used.has(name) && routesNode?.value.kind === 'array') warnings.push(`${file}: backends.${name}: not used by any route`);
  if (errors.length > 0) return { ok: false, errors, warnings };
  return { ok: true, config: { backends, routes }, warnings };
}

/** Does the earlier route `a` take every request route `b` would get? */
function shadows(a: RouteMatch, b: RouteMatch): boolean {
  if ('prefix' in a) return a.prefix === '/' || ('prefix' in b && b.prefix.startsWith(a.prefix));
  return 'pattern' in b && a.pattern === b.pattern;
}

/** The object without its undefined values (exactOptionalPropertyTypes-friendly spreads). */
function optional<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

// ---------------------------------------------------------------------------
// routing

/** What the router reads from a request. */
export interface RoutableRequest {
  readonly path: string;
  readonly headers: Headers;
}

/**
 * A router over routes in order: `pattern` compares the request's PATTERN
 * header (the Mongrel2 route that matched), `prefix` the start of its PATH.
 * The first match wins; none gives undefined (the Bridge answers 404).
 */
export function createRouter<T>(routes: ReadonlyArray<{ readonly match: RouteMatch; readonly target: T }>): (req: RoutableRequest) => T | undefined {
  const table = routes.map((r) => ({ ...r }));
  return (req) => {
    const pattern = req.headers.PATTERN;
    for (const r of table) {
      if ('pattern' in r.match ? r.match.pattern === pattern : req.path.startsWith(r.match.prefix)) return r.target;
    }
    return undefined;
  };
}
