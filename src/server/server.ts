/**
 * The bundled server core: a node:net listener speaking Mongrel2's HTTP
 * behaviour, routing by host and path to handlers (0MQ), Dir targets, and
 * (later) proxies. One Config (src/config/types.ts) = one server.
 */
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Config, DirTarget, HandlerTarget, HostConfig, ProxyTarget, Target } from '../config/types.js';
import { createLogger, type Logger } from '../handler/logger.js';
import { parseReply, type Reply } from '../protocol/reply.js';
import { Client, type ClientHost } from './client.js';
import { DirHandler, type DirResponse } from './dir/index.js';
import { encodeDisconnect, type HandlerMessage } from './handler-message.js';
import { HandlerLinks } from './handler-link.js';
import { ProxyHandler } from './proxy/index.js';
import { createTempFile, type TempFile } from './upload-store.js';
import { adoptSocket } from './socket-reads.js';
import { FilterChain } from './filters/chain.js';
import { loadFilters } from './filters/loader.js';
import type { RequestHead } from './http/request-parser.js';
import { HostMap } from './routing/host-map.js';
import { RouteMap, type Route } from './routing/route-map.js';
import { readSettings, type ServerSettings } from './settings.js';
import type { AccessLogEntry, ClientInfo } from './types.js';

export type { AccessLogEntry, ClientInfo } from './types.js';

export interface CoreServerOptions {
  logger?: Logger;
  /** Where relative Dir bases resolve (default process.cwd(), i.e. the chroot after chroot). */
  cwd?: string;
  accessLog?: (entry: AccessLogEntry) => void;
  /** Where relative filter module paths resolve (default process.cwd(): where the server was started, before any chroot). */
  filterBaseDir?: string;
}

export interface CoreServer {
  /** Loads the filters (a FilterLoadError names the module), binds the handler sockets, then the HTTP listener; resolves with the real address. */
  listen(): Promise<{ address: string; port: number }>;
  /** Stops accepting, drops every connection (no disconnect notices) and closes the 0MQ sockets. */
  close(): Promise<void>;
  /** A snapshot per open connection (control port `status what=net`). */
  clients(): Iterable<ClientInfo>;
  /** Drops connection `id` without a disconnect notice; false if there is none. */
  kill(id: number): boolean;
  readonly config: Config;
}

interface HostEntry {
  readonly config: HostConfig;
  readonly routes: RouteMap<Target>;
}

const MAX_ID = 0xffffffff;
/** Idle backend connections kept per Proxy target (each idle one costs a descriptor and a timer). */
const PROXY_MAX_IDLE = 256;

class Core implements CoreServer, ClientHost {
  readonly settings: ServerSettings;
  readonly log: Logger;
  readonly urlScheme = 'http' as const;
  private readonly hosts = new HostMap<HostEntry>();
  private readonly defaultHost: HostEntry;
  private readonly links: HandlerLinks;
  private readonly handlers = new Map<number, HandlerTarget>();
  private readonly dirs = new Map<string, DirHandler>();
  /** One per Proxy target id: its backend connection pool. */
  private readonly proxies = new Map<number, ProxyHandler>();
  private readonly live = new Map<number, Client>();
  private readonly listener: net.Server;
  private nextId = 0;
  private closing: Promise<void> | undefined;
  /** The server's filters (config.server.filters), loaded by listen(); none until then. */
  filters: FilterChain | undefined;

