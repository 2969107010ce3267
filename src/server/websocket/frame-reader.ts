/**
 * An incremental reader of client→server websocket frames (RFC 6455), pure:
 * bytes in, events out, no I/O.
 *
 * What it yields follows Mongrel2's read loop (connection.c
 * Connection_read_wspacket, websocket.h WS_validate_packet):
 *  - every payload unmasked;
 *  - fragmented data messages reassembled into ONE event carrying the first
 *    frame's header byte (so FLAGS is 0x81 for a text message however it was
 *    split);
 *  - control frames (close, ping, pong) as their own event at once, also in
 *    the middle of a fragmented message; nothing is answered here.
 * `flags` is the frame's first byte with FIN forced on (`0x%X` of byte|0x80).
 *
 * Errors end the stream: the reader yields one `error` event and ignores
 * every later byte. Beyond Mongrel2 (which has no limit and forwards unknown
 * opcodes), reserved opcodes are a protocol error and a message longer than
 * `maxMessage` is a 1009 error, found from the frame header before its
 * payload is buffered, so memory stays below maxMessage + 14 bytes.
 */

export interface FrameReaderOptions {
  /** Largest data message (sum of its fragments) or frame payload, bytes (limits.websocket_max_message). */
  readonly maxMessage: number;
  /**
   * Accept frames with RSV1-3 set (default true, as Mongrel2: the handler
   * answers the handshake, so it owns extension negotiation, and sees the
   * bits in FLAGS). False makes any RSV bit a protocol error.
   */
  readonly allowRsv?: boolean;
}

export type FrameEvent =
  /** A complete data message or a control frame: `flags` = first header byte | 0x80. */
  | { readonly kind: 'message'; readonly flags: number; readonly payload: Buffer }
  /** The client broke the protocol; `code` is the close code to send (1002 or 1009). */
  | { readonly kind: 'error'; readonly code: 1002 | 1009; readonly reason: string; readonly offset: number };

export const DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024;

const MAX_HEADER = 14;
const SMALL_CHUNK = 1024;
const STAGE_SIZE = 16 * 1024;
/** next() consumed a non-final fragment: no event yet, keep reading. */
const PROGRESS = Symbol('progress');

/** Unknown opcodes: 3-7 (data) and 11-15 (control) are reserved. */
function isReserved(opcode: number): boolean {
  return (opcode >= 3 && opcode <= 7) || opcode >= 11;
}

export class FrameReader {
  private readonly maxMessage: number;
  private readonly allowRsv: boolean;
  /** Unread input, oldest first. */
  private chunks: Buffer[] = [];
  private queued = 0;
  /** Small chunks are copied here so a trickling client costs bytes, not one Buffer object per byte. */
  private stage: Buffer | undefined;
  private staged = 0;
  /** The last entry of `chunks` is a view of `stage` ending at `staged`. */
  private lastIsStage = false;
  /** Stream offset of the first unread byte (for error messages). */
  private offset = 0;
  /** Fragments of the data message in progress. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  /** First header byte of the message in progress; -1 when none is open. */
  private openFlags = -1;
  private failed = false;

  constructor(options: FrameReaderOptions) {
    if (!Number.isInteger(options.maxMessage) || options.maxMessage < 0) throw new RangeError(`websocket maxMessage must be a non-negative integer, got ${options.maxMessage}`);
    this.maxMessage = options.maxMessage;
    this.allowRsv = options.allowRsv ?? true;
  }

  /** Bytes held: unread input plus the fragments of an open message. */
  get bufferedBytes(): number {
    return this.queued + this.fragmentBytes;
  }

  /** True once an error was reported; later input is ignored. */
  get hasFailed(): boolean {
    return this.failed;
  }

  /** Feeds client bytes; returns the events they complete, in order. */
  push(chunk: Buffer): FrameEvent[] {
    if (this.failed || chunk.length === 0) return [];
    this.enqueue(chunk);
    const events: FrameEvent[] = [];
    for (;;) {
      const event = this.next();
      if (event === undefined) break;
      if (event === PROGRESS) continue;
      events.push(event);
      if (event.kind === 'error') break;
    }
    return events;
  }

  private fail(code: 1002 | 1009, reason: string, at: number): FrameEvent {
    this.failed = true;
    this.chunks = [];
    this.queued = 0;
    this.stage = undefined;
    this.lastIsStage = false;
    this.fragments = [];
    this.fragmentBytes = 0;
    return { kind: 'error', code, reason: `${reason} at byte ${at}`, offset: at };
  }

