/**
 * The framing of a JSON request message, shared by encodeRequestMessage and
 * the server core's one-pass encoder (src/server/handler-message.ts). It
 * checks nothing, so it is internal: not exported from src/protocol/index.ts.
 */

/**
 * `SENDER ID PATH LEN:JSON,LEN:BODY,` from parts already checked (sender
 * and path without whitespace, a uint32 id, `jsonBytes` = the UTF-8 length
 * of `json`): a string standing for its UTF-8 bytes when there is no body.
 */
export function jsonRequestFrame(sender: string, connId: number, path: string, json: string, jsonBytes: number, body: Buffer): Buffer | string {
  const head = `${sender} ${connId} ${path} ${jsonBytes}:${json},${body.length}:`;
  if (body.length === 0) return `${head},`;
  const headBytes = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes + body.length + 1);
  out.write(head, 0, 'utf8');
  body.copy(out, headBytes);
  out[headBytes + body.length] = 0x2c;
  return out;
}
