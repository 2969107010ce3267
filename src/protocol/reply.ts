/**
 * Replies from a handler to the server:
 *
 *     UUID SP LEN:IDS, SP BODY          (IDS = id *(SP id); `X ` prefix for extended)
 *
 * Mongrel2 stalls a handler socket for ~0.5 s per malformed reply and can
 * crash on bad tnetstrings in extended replies, so the encoder validates
 * everything before producing bytes. The parser follows the Ragel grammar of
 * `src/handler_parser.rl` exactly.
 */
import { EncodeError, ProtocolError } from './errors.js';
import { encode as encodeTnet, parseAt as parseTnetAt, type TDict, type TValue } from './tnetstring.js';
import { MAX_CONN_ID } from './request.js';

/** Mongrel2's default `limits.handler_targets`. */
export const MAX_TARGETS = 128;
const SENDER_RE = /^[A-Za-z0-9-]+$/;

interface ReplyBase {
  /** Any `[A-Za-z0-9-]+` id; the server does not compare it with anything. */
  readonly sender: string;
  /** 1 to 128 connection ids. */
  readonly ids: readonly number[];
}

/** Bytes written verbatim to every target connection. */
export interface DataReply extends ReplyBase {
  readonly type: 'data';
  readonly body: Buffer;
}

/** The empty-body message: close each target once its queued data is written. */
export interface CloseReply extends ReplyBase {
  readonly type: 'close';
}

/** An `X` reply: one tnetstring list `[name, args]`, e.g. `ctl` or `sendfile`. */
export interface ExtendedReply extends ReplyBase {
  readonly type: 'extended';
  readonly name: string;
  readonly args: TValue;
}

export type Reply = DataReply | CloseReply | ExtendedReply;

export function isValidSender(sender: string): boolean {
  return SENDER_RE.test(sender);
}

function checkTargets(sender: string, ids: readonly number[], maxTargets: number): void {
  if (!SENDER_RE.test(sender)) throw new EncodeError(`reply: sender ${JSON.stringify(sender)} must match [A-Za-z0-9-]+`);
  if (ids.length === 0) throw new EncodeError('reply: no connection ids');
  if (ids.length > maxTargets) throw new EncodeError(`reply: ${ids.length} connection ids, at most ${maxTargets} allowed`);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_CONN_ID) throw new EncodeError(`reply: bad connection id ${String(id)}`);
  }
}

export interface ReplyOptions {
  /** The server's `limits.handler_targets` (default 128). */
  maxTargets?: number;
}

/** Encodes a reply after checking the sender, the ids and (for X replies) the tnetstring. */
export function encodeReply(reply: Reply, options: ReplyOptions = {}): Buffer {
  switch (reply.type) {
    case 'data':
      return encodeDataReply(reply.sender, reply.ids, [reply.body], options);
    case 'close':
      checkTargets(reply.sender, reply.ids, options.maxTargets ?? MAX_TARGETS);
      return Buffer.from(replyHead(reply.sender, reply.ids, false), 'latin1');
    case 'extended': {
      checkTargets(reply.sender, reply.ids, options.maxTargets ?? MAX_TARGETS);
      if (reply.name.length === 0) throw new EncodeError('reply: extended reply needs a name');
      // Integers only: a float in an X body crashes Mongrel2.
      return Buffer.concat([Buffer.from(replyHead(reply.sender, reply.ids, true), 'latin1'), encodeTnet([reply.name, reply.args])]);
    }
  }
}

/** `UUID SP LEN:IDS, SP`: ASCII only (the sender and ids are checked), so its length is its byte count. */
function replyHead(sender: string, ids: readonly number[], extended: boolean): string {
  const list = (extended ? 'X ' : '') + (ids.length === 1 ? String(ids[0]) : ids.join(' '));
  return `${sender} ${list.length}:${list}, `;
}

/**
 * A data reply whose body is the concatenation of `parts`, built in one
 * allocation (a reply is ONE 0MQ frame, so the parts cannot go as frames).
 * Same checks as encodeReply.
 */
export function encodeDataReply(sender: string, ids: readonly number[], parts: readonly Buffer[], options: ReplyOptions = {}): Buffer {
  checkTargets(sender, ids, options.maxTargets ?? MAX_TARGETS);
  let size = 0;
  for (const part of parts) size += part.length;
  if (size === 0) throw new EncodeError('reply: an empty body is the close message; use a close reply');
  const head = replyHead(sender, ids, false);
  const out = Buffer.allocUnsafe(head.length + size);
  let at = out.write(head, 0, 'latin1');
  for (const part of parts) at += part.copy(out, at);
  return out;
}

/** Splits ids into groups of at most `maxTargets`, dropping duplicates (a repeated id floods that connection's queue). */
export function groupTargets(ids: Iterable<number>, maxTargets = MAX_TARGETS): number[][] {
  if (!Number.isInteger(maxTargets) || maxTargets < 1) throw new EncodeError(`reply: maxTargets must be a positive integer, got ${maxTargets}`);
  const unique = [...new Set(ids)];
  const groups: number[][] = [];
  for (let i = 0; i < unique.length; i += maxTargets) groups.push(unique.slice(i, i + maxTargets));
  return groups;
}

