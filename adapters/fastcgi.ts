/**
 * The FastCGI backend: a Mongrel2 request becomes CGI params plus STDIN for
 * PHP-FPM, and FPM's CGI output becomes an HTTP response. Where does a
 * disconnect abort the FastCGI request? Here: the bridge's AbortSignal goes
 * to FastCgiClient.request, which destroys the FPM socket (FPM stops a script
 * only when its socket closes).
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from '../src/handler/logger.js';
import { isInside } from '../src/handler/uploads.js';
import { BackendError, type Backend, type BackendRequest, type BackendResponse } from '../src/bridge/backend.js';
import { buildCgiParams, CgiParamsError, splitScriptPath, type CgiLocation, type ScriptLocation } from '../src/bridge/cgi-params.js';
import { CgiHeadParser, type CgiHead } from '../src/bridge/cgi-response.js';
import { FastCgiError, type FastCgiClient, type FastCgiRequestInit } from '../src/fastcgi/client.js';

export interface FastCgiBackendOptions {
  client: FastCgiClient;
  /** Document root: SCRIPT_FILENAME = root + script name. */
  root: string;
  index?: string;
  /** Turn X-Accel-Redirect / X-Sendfile into Mongrel2 sendfile replies (files must lie under `root`). */
  sendfile?: boolean;
  /** Mongrel2's chroot on this machine: sendfile paths are given as the server sees them. */
  chroot?: string;
  serverName?: string;
  serverPort?: number;
  logger: Logger;
}

/** FastCGI failures as HTTP statuses, as nginx maps them. */
function statusFor(err: FastCgiError): number {
  switch (err.code) {
    case 'TIMEOUT':
      return 504;
    case 'OVERLOADED':
    case 'QUEUE_FULL':
      return 503;
    case 'PARAMS_TOO_LARGE':
      return 431;
    default:
      return 502;
  }
}

export class FastCgiBackend implements Backend {
  readonly name = 'fastcgi';
  readonly #client: FastCgiClient;
  readonly #root: string;
  /** #root without a trailing "/": + a normalised script name ("/x.php") = path.join(root, name), without its cost. */
  readonly #rootPrefix: string;
  readonly #index: string;
  readonly #options: FastCgiBackendOptions;
  readonly #log: Logger;
  #realRoot: Promise<string> | undefined;
  /** #realRoot once it resolved: the usual request finds its script without an await. */
  #realRootValue: string | undefined;

  constructor(options: FastCgiBackendOptions) {
    this.#client = options.client;
    this.#root = path.resolve(options.root);
    this.#rootPrefix = this.#root === '/' ? '' : this.#root;
    this.#index = options.index ?? 'index.php';
    this.#options = options;
    this.#log = options.logger;
  }

