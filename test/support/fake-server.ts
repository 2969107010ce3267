/**
 * A tiny in-process stand-in for the Mongrel2 side of the handler protocol:
 * a PUSH socket bound at send_spec (server -> handler) and a SUB socket bound
 * at recv_spec and subscribed to '' (handler -> server), exactly as Mongrel2
 * binds them (handler-protocol.md §0).
 *
 *     const srv = await FakeServer.start();
 *     const conn = new Connection({ sendSpec: srv.sendSpec, recvSpec: srv.recvSpec });
 *     await srv.send(encodeRequest({...}));
 *     const reply = await srv.nextReply();
 *     await srv.close();
 *
 * Replies are collected by a background loop, so `nextReply()` can wait with a
 * bounded timeout (it rejects instead of hanging a broken test).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { Push, Subscriber } from 'zeromq';

export interface FakeServerOptions {
  /** Bind the PUSH socket here (default: tcp://127.0.0.1 on a free port). */
  sendSpec?: string;
  /** Bind the SUB socket here (default: tcp://127.0.0.1 on a free port). */
  recvSpec?: string;
  /** The SUB prefix, i.e. the server's recv_ident (default '': accept everything). */
  subscribe?: string;
}

interface Waiter {
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Two ipc:// endpoints that nothing is bound to, in a fresh temp folder that
 * the test removes afterwards. Unlike a probed TCP port, nobody can take
 * them in the meantime, and a connect that keeps retrying cannot connect to
 * itself (TCP's simultaneous open on an ephemeral port).
 */
export async function unboundEndpoints(t: TestContext): Promise<[string, string]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'm2b-ipc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return [`ipc://${dir}/send`, `ipc://${dir}/recv`];
}

export class FakeServer {
  readonly sendSpec: string;
  readonly recvSpec: string;
  readonly #push: Push;
  readonly #sub: Subscriber;
  readonly #replies: Buffer[] = [];
  readonly #waiters: Waiter[] = [];
  /** Replies that were not single-part (Mongrel2 would parse each part as a reply). */
  readonly multipart: Buffer[][] = [];
  #loop: Promise<void> | undefined;
  #closed = false;

  private constructor(push: Push, sub: Subscriber) {
    this.#push = push;
    this.#sub = sub;
    this.sendSpec = push.lastEndpoint ?? '';
    this.recvSpec = sub.lastEndpoint ?? '';
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const push = new Push({ linger: 0, sendTimeout: 5000 });
    const sub = new Subscriber({ linger: 0 });
    try {
      sub.subscribe(options.subscribe ?? '');
      await push.bind(options.sendSpec ?? 'tcp://127.0.0.1:*');
      await sub.bind(options.recvSpec ?? 'tcp://127.0.0.1:*');
    } catch (err) {
      push.close();
      sub.close();
      throw err;
    }
    const srv = new FakeServer(push, sub);
    srv.#loop = srv.#receiveLoop();
    return srv;
  }

  async #receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.#sub) {
        if (frames.length !== 1) {
          this.multipart.push(frames);
          continue;
        }
        const reply = frames[0]!;
        const waiter = this.#waiters.shift();
        if (waiter) {
          clearTimeout(waiter.timer);
          waiter.resolve(reply);
        } else {
          this.#replies.push(reply);
        }
      }
    } catch (err) {
      if (!this.#closed) throw err;
    }
  }

  /**
   * Sends one single-part message to the handler (as Mongrel2 does). An array
   * sends one multi-part message, which the real server never does.
   */
  async send(message: Buffer | string | Buffer[]): Promise<void> {
    await this.#push.send(typeof message === 'string' ? Buffer.from(message, 'latin1') : message);
  }

  /** How many replies arrived and were not taken yet. */
  get pending(): number {
    return this.#replies.length;
  }

  /** The next reply the handler published; rejects after `timeoutMs`. */
  nextReply(timeoutMs = 5000): Promise<Buffer> {
    const ready = this.#replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#closed) return Promise.reject(new Error('fake server closed'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new Error(`no reply within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** The next `n` replies, in order. */
  async nextReplies(n: number, timeoutMs = 5000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(await this.nextReply(timeoutMs));
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error('fake server closed'));
    }
    this.#push.close();
    this.#sub.close();
    await this.#loop;
  }
}
