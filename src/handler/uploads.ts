/**
 * Temp-file uploads. Mongrel2 announces a spooled body with the
 * `x-mongrel2-upload-start`/`-done` headers, which a client can also send
 * itself. A request is only treated as an upload when both headers name the
 * same file and that file lies under the configured upload directory.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { lstat, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { HttpRequest } from '../protocol/request.js';

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
  return path.join(config.root ?? '/', up.done);
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
