/**
 * The websocket upgrade request sent to the upstream on a raw connection:
 * the client's handshake (Sec-WebSocket-Key/-Version/-Protocol, Origin,
 * cookies, ...) with the same forwarding rules as plain requests, minus the
 * compression extensions (see websocketExtensions). Pure.
 */
import { headerValue, type WebSocketHandshake } from '../../src/protocol/request.js';
import { forwardHeaders, websocketExtensions, type ForwardOptions } from './headers.js';

export class UpgradeRequestError extends Error {
  override readonly name = 'UpgradeRequestError';
}

const BAD_VALUE = /[\0\r\n]/;

/** `GET path HTTP/1.1` + headers + blank line, as bytes. Throws UpgradeRequestError for a value that would split the head. */
export function buildUpgradeRequest(req: WebSocketHandshake, path: string, defaultHost: string, options: ForwardOptions): Buffer {
  if (/[\0-\x20\x7f]/.test(path)) throw new UpgradeRequestError(`bad request path ${JSON.stringify(path)}`);
  const headers = forwardHeaders(req.headers, options).filter(([name]) => name !== 'sec-websocket-extensions');
  if (!headers.some(([name]) => name === 'host')) headers.unshift(['host', defaultHost]);
  const ext = req.headers['sec-websocket-extensions'];
  const offered = websocketExtensions(ext === undefined ? [] : typeof ext === 'string' ? [ext] : ext);
  if (offered !== undefined) headers.push(['sec-websocket-extensions', offered]);
  if (headerValue(req.headers, 'sec-websocket-key') === undefined) throw new UpgradeRequestError('the handshake has no sec-websocket-key');
  headers.push(['connection', 'Upgrade'], ['upgrade', 'websocket']);
  const lines = [`GET ${path} HTTP/1.1`];
  for (const [name, value] of headers) {
    if (BAD_VALUE.test(value)) throw new UpgradeRequestError(`header ${name} contains NUL, CR or LF`);
    lines.push(`${name}: ${value}`);
  }
  // forwardHeaders already made the values wire bytes (latin1 text).
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}
