/**
 * Temp-file uploads. Mongrel2 announces a spooled body with the
 * `x-mongrel2-upload-start`/`-done` headers, which a client can also send
 * itself. A request is only treated as an upload when both headers name the
 * same file and that file lies under the configured upload directory.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { lstat, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { headerValue, type HttpRequest } from '../protocol/request.js';

export interface UploadConfig {
  /** Directory (on this machine) where the server's `upload.temp_store` files land. */
  dir: string;
  /**
   * The server's chroot on this machine. Mongrel2 reports upload paths as seen
   * inside its chroot (`/tmp/upload.X`); they are joined to this. Default `/`.
   */
  root?: string;
}

export class UploadError extends Error {
  override readonly name = 'UploadError';
}

export interface UploadFile {
  /** Absolute path on this machine. */
  readonly path: string;
  readonly size: number;
  open(): ReadStream;
  /** Deletes the file; Mongrel2 leaves a finished upload to the handler. */
  remove(): Promise<void>;
}

/** The path a finished upload claims, or an UploadError saying why it is not one. */
export function claimedUploadPath(req: HttpRequest, config: UploadConfig): string {
  const up = req.upload;
  if (up === undefined || up.mode !== 'file') throw new UploadError('not a temp-file upload');
  if (up.phase !== 'done') throw new UploadError('upload not finished (no x-mongrel2-upload-done)');
  if (up.start !== up.done) throw new UploadError('x-mongrel2-upload-start and -done name different files');
  if (!path.isAbsolute(up.done)) throw new UploadError(`upload path ${JSON.stringify(up.done)} is not absolute`);
  // Mongrel2 sets these headers only on a body it spooled: the done message has no body and the
  // request announced one. A client forging both on a small request has its body inline (or none),
  // and on a big one the server adds its own start header, which then differs.
  if (req.body.length > 0) throw new UploadError('a request with an inline body is not a temp-file upload (forged upload headers?)');
  if (announcedLength(req) === undefined) throw new UploadError('the request announced no body (forged upload headers?)');
  return path.join(config.root ?? '/', up.done);
}

/** Content-Length when given (> 0), 'chunked' for a chunked body, undefined when no body was announced. */
function announcedLength(req: HttpRequest): number | 'chunked' | undefined {
  if (headerValue(req.headers, 'transfer-encoding')?.toLowerCase() === 'chunked') return 'chunked';
  const cl = headerValue(req.headers, 'content-length');
  return cl !== undefined && /^[0-9]+$/.test(cl) && Number(cl) > 0 ? Number(cl) : undefined;
}

/** True when `candidate` is strictly inside `dir` (both already resolved). */
export function isInside(dir: string, candidate: string): boolean {
  const rel = path.relative(dir, candidate);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Resolves symlinks and checks the file is a regular file under the upload dir. */
export async function openUpload(req: HttpRequest, config: UploadConfig): Promise<UploadFile> {
  const claimed = claimedUploadPath(req, config);
  let real: string;
  let dir: string;
  try {
    [real, dir] = await Promise.all([realpath(claimed), realpath(config.dir)]);
  } catch (err) {
    throw new UploadError(`upload file ${claimed} is not accessible: ${(err as Error).message}`);
  }
  if (!isInside(dir, real)) throw new UploadError(`upload file ${claimed} is outside the upload directory ${config.dir}`);
  const st = await lstat(real);
  if (!st.isFile()) throw new UploadError(`upload ${claimed} is not a regular file`);
  const announced = announcedLength(req);
  if (typeof announced === 'number' && st.size !== announced) throw new UploadError(`upload ${claimed} holds ${st.size} bytes, the request announced ${announced}`);
  return {
    path: real,
    size: st.size,
    open: () => createReadStream(real),
    remove: async () => {
      await unlink(real).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
  };
}