/** `["ctl", {...}]` arguments. */
export interface CtlArgs {
  /** Refresh the connection's idle timer. */
  keepAlive?: boolean;
  /** Grant this many more bytes to a streaming upload. */
  credits?: number;
  /** Drop the client connection now (no disconnect notice follows). */
  cancel?: boolean;
}

/** Largest credit grant: Mongrel2 adds it to a C int. */
const MAX_CREDIT_GRANT = 0x7fffffff;

export function ctlReply(sender: string, ids: readonly number[], args: CtlArgs): ExtendedReply {
  const dict: TDict = Object.create(null);
  if (args.keepAlive) dict['keep-alive'] = true;
  if (args.credits !== undefined) {
    if (!Number.isInteger(args.credits) || args.credits < 1 || args.credits > MAX_CREDIT_GRANT) {
      throw new EncodeError(`reply: ctl credits must be an integer from 1 to ${MAX_CREDIT_GRANT}, got ${args.credits}`);
    }
    dict.credits = args.credits;
  }
  if (args.cancel) dict.cancel = true;
  if (Object.keys(dict).length === 0) throw new EncodeError('reply: ctl needs keepAlive, credits or cancel');
  return { type: 'extended', sender, ids, name: 'ctl', args: dict };
}

export function sendfileReply(sender: string, ids: readonly number[], path: string): ExtendedReply {
  if (path.length === 0 || path.includes('\0')) throw new EncodeError('reply: sendfile path must be non-empty and contain no NUL');
  return { type: 'extended', sender, ids, name: 'sendfile', args: path };
}

/**
 * Parses a reply as Mongrel2 does: UUID, one space, a netstring of ids
 * (single spaces, at most one trailing), the mandatory space, then the body.
 */
export function parseReply(buf: Buffer, options: ReplyOptions = {}): Reply {
  const maxTargets = options.maxTargets ?? MAX_TARGETS;
  let i = 0;
  while (i < buf.length && isSenderByte(buf[i]!)) i++;
  if (i === 0) throw new ProtocolError('reply: sender must match [A-Za-z0-9-]+', 0);
  if (buf[i] !== 0x20) throw new ProtocolError(i >= buf.length ? 'reply: truncated after the sender' : 'reply: sender must match [A-Za-z0-9-]+', i);
  const sender = buf.toString('latin1', 0, i);
  const lenAt = ++i;
  let len = 0;
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
    if (i - lenAt >= 9) throw new ProtocolError('reply: target length too long', lenAt);
    len = len * 10 + (buf[i]! - 0x30);
    i++;
  }
  if (i === lenAt) throw new ProtocolError('reply: expected the target netstring length', lenAt);
  if (buf[i] !== 0x3a) throw new ProtocolError("reply: expected ':' after the target length", i);
  const listAt = i + 1;
  const listEnd = listAt + len;
  if (listEnd >= buf.length || buf[listEnd] !== 0x2c) {
    throw new ProtocolError(`reply: target netstring length ${len} is wrong`, lenAt);
  }
  if (listEnd + 1 >= buf.length || buf[listEnd + 1] !== 0x20) throw new ProtocolError("reply: a space must follow the targets' ','", listEnd + 1);
  const { ids, extended } = parseTargets(buf, listAt, listEnd, maxTargets);
  const body = buf.subarray(listEnd + 2);
  if (extended) {
    const { value, end } = parseTnetAt(buf, listEnd + 2);
    if (end !== buf.length) throw new ProtocolError(`reply: ${buf.length - end} trailing bytes after the extended body`, end);
    if (!Array.isArray(value) || value.length !== 2 || !Buffer.isBuffer(value[0])) {
      throw new ProtocolError('reply: extended body must be a list [name, args]', listEnd + 2);
    }
    return { type: 'extended', sender, ids, name: value[0].toString('utf8'), args: value[1]! };
  }
  if (body.length === 0) return { type: 'close', sender, ids };
  return { type: 'data', sender, ids, body };
}

function isSenderByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d;
}

function parseTargets(buf: Buffer, start: number, end: number, maxTargets: number): { ids: number[]; extended: boolean } {
  let i = start;
  let extended = false;
  if (buf[i] === 0x58 /* X */) {
    if (buf[i + 1] !== 0x20) throw new ProtocolError("reply: 'X' must be followed by a space", i + 1);
    extended = true;
    i += 2;
  }
  const ids: number[] = [];
  while (i < end) {
    const idAt = i;
    let n = 0;
    while (i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39) {
      n = n * 10 + (buf[i]! - 0x30);
      i++;
    }
    if (i === idAt) throw new ProtocolError('reply: connection id is not a number', idAt);
    if (i - idAt > 10 || n > MAX_CONN_ID) throw new ProtocolError('reply: connection id larger than uint32', idAt);
    ids.push(n);
    if (ids.length > maxTargets) throw new ProtocolError(`reply: more than ${maxTargets} targets`, idAt);
    if (i < end) {
      if (buf[i] !== 0x20) throw new ProtocolError('reply: connection ids must be separated by one space', i);
      i++;
    }
  }
  if (ids.length === 0) throw new ProtocolError('reply: no connection ids', start);
  return { ids, extended };
}
