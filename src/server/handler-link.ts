/**
 * The core's 0MQ side of handler routes (handler-protocol.md §0): per
 * send_spec one PUSH socket that the core binds (identity = send_ident) and
 * per recv_spec one SUB socket that it binds, subscribed to recv_ident.
 * Handlers configured with the same specs share these sockets, as in
 * Mongrel2.
 *
 * Sends are queued per PUSH socket and go out one at a time in order; with no
 * handler connected they wait (as Mongrel2's blocking send does). The queue
 * is bounded (`limits.handler_queue`): past it `send` refuses and the caller
 * answers 502.
 *
 * Both directions run with a 0 timeout, so zeromq.js tries the operation at
 * once (no ZMQ_EVENTS poll, i.e. no syscall, per message) and settles the
 * promise synchronously; only on EAGAIN does the link switch that socket to
 * an infinite timeout for ONE operation, which zeromq.js then completes when
 * the socket's fd says it can. The next operation starts only after the
 * previous one settled, so order is kept.
 */
import { Push, Subscriber, type Socket } from 'zeromq';
import type { HandlerTarget } from '../config/types.js';
import type { Logger } from '../handler/logger.js';
import { zmqPayload } from '../handler/zmq-payload.js';
import type { HandlerMessage } from './handler-message.js';

interface PushLink {
  readonly spec: string;
  readonly socket: Push;
  readonly queue: HandlerMessage[];
  sending: boolean;
  closed: boolean;
}

interface SubLink {
  readonly spec: string;
  readonly socket: Subscriber;
  /** The first handler configured with this recv_spec: where dead-id notices go. */
  readonly owner: HandlerTarget;
  loop?: Promise<void>;
}

/**
 * Replies handled back to back before the event loop gets a turn. Small, so
 * that requests that arrived meanwhile go on to the handlers between groups
 * of replies instead of after a whole burst: the handler then works while
 * the core writes, rather than both taking turns (bench/core-handler.ts:
 * 256 gave 0.95x the real Mongrel2, 8-32 gave 1.0-1.1x).
 */
const RECEIVES_PER_TURN = 16;

export type ReplySink = (frame: Buffer, from: HandlerTarget) => void;

export class HandlerLinks {
  private readonly pushes = new Map<string, PushLink>();
  private readonly subs = new Map<string, SubLink>();

  constructor(
    targets: Iterable<HandlerTarget>,
    private readonly onReply: ReplySink,
    private readonly log: Logger,
    private readonly maxQueue: number,
  ) {
    for (const t of targets) {
      if (!this.pushes.has(t.sendSpec)) {
        // Mongrel2 sets send_ident as the PUSH identity, which has no effect on PUSH; it goes in each message instead.
        const socket = new Push({ linger: 0, sendTimeout: 0 });
        this.pushes.set(t.sendSpec, { spec: t.sendSpec, socket, queue: [], sending: false, closed: false });
      }
      const sub = this.subs.get(t.recvSpec);
      if (!sub) {
        const socket = new Subscriber({ linger: 0, receiveTimeout: 0 });
        socket.subscribe(t.recvIdent);
        this.subs.set(t.recvSpec, { spec: t.recvSpec, socket, owner: t });
      } else if (sub.owner.recvIdent !== t.recvIdent) {
        sub.socket.subscribe(t.recvIdent);
      }
    }
  }

  /** Binds every socket; rejects naming the spec that could not be bound. */
  async bind(): Promise<void> {
    for (const link of [...this.pushes.values(), ...this.subs.values()]) {
      try {
        await link.socket.bind(link.spec);
      } catch (err) {
        throw new Error(`cannot bind handler socket ${link.spec}: ${(err as Error).message}`);
      }
    }
    for (const sub of this.subs.values()) sub.loop = this.receive(sub);
  }

  private async receive(sub: SubLink): Promise<void> {
    try {
      // Mongrel2 reads one part at a time: each part is a reply of its own.
      let inARow = 0;
      while (!sub.socket.closed) {
        // Receives that succeed at once resolve synchronously: let client I/O in now and then.
        if (++inARow % RECEIVES_PER_TURN === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (sub.socket.closed) break;
        }
        let parts: Buffer[] | undefined;
        try {
          parts = await sub.socket.receive();
        } catch (err) {
          if (!isEagain(err) || sub.socket.closed) throw err;
          parts = await waitFor(sub.socket, (ms) => (sub.socket.receiveTimeout = ms), () => sub.socket.receive());
          if (parts === undefined) break;
        }
        for (const part of parts) {
          try {
            this.onReply(part, sub.owner);
          } catch (err) {
            this.log.error({ err, spec: sub.spec }, 'reply handling failed');
          }
        }
      }
    } catch (err) {
      if (!sub.socket.closed) this.log.error({ err, spec: sub.spec }, 'handler receive loop ended');
    }
  }

  /** Queues one message for the handler; false when its queue is full or closed. */
  send(target: HandlerTarget, message: HandlerMessage): boolean {
    const link = this.pushes.get(target.sendSpec);
    if (!link || link.closed || link.queue.length >= this.maxQueue) return false;
    link.queue.push(message);
    if (!link.sending) void this.drain(link);
    return true;
  }

  /** Messages waiting for a handler, per send_spec. */
  queued(target: HandlerTarget): number {
    return this.pushes.get(target.sendSpec)?.queue.length ?? 0;
  }

  private async drain(link: PushLink): Promise<void> {
    link.sending = true;
    try {
      while (link.queue.length > 0 && !link.closed) {
        const msg = zmqPayload(link.queue[0]!);
        try {
          await link.socket.send(msg);
        } catch (err) {
          if (!isEagain(err) || link.socket.closed) throw err;
          await waitFor(link.socket, (ms) => (link.socket.sendTimeout = ms), () => link.socket.send(msg));
        }
        link.queue.shift();
      }
    } catch (err) {
      if (!link.closed) this.log.error({ err, spec: link.spec }, 'sending to the handler failed');
      link.queue.length = 0;
    } finally {
      link.sending = false;
    }
  }

  async close(): Promise<void> {
    for (const link of this.pushes.values()) {
      link.closed = true;
      link.queue.length = 0;
      link.socket.close();
    }
    for (const sub of this.subs.values()) sub.socket.close();
    await Promise.all([...this.subs.values()].map((s) => s.loop));
  }
}

const isEagain = (err: unknown): boolean => (err as { code?: unknown }).code === 'EAGAIN';

/**
 * After a 0-timeout operation found nothing to do (EAGAIN: nothing to read /
 * no peer can take it), runs it once more with no timeout, which waits, then
 * restores the 0 timeout. Undefined when the socket was closed meanwhile.
 * (The first try is inline at each call site: no closures or extra promise
 * per message on the hot path.)
 */
async function waitFor<T>(socket: Socket, timeout: (ms: number) => void, op: () => Promise<T>): Promise<T | undefined> {
  timeout(-1);
  try {
    return await op();
  } catch (err) {
    if (socket.closed && isEagain(err)) return undefined;
    throw err;
  } finally {
    if (!socket.closed) timeout(0);
  }
}
