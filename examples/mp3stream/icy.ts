/**
 * The ICY (Shoutcast) bits of the stream, as pure functions: the response
 * head, and the metadata block that follows every `icy-metaint` audio bytes
 * for clients that sent `Icy-MetaData: 1`:
 *
 *     LEN (one byte: length / 16)  TEXT padded with NULs to LEN * 16 bytes
 *
 * LEN 0 means "no change".
 */
import { headerValue, type Headers } from '../../src/protocol/index.js';

/** The largest metadata text a block can carry (255 * 16 bytes). */
export const MAX_METADATA = 255 * 16;

/** The empty block: "nothing changed". */
export const NO_METADATA = Buffer.from([0]);

/** `StreamTitle='title';` as a metadata block. Quotes and control bytes are dropped (ICY has no escaping). */
export function titleBlock(title: string): Buffer {
  const clean = title.replace(/['\u0000-\u001f\u007f]/g, '');
  let text = Buffer.from(`StreamTitle='${clean}';`, 'utf8');
  if (text.length > MAX_METADATA) text = Buffer.concat([text.subarray(0, MAX_METADATA - 2), Buffer.from("';")]);
  const units = Math.ceil(text.length / 16);
  const block = Buffer.alloc(1 + units * 16);
  block[0] = units;
  text.copy(block, 1);
  return block;
}

/** Whether the client asked for metadata blocks. */
export function wantsMetadata(headers: Headers): boolean {
  return headerValue(headers, 'icy-metadata')?.trim() === '1';
}

/**
 * The response head. No Content-Length: the stream ends when the handler
 * closes the connection, so it says so.
 */
export function icyHead(name: string, metaint: number | undefined): string {
  const lines = ['HTTP/1.0 200 OK', 'Content-Type: audio/mpeg', `icy-name: ${name.replace(/[\r\n]/g, ' ')}`, 'Cache-Control: no-cache', 'Connection: close'];
  if (metaint !== undefined) lines.push(`icy-metaint: ${metaint}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
