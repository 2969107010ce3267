/**
 * CGI/1.1 parameters for a FastCGI backend (PHP-FPM), built from a Mongrel2
 * request the way nginx's `fastcgi_params` + `fastcgi.conf` would build them
 * (bridge-anchors.md §3.1–3.3). Pure: the caller does every file-system check.
 */
import { headerValue, type HttpRequest } from '../protocol/request.js';

/** A client- or caller-side problem; `status` is what the bridge should answer. */
export class CgiParamsError extends Error {
  override readonly name = 'CgiParamsError';
  constructor(
    message: string,
    /** 400: the request is unusable; 500: the caller passed something inconsistent. */
    readonly status: 400 | 500,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------
// PATH → SCRIPT_NAME + PATH_INFO

export interface ScriptLocation {
  /** Decoded, normalised script path, e.g. `/dir/x.php`. */
  scriptName: string;
  /** Decoded rest of the path after the script (`/a/b`), or `''`. */
  pathInfo: string;
}

export type SplitResult =
  | { ok: true; candidates: ScriptLocation[] }
  | { ok: false; status: 400 | 404; reason: string };

export interface SplitOptions {
  /** File appended to a path that ends in `/`, e.g. `index.php`. */
  index: string;
  /** Script extension, matched ASCII case-insensitively. Default `.php`. */
  extension?: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits a raw Mongrel2 PATH into the script candidates a FastCGI front end
 * may run, in the order to try them.
 *
 * - The path is percent-decoded once, then `.`/`..`/empty segments are
 *   resolved (so `%2e%2e` is a `..`, and `%2f` a separator, as in nginx).
 *   Bad escapes, non-UTF-8, NUL/CR/LF (CVE-2019-11043) and a `..` above `/`
 *   are 400s.
 * - A candidate ends at an occurrence of the extension followed by `/` or the
 *   end of the path, first occurrence first (nginx `^(.+?\.php)(/.*)$`). The
 *   match is ASCII-only case-insensitive: `.PHP` matches, a Unicode character
 *   that case-folds to ASCII never does (Caddy GHSA-3g8v-8r37-cgjm).
 * - A path ending in `/` also gets `index` appended. Those candidates come
 *   *after* the ones from the path as given, so `/index.php/foo/` still runs
 *   `/index.php` with PATH_INFO `/foo/` (nginx's regex location would too)
 *   rather than `/index.php` with PATH_INFO `/foo/index.php`. A script name
 *   already listed is not listed again: its stat result would be the same.
 * - No candidate at all → 404, as nginx's `try_files` would answer.
 *
 * The caller must take the first candidate that is a regular file inside the
 * document root. That check is what defeats the `cgi.fix_pathinfo` exploit:
 * `/uploads/x.jpg/y.php` has the single candidate `/uploads/x.jpg/y.php`,
 * which does not exist, so `x.jpg` is never run as a script.
 */
export function splitScriptPath(rawPath: string, opts: SplitOptions): SplitResult {
  const ext = opts.extension ?? '.php';
  checkSplitOptions(ext, opts.index);

  const decoded = decodePath(rawPath);
  if (!decoded.ok) return decoded;
  const normal = normalisePath(decoded.path);
  if (!normal.ok) return normal;

  const candidates = findSplits(normal.path, ext);
  if (normal.path.endsWith('/')) {
    for (const c of findSplits(normal.path + opts.index, ext)) {
      if (!candidates.some((seen) => seen.scriptName === c.scriptName)) candidates.push(c);
    }
  }
  if (candidates.length === 0) return { ok: false, status: 404, reason: `no "${ext}" script in path ${JSON.stringify(normal.path)}` };
  return { ok: true, candidates };
}

/** Printable ASCII without "%": decoding changes nothing and cannot fail. */
const PLAIN_PATH = /^\/[\x21-\x24\x26-\x7e]*$/;

/** The options last found valid: a front end passes the same ones on every request. */
let checkedOptions: { ext: string; index: string } | undefined;

function checkSplitOptions(ext: string, index: string): void {
  if (ext === checkedOptions?.ext && index === checkedOptions.index) return;
  if (!/^[\x21-\x7e]+$/.test(ext) || ext.includes('/')) {
    throw new TypeError(`splitScriptPath: extension must be printable ASCII without "/", got ${JSON.stringify(ext)}`);
  }
  if (index === '' || index === '.' || index === '..' || /[/\0\r\n]/.test(index)) {
    throw new TypeError(`splitScriptPath: index must be a plain file name, got ${JSON.stringify(index)}`);
  }
  checkedOptions = { ext, index };
}

function decodePath(raw: string): { ok: true; path: string } | { ok: false; status: 400; reason: string } {
  if (PLAIN_PATH.test(raw)) return { ok: true, path: raw };
  if (!raw.startsWith('/')) return { ok: false, status: 400, reason: `path does not start with "/": ${JSON.stringify(raw)}` };
  // U+FFFD in the raw text means the message parser already replaced bytes that were not UTF-8.
  if (raw.includes('\ufffd')) return { ok: false, status: 400, reason: 'path holds bytes that are not UTF-8' };
  const bytes = Buffer.from(raw, 'utf8');
  const out = Buffer.alloc(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x25 /* % */) {
      const hex = bytes.toString('latin1', i + 1, i + 3);
      if (!HEX.test(hex)) return { ok: false, status: 400, reason: `invalid percent-escape at character ${i} of the path` };
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  let path: string;
  try {
    path = utf8.decode(out.subarray(0, n));
  } catch {
    return { ok: false, status: 400, reason: 'decoded path is not valid UTF-8' };
  }
  if (/[\0\r\n]/.test(path)) return { ok: false, status: 400, reason: 'decoded path contains NUL, CR or LF' };
  return { ok: true, path };
}

/** An empty, "." or ".." segment: only then does normalising change the path. */
const ODD_SEGMENT = /\/\/|\/\.\.?(?:\/|$)/;

function normalisePath(path: string): { ok: true; path: string } | { ok: false; status: 400; reason: string } {
  if (!ODD_SEGMENT.test(path)) return { ok: true, path };
  const segments = path.split('/');
  const stack: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) return { ok: false, status: 400, reason: 'path climbs above "/" with ".."' };
      stack.pop();
      continue;
    }
    stack.push(seg);
  }
  // `/a/`, `/a/.` and `/a/b/..` all name a directory: keep the trailing slash so the index applies.
  const last = segments[segments.length - 1];
  const dir = last === '' || last === '.' || last === '..';
  if (stack.length === 0) return { ok: true, path: '/' };
  return { ok: true, path: '/' + stack.join('/') + (dir ? '/' : '') };
}

function findSplits(path: string, ext: string): ScriptLocation[] {
  const out: ScriptLocation[] = [];
  const want = ext.toLowerCase(); // ext is ASCII, so this is ASCII-only folding
  for (let i = 1; i + want.length <= path.length; i++) {
    const end = i + want.length;
    if (end < path.length && path[end] !== '/') continue;
    if (asciiFoldEquals(path, i, want)) out.push({ scriptName: path.slice(0, end), pathInfo: path.slice(end) });
  }
  return out;
}

function asciiFoldEquals(text: string, at: number, lowerAscii: string): boolean {
  for (let k = 0; k < lowerAscii.length; k++) {
    let c = text.charCodeAt(at + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lowerAscii.charCodeAt(k)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// CGI params

export interface CgiLocation extends ScriptLocation {
  /** Absolute path of the script file on disk (after the caller's stat). */
  scriptFilename: string;
  documentRoot: string;
}

export interface CgiParamsOptions {
  /** SERVER_NAME; recommended, since the Host header is client-controlled. */
  serverName?: string;
  serverPort?: number;
  serverAddr?: string;
  /**
   * Bytes the caller will send on STDIN. Required for uploads (temp file or
   * streamed, including every chunked request, which Mongrel2 always spools):
   * there the message body is empty or only the first piece.
   */
  contentLength?: number;
  /** SERVER_SOFTWARE; default `m2bridge`. */
  software?: string;
}

/**
 * Client headers that never become HTTP_* params, each with its reason.
 * Content-Type and Content-Length also go out as HTTP_*, as nginx sends them.
 */
const SKIPPED_HEADERS = new Set([
  'proxy', // httpoxy: HTTP_PROXY would be read as the app's outbound proxy
  'transfer-encoding', // STDIN is de-chunked and described by CONTENT_LENGTH; "chunked" would contradict it
]);

/**
 * Builds the FastCGI params for `req`, fixed params first (nginx's order),
 * then one HTTP_* per client header.
 *
 * CONTENT_LENGTH is always the number of bytes the caller sends on STDIN:
 * `opts.contentLength` if given; for an upload without it, a CgiParamsError
 * (the body in the message is not the whole body); else the body length when
 * there is a body or the client sent a Content-Length; else `''` (a GET).
 *
 * Throws CgiParamsError (400) when a value holds NUL, CR or LF: PHP copies
 * params as C strings, and a newline in a path is CVE-2019-11043.
 */
export function buildCgiParams(req: HttpRequest, loc: CgiLocation, opts: CgiParamsOptions = {}): Array<[string, string]> {
  if (!loc.scriptName.startsWith('/')) throw new CgiParamsError(`scriptName must start with "/": ${JSON.stringify(loc.scriptName)}`, 500);
  if (loc.pathInfo !== '' && !loc.pathInfo.startsWith('/')) throw new CgiParamsError(`pathInfo must be empty or start with "/": ${JSON.stringify(loc.pathInfo)}`, 500);
  const h = req.headers;
  const server = (name: string): string | undefined => headerValue(h, name);

  const https = server('URL_SCHEME')?.toLowerCase() === 'https';
  const scheme = https ? 'https' : 'http';
  const query = server('QUERY') ?? '';
  const uri = server('URI') ?? req.path + (query === '' ? '' : `?${query}`);
  const host = singleHost(h.host);

  let serverPort: number;
  if (opts.serverPort !== undefined) {
    if (!Number.isInteger(opts.serverPort) || opts.serverPort < 1 || opts.serverPort > 65535) {
      throw new CgiParamsError(`serverPort must be an integer in 1..65535, got ${opts.serverPort}`, 500);
    }
    serverPort = opts.serverPort;
  } else {
    serverPort = host?.port ?? (https ? 443 : 80);
  }

  const params: Array<[string, string]> = [
    ['SCRIPT_FILENAME', loc.scriptFilename],
    ['QUERY_STRING', query],
    ['REQUEST_METHOD', req.method],
    ['CONTENT_TYPE', headerValue(h, 'content-type') ?? ''],
    ['CONTENT_LENGTH', contentLength(req, opts.contentLength)],
    ['SCRIPT_NAME', loc.scriptName],
    ['REQUEST_URI', uri],
    // nginx's $document_uri after the textbook `try_files $fastcgi_script_name`, which the script check here mirrors.
    ['DOCUMENT_URI', loc.scriptName],
    ['DOCUMENT_ROOT', loc.documentRoot],
    ['SERVER_PROTOCOL', server('VERSION') ?? 'HTTP/1.1'],
    ['REQUEST_SCHEME', scheme],
  ];
  if (https) params.push(['HTTPS', 'on']);
  params.push(
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', opts.software ?? 'm2bridge'],
    ['REMOTE_ADDR', remoteAddr(req)],
    ['REMOTE_PORT', ''], // Mongrel2 does not pass the peer port
    ['REMOTE_USER', basicAuthUser(req)],
    ['SERVER_ADDR', opts.serverAddr ?? ''],
    ['SERVER_PORT', String(serverPort)],
    ['SERVER_NAME', opts.serverName ?? host?.name ?? ''],
    ['REDIRECT_STATUS', '200'], // PHP built with force-cgi-redirect refuses to run without it
    ['PATH_INFO', loc.pathInfo],
  );
  // RFC 3875 §4.1.6: PATH_TRANSLATED only exists when PATH_INFO does.
  if (loc.pathInfo !== '') params.push(['PATH_TRANSLATED', loc.documentRoot.replace(/\/+$/, '') + loc.pathInfo]);

  for (const name in h) {
    const param = paramName(name);
    if (param === null) continue;
    const value = h[name]!;
    // Mongrel2 keeps trailing whitespace that nginx's parser would have dropped.
    const joined = typeof value === 'string' ? trimSpaceTab(value) : value.map(trimSpaceTab).join(name === 'cookie' ? '; ' : ', ');
    params.push([param, joined]);
  }

  for (let i = 0; i < params.length; i++) {
    const [name, value] = params[i]!;
    if (hasNulCrLf(value)) throw new CgiParamsError(`${name} contains NUL, CR or LF`, 400);
  }
  return params;
}

/** A loop rather than a regex: ~30 short values per request, where a regex call costs more than the scan. */
function hasNulCrLf(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c <= 0x0d && (c === 0x00 || c === 0x0a || c === 0x0d)) return true;
  }
  return false;
}
const SPACE_TAB_EDGES = /^[ \t]+|[ \t]+$/g;

function trimSpaceTab(v: string): string {
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  return first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09 ? v.replace(SPACE_TAB_EDGES, '') : v;
}

/** Header name → HTTP_* param name (null: never passed on), cached: names repeat on every request. */
const paramNames = new Map<string, string | null>();

function paramName(name: string): string | null {
  let param = paramNames.get(name);
  if (param !== undefined) return param;
  // Only lower-case [a-z0-9-] names: upper-case keys are Mongrel2's own
  // (METHOD, PATH, ...), and "_" would let X_Forwarded_For impersonate
  // X-Forwarded-For (nginx: underscores_in_headers off, ignore_invalid_headers on).
  if (!/^[a-z0-9-]+$/.test(name) || SKIPPED_HEADERS.has(name) || name.startsWith('x-mongrel2-')) param = null;
  else param = `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
  // Bounded: header names are client-chosen.
  if (paramNames.size >= 1024) paramNames.clear();
  paramNames.set(name, param);
  return param;
}

function contentLength(req: HttpRequest, given: number | undefined): string {
  if (given !== undefined) {
    if (!Number.isSafeInteger(given) || given < 0) throw new CgiParamsError(`contentLength must be a non-negative integer, got ${given}`, 500);
    return String(given);
  }
  if (req.upload !== undefined) {
    throw new CgiParamsError(`an ${req.upload.mode} upload needs opts.contentLength: the message body is not the whole request body`, 500);
  }
  if (req.body.length > 0 || req.headers['content-length'] !== undefined) return String(req.body.length);
  return '';
}

/** The trusted REMOTE_ADDR, else the last x-forwarded-for hop (the one Mongrel2 wrote). */
function remoteAddr(req: HttpRequest): string {
  const trusted = headerValue(req.headers, 'REMOTE_ADDR');
  if (trusted !== undefined) return trusted;
  const xff = req.headers['x-forwarded-for'];
  if (xff === undefined) return '';
  const last = typeof xff === 'string' ? xff : xff[xff.length - 1] ?? '';
  return (last.split(',').pop() ?? '').trim();
}

/** The last Host value parsed, and what it gave: clients send the same one over and over. */
let lastHost: { value: string; host: { name: string; port?: number } | undefined } | undefined;

/** Host name (lower-cased, like nginx's $host) and port; undefined when absent, repeated or malformed. */
function singleHost(value: string | string[] | undefined): { name: string; port?: number } | undefined {
  // Several Host headers are a smuggling attempt or a broken client: trust none.
  if (typeof value !== 'string') return undefined;
  if (lastHost?.value === value) return lastHost.host;
  const host = parseHost(value);
  lastHost = { value, host };
  return host;
}

function parseHost(value: string): { name: string; port?: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=]+)(?::([0-9]{1,5}))?$/.exec(value.trim());
  if (m === null) return undefined;
  const name = m[1]!.toLowerCase();
  if (m[2] === undefined) return { name };
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { name, port } : { name };
}

/** nginx's $remote_user: the user name of a Basic Authorization header (not verified). */
function basicAuthUser(req: HttpRequest): string {
  const auth = headerValue(req.headers, 'authorization');
  const m = auth === undefined ? null : /^basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(auth);
  if (!m) return '';
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? '' : decoded.slice(0, colon);
  return /[\0\r\n]/.test(user) ? '' : user;
}