  async handle(request: BackendRequest): Promise<BackendResponse> {
    // `signal` is read only without the Bridge's cancel switch: the Bridge makes an AbortController when it is read.
    const { req, body, bodyLength, cancel } = request;
    const split = splitScriptPath(req.path, { index: this.#index });
    if (!split.ok) throw new BackendError(split.status, split.reason);
    const realRoot = this.#realRootValue ?? (this.#realRootValue = await (this.#realRoot ??= realpath(this.#root)));
    const found = this.#locate(realRoot, split.candidates);
    const script = found instanceof Promise ? await found : found;
    if (!script) throw new BackendError(404, `no script for ${req.path}`);
    // FPM waits forever for a body whose length it was not told.
    if (body !== null && bodyLength === undefined) throw new BackendError(411, 'request body of unknown length');
    let params: Array<[string, string]>;
    try {
      // nginx sends CONTENT_LENGTH '' when there is no body; so do we.
      params = buildCgiParams(req, script, { contentLength: body === null ? undefined : bodyLength, serverName: this.#options.serverName, serverPort: this.#options.serverPort });
    } catch (err) {
      if (err instanceof CgiParamsError) throw new BackendError(err.status, err.message, { cause: err });
      throw err;
    }

    let response;
    try {
      const onStderr = (chunk: Buffer): void => {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.#log.warn({ script: script.scriptFilename }, `FPM stderr: ${line}`);
      };
      const init: FastCgiRequestInit = { params, stdin: body ?? undefined, onStderr };
      if (cancel) init.cancel = cancel;
      else init.signal = request.signal;
      response = await this.#client.request(init);
    } catch (err) {
      if (err instanceof FastCgiError) throw new BackendError(statusFor(err), `FastCGI: ${err.message}`, { cause: err });
      throw err;
    }

    // The usual small reply is complete by now: its head is parsed from the
    // chunks and the rest becomes the body, without streaming STDOUT.
    const whole = response.takeWhole();
    let head: CgiHead;
    let out: Readable;
    try {
      if (whole) {
        [head, out] = splitWhole(whole);
      } else {
        out = response.stdout;
        const read = readHead(out);
        head = read instanceof Promise ? await read : read; // usually complete already: no extra turn
      }
    } catch (err) {
      if (!whole) response.stdout.destroy();
      if (err instanceof FastCgiError) throw new BackendError(statusFor(err), `FastCGI: ${err.message}`, { cause: err });
      throw new BackendError(502, `invalid CGI response from FPM: ${(err as Error).message}`, { cause: err });
    }
    const target = head.accelRedirect ?? head.sendfile;
    if (target !== undefined && this.#options.sendfile) {
      out.destroy();
      return this.#sendfileResponse(head, target);
    }
    // A streamed STDOUT is the body itself after readHead (destroying it aborts the FastCGI request).
    return { status: head.status, reason: head.reason, headers: head.headers, body: out, noBuffering: head.noBuffering };
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  /**
   * The first candidate that is a regular file inside the root, symlinks
   * resolved. Answers are kept for a second: realpath + stat per request were
   * the largest item in the profile (bench/RESULTS.md), and nginx's
   * open_file_cache makes the same trade. A cached answer is synchronous (no
   * await for the usual request); a miss asks the file system asynchronously,
   * so a slow docroot (NFS) never blocks the event loop.
   */
  #locate(realRoot: string, candidates: ReadonlyArray<ScriptLocation>): CgiLocation | undefined | Promise<CgiLocation | undefined> {
    const now = Date.now();
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const hit = this.#scripts.get(c.scriptName);
      if (!hit || hit.until <= now) return this.#locateFrom(realRoot, candidates, i);
      if (hit.ok) return this.#location(c);
    }
    return undefined;
  }

  async #locateFrom(realRoot: string, candidates: ReadonlyArray<ScriptLocation>, from: number): Promise<CgiLocation | undefined> {
    for (let i = from; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (await this.#isScript(realRoot, c.scriptName)) return this.#location(c);
    }
    return undefined;
  }

  #location(c: ScriptLocation): CgiLocation {
    return { scriptName: c.scriptName, pathInfo: c.pathInfo, scriptFilename: this.#rootPrefix + c.scriptName, documentRoot: this.#root };
  }

  readonly #scripts = new Map<string, { ok: boolean; until: number }>();

  async #isScript(realRoot: string, scriptName: string): Promise<boolean> {
    const hit = this.#scripts.get(scriptName);
    if (hit && hit.until > Date.now()) return hit.ok;
    let ok = false;
    try {
      const real = await realpath(this.#rootPrefix + scriptName);
      ok = isInside(realRoot, real) && (await stat(real)).isFile();
    } catch {
      ok = false; // missing: try the next split
    }
    if (this.#scripts.size >= 4096) this.#scripts.clear();
    this.#scripts.set(scriptName, { ok, until: Date.now() + 1000 });
    return ok;
  }

  async #sendfileResponse(head: CgiHead, target: string): Promise<BackendResponse> {
    const realRoot = await (this.#realRoot ??= realpath(this.#root));
    let file: string;
    let size: number;
    try {
      file = await realpath(path.join(this.#root, path.posix.normalize('/' + target)));
      const st = await stat(file);
      if (!isInside(realRoot, file) || !st.isFile()) throw new Error('outside the root or not a file');
      size = st.size;
    } catch (err) {
      this.#log.warn({ target, err: (err as Error).message }, 'X-Accel-Redirect/X-Sendfile target refused');
      throw new BackendError(404, `sendfile target ${target} refused`);
    }
    const chroot = path.resolve(this.#options.chroot ?? '/');
    if (chroot !== '/' && !isInside(chroot, file)) {
      this.#log.warn({ target, chroot }, 'X-Accel-Redirect/X-Sendfile target is outside the Mongrel2 chroot');
      throw new BackendError(404, `sendfile target ${target} is outside the server's chroot`);
    }
    const headers = head.headers.filter(([k]) => k.toLowerCase() !== 'content-length');
    headers.push(['Content-Length', String(size)]);
    const serverPath = chroot === '/' ? file : '/' + path.relative(chroot, file);
    return { status: head.status, reason: head.reason, headers, body: null, sendfile: serverPath };
  }
}

const NO_HEAD = 'FPM closed STDOUT before the end of the CGI header block';

/** A complete STDOUT → its CGI head and a stream of the bytes after it. */
function splitWhole(chunks: Buffer[]): [CgiHead, Readable] {
  const parser = new CgiHeadParser();
  for (let i = 0; i < chunks.length; i++) {
    const head = parser.push(chunks[i]!);
    if (head === null) continue;
    const body = new Readable({ read: noop });
    if (head.rest.length > 0) body.push(head.rest);
    for (let k = i + 1; k < chunks.length; k++) body.push(chunks[k]);
    body.push(null);
    return [head, body];
  }
  throw new Error(NO_HEAD);
}

function noop(): void {}

/**
 * Reads STDOUT until the CGI header block is complete, and puts the body
 * bytes that came with it back at the front of STDOUT. The unshift happens in
 * the same tick as the read that found the head, so an already ended STDOUT
 * cannot emit 'end' in between. A head already buffered comes back at once
 * (a bad one throws); otherwise a promise.
 */
function readHead(stdout: Readable): CgiHead | Promise<CgiHead> {
  const parser = new CgiHeadParser();
  const take = (): CgiHead | null => {
    for (let chunk = stdout.read() as Buffer | null; chunk !== null; chunk = stdout.read() as Buffer | null) {
      const head = parser.push(chunk);
      if (head) {
        if (head.rest.length > 0) stdout.unshift(head.rest);
        return head;
      }
    }
    return null;
  };
  const head = take();
  if (head) return head;
  return new Promise((resolve, reject) => {
    const settle = (err: unknown, head?: CgiHead): void => {
      stdout.off('readable', onReadable);
      stdout.off('end', onEnd);
      stdout.off('error', onError);
      stdout.off('close', onClose);
      if (head) resolve(head);
      else reject(err);
    };
    const onReadable = (): void => {
      try {
        const head = take();
        if (head) settle(undefined, head);
      } catch (err) {
        settle(err);
      }
    };
    const onEnd = (): void => settle(new Error(NO_HEAD));
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(stdout.errored ?? new Error(NO_HEAD));
    stdout.on('readable', onReadable);
    stdout.on('end', onEnd);
    stdout.on('error', onError);
    stdout.on('close', onClose);
  });
}
