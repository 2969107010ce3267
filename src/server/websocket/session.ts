/**
 * One established websocket connection on the core's side: client bytes in,
 * WEBSOCKET handler messages out, handler replies passed through.
 *
 * As in Mongrel2, nothing is answered here: pings and close frames go to the
 * handler (FLAGS 0x89 / 0x88), which sends pongs and close frames itself as
 * raw reply bytes, then the empty close message. Where Mongrel2 just drops
 * the socket on a protocol error, the session first sends a close frame
 * (1002, 1009, or 1011 when the handler queue is full), then asks the host to
 * close; the host sends the disconnect notice as for any client that went
 * away.
 */
import type { Logger } from '../../handler/logger.js';
import { buildCloseFrame } from '../../protocol/websocket.js';
import { FrameReader, type FrameReaderOptions } from './frame-reader.js';
import type { WebSocketMessages } from './messages.js';
import type { HandlerMessage } from '../handler-message.js';

export interface WebSocketHost {
  /** Bytes for the client socket; false when its buffer is full (the session keeps going). */
  writeToClient(bytes: Buffer): boolean;
  /** Queues a message for the connection's handler; false when it cannot be queued. */
  sendToHandler(message: HandlerMessage): boolean;
  /** Ends the connection after what is queued; the handler still gets the disconnect notice. */
  close(): void;
  readonly log: Logger;
}

export interface WebSocketSessionOptions extends FrameReaderOptions {
  /** For log lines. */
  readonly connId: number;
}

/** Close reasons on the wire stay short and generic; the details go to the log. */
const WIRE_REASON: Record<1002 | 1009 | 1011, string> = {
  1002: 'protocol error',
  1009: 'message too big',
  1011: 'handler unavailable',
};

export class WebSocketSession {
  private readonly reader: FrameReader;
  private ended = false;

  constructor(
    private readonly host: WebSocketHost,
    private readonly messages: WebSocketMessages,
    private readonly options: WebSocketSessionOptions,
  ) {
    this.reader = new FrameReader(options);
  }

  /** Sends WEBSOCKET_HANDSHAKE (the handler writes the 101); false when the handler queue refused it. */
  start(accept: string): boolean {
    return this.host.sendToHandler(this.messages.handshake(accept));
  }

  /** Client bytes after the upgrade request (including any sent along with it). */
  receive(chunk: Buffer): void {
    if (this.ended) return;
    for (const event of this.reader.push(chunk)) {
      if (event.kind === 'error') {
        this.host.log.info({ conn: this.options.connId, code: event.code }, `websocket: ${event.reason}; closing`);
        return this.fail(event.code);
      }
      if (!this.host.sendToHandler(this.messages.frame(event.flags, event.payload))) {
        this.host.log.error({ conn: this.options.connId }, 'websocket: handler queue is full (limits.handler_queue); closing');
        return this.fail(1011);
      }
    }
  }

  /** A handler reply: complete frames (or the 101), written verbatim. */
  deliver(bytes: Buffer): boolean {
    return this.host.writeToClient(bytes);
  }

  /** Bytes held for incomplete frames and fragmented messages. */
  get bufferedBytes(): number {
    return this.reader.bufferedBytes;
  }

  private fail(code: 1002 | 1009 | 1011): void {
    this.ended = true;
    this.host.writeToClient(buildCloseFrame(code, WIRE_REASON[code]));
    this.host.close();
  }
}
