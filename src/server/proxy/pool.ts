/**
 * Keep-alive connections to one backend (addr:port): dials new ones with a
 * connect timeout and keeps at most `maxIdle` idle ones for `idleTimeoutMs`.
 * An idle socket that the backend closes, or that receives bytes nobody asked
 * for, is dropped.
 *
 * Per request this costs no listeners and no timer: each socket gets its
 * watcher once (it only acts while the socket is idle), and one timer per
 * pool expires the idle ones, oldest first.
 */
import * as net from 'node:net';

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxIdle: number;
}

interface Idle {
  readonly socket: net.Socket;
  /** When it went idle (ms). */
  readonly since: number;
}

export class ConnectError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
  }
}

export class ConnectionPool {
  /** Oldest first: take() uses the newest, the expiry timer drops from the front. */
  private readonly idle: Idle[] = [];
  /** Every socket we dialled and still own (idle or lent out). */
  private readonly owned = new Set<net.Socket>();
  private readonly idleSockets = new Set<net.Socket>();
  private expiry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly addr: string,
    private readonly port: number,
    private readonly options: PoolOptions,
  ) {}

  get idleCount(): number {
    return this.idle.length;
  }

  /** The most recently used idle socket, or undefined. */
  take(): net.Socket | undefined {
    const entry = this.idle.pop();
    if (!entry) return undefined;
    this.idleSockets.delete(entry.socket);
    return entry.socket;
  }

  /** `cancel`: a caller-owned switch whose hook is set while connecting (proxy-handler.ts ProxyCancel). */
  connect(signal: AbortSignal | undefined, cancel?: { hook: { cancelled(): void } | undefined }): Promise<net.Socket> {
    if (this.closed) return Promise.reject(new ConnectError('proxy is closed', false));
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.addr, port: this.port });
      this.owned.add(socket);
      this.watch(socket);
      const done = (err: ConnectError | undefined): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (cancel?.hook === hook) cancel.hook = undefined;
        socket.off('error', onError).off('connect', onConnect);
        if (!err) return resolve(socket);
        socket.destroy();
        reject(err);
      };
      const onError = (e: Error): void => done(new ConnectError(`cannot connect to ${this.addr}:${this.port}: ${e.message}`, false));
      const onConnect = (): void => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true);
        done(undefined);
      };
      const onAbort = (): void => done(new ConnectError('client went away while connecting', false));
      const timer = setTimeout(() => done(new ConnectError(`connect to ${this.addr}:${this.port} timed out after ${this.options.connectTimeoutMs} ms`, true)), this.options.connectTimeoutMs);
      socket.once('error', onError).once('connect', onConnect);
      signal?.addEventListener('abort', onAbort, { once: true });
      const hook = { cancelled: onAbort };
      if (cancel) cancel.hook = hook;
    });
  }

  /** A socket whose last exchange ended cleanly: keep it if there is room, else close it. */
  release(socket: net.Socket): void {
    if (this.closed || socket.destroyed || !socket.readable || !socket.writable || this.idle.length >= this.options.maxIdle) {
      socket.destroy();
      return;
    }
    socket.resume(); // so a FIN from the backend is seen while idle
    this.idle.push({ socket, since: Date.now() });
    this.idleSockets.add(socket);
    this.expiry ??= setTimeout(() => this.expire(), this.options.idleTimeoutMs).unref();
  }

  /**
   * Set once per socket: while it is idle, bytes nobody asked for, a FIN or an
   * error drop it; its close always ends our ownership.
   */
  private watch(socket: net.Socket): void {
    const dropIfIdle = (): void => {
      if (this.idleSockets.has(socket)) this.drop(socket);
    };
    socket.on('data', dropIfIdle).on('end', dropIfIdle).on('error', dropIfIdle);
    socket.once('close', () => {
      dropIfIdle();
      this.owned.delete(socket);
    });
  }

  private drop(socket: net.Socket): void {
    this.idleSockets.delete(socket);
    const at = this.idle.findIndex((e) => e.socket === socket);
    if (at >= 0) this.idle.splice(at, 1);
    socket.destroy();
  }

  /** Drops the sockets idle for idleTimeoutMs and re-arms for the oldest one left. */
  private expire(): void {
    this.expiry = undefined;
    const now = Date.now();
    const { idleTimeoutMs } = this.options;
    let n = 0;
    while (n < this.idle.length && now - this.idle[n]!.since >= idleTimeoutMs) n++;
    for (const e of this.idle.splice(0, n)) {
      this.idleSockets.delete(e.socket);
      e.socket.destroy();
    }
    const oldest = this.idle[0];
    if (oldest && !this.closed) this.expiry = setTimeout(() => this.expire(), oldest.since + idleTimeoutMs - now).unref();
  }

  /** Destroys every socket, idle or lent out. */
  close(): void {
    this.closed = true;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
    this.idle.splice(0);
    this.idleSockets.clear();
    for (const s of this.owned) s.destroy();
    this.owned.clear();
  }

  /** An upgraded socket belongs to the caller now: close() will not touch it. */
  disown(socket: net.Socket): void {
    this.owned.delete(socket);
  }
}
