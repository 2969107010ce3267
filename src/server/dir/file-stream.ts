/**
 * A lazily opened byte range of a file as a Readable. The file is opened on
 * the first read (a response that is never sent costs no descriptor) and read
 * in highWaterMark-sized chunks, so memory stays flat for any file size.
 *
 * The head (with Content-Length) was built from an earlier stat. If the file
 * is gone, was replaced, or is shorter than promised when we get to it, the
 * stream is destroyed with an error instead of sending different bytes; the
 * server must then close the connection: the client sees a short body and
 * knows the response is incomplete. A file that grows after it was opened is
 * cut at the promised end.
 */
import * as fsp from 'node:fs/promises';
import { Readable } from 'node:stream';

export const FILE_CHUNK_SIZE = 512 * 1024;

/** What the response head promised about the file (from the stat record). */
export interface FileIdentity {
  readonly ino: number;
  readonly dev: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export class FileRangeStream extends Readable {
  private handle: fsp.FileHandle | undefined;
  private position: number;
  private readonly endExclusive: number;
  /** False once anything rules out handing the whole file to onWhole. */
  private wholeOk = true;

  constructor(
    readonly filePath: Buffer,
    readonly start: number,
    /** Inclusive, like fs.createReadStream's `end`. */
    readonly end: number,
    private readonly identity: FileIdentity,
    /** Called when the file is found to differ from `identity` (the caller drops its cached stat). */
    private readonly onChanged: () => void = () => {},
    /** Called with the file's bytes when the range is the whole file, read in one chunk and checked against `identity`. */
    private readonly onWhole?: (content: Buffer) => void,
    highWaterMark = FILE_CHUNK_SIZE,
  ) {
    super({ highWaterMark });
    this.position = start;
    this.endExclusive = end + 1;
  }

  // Node calls _read again only after a push(), and push() is the last thing
  // readChunk does, so two reads never overlap.
  override _read(size: number): void {
    this.readChunk(size).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.onChanged();
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  }

  private async readChunk(size: number): Promise<void> {
    if (this.handle === undefined) {
      const handle = await fsp.open(this.filePath, 'r');
      if (this.destroyed) {
        await handle.close();
        return;
      }
      this.handle = handle;
      const st = await handle.stat();
      const id = this.identity;
      if (st.ino !== id.ino || st.dev !== id.dev || st.mtimeMs !== id.mtimeMs || st.size < this.endExclusive) {
        this.onChanged();
        throw new Error(`${this.filePath.toString()}: file changed between stat and read`);
      }
      // Only a file exactly as the record says may be remembered whole.
      if (st.size !== id.size) this.wholeOk = false;
    }
    const want = Math.min(size, this.readableHighWaterMark, this.endExclusive - this.position);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await this.handle.read(buf, 0, want, this.position);
    if (this.destroyed) return;
    if (bytesRead === 0) {
      this.onChanged();
      throw new Error(`${this.filePath.toString()}: file shrank to ${this.position} bytes while being sent`);
    }
    if (this.wholeOk && this.onWhole && this.start === 0 && bytesRead === this.identity.size && this.position === 0) this.onWhole(buf);
    this.wholeOk = false;
    this.position += bytesRead;
    this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = undefined;
    if (handle === undefined) return callback(err);
    handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
