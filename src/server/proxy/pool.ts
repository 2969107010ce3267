/**
 * Keep-alive connections to one backend (addr:port): dials new ones with a
 * connect timeout and keeps at most `maxIdle` idle ones for `idleTimeoutMs`.
 * An idle socket that the backend closes, or that receives bytes nobody asked
 * for, is dropped.
 */
import * as net from 'node:net';

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxIdle: number;
}

interface Idle {
  readonly socket: net.Socket;
  readonly timer: NodeJS.Timeout;
  readonly drop: () => void;
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
  private readonly idle: Idle[] = [];
  /** Every socket we dialled and still own (idle or lent out). */
  private readonly owned = new Set<net.Socket>();
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
    clearTimeout(entry.timer);
    entry.socket.off('data', entry.drop).off('end', entry.drop).off('close', entry.drop).off('error', entry.drop);
    return entry.socket;
  }

  connect(signal: AbortSignal | undefined): Promise<net.Socket> {
    if (this.closed) return Promise.reject(new ConnectError('proxy is closed', false));
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.addr, port: this.port });
      this.owned.add(socket);
      socket.once('close', () => this.owned.delete(socket));
      const done = (err: ConnectError | undefined): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
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
    });
  }

  /** A socket whose last exchange ended cleanly: keep it if there is room, else close it. */
  release(socket: net.Socket): void {
    if (this.closed || socket.destroyed || !socket.readable || !socket.writable || this.idle.length >= this.options.maxIdle) {
      socket.destroy();
      return;
    }
    socket.resume(); // so a FIN from the backend is seen while idle
    const drop = (): void => {
      const at = this.idle.findIndex((e) => e.socket === socket);
      if (at >= 0) clearTimeout(this.idle.splice(at, 1)[0]!.timer);
      socket.destroy();
    };
    const timer = setTimeout(drop, this.options.idleTimeoutMs).unref();
    socket.on('data', drop).on('end', drop).on('close', drop).on('error', drop);
    this.idle.push({ socket, timer, drop });
  }

  /** Destroys every socket, idle or lent out. */
  close(): void {
    this.closed = true;
    for (const e of this.idle.splice(0)) clearTimeout(e.timer);
    for (const s of this.owned) s.destroy();
    this.owned.clear();
  }

  /** An upgraded socket belongs to the caller now: close() will not touch it. */
  disown(socket: net.Socket): void {
    this.owned.delete(socket);
  }
}
