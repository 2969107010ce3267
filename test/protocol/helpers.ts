/**
 * Small helpers shared by the protocol tests. They build wire bytes by hand
 * (not with the code under test) so that an encoder bug cannot hide a parser bug.
 */
import assert from 'node:assert/strict';
import { EncodeError, ProtocolError, type Message } from '../../src/protocol/index.js';

/** Bytes from a string where every char is one byte (use \xNN escapes for raw bytes). */
export function bytes(text: string): Buffer {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) throw new Error(`bytes(): char ${i} is not a single byte`);
  }
  return Buffer.from(text, 'latin1');
}

export function cat(...parts: Array<Buffer | string>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? bytes(p) : p)));
}

/** `LEN:DATA,` built independently of src/protocol. */
export function ns(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return cat(`${b.length}:`, b, ',');
}

/** A tnetstring dict of string values (or lists of strings), in the given order. */
export function tnetDict(entries: ReadonlyArray<readonly [string, string | readonly string[]]>): Buffer {
  const parts = entries.map(([k, v]) => cat(ns(k), typeof v === 'string' ? ns(v) : cat(`${Buffer.concat(v.map((x) => ns(x))).length}:`, ...v.map((x) => ns(x)), ']')));
  const inner = Buffer.concat(parts);
  return cat(`${inner.length}:`, inner, '}');
}

/** `SENDER ID PATH ` + JSON-netstring headers + body netstring. */
export function jsonMessage(sender: string, id: number | string, path: string, headerJson: Buffer | string, body: Buffer | string = ''): Buffer {
  return cat(`${sender} ${id} ${path} `, ns(headerJson), ns(body));
}

/** `SENDER ID PATH ` + tnetstring dict headers + body netstring. */
export function tnetMessage(sender: string, id: number | string, path: string, headers: ReadonlyArray<readonly [string, string | readonly string[]]>, body: Buffer | string = ''): Buffer {
  return cat(`${sender} ${id} ${path} `, tnetDict(headers), ns(body));
}

/**
 * Runs `fn` and asserts it throws a ProtocolError (not some other exception)
 * whose offset is a byte position inside `input` (0..input.length).
 */
export function assertProtocolError(fn: () => unknown, input?: Buffer, what = ''): ProtocolError {
  let thrown: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) assert.fail(`${what}: expected a ProtocolError, but it returned ${describe(returned)}`);
  if (!(thrown instanceof ProtocolError)) {
    assert.fail(`${what}: expected a ProtocolError, got ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`);
  }
  assert.equal(thrown.name, 'ProtocolError', what);
  assert.ok(!(thrown instanceof EncodeError), `${what}: a decoder threw an EncodeError`);
  assert.equal(typeof thrown.offset, 'number', what);
  assert.ok(Number.isInteger(thrown.offset) && thrown.offset >= 0, `${what}: offset ${thrown.offset} is not a byte position`);
  if (input !== undefined) assert.ok(thrown.offset <= input.length, `${what}: offset ${thrown.offset} is past the input (${input.length} bytes)`);
  return thrown;
}

/** Asserts `fn` throws an EncodeError (encoder refusal). */
export function assertEncodeError(fn: () => unknown, what = ''): EncodeError {
  let thrown: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (err) {
    thrown = err;
  }
  if (thrown === undefined) assert.fail(`${what}: expected an EncodeError, but it returned ${describe(returned)}`);
  if (!(thrown instanceof EncodeError)) {
    assert.fail(`${what}: expected an EncodeError, got ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`);
  }
  assert.ok(thrown instanceof ProtocolError, 'EncodeError must be a ProtocolError');
  return thrown;
}

function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return `bytes ${JSON.stringify(value.toString('latin1'))}`;
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Asserts the message kind and narrows the type. */
export function expectKind<K extends Message['kind']>(message: Message, kind: K): Extract<Message, { kind: K }> {
  assert.equal(message.kind, kind);
  return message as Extract<Message, { kind: K }>;
}

/** A plain-object copy (parsers return null-prototype objects; deepStrictEqual compares prototypes). */
export function plain<T extends object>(obj: T): Record<string, unknown> {
  return { ...obj } as Record<string, unknown>;
}
