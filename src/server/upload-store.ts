/**
 * Temp files for big request bodies (`upload.temp_store`, Mongrel2's
 * src/upload.c): mkstemp-like (template ending in XXXXXX, created with
 * O_CREAT|O_EXCL), then chmod to `upload.temp_store_mode`. The handler is told
 * the path as the server sees it: inside the chroot when there is one.
 */
import { constants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import { Writable } from 'node:stream';

export interface TempFile {
  /** The path as announced to the handler (the template with its XXXXXX filled). */
  readonly announced: string;
  /** Where the file is on this machine. */
  readonly disk: string;
  readonly handle: fsp.FileHandle;
}

export interface TempStore {
  readonly template: string;
  /** The server root: the chroot folder, or the folder a server without chroot runs in. */
  readonly root: string;
  /** With a chroot, absolute templates live under `root`. */
  readonly chrooted: boolean;
  readonly mode: number;
}

const SUFFIX = 'XXXXXX';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const TRIES = 100;

/** C strtoul(text, NULL, 0): optional blanks and sign, 0x hex, leading 0 octal, else decimal; stops at the first bad digit. */
export function strtoul0(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return 0;
  const digits = m[2]!;
  const n = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.startsWith('0') ? parseInt(digits, 8) || 0 : parseInt(digits, 10);
  return m[1] === '-' ? -n >>> 0 : n;
}

/** Where an announced (server-view) path is on this machine. */
export function diskPath(store: Pick<TempStore, 'root' | 'chrooted'>, announced: string): string {
  return store.chrooted ? path.join(store.root, announced) : path.resolve(store.root, announced);
}

export async function createTempFile(store: TempStore): Promise<TempFile> {
  if (!store.template.endsWith(SUFFIX)) throw new Error(`upload.temp_store ${JSON.stringify(store.template)} must end in ${SUFFIX}`);
  const stem = store.template.slice(0, -SUFFIX.length);
  for (let i = 0; i < TRIES; i++) {
    let name = stem;
    for (let j = 0; j < SUFFIX.length; j++) name += LETTERS[randomInt(LETTERS.length)];
    const disk = diskPath(store, name);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(disk, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`cannot create upload temp file ${disk}: ${(err as Error).message}`);
    }
    try {
      // fchmod, like Mongrel2: the mode is exact whatever the umask.
      await handle.chmod(store.mode & 0o7777);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fsp.unlink(disk).catch(() => undefined);
      throw new Error(`cannot chmod upload temp file ${disk}: ${(err as Error).message}`);
    }
    return { announced: name, disk, handle };
  }
  throw new Error(`no free name for upload.temp_store ${store.template} after ${TRIES} tries`);
}

/**
 * A few buffers reused for a body on its way to a temp file, so a 1 GiB
 * upload does not allocate (and leave for the GC) 1 GiB of buffers. A piece is
 * copied into a free one; once the file has it, the writer gives it back.
 * When all are in use (or a piece is bigger), the copy is a fresh buffer.
 */
export class UploadBuffers {
  private readonly free: ArrayBuffer[] = [];
  private readonly owned = new Set<ArrayBuffer>();

  constructor(
    private readonly count = 8,
    private readonly bytes = 64 * 1024,
  ) {}

  /** A copy of `piece`, in a reused buffer when one is free. */
  copy(piece: Buffer): Buffer {
    if (piece.length > this.bytes) return Buffer.from(piece);
    let ab = this.free.pop();
    if (ab === undefined && this.owned.size < this.count) {
      ab = new ArrayBuffer(this.bytes);
      this.owned.add(ab);
    }
    if (ab === undefined) return Buffer.from(piece);
    const out = Buffer.from(ab, 0, piece.length);
    piece.copy(out);
    return out;
  }

  /** `chunk` (from copy) is written: its buffer may be reused. */
  release(chunk: Buffer): void {
    const ab = chunk.buffer as ArrayBuffer;
    if (this.owned.has(ab) && !this.free.includes(ab)) this.free.push(ab);
  }
}

/** Writes every byte of `chunk` at the file's current position. */
async function writeAll(handle: fsp.FileHandle, chunk: Buffer): Promise<void> {
  for (let at = 0; at < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, at, chunk.length - at, null);
    at += bytesWritten;
  }
}

/** A Writable into the temp file that hands each written chunk back to `buffers`; it closes the file when it ends or is destroyed. */
export function tempFileWriter(file: TempFile, buffers: UploadBuffers): Writable {
  return new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, done) {
      writeAll(file.handle, chunk).then(() => {
        buffers.release(chunk);
        done();
      }, done);
    },
    final(done) {
      file.handle.close().then(() => done(), done);
    },
    destroy(err, done) {
      file.handle.close().then(() => done(err), () => done(err));
    },
  });
}
