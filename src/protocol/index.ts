export * from './errors.js';
export * as tnetstring from './tnetstring.js';
export type { TValue, TDict } from './tnetstring.js';
export { parseNetstring, parseNetstringAt, encodeNetstring } from './netstring.js';
export { parseTolerantJson } from './json-text.js';
export * from './request.js';
export * from './reply.js';
export * from './http-response.js';
export * from './websocket.js';