  /** One event from the queued bytes; PROGRESS after a non-final fragment; undefined when a frame is incomplete. */
  private next(): FrameEvent | typeof PROGRESS | undefined {
    if (this.queued < 2) return undefined;
    const head = this.peek(Math.min(MAX_HEADER, this.queued));
    const b0 = head[0]!;
    const b1 = head[1]!;
    const at = this.offset;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const control = (opcode & 0x08) !== 0;
    const len7 = b1 & 0x7f;
    // Mongrel2's checks, in its order, then ours.
    if (this.openFlags >= 0 && !control && opcode !== 0) return this.fail(1002, `data frame (opcode ${opcode}) in the middle of a fragmented message`, at);
    if (opcode === 0 && this.openFlags < 0) return this.fail(1002, 'continuation frame with no message to continue', at);
    if ((b1 & 0x80) === 0) return this.fail(1002, 'unmasked client frame', at);
    if (control && !fin) return this.fail(1002, `fragmented control frame (opcode ${opcode})`, at);
    if (control && len7 > 125) return this.fail(1002, `control frame (opcode ${opcode}) longer than 125 bytes`, at);
    if (isReserved(opcode)) return this.fail(1002, `reserved opcode ${opcode}`, at);
    if (!this.allowRsv && (b0 & 0x70) !== 0) return this.fail(1002, `RSV bits 0x${((b0 >> 4) & 7).toString(16)} set with no extension negotiated`, at);

    let headerLength = 2;
    let length: number;
    if (len7 === 126) {
      if (head.length < 4) return undefined;
      length = head.readUInt16BE(2);
      headerLength = 4;
    } else if (len7 === 127) {
      if (head.length < 10) return undefined;
      const big = head.readBigUInt64BE(2);
      if (big >> 63n !== 0n) return this.fail(1002, 'frame length with the most significant bit set', at + 2);
      // Anything over maxMessage fails below; clamp so the number stays exact.
      length = big > BigInt(this.maxMessage) ? this.maxMessage + 1 : Number(big);
      headerLength = 10;
    } else {
      length = len7;
    }
    const before = control ? 0 : this.fragmentBytes;
    if (before + length > this.maxMessage) {
      const size = len7 === 127 ? head.readBigUInt64BE(2).toString() : String(length);
      return this.fail(1009, `message over the ${this.maxMessage}-byte limit (limits.websocket_max_message): ${before} bytes so far plus a frame of ${size}`, at + 1);
    }
    headerLength += 4; // the mask key (masking was checked above)
    if (this.queued < headerLength + length) return undefined;

    const mask = this.take(headerLength).subarray(headerLength - 4);
    const payload = unmask(this.take(length), mask);

    if (control) return { kind: 'message', flags: b0 | 0x80, payload };
    if (this.openFlags < 0) {
      if (fin) return { kind: 'message', flags: b0 | 0x80, payload };
      this.openFlags = b0;
    }
    if (length > 0) this.fragments.push(payload);
    this.fragmentBytes += length;
    if (!fin) return PROGRESS;
    const whole = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments, this.fragmentBytes);
    const flags = this.openFlags | 0x80;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.openFlags = -1;
    return { kind: 'message', flags, payload: whole };
  }

  private enqueue(chunk: Buffer): void {
    this.queued += chunk.length;
    if (chunk.length >= SMALL_CHUNK) {
      this.chunks.push(chunk);
      this.lastIsStage = false;
      return;
    }
    if (this.stage === undefined || this.staged + chunk.length > this.stage.length) {
      this.stage = Buffer.allocUnsafe(STAGE_SIZE);
      this.staged = 0;
      this.lastIsStage = false;
    }
    const from = this.staged;
    chunk.copy(this.stage, from);
    this.staged += chunk.length;
    if (this.lastIsStage) {
      const last = this.chunks[this.chunks.length - 1]!;
      this.chunks[this.chunks.length - 1] = this.stage.subarray(last.byteOffset - this.stage.byteOffset, this.staged);
    } else {
      this.chunks.push(this.stage.subarray(from, this.staged));
      this.lastIsStage = true;
    }
  }

  /** The first `n` queued bytes (n ≤ queued), without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (const c of this.chunks) {
      filled += c.copy(out, filled, 0, Math.min(c.length, n - filled));
      if (filled === n) break;
    }
    return out;
  }

  /** Consumes `n` queued bytes (n ≤ queued). The result may share memory with the input. */
  private take(n: number): Buffer {
    this.queued -= n;
    this.offset += n;
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      if (this.chunks.length === 0) this.lastIsStage = false;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    if (this.chunks.length === 0) this.lastIsStage = false;
    return out;
  }
}

/** A fresh buffer holding `data` XOR the 4-byte `mask`. */
function unmask(data: Buffer, mask: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  let i = 0;
  for (; i + 4 <= data.length; i += 4) {
    out[i] = data[i]! ^ m0;
    out[i + 1] = data[i + 1]! ^ m1;
    out[i + 2] = data[i + 2]! ^ m2;
    out[i + 3] = data[i + 3]! ^ m3;
  }
  for (; i < data.length; i++) out[i] = data[i]! ^ mask[i & 3]!;
  return out;
}
