/**
 * The in-memory connection an upgraded request (a websocket) runs over. Its
 * app side is a MemorySocket: Node's own HTTP server parses the upgrade
 * request from it and hands it to the app's 'upgrade' listener, which keeps
 * it (ws's handleUpgrade writes the 101 and then frames into it). Its bridge
 * side is a plain Duplex: reading gives what the app writes, writing feeds
 * what the app reads.
 *
 * Backpressure both ways: a write is acknowledged only once the other side
 * has taken the bytes, so neither side buffers more than its high-water mark.
 * Ends both ways too: ending one side's writes is an EOF on the other side's
 * reads (the app socket allows half-open, as ws expects); destroying either
 * side destroys the other.
 */
import { Duplex } from 'node:stream';
import { MemorySocket, type MemorySocketOptions, type SocketPeer } from './memory-socket.js';

type Callback = (err?: Error | null) => void;

export interface UpgradeLinkOptions extends Omit<MemorySocketOptions, 'peer'> {
  /** The raw upgrade request, read by Node's parser first. */
  head: Buffer;
}

export class UpgradeLink implements SocketPeer {
  /** The app's end. */
  readonly socket: MemorySocket;
  /** The bridge's end. */
  readonly stream: Duplex;
  #head: Buffer | null;
  /** The bridge side's write, waiting for the app to read. */
  #heldWrite: Callback | undefined;
  /** The app's write, waiting for the bridge side to read. */
  #heldRead: Callback | undefined;

  constructor(options: UpgradeLinkOptions) {
    const { head, ...socketOptions } = options;
    this.#head = head;
    const hwm = options.highWaterMark ?? 64 * 1024;
    this.socket = new MemorySocket({ ...socketOptions, peer: this });
    this.stream = new Duplex({
      readableHighWaterMark: hwm,
      writableHighWaterMark: hwm,
      read: () => release(this.#takeHeldRead()),
      write: (chunk: Buffer, _encoding, callback: Callback) => this.#toApp(chunk, callback),
      final: (callback: Callback) => {
        this.#pushHead();
        this.socket.push(null);
        callback();
      },
      destroy: (err, callback) => {
        this.socket.destroy();
        this.#releaseAll();
        callback(err);
      },
    });
  }

  #toApp(chunk: Buffer, callback: Callback): void {
    if (this.socket.destroyed) {
      callback(new Error('the app closed the connection'));
      return;
    }
    this.#pushHead();
    if (this.socket.push(chunk)) callback();
    else this.#heldWrite = callback;
  }

  #pushHead(): void {
    const head = this.#head;
    this.#head = null;
    if (head) this.socket.push(head);
  }

  #takeHeldRead(): Callback | undefined {
    const held = this.#heldRead;
    this.#heldRead = undefined;
    return held;
  }

  #releaseAll(): void {
    release(this.#takeHeldRead(), new Error('connection closed'));
    const held = this.#heldWrite;
    this.#heldWrite = undefined;
    release(held, new Error('connection closed'));
  }

  // SocketPeer: the app socket's side.

  read(): void {
    this.#pushHead();
    const held = this.#heldWrite;
    this.#heldWrite = undefined;
    release(held);
  }

  write(chunk: Buffer, done: Callback): void {
    if (this.stream.destroyed) {
      done(new Error('the client connection is gone'));
      return;
    }
    if (this.stream.push(chunk)) done();
    else this.#heldRead = done;
  }

  end(): void {
    this.stream.push(null);
  }

  destroyed(): void {
    this.stream.destroy();
    this.#releaseAll();
  }
}

function release(callback: Callback | undefined, err?: Error): void {
  callback?.(err);
}
