/**
 * Websocket upgrades as Mongrel2 sees them: which requests are upgrades, and
 * the Sec-WebSocket-Accept value it puts in the WEBSOCKET_HANDSHAKE body.
 *
 * This is the canonical copy of the detection rule (client.ts carried its own
 * until the websocket wiring landed).
 */
import type { RequestHead } from '../http/request-parser.js';
import { createHash } from 'node:crypto';

function header(head: RequestHead, name: string): string | undefined {
  return head.headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

/**
 * Mongrel2's test (connection.c Request_is_websocket): sec-websocket-key,
 * sec-websocket-version and host present, upgrade = websocket (any case, as
 * captured from the real server), connection contains "upgrade" (any case).
 * Neither the method nor the version value is checked.
 */
export function isWebSocketUpgrade(head: RequestHead): boolean {
  // Runs on every request: one pass, and names are lower-cased only when their length matches.
  let upgrade: string | undefined;
  let connection: string | undefined;
  let key = false;
  let version = false;
  let host = false;
  for (const [name, value] of head.headers) {
    switch (name.length) {
      case 4:
        host ||= name.toLowerCase() === 'host';
        break;
      case 7:
        if (upgrade === undefined && name.toLowerCase() === 'upgrade') upgrade = value;
        break;
      case 10:
        if (connection === undefined && name.toLowerCase() === 'connection') connection = value;
        break;
      case 17:
        key ||= name.toLowerCase() === 'sec-websocket-key';
        break;
      case 21:
        version ||= name.toLowerCase() === 'sec-websocket-version';
        break;
    }
  }
  return key && version && host && upgrade?.toLowerCase() === 'websocket' && connection !== undefined && connection.toLowerCase().includes('upgrade');
}

/** The body of the WEBSOCKET_HANDSHAKE message: base64 SHA-1 of the client's key + the RFC 6455 GUID. */
export function handshakeAccept(head: RequestHead): string {
  const key = header(head, 'sec-websocket-key');
  if (key === undefined) throw new Error('websocket handshake without a Sec-WebSocket-Key header');
  // The key's bytes as received (protocol/websocket.ts websocketAccept hashes UTF-8; same for the usual ASCII keys).
  return createHash('sha1').update(Buffer.from(key + WS_GUID, 'latin1')).digest('base64');
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
