/** Fakes for filter tests: a connection view that records responses, and a logger that records lines. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { FilterConnection } from '../../src/server/filters/chain.js';
import { filterResponse } from '../../src/server/filters/response.js';

export interface FakeConnection extends FilterConnection {
  readonly sent: Buffer[];
}

export function fakeConnection(opts: { addr?: string; headers?: Array<[string, string]>; noRequest?: boolean } = {}): FakeConnection {
  const headers = opts.headers ?? [];
  const sent: Buffer[] = [];
  return {
    id: 7,
    remoteAddr: opts.addr ?? '127.0.0.1',
    remotePort: 40000,
    request: opts.noRequest
      ? undefined
      : {
          method: 'GET',
          uri: '/app/x?y=1',
          path: '/app/x',
          query: 'y=1',
          version: 'HTTP/1.1',
          headers,
          header: (name) => headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
        },
    respond: (status, body) => void sent.push(filterResponse(status, body)),
    sent,
  };
}

export function recordingLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}
