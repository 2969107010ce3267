/**
 * The handler messages of one websocket connection, in Mongrel2's layout.
 *
 * Mongrel2 keeps the upgrade request's header table for the whole
 * connection: the WEBSOCKET_HANDSHAKE message carries every request header
 * with the accept key as its body, and each later message repeats them all
 * with METHOD=WEBSOCKET and a FLAGS entry (`Request_set(req, "FLAGS", ...,
 * replace)`: upper-case key, stored in the same hash table as the client
 * headers, so it lands among them in hash order).
 */
import { encodeHttpRequest, type HandlerAddress, type HandlerMessage, type RequestFacts } from '../handler-message.js';
import type { HeaderTable } from '../header-table.js';

export class WebSocketMessages {
  constructor(
    private readonly to: HandlerAddress,
    private readonly connId: number,
    /** The upgrade request's facts; `method` is replaced per message. */
    private readonly facts: RequestFacts,
    /** The upgrade request's headers incl. x-forwarded-for; owned from now on (FLAGS is added to it). */
    private readonly table: HeaderTable,
  ) {}

  /** WEBSOCKET_HANDSHAKE: body = the Sec-WebSocket-Accept value the handler puts in its 101. */
  handshake(accept: string): HandlerMessage {
    return encodeHttpRequest(this.to, this.connId, { ...this.facts, method: 'WEBSOCKET_HANDSHAKE' }, this.table, Buffer.from(accept, 'latin1'));
  }

  /** One WEBSOCKET message: `flags` = first frame header byte | 0x80, payload unmasked. */
  frame(flags: number, payload: Buffer): HandlerMessage {
    this.table.replace('FLAGS', flagsText(flags));
    return encodeHttpRequest(this.to, this.connId, { ...this.facts, method: 'WEBSOCKET' }, this.table, payload);
  }
}

/** C's `"0x%X"`: upper-case hex, no padding. */
export function flagsText(flags: number): string {
  return `0x${(flags & 0xff).toString(16).toUpperCase()}`;
}
