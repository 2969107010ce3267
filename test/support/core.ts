/**
 * Test support: run OUR server core (src/server/server.ts) the way
 * test/support/mongrel2.ts runs the real Mongrel2, with the same routes as
 * test/mongrel2/interop.conf.in: '/handler' (JSON handler), '/tnet'
 * (tnetstring handler), '/static/' (Dir), host 'localhost' as the default.
 * It runs in-process (no child), on 127.0.0.1 with a free HTTP port and
 * free 0MQ ports; `stop()` closes it and removes its folder. Call it in an
 * `after()` hook.
 */
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pino } from 'pino';
import { Pull } from 'zeromq';
import { parseMessage } from '../../src/protocol/request.js';
import type { Config, DirTarget, FilterConfig, HandlerTarget, Target } from '../../src/config/types.js';
import { createServer, type AccessLogEntry, type CoreServer } from '../../src/server/server.js';
import { STATIC_FILES, type Mongrel2HandlerInfo } from './mongrel2.js';
import { freePorts } from './process.js';
import { subscribedPublisher } from './zmq.js';
import { handlerTarget, serverRow } from './config.js';

export interface StartCoreOptions {
  /** Extra `setting` rows (text values, as in the table). */
  settings?: Record<string, string>;
  /** Also route '/' to the JSON handler (a bridge serving a whole site), like startMongrel2's rootRoute. */
  rootRoute?: boolean;
  /** Extra routes on the default host (ids from 10 up), e.g. Proxy targets. */
  routes?: Array<{ path: string; target: Target }>;
  /** More route paths to the JSON handler (ids from 30 up), e.g. the captures' '/handlertest'. */
  handlerPaths?: string[];
  /** Run as if chrooted into `home` (absolute upload.temp_store paths land under it, as with Mongrel2's chroot). */
  chroot?: boolean;
  /** The server's Filter rows (module paths absolute, or relative to the process cwd). */
  filters?: FilterConfig[];
}

export interface CorePeer {
  readonly server: CoreServer;
  readonly httpPort: number;
  readonly baseUrl: string;
  readonly handler: Mongrel2HandlerInfo;
  readonly tnetHandler: Mongrel2HandlerInfo;
  readonly home: string;
  readonly staticDir: string;
  /** Everything the core logged, one JSON record per entry. */
  logs(): Array<Record<string, unknown>>;
  readonly accessLog: AccessLogEntry[];
  stop(): Promise<void>;
}

/** The settings of interop.conf.in that matter to the core. */
const INTEROP_SETTINGS: Record<string, string> = { 'zeromq.threads': '1', 'limits.content_length': '2048', 'download.flow_control': '0' };

export async function startCore(opts: StartCoreOptions = {}): Promise<CorePeer> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2core-'));
  const staticDir = path.join(home, 'static');
  await fsp.mkdir(staticDir);
  for (const [name, body] of Object.entries(STATIC_FILES)) await fsp.writeFile(path.join(staticDir, name), body);
  const [jsonSend, jsonRecv, tnetSend, tnetRecv] = (await freePorts(4)) as [number, number, number, number];
  const info = (send: number, recv: number, protocol: 'json' | 'tnetstring', route: string): Mongrel2HandlerInfo => ({
    sendSpec: `tcp://127.0.0.1:${send}`,
    recvSpec: `tcp://127.0.0.1:${recv}`,
    sendIdent: randomUUID(),
    sendPort: send,
    recvPort: recv,
    protocol,
    route,
  });
  const handler = info(jsonSend, jsonRecv, 'json', '/handler');
  const tnetHandler = info(tnetSend, tnetRecv, 'tnetstring', '/tnet');
  const target = (id: number, h: Mongrel2HandlerInfo): HandlerTarget => handlerTarget(id, h);
  const dir: DirTarget = { type: 'dir', id: 1, base: 'static/', indexFile: 'index.html', defaultCtype: 'text/plain', cacheTtl: 0 };
  const config: Config = {
    server: serverRow({
      name: 'm2interop',
      port: 0,
      chroot: opts.chroot ? home : '',
      accessLog: '',
      errorLog: '',
      pidFile: '',
      hosts: [
        {
          id: 1,
          name: 'localhost',
          matching: 'localhost',
          routes: [
            { id: 1, path: '/handler', target: target(1, handler) },
            { id: 2, path: '/tnet', target: target(2, tnetHandler) },
            { id: 3, path: '/static/', target: dir },
            ...(opts.rootRoute ? [{ id: 4, path: '/', target: target(1, handler) }] : []),
            ...(opts.routes ?? []).map((r, i) => ({ id: 10 + i, path: r.path, target: r.target })),
            ...(opts.handlerPaths ?? []).map((p, i) => ({ id: 30 + i, path: p, target: target(1, handler) })),
          ],
        },
      ],
      filters: opts.filters ?? [],
    }),
    settings: new Map(Object.entries({ ...INTEROP_SETTINGS, ...opts.settings })),
    mimetypes: new Map([['.txt', 'text/plain'], ['.html', 'text/html']]),
  };
  const records: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  const accessLog: AccessLogEntry[] = [];
  const server = createServer(config, { logger, cwd: home, accessLog: (e) => accessLog.push(e) });
  let stopping: Promise<void> | undefined;
  try {
    const { port } = await server.listen();
    return {
      server,
      httpPort: port,
      baseUrl: `http://127.0.0.1:${port}`,
      handler,
      tnetHandler,
      home,
      staticDir,
      logs: () => records,
      accessLog,
      stop: () =>
        (stopping ??= (async () => {
          try {
            await server.close();
          } finally {
            await fsp.rm(home, { recursive: true, force: true });
          }
        })()),
    };
  } catch (err) {
    await server.close().catch(() => undefined);
    await fsp.rm(home, { recursive: true, force: true });
    throw err;
  }
}

/** A raw 0MQ handler (PULL + PUB, as a Mongrel2 handler connects) on one of the core's handler routes. */
export interface RawHandler {
  next(): Promise<ReturnType<typeof parseMessage>>;
  /** The next message's exact bytes. */
  nextRaw(): Promise<Buffer>;
  send(bytes: string | Buffer): Promise<void>;
  close(): void;
}

export async function rawHandler(peer: CorePeer, which: 'json' | 'tnet' = 'json'): Promise<RawHandler> {
  const info = which === 'json' ? peer.handler : peer.tnetHandler;
  const pull = new Pull();
  pull.connect(info.sendSpec);
  // Replies are lost until the core's SUB has our subscription.
  const pub = await subscribedPublisher(info.recvSpec).catch((err: unknown) => {
    pull.close();
    throw err;
  });
  const nextRaw = async (): Promise<Buffer> => (await pull.receive())[0]!;
  return {
    nextRaw,
    next: async () => parseMessage(await nextRaw()),
    send: (bytes) => pub.send(bytes),
    close: () => {
      pull.close();
      pub.close();
    },
  };
}
