/**
 * A request body on its way out of a client connection, de-framed
 * (Content-Length or chunked) and delivered as a Readable with backpressure:
 * the client feeds the socket bytes in, and while the consumer is not reading
 * the socket is paused, so a big body never sits in memory.
 */
import { Readable } from 'node:stream';
import { ChunkedDecoder } from './http/chunked-decoder.js';

export type StreamedFraming = { kind: 'length'; length: number } | { kind: 'chunked' };

export interface FlowSwitch {
  pause(): void;
  resume(): void;
}

export class BodyStream extends Readable {
  /** De-framed body bytes received so far. */
  received = 0;
  private remaining: number;
  private readonly chunked: ChunkedDecoder | undefined;
  private ended = false;

  constructor(
    readonly framing: StreamedFraming,
    private readonly flow: FlowSwitch,
    highWaterMark = 64 * 1024,
    /** Makes the copy of a piece that is queued; a temp-file upload passes reused buffers (upload-store.ts). */
    private readonly copy: (piece: Buffer) => Buffer = (piece) => Buffer.from(piece),
  ) {
    super({ highWaterMark });
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.chunked = framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
    // A consumer that gives up must not crash the process with an unhandled 'error'.
    this.on('error', () => undefined);
  }

  /** True once the whole body has been fed. */
  get complete(): boolean {
    return this.ended;
  }

  /**
   * Feeds client bytes, which need only be valid during the call. Returns the
   * bytes past the end of the body (the next pipelined request, a view into
   * `buf`) once it is complete, else undefined. Throws a ProtocolError on bad
   * chunked framing.
   */
  feed(buf: Buffer): Buffer | undefined {
    if (this.ended) return buf;
    let more = true;
    let rest: Buffer | undefined;
    if (this.chunked) {
      const r = this.chunked.push(buf);
      for (const piece of r.data) more = this.emitPiece(piece) && more;
      if (r.done) rest = r.rest;
    } else {
      const take = Math.min(this.remaining, buf.length);
      if (take > 0) more = this.emitPiece(take === buf.length ? buf : buf.subarray(0, take));
      this.remaining -= take;
      if (this.remaining === 0) rest = buf.subarray(take);
    }
    if (rest !== undefined) {
      this.ended = true;
      this.push(null);
      return rest;
    }
    if (!more) this.flow.pause();
    return undefined;
  }

  private emitPiece(piece: Buffer): boolean {
    if (piece.length === 0) return true;
    this.received += piece.length;
    // Fed bytes may be the shared read buffer (socket-reads.ts): what is queued is a copy.
    return this.push(this.copy(piece));
  }

  override _read(): void {
    if (!this.ended) this.flow.resume();
  }
}
