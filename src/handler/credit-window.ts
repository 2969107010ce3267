/**
 * Download flow control (`download.flow_control=1`). The first request of a
 * connection carries DOWNLOAD_CREDITS; every byte written to that client
 * costs one credit and each credits notice adds some back. Mongrel2 kills a
 * connection that runs ahead of its credits, so writes here wait (in order)
 * for credits instead of going out. Pure bookkeeping, no I/O.
 */
interface Waiter {
  want: number;
  resolve: (granted: number) => void;
}

export class CreditWindow {
  #balance: number;
  #waiters: Waiter[] = [];
  #closed = false;

  constructor(initial: number) {
    this.#balance = initial;
  }

  get balance(): number {
    return this.#balance;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Resolves with 1..want credits, taken from the balance, once some are
   * available; FIFO among callers. Resolves with 0 if the window is closed.
   */
  acquire(want: number): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    if (this.#waiters.length === 0 && this.#balance > 0) return Promise.resolve(this.#take(want));
    return new Promise((resolve) => this.#waiters.push({ want, resolve }));
  }

  /**
   * Takes exactly `n` credits if they are there and nobody is waiting, so a
   * write that fits needs no promise; else takes nothing and returns false.
   */
  tryTake(n: number): boolean {
    if (this.#closed || this.#waiters.length > 0 || this.#balance < n) return false;
    this.#balance -= n;
    return true;
  }

  /** Adds credits from a credits notice and wakes waiters. */
  grant(credits: number): void {
    if (this.#closed) return;
    this.#balance += credits;
    while (this.#balance > 0 && this.#waiters.length > 0) {
      const w = this.#waiters.shift()!;
      w.resolve(this.#take(w.want));
    }
  }

  /** The connection is gone: every waiter gets 0. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.resolve(0);
  }

  #take(want: number): number {
    const n = Math.min(want, this.#balance);
    this.#balance -= n;
    return n;
  }
}
