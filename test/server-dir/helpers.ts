/** Shared fixtures for the Dir handler tests: temp trees, requests, response parsing. */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import type { DirTarget } from '../../src/config/types.js';
import { DirHandler, type DirHandlerOptions, type DirRequest, type DirResponse } from '../../src/server/dir/index.js';

export const MIMETYPES: ReadonlyMap<string, string> = new Map([
  ['.txt', 'text/plain'],
  ['.html', 'text/html'],
  ['.json', 'application/json'],
  ['.gz', 'application/x-gzip'],
  ['.tar.gz', 'application/x-tgz'],
  ['.bin', 'application/octet-stream'],
]);

/** A fresh temp directory removed after the test. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2dir-'));
  t.after(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Write files (relative path → content) under root, creating directories. */
export async function writeTree(root: string, files: Readonly<Record<string, string | Buffer>>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, content);
  }
}

export function dirTarget(base: string, extra: Partial<DirTarget> = {}): DirTarget {
  return { type: 'dir', id: 1, base, indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 0, ...extra };
}

export function makeHandler(
  cwd: string,
  opts: { base?: string; prefix?: string; target?: Partial<DirTarget>; now?: () => number } = {},
): DirHandler {
  const options: DirHandlerOptions = { cwd };
  if (opts.now) options.now = opts.now;
  return new DirHandler(dirTarget(opts.base ?? 'static/', opts.target), opts.prefix ?? '/static/', MIMETYPES, options);
}

export function request(
  method: string,
  uri: string,
  headers: Readonly<Record<string, string>> = {},
  version = 'HTTP/1.1',
): DirRequest {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const q = uri.indexOf('?');
  return { method, uri, path: q >= 0 ? uri.slice(0, q) : uri, version, header: (name) => lower.get(name) };
}

export interface ParsedHead {
  statusLine: string;
  status: number;
  headers: Array<[string, string]>;
  /** Bytes after the blank line inside `head` (fixed responses carry their body there). */
  inlineBody: Buffer;
  get(name: string): string | undefined;
  names(): string[];
}

export function parseHead(raw: Buffer): ParsedHead {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no blank line in head: ${JSON.stringify(raw.toString('latin1'))}`);
  const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers = lines.map((l): [string, string] => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon), l.slice(colon + 1).trim()];
  });
  return {
    statusLine,
    status: Number(statusLine.split(' ')[1]),
    headers,
    inlineBody: raw.subarray(end + 4),
    get: (name) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
    names: () => headers.map(([n]) => n),
  };
}

export async function readBody(res: DirResponse): Promise<Buffer> {
  if (res.content !== undefined) return res.content;
  if (res.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of res.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** serve() plus the parsed head and the whole body. */
export async function fetchFrom(
  h: DirHandler,
  req: DirRequest,
): Promise<{ res: DirResponse; head: ParsedHead; body: Buffer }> {
  const res = await h.serve(req);
  const head = parseHead(res.head);
  return { res, head, body: res.body || res.content ? await readBody(res) : head.inlineBody };
}

/** Set a file's atime and mtime to `seconds` since the epoch. */
export function setMtime(file: string, seconds: number): Promise<void> {
  return fsp.utimes(file, seconds, seconds);
}
