/**
 * RFC 6455 frames. Mongrel2 hands handlers unmasked, reassembled payloads and
 * writes reply bytes verbatim, so a handler sends complete unmasked frames.
 */
import { createHash } from 'node:crypto';
import { EncodeError, ProtocolError } from './errors.js';

export const Opcode = {
  Continuation: 0,
  Text: 1,
  Binary: 2,
  Close: 8,
  Ping: 9,
  Pong: 10,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  Unsupported: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidData: 1007,
  PolicyViolation: 1008,
  TooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
} as const;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key. */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** The 101 answer a handler sends to a WEBSOCKET_HANDSHAKE message. */
export function handshakeResponse(accept: string, protocol?: string): Buffer {
  if (!/^[A-Za-z0-9+/=]+$/.test(accept)) throw new EncodeError('websocket: accept value is not base64');
  if (protocol !== undefined && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol)) throw new EncodeError('websocket: invalid subprotocol');
  const extra = protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  return Buffer.from(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`,
    'latin1',
  );
}

export interface FrameInit {
  opcode?: number;
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (RSV1 is the high bit). */
  rsv?: number;
  /** A 4-byte masking key: only clients mask. */
  mask?: Buffer;
}

function isControl(opcode: number): boolean {
  return opcode >= 8;
}

function isKnownOpcode(opcode: number): boolean {
  return opcode <= 2 || (opcode >= 8 && opcode <= 10);
}

export function buildFrame(payload: Buffer | string, init: FrameInit = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const opcode = init.opcode ?? Opcode.Text;
  const fin = init.fin ?? true;
  const rsv = init.rsv ?? 0;
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 15 || !isKnownOpcode(opcode)) throw new EncodeError(`websocket: unknown opcode ${opcode}`);
  if (!Number.isInteger(rsv) || rsv < 0 || rsv > 7) throw new EncodeError(`websocket: rsv must be 0-7, got ${rsv}`);
  if (isControl(opcode) && (data.length > 125 || !fin)) throw new EncodeError('websocket: control frames must be final and at most 125 bytes');
  if (init.mask !== undefined && init.mask.length !== 4) throw new EncodeError('websocket: mask must be 4 bytes');
  const maskBit = init.mask ? 0x80 : 0;
  let header: Buffer;
  if (data.length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | (rsv << 4) | opcode, maskBit | data.length]);
  } else if (data.length <= 0xffff) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    header[1] = maskBit | 126;
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  if (!init.mask) return Buffer.concat([header, data]);
  const masked = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ init.mask[i & 3]!;
  return Buffer.concat([header, init.mask, masked]);
}

/** A close frame with an optional status code and UTF-8 reason (at most 123 bytes). */
export function buildCloseFrame(code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw new EncodeError('websocket: a close reason needs a code');
    return buildFrame(Buffer.alloc(0), { opcode: Opcode.Close });
  }
  if (!isSendableCloseCode(code)) throw new EncodeError(`websocket: close code ${code} may not be sent`);
  const text = Buffer.from(reason, 'utf8');
  if (text.length > 123) throw new EncodeError('websocket: close reason longer than 123 bytes');
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return buildFrame(payload, { opcode: Opcode.Close });
}

/** Codes an endpoint may put on the wire (RFC 6455 §7.4). */
export function isSendableCloseCode(code: number): boolean {
  return Number.isInteger(code) && ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999));
}

/** Reads the status code and reason of a close frame payload. */
export function parseClosePayload(payload: Buffer): { code?: number; reason: string } {
  if (payload.length === 0) return { reason: '' };
  if (payload.length === 1) throw new ProtocolError('websocket: close payload of 1 byte', 0);
  return { code: payload.readUInt16BE(0), reason: payload.toString('utf8', 2) };
}

export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Unmasked payload. */
  payload: Buffer;
  /** Bytes the frame took from the input. */
  length: number;
}

/**
 * Parses one frame at the start of `buf`. Returns `null` when more bytes are
 * needed. Payloads above `maxPayload` are an error (default 64 MiB).
 */
export function parseFrame(buf: Buffer, maxPayload = 64 * 1024 * 1024): Frame | null {
  if (buf.length < 2) return null;
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const opcode = b0 & 0x0f;
  if (!isKnownOpcode(opcode)) throw new ProtocolError(`websocket: unknown opcode ${opcode}`, 0);
  const fin = (b0 & 0x80) !== 0;
  const masked = (b1 & 0x80) !== 0;
  let len = b1 & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(maxPayload)) throw new ProtocolError(`websocket: payload of ${big} bytes exceeds ${maxPayload}`, 2);
    len = Number(big);
    at = 10;
  }
  if (isControl(opcode) && (len > 125 || !fin)) throw new ProtocolError('websocket: fragmented or oversized control frame', 0);
  if (len > maxPayload) throw new ProtocolError(`websocket: payload of ${len} bytes exceeds ${maxPayload}`, 1);
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + len) return null;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (masked) for (let i = 0; i < len; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
  return { fin, rsv: (b0 >> 4) & 7, opcode, masked, payload, length: at + len };
}