  constructor(
    readonly config: Config,
    private readonly options: CoreServerOptions,
  ) {
    this.settings = readSettings(config.settings);
    this.log = options.logger ?? createLogger({ name: 'm2core' });
    let fallback: HostEntry | undefined;
    for (const host of config.server.hosts) {
      const routes = new RouteMap<Target>({
        onBudgetExceeded: (route, path) => this.log.warn({ route: route.path, path }, 'route pattern gave up (step budget); treated as no match'),
      });
      for (const r of host.routes) {
        try {
          routes.insert(r.path, r.target);
        } catch (err) {
          throw new Error(`host '${host.name}' route '${r.path}' (id ${r.id}): ${(err as Error).message}`, { cause: err });
        }
        if (r.target.type === 'handler') this.handlers.set(r.target.id, r.target);
      }
      const entry: HostEntry = { config: host, routes };
      this.hosts.insert(host.matching, entry);
      if (host.name === config.server.defaultHost && !fallback) fallback = entry;
    }
    if (!fallback) throw new Error(`server ${config.server.uuid}: default_host '${config.server.defaultHost}' is not the name of any of its hosts`);
    this.defaultHost = fallback;
    this.links = new HandlerLinks(this.handlers.values(), (frame, from) => this.onReply(frame, from), this.log, this.settings.handlerQueue);
    this.listener = net.createServer({ allowHalfOpen: false, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.listener.on('error', (err) => this.log.error({ err }, 'listener error'));
  }

  async listen(): Promise<{ address: string; port: number }> {
    if (this.config.server.filters.length > 0) {
      const loaded = await loadFilters(this.config.server.filters, { config: this.config.server, log: this.log }, { baseDir: this.options.filterBaseDir });
      this.filters = new FilterChain(loaded, this.log);
    }
    const { bindAddr, port } = this.config.server;
    // The HTTP port first: a net.Server closes at once, while a closed 0MQ
    // socket frees its port later (libzmq's reaper thread), so a start that
    // fails on the HTTP port must not have bound any handler spec yet.
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => reject(new Error(`cannot listen on ${bindAddr}:${port}: ${err.message}`));
      this.listener.once('error', fail);
      this.listener.listen({ host: bindAddr, port, backlog: 128 }, () => {
        this.listener.off('error', fail);
        resolve();
      });
    });
    try {
      await this.links.bind();
    } catch (err) {
      // A failed start leaves nothing bound (the caller may retry on other
      // ports) and nobody connected meanwhile waiting.
      const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
      for (const c of [...this.live.values()]) c.kill();
      await stopped;
      await this.links.close().catch(() => undefined);
      throw err;
    }
    const addr = this.listener.address() as net.AddressInfo;
    this.log.info({ address: addr.address, port: addr.port, uuid: this.config.server.uuid }, 'listening');
    return { address: addr.address, port: addr.port };
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
      for (const c of [...this.live.values()]) c.kill();
      await Promise.all([...this.proxies.values()].map((p) => p.close()));
      await stopped;
      await this.links.close();
    })());
  }

  *clients(): Iterable<ClientInfo> {
    for (const c of this.live.values()) yield { ...c.info };
  }

  kill(id: number): boolean {
    const c = this.live.get(id);
    if (!c) return false;
    c.kill();
    return true;
  }

  private allocateId(): number | undefined {
    for (let tries = 0; tries <= this.live.size; tries++) {
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
      if (!this.live.has(this.nextId)) return this.nextId;
    }
    return undefined;
  }

  private accept(raw: net.Socket): void {
    if (this.closing) return void raw.destroy();
    const id = this.allocateId();
    if (id === undefined) return void raw.destroy();
    let socket: net.Socket;
    try {
      socket = adoptSocket(raw);
    } catch (err) {
      this.log.error({ err }, 'dropped a new connection');
      return void raw.destroy();
    }
    socket.on('error', () => undefined);
    this.live.set(id, new Client(id, socket, this));
  }

  // ---- ClientHost

  resolve(hostName: string | undefined, path: string): { host: HostConfig; route: Route<Target> | undefined } {
    const entry = (hostName === undefined ? undefined : this.hosts.match(hostName)) ?? this.defaultHost;
    return { host: entry.config, route: path === '' ? undefined : entry.routes.match(path) };
  }

  toHandler(target: HandlerTarget, message: HandlerMessage): boolean {
    return this.links.send(target, message);
  }

  disconnected(target: HandlerTarget, connId: number): void {
    this.links.send(target, encodeDisconnect(target, connId));
  }

  async serveDir(target: DirTarget, prefix: string, head: RequestHead): Promise<DirResponse | undefined> {
    const key = `${target.id}\0${prefix}`;
    let dir = this.dirs.get(key);
    if (!dir) {
      dir = new DirHandler(target, prefix, this.config.mimetypes, { cwd: this.options.cwd });
      this.dirs.set(key, dir);
    }
    const header = (name: string): string | undefined => head.headers.find(([k]) => k.toLowerCase() === name)?.[1];
    return dir.serve({ method: head.method, path: head.path, uri: head.uri, version: head.version, header });
  }

  createUploadFile(): Promise<TempFile> {
    const template = this.settings.uploadTempStore;
    if (template === undefined) return Promise.reject(new Error('upload.temp_store is not set'));
    return createTempFile({ template, root: this.root, chrooted: this.config.server.chroot !== '', mode: this.settings.uploadTempStoreMode });
  }

  /** The server root: the chroot folder, or the cwd of a server without one. */
  private get root(): string {
    return this.options.cwd ?? process.cwd();
  }

  /**
   * A sendfile path, resolved like Mongrel2 (inside the chroot when there is
   * one), must really (after realpath) be a regular file inside the server
   * root or a configured Dir base; otherwise undefined (logged).
   */
  private async sendfilePath(conn: number, file: string): Promise<string | undefined> {
    const chrooted = this.config.server.chroot !== '';
    const wanted = chrooted ? path.join(this.root, file) : path.resolve(this.root, file);
    try {
      const real = await fsp.realpath(wanted);
      const bases = [this.root, ...this.dirBases()];
      const allowed = await Promise.all(bases.map((b) => fsp.realpath(b).catch(() => undefined)));
      const inside = allowed.some((b) => b !== undefined && real.startsWith(b.endsWith(path.sep) ? b : b + path.sep));
      if (!inside) throw new Error('outside the server root and every Dir base');
      if (!(await fsp.stat(real)).isFile()) throw new Error('not a regular file');
      return real;
    } catch (err) {
      this.log.warn({ conn, file, err: (err as Error).message }, 'sendfile refused; closing the connection');
      return undefined;
    }
  }

  private dirBases(): string[] {
    return this.config.server.hosts.flatMap((h) => h.routes.flatMap((r) => (r.target.type === 'dir' ? [path.resolve(this.root, r.target.base)] : [])));
  }

  proxy(target: ProxyTarget): ProxyHandler {
    let proxy = this.proxies.get(target.id);
    if (!proxy) {
      // Room to keep every backend connection a burst of clients had busy (Mongrel2 keeps one per client connection).
      proxy = new ProxyHandler(target, { forwardedHeaders: this.settings.proxyForwardedHeaders, trustForwarded: this.settings.proxyTrustForwarded, logger: this.log, maxIdlePerTarget: PROXY_MAX_IDLE });
      this.proxies.set(target.id, proxy);
    }
    return proxy;
  }

  accessLog(entry: AccessLogEntry): void {
    if (this.settings.disableAccessLogging) return;
    try {
      this.options.accessLog?.(entry);
    } catch (err) {
      this.log.error({ err }, 'access log sink failed');
    }
  }

  released(client: Client): void {
    if (this.live.get(client.id) === client) this.live.delete(client.id);
  }

  // ---- replies

  private onReply(frame: Buffer, from: HandlerTarget): void {
    let reply: Reply;
    try {
      reply = parseReply(frame, { maxTargets: this.settings.handlerTargets });
    } catch (err) {
      this.log.warn({ spec: from.recvSpec, err: (err as Error).message, bytes: frame.length }, 'skipped invalid message from handler');
      return;
    }
    for (const id of reply.ids) {
      const client = this.live.get(id);
      if (!client) {
        // Mongrel2 tells the handler, once per dead target per message, except for ctl cancel.
        if (!(reply.type === 'extended' && reply.name === 'ctl' && hasKey(reply.args, 'cancel'))) this.disconnected(from, id);
        continue;
      }
      switch (reply.type) {
        case 'data':
          client.deliver(reply.body, from);
          break;
        case 'close':
          client.closeFromHandler();
          break;
        case 'extended':
          this.extended(client, reply.name, reply.args);
          break;
      }
    }
  }

  private extended(client: Client, name: string, args: unknown): void {
    if (name === 'sendfile') {
      const file = typeof args === 'string' ? args : Buffer.isBuffer(args) ? args.toString('latin1') : undefined;
      if (file === undefined || file === '' || file.includes('\0')) {
        this.log.warn({ conn: client.id }, 'sendfile wants one path string; closing the connection');
        client.kill();
        return;
      }
      client.sendFile(this.sendfilePath(client.id, file));
      return;
    }
    if (name !== 'ctl') {
      this.log.warn({ conn: client.id, name }, 'no xrequest plugin for this extended reply; closing the connection');
      client.kill();
      return;
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args) || Buffer.isBuffer(args)) {
      this.log.warn({ conn: client.id }, 'ctl arguments must be a dict');
      return;
    }
    if (hasKey(args, 'keep-alive')) client.keepAlive();
    if (hasKey(args, 'credits')) {
      const n = (args as Record<string, unknown>).credits;
      const credits = typeof n === 'bigint' ? Number(n) : n;
      // Mongrel2 reads any type as an integer (garbage for non-integers, a crash for floats); here only integers count.
      if (typeof credits === 'number' && Number.isSafeInteger(credits)) client.grantUploadCredits(credits);
      else this.log.warn({ conn: client.id }, 'ctl credits must be a tnetstring integer; ignored');
    }
    if (hasKey(args, 'cancel')) client.kill();
  }
}

function hasKey(value: unknown, key: string): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && Object.prototype.hasOwnProperty.call(value, key);
}

export function createServer(config: Config, options: CoreServerOptions = {}): CoreServer {
  return new Core(config, options);
}
