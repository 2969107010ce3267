/**
 * Every codec failure is a ProtocolError that says what was wrong and at which
 * byte of the input, so a log line can point at the exact spot of a bad frame.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** Byte offset into the input where the problem was found (-1 for encoder errors). */
  readonly offset: number;

  constructor(message: string, offset = -1) {
    super(offset >= 0 ? `${message} (at byte ${offset})` : message);
    this.offset = offset;
  }
}

/** Thrown by encoders when asked to produce bytes that a peer would reject or crash on. */
export class EncodeError extends ProtocolError {}
