/**
 * Shared pieces of the core websocket tests: the captured upgrade request,
 * the header table the core builds for it, and a fake session host.
 */
import { pyBytes } from '../support/fixtures.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WIRE_FIXTURE_DIR } from '../support/fixtures.js';
import { createLogger } from '../../src/handler/logger.js';
import { HeaderTable } from '../../src/server/header-table.js';
import type { RequestFacts } from '../../src/server/handler-message.js';
import { parseHead, type RequestHead } from '../../src/server/http/request-parser.js';
import type { WebSocketHost } from '../../src/server/websocket/session.js';

export { pyBytes };

/** The upgrade request the ws-* captures started with (same in every ws-*.txt). */
export function captureUpgrade(): { raw: Buffer; head: RequestHead; end: number } {
  const text = readFileSync(path.join(WIRE_FIXTURE_DIR, 'ws-handshake.txt'), 'utf8');
  const m = /handshake request b'((?:[^'\\]|\\.)*)'/.exec(text);
  if (!m) throw new Error('ws-handshake.txt has no handshake request line');
  const raw = pyBytes(m[1]!);
  const r = parseHead(raw, 0);
  if (r.kind !== 'request') throw new Error(`captured upgrade did not parse: ${r.kind}`);
  return { raw, head: r.head, end: r.end };
}

/** The table and facts client.ts builds for a request from 127.0.0.1. */
export function requestParts(head: RequestHead, pattern: string): { table: HeaderTable; facts: RequestFacts } {
  const table = new HeaderTable(1280);
  for (const [k, v] of head.headers) table.add(k, v);
  table.replace('x-forwarded-for', '127.0.0.1');
  const facts: RequestFacts = { method: head.method, version: head.version, uri: head.uri, path: head.path, query: head.query, fragment: head.fragment, pattern, urlScheme: 'http', remoteAddr: '127.0.0.1' };
  return { table, facts };
}

export interface FakeHost extends WebSocketHost {
  readonly toClient: Buffer[];
  readonly toHandler: Buffer[];
  closed: number;
  /** How many more handler messages are accepted (default: all). */
  handlerRoom: number;
}

export function fakeHost(): FakeHost {
  const host: FakeHost = {
    toClient: [],
    toHandler: [],
    closed: 0,
    handlerRoom: Number.POSITIVE_INFINITY,
    log: createLogger({ level: 'silent' }),
    writeToClient(bytes) {
      host.toClient.push(bytes);
      return true;
    },
    sendToHandler(message) {
      if (host.handlerRoom <= 0) return false;
      host.handlerRoom--;
      host.toHandler.push(typeof message === "string" ? Buffer.from(message, 'utf8') : message);
      return true;
    },
    close() {
      host.closed++;
    },
  };
  return host;
}
